//! Stream outputs against real receivers on loopback: nginx-rtmp and srt-live-transmit.
//! Every output type from one egress; LiveKit's UpdateStream scenario; a dead endpoint
//! that never stalls the recording; stream keys never shown.

use crate::common;

use std::io::Write;
use std::time::Duration;

use common::services::{Nginx, SrtListener};
use common::*;
use serde_json::Value;

fn check_av(path: &std::path::Path, min_secs: f64) {
    let probe = ffprobe(path);
    let v = stream(&probe, "video");
    assert_eq!(v["codec_name"], "h264", "{}", path.display());
    assert_eq!((num(&v["width"]), num(&v["height"])), (1280.0, 720.0));
    assert_eq!(stream(&probe, "audio")["codec_name"], "aac");
    let d = num(&probe["format"]["duration"]);
    assert!(d >= min_secs, "{}: {d} s", path.display());
}

fn statuses(info: &Value) -> Vec<(String, String)> {
    info["stream_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["url"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap_or("ACTIVE").to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_output_at_once_from_one_encode() {
    let _shared = common::shared();
    let nginx = Nginx::start();
    let tmp = tempfile::tempdir().unwrap();
    let srt = SrtListener::start(tmp.path());
    let request = format!(
        r#"{{
          "room_name": "all",
          "file_outputs": [{{"filepath": "all.mp4"}}],
          "segment_outputs": [{{"filename_prefix": "hls/s", "playlist_name": "p.m3u8", "segment_duration": 2}}],
          "stream_outputs": [{{"urls": ["{}", "{}"]}}],
          "image_outputs": [{{"capture_interval": 2, "width": 320, "height": 180, "filename_prefix": "img/i"}}]
        }}"#,
        nginx.url("s3cr3tkey"),
        srt.url()
    );
    let run = tessera_run(&request, &["--duration", "8", "--room", "synthetic:2"]);
    assert!(run.output.status.success(), "{}", run.stderr());
    let info = run.info.as_ref().unwrap();
    assert_eq!(info["status"], "EGRESS_COMPLETE");
    let out = run.dir.path().join("out");

    check_av(&out.join("all.mp4"), 7.5);
    assert_eq!(num(&info["segment_results"][0]["segment_count"]), 4.0);
    assert!(num(&info["image_results"][0]["image_count"]) >= 3.0);
    // Both streams were received, live, with audio and video.
    check_av(&nginx.recording("s3cr3tkey"), 5.0);
    check_av(&srt.out, 5.0);
    let streams = statuses(info);
    assert_eq!(streams.len(), 2);
    assert!(streams.iter().all(|(_, s)| s == "FINISHED"), "{streams:?}");
    // The stream key never shows: not in the result, not in the logs.
    assert_eq!(
        streams[0].0,
        format!("rtmp://127.0.0.1:{}/live/{{redacted}}", nginx.port)
    );
    // Not in the results nor the echoed request.
    assert!(
        !String::from_utf8_lossy(&run.output.stdout).contains("s3cr3tkey"),
        "key in the EgressInfo"
    );
    assert!(!run.stderr().contains("s3cr3tkey"), "key in the logs");
}

#[test]
fn livekit_update_stream_scenario() {
    let _shared = common::shared();
    let nginx = Nginx::start();
    let closed = common::services::free_tcp_port();
    let good1 = nginx.url("first");
    let bad1 = format!("rtmp://127.0.0.1:{closed}/live/nobody-listens");
    let good2 = nginx.url("second");
    // nginx refuses applications it does not know.
    let bad2 = format!("rtmp://127.0.0.1:{}/refused/x", nginx.port);
    let dir = tempfile::tempdir().unwrap();
    let request = format!(
        r#"{{"room_name": "update", "file_outputs": [{{"filepath": "rec.mp4"}}],
            "stream_outputs": [{{"protocol": "RTMP", "urls": ["{good1}", "{bad1}"]}}]}}"#
    );
    let child = spawn_run(
        &request,
        dir.path(),
        &[
            "--duration",
            "14",
            "--control-stdin",
            "--room",
            "synthetic:2",
        ],
    );
    let mut child = child;
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    writeln!(stdin, r#"{{"add_output_urls": ["{good2}", "{bad2}"]}}"#).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    writeln!(stdin, r#"{{"remove_output_urls": ["{good1}"]}}"#).unwrap();
    // Removing it twice is refused, and says why.
    writeln!(stdin, r#"{{"remove_output_urls": ["{good1}"]}}"#).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("update_stream: {").count(), 2, "{stderr}");
    assert!(
        stderr.contains("update_stream error: remove_output_urls:"),
        "{stderr}"
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["status"], "EGRESS_COMPLETE");
    let streams = statuses(&info);
    let status_of = |port: u16, tail: &str| {
        streams
            .iter()
            .find(|(u, _)| u.contains(&format!(":{port}/")) && u.contains(tail))
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("no stream {port}/{tail} in {streams:?}"))
    };
    assert_eq!(streams.len(), 4, "{streams:?}");
    assert_eq!(streams[0].1, "FINISHED", "first good removed: {streams:?}");
    assert_eq!(status_of(closed, "live/"), "FAILED");
    assert_eq!(
        streams[2].1, "FINISHED",
        "second good ran to the end: {streams:?}"
    );
    assert_eq!(status_of(nginx.port, "refused/"), "FAILED");
    let failed = &info["stream_results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "FAILED")
        .unwrap();
    assert!(!failed["error"].as_str().unwrap().is_empty());
    assert_eq!(num(&failed["retries"]), 2.0, "bounded retries");
    // Both good streams reached nginx; the recording in the same egress is complete.
    check_av(&nginx.recording("first"), 4.0);
    check_av(&nginx.recording("second"), 4.0);
    check_av(&dir.path().join("out/rec.mp4"), 13.5);
}

#[test]
fn a_dead_endpoint_never_stalls_the_recording() {
    let _shared = common::shared();
    // Accepts the TCP connection and never answers the RTMP handshake.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blackhole.local_addr().unwrap().port();
    let request = format!(
        r#"{{"room_name": "dead", "file_outputs": [{{"filepath": "rec.mp4"}}],
            "stream_outputs": [{{"urls": ["rtmp://127.0.0.1:{port}/live/x"]}}]}}"#
    );
    let run = tessera_run(&request, &["--duration", "6"]);
    drop(blackhole);
    assert!(run.output.status.success(), "{}", run.stderr());
    let info = run.info.as_ref().unwrap();
    assert_eq!(info["status"], "EGRESS_COMPLETE");
    check_av(&run.dir.path().join("out/rec.mp4"), 5.8);
    assert!(
        !run.stderr().contains("falling behind real time"),
        "the recording kept pace"
    );
}

#[test]
fn only_failed_streams_fail_the_egress() {
    let _shared = common::shared();
    let closed = common::services::free_tcp_port();
    let request = format!(
        r#"{{"room_name": "nostream",
            "stream_outputs": [{{"urls": ["rtmp://127.0.0.1:{closed}/live/x"]}}]}}"#
    );
    let run = tessera_run(&request, &["--duration", "20"]);
    assert!(!run.output.status.success());
    let info = run.info.as_ref().unwrap();
    assert_eq!(info["status"], "EGRESS_FAILED");
    assert!(
        info["error"]
            .as_str()
            .unwrap()
            .contains("every stream output failed"),
        "{}",
        info["error"]
    );
    assert_eq!(statuses(info)[0].1, "FAILED");
}
