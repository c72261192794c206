//! Stopping: SIGINT/SIGTERM end the egress gracefully (COMPLETE, a finished file), and a
//! killed process still leaves a playable recording (fragmented MP4).

use crate::common;

use std::time::Duration;

use common::*;

const REQUEST: &str = r#"{"room_name": "sig", "file_outputs": [{"filepath": "sig.mp4"}]}"#;

fn start(dir: &std::path::Path) -> std::process::Child {
    spawn_run(REQUEST, dir, &["--room", "synthetic:2"])
}

/// Waits until the recording has at least `secs` of media (the muxer writes 1 s fragments).
fn wait_for_media(path: &std::path::Path, min_bytes: u64) {
    for _ in 0..200 {
        if std::fs::metadata(path).is_ok_and(|m| m.len() >= min_bytes) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never grew to {min_bytes} bytes", path.display());
}

#[test]
fn sigterm_and_sigint_stop_gracefully() {
    let _shared = common::shared();
    for sig in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let child = start(dir.path());
        let file = dir.path().join("out/sig.mp4");
        wait_for_media(&file, 20_000);
        std::thread::sleep(Duration::from_millis(1500));
        assert!(send_signal(&child, sig), "kill -s {sig}");
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "SIG{sig}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(info["status"], "EGRESS_COMPLETE");
        let reported = num(&info["file_results"][0]["duration"]) / 1e9;
        let probed = num(&ffprobe(&file)["format"]["duration"]);
        assert!(
            reported >= 1.0 && (reported - probed).abs() <= 0.2,
            "SIG{sig}: info {reported} s, file {probed} s"
        );
    }
}

#[test]
fn a_killed_recording_is_still_playable() {
    let _shared = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(dir.path());
    let file = dir.path().join("out/sig.mp4");
    wait_for_media(&file, 20_000);
    std::thread::sleep(Duration::from_millis(2500));
    child.kill().unwrap(); // SIGKILL: no chance to finish the file
    child.wait().unwrap();
    let probe = ffprobe(&file);
    assert_eq!(stream(&probe, "video")["codec_name"], "h264");
    // Decode it all: every fragment written before the kill plays.
    tool("ffmpeg", ["-i", file.to_str().unwrap(), "-f", "null", "-"]);
    let counted = ffprobe_values(
        &file,
        &[
            "-select_streams",
            "v",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
        ],
    );
    let n = counted[0] as u64;
    assert!(n >= 30, "only {n} frames survived the kill");
}
