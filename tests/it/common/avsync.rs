//! Lip-sync measurement on a recorded file: a participant flashes white and beeps (1 kHz)
//! at the same instants once a second (scripts/lk-publish.py --flash); this finds every
//! flash onset in the picture and every beep onset in the sound and pairs them.

use std::path::Path;

use super::{audio_mono, goertzel, gray_frames};

/// Frame rate the flash detector assumes (the recording's, constant).
const FPS: f64 = 30.0;
/// Window of the beep detector.
const WINDOW: usize = 240; // 5 ms at 48 kHz

/// Times (s) at which the picture's mean brightness rises past the midpoint of its range.
pub fn flash_onsets(path: &Path) -> Vec<f64> {
    let frames: Vec<f64> = gray_frames(path, 64, 36)
        .iter()
        .map(|f| f.iter().map(|&p| p as f64).sum::<f64>() / f.len() as f64)
        .collect();
    let (lo, hi) = frames
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let mid = (lo + hi) / 2.0;
    onsets(&frames, mid)
        .into_iter()
        .map(|i| i as f64 / FPS)
        .collect()
}

/// Times (s) at which 1 kHz energy rises past a tenth of its peak.
pub fn beep_onsets(path: &Path) -> Vec<f64> {
    let audio = audio_mono(path);
    let power: Vec<f64> = audio
        .chunks_exact(WINDOW)
        .map(|w| goertzel(w, 1000.0, 48_000.0))
        .collect();
    let peak = power.iter().cloned().fold(0.0, f64::max);
    onsets(&power, peak / 10.0)
        .into_iter()
        .map(|i| (i * WINDOW) as f64 / 48_000.0)
        .collect()
}

fn onsets(values: &[f64], threshold: f64) -> Vec<usize> {
    let mut out = Vec::new();
    let mut above = false;
    for (i, &v) in values.iter().enumerate() {
        let now = v > threshold;
        if now && !above {
            out.push(i);
        }
        above = now;
    }
    out
}

/// Beep minus flash (s) for every flash with a beep within 0.5 s.
pub fn offsets(path: &Path) -> Vec<f64> {
    let beeps = beep_onsets(path);
    flash_onsets(path)
        .into_iter()
        .filter_map(|f| {
            beeps
                .iter()
                .map(|b| b - f)
                .filter(|d| d.abs() < 0.5)
                .min_by(|a, b| a.abs().total_cmp(&b.abs()))
        })
        .collect()
}

/// The `p`-quantile (0..=1) of |values|.
pub fn abs_quantile(values: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().map(|x| x.abs()).collect();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}
