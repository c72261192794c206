//! Active speaker detection from participants' audio levels, the way a conference UI
//! does it: levels are smoothed, the loudest participant above a threshold becomes the
//! speaker (the first one must stand out from everyone), and a change needs the newcomer
//! to be clearly louder for a moment, so short interjections and noise do not flip the
//! layout. Silence keeps the last speaker.

use std::time::Duration;

/// RMS level (full scale 1.0) below which nobody counts as speaking (about -46 dBFS).
pub const THRESHOLD: f32 = 0.005;
/// How much louder (ratio of smoothed levels) a newcomer must be than the speaker.
const MARGIN: f32 = 1.5;
/// How long the newcomer must stay ahead.
const HOLD: Duration = Duration::from_millis(300);
/// Time constant of the level smoothing.
const SMOOTHING: Duration = Duration::from_millis(150);

/// Picks the active speaker from per-participant levels.
#[derive(Debug, Default)]
pub struct SpeakerDetector {
    smoothed: Vec<f32>,
    speaker: Option<usize>,
    /// A participant ahead of the speaker, and for how long.
    challenger: Option<(usize, Duration)>,
}

impl SpeakerDetector {
    /// Nobody has spoken yet.
    pub fn new() -> SpeakerDetector {
        SpeakerDetector::default()
    }

    /// The active speaker (participant index), if anyone has spoken.
    pub fn speaker(&self) -> Option<usize> {
        self.speaker
    }

    /// Feeds the levels of a block lasting `block`; returns the speaker after it.
    pub fn update(&mut self, levels: &[f32], block: Duration) -> Option<usize> {
        let n = levels.len();
        self.smoothed.resize(n, 0.0);
        if self.speaker.is_some_and(|s| s >= n) {
            self.speaker = None;
        }
        let k = 1.0 - (-block.as_secs_f32() / SMOOTHING.as_secs_f32()).exp();
        for (s, l) in self.smoothed.iter_mut().zip(levels) {
            *s += (l - *s) * k;
        }
        let loudest = (0..n)
            .filter(|&i| self.smoothed[i] >= THRESHOLD)
            .max_by(|&a, &b| {
                self.smoothed[a]
                    .total_cmp(&self.smoothed[b])
                    .then(b.cmp(&a))
            });
        match (self.speaker, loudest) {
            (_, None) => self.challenger = None,
            // The first speaker must stand out from everyone else: while all talk alike
            // (or a synthetic room plays equal tones) nobody is chosen.
            (None, Some(l)) => {
                let stands_out =
                    (0..n).all(|i| i == l || self.smoothed[l] > self.smoothed[i] * MARGIN);
                if stands_out {
                    self.speaker = Some(l);
                }
                self.challenger = None;
            }
            (Some(s), Some(l)) if l == s => self.challenger = None,
            (Some(s), Some(l)) => {
                let clearly = self.smoothed[l] > self.smoothed[s] * MARGIN;
                if !clearly {
                    self.challenger = None;
                } else {
                    let held = match self.challenger {
                        Some((c, t)) if c == l => t + block,
                        _ => block,
                    };
                    if held >= HOLD {
                        self.speaker = Some(l);
                        self.challenger = None;
                    } else {
                        self.challenger = Some((l, held));
                    }
                }
            }
        }
        self.speaker
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: Duration = Duration::from_millis(20);

    fn run(d: &mut SpeakerDetector, levels: &[f32], ms: u64) -> Option<usize> {
        let mut s = None;
        for _ in 0..ms / 20 {
            s = d.update(levels, BLOCK);
        }
        s
    }

    #[test]
    fn the_loud_one_speaks_and_changes_need_a_moment() {
        let mut d = SpeakerDetector::new();
        assert_eq!(run(&mut d, &[0.0, 0.0, 0.0], 200), None);
        // Everyone alike: nobody stands out.
        assert_eq!(run(&mut d, &[0.05, 0.051, 0.05], 300), None);
        assert_eq!(run(&mut d, &[0.01, 0.07, 0.01], 300), Some(1));
        // A short burst from 2 does not take over...
        assert_eq!(run(&mut d, &[0.01, 0.07, 0.2], 100), Some(1));
        assert_eq!(run(&mut d, &[0.01, 0.07, 0.01], 400), Some(1));
        // ...a sustained one does, within about half a second.
        assert_eq!(run(&mut d, &[0.01, 0.007, 0.07], 300), Some(1));
        assert_eq!(run(&mut d, &[0.01, 0.007, 0.07], 300), Some(2));
        // Silence keeps the last speaker.
        assert_eq!(run(&mut d, &[0.0, 0.0, 0.0], 1000), Some(2));
        // Equal levels do not flip.
        assert_eq!(run(&mut d, &[0.05, 0.05, 0.05], 1000), Some(2));
    }

    #[test]
    fn a_speaker_who_leaves_is_forgotten() {
        let mut d = SpeakerDetector::new();
        run(&mut d, &[0.0, 0.0, 0.1], 300);
        assert_eq!(d.update(&[0.0, 0.0], BLOCK), None);
    }
}
