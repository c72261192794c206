//! Layouts changing while things run: the speaker layout follows the active speaker (from
//! the audio levels) in a recording, `UpdateLayout` switches layout mid-recording, a
//! running egress reloads its edited template file (and keeps the last good one when an
//! edit is broken), and `layout preview --watch` re-renders on every save.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use tessera::source::synthetic::participant_color;

const W: u32 = 640;
const H: u32 = 360;

fn near(got: [f64; 3], want: [u8; 3], tol: f64) -> bool {
    (0..3).all(|c| (got[c] - want[c] as f64).abs() <= tol)
}

/// Which participant's colour is at (x, y) of the frame at `t` seconds.
fn who_is_at(file: &Path, t: f64, x: u32, y: u32, n: usize) -> Option<usize> {
    let frame = frame_rgb(file, t, W, H);
    let got = mean_rgb(&frame, W, x, y, 3);
    (0..n).find(|&i| near(got, participant_color(i), 20.0))
}

/// The centre of the speaker layout's main area at 640x360.
const MAIN: (u32, u32) = (256, 180);

#[test]
fn the_speaker_layout_follows_who_is_speaking() {
    let _shared = common::shared();
    let request = r#"{"room_name": "talk", "layout": "speaker",
        "advanced": {"width": 640, "height": 360}, "file_outputs": [{"filepath": "talk.mp4"}]}"#;
    // Three people take turns of 2 s: 1 (0-2 s), 2 (2-4 s), 3 (4-6 s).
    let run = tessera_run(
        request,
        &["--room", "synthetic:3,speak=2", "--duration", "6", "--fast"],
    );
    assert!(run.output.status.success(), "{}", run.stderr());
    let file = run.file();
    // Detection needs about half a second, the move 0.3 s: look late in each turn.
    for (t, speaker) in [(1.5, 0), (3.5, 1), (5.5, 2)] {
        assert_eq!(
            who_is_at(&file, t, MAIN.0, MAIN.1, 3),
            Some(speaker),
            "main area at {t} s"
        );
    }
}

/// Spawns a realtime egress and returns it with a channel of its stderr lines.
fn spawn(
    request: &str,
    dir: &Path,
    args: &[&str],
) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = spawn_run(request, dir, args);
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for a stderr line containing `needle`; returns every line read.
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, log: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let found = line.contains(needle);
            log.push(line);
            if found {
                return;
            }
        }
    }
    panic!("no {needle:?} in:\n{}", log.join("\n"));
}

/// A running 5 s realtime recording of three synthetic people in `layout` at 640x360,
/// its stderr lines, and the lines read until its media clock started.
struct Recording {
    child: std::process::Child,
    rx: mpsc::Receiver<String>,
    log: Vec<String>,
}

fn record(dir: &Path, layout: &str, extra: &[&str]) -> Recording {
    let request = format!(
        r#"{{"room_name": "live", "layout": "{layout}",
        "advanced": {{"width": 640, "height": 360}}, "file_outputs": [{{"filepath": "r.mp4"}}]}}"#
    );
    let mut args = vec!["--room", "synthetic:3", "--duration", "5"];
    args.extend(extra);
    let (child, rx) = spawn(&request, dir, &args);
    let mut log = Vec::new();
    wait_for(&rx, "media clock started", &mut log);
    Recording { child, rx, log }
}

/// Waits for the recording to end successfully; returns its MP4.
fn finish(mut r: Recording, dir: &Path) -> std::path::PathBuf {
    assert!(r.child.wait().unwrap().success(), "{}", r.log.join("\n"));
    files_under(&dir.join("out"))
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "mp4"))
        .unwrap()
}

#[test]
fn update_layout_switches_mid_recording() {
    let _shared = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let mut r = record(dir.path(), "speaker", &["--control-stdin"]);
    let (rx, log) = (&r.rx, &mut r.log);
    std::thread::sleep(Duration::from_millis(2500));
    let mut stdin = r.child.stdin.take().unwrap();
    writeln!(stdin, r#"{{"egress_id": "x", "layout": "nope"}}"#).unwrap();
    writeln!(stdin, r#"{{"egress_id": "x", "layout": "grid-light"}}"#).unwrap();
    wait_for(rx, "update_layout: grid-light", log);
    assert!(
        log.iter()
            .any(|l| l.contains("update_layout error: unknown layout \"nope\"")),
        "{}",
        log.join("\n")
    );
    let file = finish(r, dir.path());
    // Before: participant 1 large in the main area. After: the light grid, participant 2
    // top-right of a 2x2 grid, on the light background.
    assert_eq!(who_is_at(&file, 1.0, MAIN.0, MAIN.1, 3), Some(0));
    assert_eq!(who_is_at(&file, 4.7, 480, 90, 3), Some(1));
    let frame = frame_rgb(&file, 4.7, W, H);
    assert!(near(mean_rgb(&frame, W, 20, 350, 1), [238, 238, 242], 12.0));
}

const ROW: &str = r##"
[theme.dark]
background = "#c00000"
tile = "#000000"
[style]
labels = false
transition = 0
[[rule]]
[[rule.region]]
area = [0, 0, 1, 1]
show = "everyone"
arrange = "row"
"##;

#[test]
fn an_edited_template_file_is_reloaded_and_a_broken_edit_is_not() {
    let _shared = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let layouts = dir.path().join("layouts");
    std::fs::create_dir(&layouts).unwrap();
    let file = layouts.join("mine.toml");
    std::fs::write(&file, ROW).unwrap();
    let mut r = record(
        dir.path(),
        "mine",
        &["--layouts", layouts.to_str().unwrap()],
    );
    let (rx, log) = (&r.rx, &mut r.log);
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(&file, ROW.replace("[[rule]]", "[[rule]\n")).unwrap();
    wait_for(rx, "layout file not reloaded", log);
    std::thread::sleep(Duration::from_millis(700));
    // Only the speaker (participant 1: all tones are equal), full frame, blue background.
    let edited = ROW.replace("#c00000", "#0000c0").replace(
        "show = \"everyone\"\narrange = \"row\"",
        "show = \"speaker\"",
    );
    std::fs::write(&file, edited).unwrap();
    wait_for(rx, "layout file reloaded", log);
    let broken = log.iter().find(|l| l.contains("not reloaded")).unwrap();
    assert!(broken.contains("mine.toml:8:"), "{broken}");
    let out = finish(r, dir.path());
    // Before: a row of three 16:9 cells, participant 2 in the middle, red above and below.
    assert_eq!(who_is_at(&out, 0.5, 320, 180, 3), Some(1));
    let first = frame_rgb(&out, 0.5, W, H);
    assert!(near(mean_rgb(&first, W, 320, 40, 2), [192, 0, 0], 20.0));
    // After: participant 1 fills the frame.
    assert_eq!(who_is_at(&out, 4.8, 320, 180, 3), Some(0));
}

/// Kills the watcher however the test ends (it runs until killed).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn preview_watch_rerenders_on_save_and_keeps_the_last_good_preview() {
    let _shared = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("watch.toml");
    let png = dir.path().join("watch.png");
    std::fs::write(&file, ROW).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["layout", "preview"])
        .arg(&file)
        .args([
            "--participants",
            "3",
            "--size",
            "640x360",
            "--watch",
            "--out",
        ])
        .arg(&png)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut child = KillOnDrop(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    wait_for(&rx, "watching", &mut log);
    let centre = |png: &Path| {
        let img = tessera::compositor::preview::RgbImage::read_png(png).unwrap();
        img.at(320, 10)
    };
    assert!(near(centre(&png).map(f64::from), [192, 0, 0], 12.0));
    let mut latencies = Vec::new();
    for (k, colour) in ["#0000c0", "#00c000", "#c0c000", "#00c0c0", "#c000c0"]
        .iter()
        .enumerate()
    {
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(&file, ROW.replace("#c00000", colour)).unwrap();
        wait_for(&rx, "updated", &mut log);
        let line = log.last().unwrap();
        let ms: u64 = line
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        latencies.push(ms);
        let want = u8::from_str_radix(&colour[1 + 2 * (k % 3).min(2)..][..2], 16).unwrap();
        let got = centre(&png);
        assert!(
            got.iter().any(|&c| (c as i32 - want as i32).abs() < 16),
            "{got:?} {colour}"
        );
    }
    let before = std::fs::read(&png).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(
        &file,
        ROW.replace("show = \"everyone\"", "show = \"everybody\""),
    )
    .unwrap();
    wait_for(&rx, "kept the last good preview", &mut log);
    assert!(
        log.iter()
            .any(|l| l.contains("watch.toml:11:8: error: show")),
        "{}",
        log.join("\n")
    );
    assert_eq!(std::fs::read(&png).unwrap(), before);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    latencies.sort_unstable();
    eprintln!(
        "preview latency from save to PNG (ms): {latencies:?}, median {}",
        latencies[latencies.len() / 2]
    );
}
