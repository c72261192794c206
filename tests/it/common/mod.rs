//! Helpers shared by the integration tests: run the real `tessera` binary, inspect its
//! outputs with ffprobe/ffmpeg (the tools a user would use), and analyse audio.
#![allow(dead_code)]

pub mod avsync;
pub mod livekit;
pub mod pages;
pub mod relay;
pub mod services;
pub mod stores;
pub mod worker;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;

/// Held by every test of this binary: shared by those that may run two at a time (each
/// starts its own servers and browsers on free ports), exclusive by those that change the
/// process environment and by the worker's (two at a time, livekit-server's requests to
/// the workers sometimes found no worker answering within psrpc's time).
static ALONE: RwLock<()> = RwLock::new(());

/// Lets this test run beside other `shared` tests (never beside an `exclusive` one).
pub fn shared() -> RwLockReadGuard<'static, ()> {
    ALONE.read().unwrap_or_else(PoisonError::into_inner)
}

/// Runs this test alone: no other test of the binary runs until the guard is dropped.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    ALONE.write().unwrap_or_else(PoisonError::into_inner)
}

/// The result of one `tessera run`.
pub struct Run {
    pub output: Output,
    pub info: Option<Value>,
    pub dir: tempfile::TempDir,
}

impl Run {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The single recorded file (asserting there is exactly one, besides the manifest).
    pub fn file(&self) -> PathBuf {
        let files: Vec<_> = files_under(self.dir.path())
            .into_iter()
            .filter(|f| f.extension().is_none_or(|e| e != "json"))
            .collect();
        assert_eq!(
            files.len(),
            1,
            "expected one file, got {files:?}\n{}",
            self.stderr()
        );
        files[0].clone()
    }
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Runs `tessera run` on `request` (JSON text) with extra args, writing under a new temp dir.
pub fn tessera_run(request: &str, args: &[&str]) -> Run {
    tessera_run_env(request, args, &[])
}

/// [`tessera_run`] with extra environment variables.
pub fn tessera_run_env(request: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let req_path = dir.path().join("request.json");
    std::fs::write(&req_path, request).unwrap();
    let out_dir = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("run")
        .arg(&req_path)
        .arg("--out")
        .arg(&out_dir)
        .args(args)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .output()
        .expect("tessera runs");
    std::fs::remove_file(&req_path).unwrap();
    let info = serde_json::from_slice(&output.stdout).ok();
    Run { output, info, dir }
}

/// Starts `tessera run` on `request` (JSON text) with extra args, writing under
/// `dir/out`, with stdin, stdout and stderr piped; the caller waits for it.
pub fn spawn_run(request: &str, dir: &Path, args: &[&str]) -> std::process::Child {
    let req = dir.join("request.json");
    std::fs::write(&req, request).unwrap();
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("run")
        .arg(&req)
        .arg("--out")
        .arg(dir.join("out"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tessera runs")
}

/// Sends signal `sig` (`TERM`, `INT`, ...) to `child` with kill(1); whether it was sent.
pub fn send_signal(child: &std::process::Child, sig: &str) -> bool {
    Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs ffmpeg or ffprobe (quiet but for errors) with `args`, asserts success, returns stdout.
pub fn tool<I, A>(program: &str, args: I) -> Vec<u8>
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(program)
        .args(["-v", "error"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} (installed by scripts/setup.sh): {e}"));
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// ffprobe's CSV values (`-of csv=p=0`), one per line, as numbers.
pub fn ffprobe_values(path: &Path, args: &[&str]) -> Vec<f64> {
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    all.extend([
        std::ffi::OsStr::new("-of"),
        std::ffi::OsStr::new("csv=p=0"),
        path.as_os_str(),
    ]);
    String::from_utf8_lossy(&tool("ffprobe", all))
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

/// The codec types of the streams, in order ("video", "audio").
pub fn stream_kinds(probe: &Value) -> Vec<String> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_type"].as_str().unwrap().to_owned())
        .collect()
}

/// ffprobe's JSON for streams and format.
pub fn ffprobe(path: &Path) -> Value {
    let args = [
        std::ffi::OsStr::new("-show_streams"),
        "-show_format".as_ref(),
        "-of".as_ref(),
        "json".as_ref(),
        path.as_os_str(),
    ];
    serde_json::from_slice(&tool("ffprobe", args)).unwrap()
}

/// The first stream of a kind ("video" / "audio").
pub fn stream<'a>(probe: &'a Value, kind: &str) -> &'a Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} stream in {probe}"))
}

/// A numeric field that ffprobe prints as a string.
pub fn num(v: &Value) -> f64 {
    v.as_str()
        .map(|s| s.parse().unwrap())
        .or_else(|| v.as_f64())
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

/// "30/1" → 30.0
pub fn rate(v: &Value) -> f64 {
    let (a, b) = v.as_str().unwrap().split_once('/').unwrap();
    a.parse::<f64>().unwrap() / b.parse::<f64>().unwrap()
}

/// The frame at `t` seconds as packed RGB24.
pub fn frame_rgb(path: &Path, t: f64, width: u32, height: u32) -> Vec<u8> {
    let t = t.to_string();
    let args = [
        "-ss",
        &t,
        "-i",
        path.to_str().unwrap(),
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ];
    let frame = tool("ffmpeg", args);
    assert_eq!(frame.len(), (width * height * 3) as usize);
    frame
}

/// The mean colour of a (2r+1)² box around (x, y) in an RGB24 frame.
pub fn mean_rgb(frame: &[u8], width: u32, x: u32, y: u32, r: u32) -> [f64; 3] {
    let mut sum = [0.0; 3];
    let mut n = 0.0;
    for yy in y - r..=y + r {
        for xx in x - r..=x + r {
            let i = ((yy * width + xx) * 3) as usize;
            for c in 0..3 {
                sum[c] += frame[i + c] as f64;
            }
            n += 1.0;
        }
    }
    sum.map(|s| s / n)
}

/// Every frame of the video, scaled to `width` x `height`, as 8-bit luma.
pub fn gray_frames(path: &Path, width: u32, height: u32) -> Vec<Vec<u8>> {
    let scale = format!("scale={width}:{height},format=gray");
    let args = [
        "-i",
        path.to_str().unwrap(),
        "-vf",
        &scale,
        "-f",
        "rawvideo",
        "-",
    ];
    tool("ffmpeg", args)
        .chunks_exact((width * height) as usize)
        .map(<[u8]>::to_vec)
        .collect()
}

/// The audio as interleaved f32 at 48 kHz with `channels` channels.
fn audio_f32(path: &Path, channels: u32) -> Vec<f32> {
    decode_f32(path, None, channels)
}

/// Stream `map` of `path` (an ffmpeg `-map`: `0:a:2`, `0:5`) as mono f32 at 48 kHz.
pub fn audio_stream_mono(path: &Path, map: &str) -> Vec<f32> {
    decode_f32(path, Some(map), 1)
}

/// The audio (stream `map`, or the first) as interleaved f32 at 48 kHz.
fn decode_f32(path: &Path, map: Option<&str>, channels: u32) -> Vec<f32> {
    let channels = channels.to_string();
    let mut args = vec!["-i", path.to_str().unwrap()];
    match map {
        Some(m) => args.extend(["-map", m]),
        None => args.push("-vn"),
    }
    args.extend(["-ac", &channels, "-ar", "48000", "-f", "f32le", "-"]);
    tool("ffmpeg", args)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The audio as mono f32 at 48 kHz.
pub fn audio_mono(path: &Path) -> Vec<f32> {
    audio_f32(path, 1)
}

/// The left and right channels as f32 at 48 kHz.
pub fn audio_stereo(path: &Path) -> (Vec<f32>, Vec<f32>) {
    let s = audio_f32(path, 2);
    (
        s.iter().step_by(2).copied().collect(),
        s.iter().skip(1).step_by(2).copied().collect(),
    )
}

/// Goertzel power of `freq` in `samples` (normalised by length).
pub fn goertzel(samples: &[f32], freq: f64, rate: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s = x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len() as f64).powi(2)
}

/// Asserts that `bytes` (a media segment or file) decode without error (`ffmpeg -xerror`),
/// writing them to a scratch file in `dir`.
pub fn assert_decodes(dir: &Path, bytes: &[u8]) {
    let p = dir.join("decode-check.bin");
    std::fs::write(&p, bytes).unwrap();
    tool(
        "ffmpeg",
        [
            "-v",
            "error",
            "-xerror",
            "-i",
            p.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
    );
}
