//! A recording killed with SIGKILL mid-way: the MP4 (fragmented) still plays up to about
//! the kill, and the HLS event playlist is valid up to its last complete segment.

use crate::common;

use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use m3u8_rs::Playlist;

#[test]
fn sigkill_leaves_playable_mp4_and_valid_hls() {
    let _shared = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let request = r#"{"room_name": "killed", "file_outputs": [{"filepath": "rec.mp4"}],
        "segment_outputs": [{"filename_prefix": "hls/s", "playlist_name": "p.m3u8",
                             "segment_duration": 1}]}"#;
    let out = dir.path().join("out");
    let mut child = spawn_run(request, dir.path(), &["--room", "synthetic:2"]);
    // Recording starts when the egress reports ACTIVE; kill it 6.5 s later. What a kill
    // loses: MP4, the open 1 s fragment plus the encoder's latency; HLS, the open segment
    // plus about 1 s (the segmenter closes a segment once the next GOP is complete, and
    // the encoder's latency): 1.5–2.5 s with 1 s segments.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("EGRESS_ACTIVE") {
                let _ = tx.send(Instant::now());
            }
        }
    });
    let started = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("recording started");
    std::thread::sleep(Duration::from_millis(6500));
    child.kill().unwrap(); // SIGKILL
    let killed_at = started.elapsed().as_secs_f64();
    child.wait().unwrap();

    let mp4 = out.join("rec.mp4");
    let probe = ffprobe(&mp4);
    stream(&probe, "video");
    stream(&probe, "audio");
    // The fragments are there: decode them all and measure what plays.
    let frames = ffprobe_values(
        &mp4,
        &[
            "-select_streams",
            "v",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
        ],
    );
    let played = frames[0] / 30.0;
    assert!(
        (played - killed_at).abs() <= 2.0,
        "MP4 plays {played} s, killed at {killed_at} s"
    );

    let bytes = std::fs::read(out.join("hls/p.m3u8")).unwrap();
    let Ok(Playlist::MediaPlaylist(p)) = m3u8_rs::parse_playlist_res(&bytes) else {
        panic!(
            "playlist invalid after SIGKILL: {}",
            String::from_utf8_lossy(&bytes)
        );
    };
    assert!(!p.end_list);
    let listed: f64 = p.segments.iter().map(|s| s.duration as f64).sum();
    assert!((listed - killed_at).abs() <= 2.0, "HLS lists {listed} s");
    for s in &p.segments {
        let seg = out.join("hls").join(&s.uri);
        tool(
            "ffmpeg",
            [
                "-xerror".as_ref(),
                "-i".as_ref(),
                seg.as_os_str(),
                "-f".as_ref(),
                "null".as_ref(),
                "-".as_ref(),
            ],
        );
    }
}
