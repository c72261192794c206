//! Recording real LiveKit rooms: livekit-server on loopback, publishers using LiveKit's
//! Python SDK (real WebRTC: VP8/H.264 and Opus), `tessera run --url` as the recorder.
//! Each publisher shows its own colour and plays its own tone; the outputs are read back
//! with ffmpeg. Recordings run in real time; each test has its own livekit-server on free
//! ports, so two of them run at a time (`common::shared`).

use crate::common;

use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::livekit::{API_KEY, API_SECRET, LiveKit, Publisher, media_clock_start_ms};
use common::relay::{LossyRelay, TcpCutter};
use common::{
    audio_mono, avsync, ffprobe, frame_rgb, goertzel, num, spawn_run, stream, tessera_run,
    tessera_run_env,
};
use tessera::source::synthetic::{participant_color, participant_tone_hz};

const W: u32 = 1280;
const H: u32 = 720;

fn publisher_args(i: usize) -> Vec<String> {
    let [r, g, b] = participant_color(i);
    vec![
        "--rgb".into(),
        format!("{r},{g},{b}"),
        "--tone".into(),
        participant_tone_hz(i).to_string(),
    ]
}

fn publish(lk: &LiveKit, room: &str, i: usize, extra: &[&str]) -> Publisher {
    let mut args = publisher_args(i);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Publisher::start(lk, room, &format!("person-{i}"), &args)
}

/// Fraction of the frame's pixels within 40 of participant `i`'s colour on every channel.
fn coverage(frame: &[u8], i: usize) -> f64 {
    let c = participant_color(i);
    let n = frame
        .chunks_exact(3)
        .filter(|p| (0..3).all(|k| (p[k] as i32 - c[k] as i32).abs() <= 40))
        .count();
    n as f64 / (frame.len() / 3) as f64
}

fn coverage_at(file: &Path, t: f64, i: usize) -> f64 {
    coverage(&frame_rgb(file, t, W, H), i)
}

fn run_args<'a>(lk: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    lk.iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect()
}

#[test]
fn three_publishers_fill_the_grid_with_their_colours_and_tones() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let _p0 = publish(&lk, "grid3", 0, &[]);
    let _p1 = publish(&lk, "grid3", 1, &[]);
    let _p2 = publish(&lk, "grid3", 2, &["--codec", "h264"]);
    let req = r#"{"room_name": "grid3", "layout": "grid",
                  "file_outputs": [{"filepath": "grid.mp4"}]}"#;
    let args = lk.run_args();
    let run = tessera_run(req, &run_args(&args, &["--duration", "15"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let info = run.info.as_ref().unwrap();
    assert_eq!(info["status"], "EGRESS_COMPLETE");
    assert!(
        info["room_id"].as_str().unwrap().starts_with("RM_"),
        "{info}"
    );
    let file = run.file();
    let probe = ffprobe(&file);
    let duration = num(&probe["format"]["duration"]);
    assert!((duration - 15.0).abs() < 0.5, "duration {duration}");
    assert_eq!(num(&stream(&probe, "video")["width"]), W as f64);
    for t in [3.0, 8.0, 13.0] {
        let frame = frame_rgb(&file, t, W, H);
        for i in 0..3 {
            let c = coverage(&frame, i);
            assert!(
                c > 0.08,
                "participant {i} covers {c:.3} of the frame at {t} s"
            );
        }
    }
    let audio = audio_mono(&file);
    let span = &audio[2 * 48_000..14 * 48_000];
    let off = goertzel(span, 360.0, 48_000.0);
    for i in 0..3 {
        let hz = participant_tone_hz(i) as f64;
        let p = goertzel(span, hz, 48_000.0);
        assert!(p > 100.0 * off, "tone {hz} Hz: {p:e} vs off-tone {off:e}");
    }
}

/// The number of frames, and the longest run of consecutive frames in which nothing moved
/// (and the frame it ended at).
fn frames_and_longest_freeze(file: &Path) -> (usize, (usize, usize)) {
    let frames = common::gray_frames(file, 320, 180);
    let mut longest = (0, 0);
    let mut run = 0;
    for (k, w) in frames.windows(2).enumerate() {
        let moved = w[0]
            .iter()
            .zip(w[1].iter())
            .filter(|(a, b)| (**a as i32 - **b as i32).abs() > 40)
            .count();
        run = if moved == 0 { run + 1 } else { 0 };
        if run > longest.0 {
            longest = (run, k + 1);
        }
    }
    (frames.len(), longest)
}

#[test]
fn a_participant_joining_and_leaving_resizes_the_layout_without_a_gap_or_freeze() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let _p0 = publish(&lk, "comings", 0, &[]);
    let _p1 = publish(&lk, "comings", 1, &[]);
    let dir = tempfile::tempdir().unwrap();
    let req = r#"{"room_name": "comings", "layout": "grid",
                  "file_outputs": [{"filepath": "c.mp4"}]}"#;
    let args = lk.run_args();
    let mut child = spawn_run(req, dir.path(), &run_args(&args, &["--duration", "14"]));
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    std::thread::sleep(Duration::from_secs(5));
    let mut p2 = publish(&lk, "comings", 2, &["--at", "5:leave"]);
    let status = child.wait().unwrap();
    let log = log.join().unwrap();
    assert!(status.success(), "{log}");
    let t0 = media_clock_start_ms(&log);
    let joined = (p2.published_ms - t0) as f64 / 1000.0;
    let left = (p2.action_ms("leave") - t0) as f64 / 1000.0;
    eprintln!("joined at {joined:.2} s, left at {left:.2} s of the recording");
    let file = dir.path().join("out/c.mp4");
    let before = frame_rgb(&file, joined - 1.0, W, H);
    let during = frame_rgb(&file, (joined + left) / 2.0, W, H);
    let after = frame_rgb(&file, (left + 1.5).min(13.5), W, H);
    let cover = |f: &[u8]| (0..3).map(|i| coverage(f, i)).collect::<Vec<_>>();
    let (before_c, during_c, after_c) = (cover(&before), cover(&during), cover(&after));
    eprintln!("coverage before {before_c:.3?} during {during_c:.3?} after {after_c:.3?}");
    for i in 0..2 {
        assert!(before_c[i] > 0.15, "{i} before the join");
        assert!(during_c[i] > 0.08, "{i} while three");
        assert!(after_c[i] > 0.15, "{i} after the leave");
    }
    assert!(coverage(&before, 2) < 0.005, "nobody's tile before joining");
    assert!(coverage(&during, 2) > 0.08, "the newcomer's tile");
    assert!(
        coverage(&after, 2) < 0.005,
        "the tile is gone after leaving"
    );
    // No gap: every frame of 14 s is there; no freeze: something moves in every frame
    // (every publisher draws a moving bar).
    let (frames, (freeze, at)) = frames_and_longest_freeze(&file);
    eprintln!("{frames} frames, longest freeze: {freeze} frames, ending at frame {at}");
    assert!(frames.abs_diff(420) <= 2, "{frames} frames");
    assert!(freeze <= 6, "the picture froze for {freeze} frames");
}

#[test]
fn mute_and_unpublish_show_the_placeholder_then_the_video_returns() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let mut p = publish(
        &lk,
        "mutes",
        0,
        &[
            "--at",
            "4:mute-video",
            "--at",
            "6:unmute-video",
            "--at",
            "8:unpublish-video",
            "--at",
            "10:publish-video-h264",
        ],
    );
    let req = r#"{"room_name": "mutes", "file_outputs": [{"filepath": "m.mp4"}]}"#;
    let args = lk.run_args();
    let run = tessera_run(req, &run_args(&args, &["--duration", "13"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let t0 = media_clock_start_ms(&run.stderr());
    let at = |p: &mut Publisher, name| (p.action_ms(name) - t0) as f64 / 1000.0;
    let (mute, unmute) = (at(&mut p, "mute-video"), at(&mut p, "unmute-video"));
    let (unpub, repub) = (
        at(&mut p, "unpublish-video"),
        at(&mut p, "publish-video-h264"),
    );
    let file = run.file();
    let seen = |t: f64| coverage_at(&file, t, 0);
    assert!(seen(mute - 0.6) > 0.3, "camera before muting");
    assert!(
        seen((mute + unmute) / 2.0) < 0.01,
        "placeholder while muted"
    );
    assert!(seen(unmute + 1.0) > 0.3, "camera back after unmuting");
    assert!(
        seen((unpub + repub) / 2.0) < 0.01,
        "placeholder while unpublished"
    );
    assert!(
        seen((repub + 1.5).min(12.5)) > 0.3,
        "camera back after republishing"
    );
}

#[test]
fn the_room_closing_completes_the_egress_with_what_was_recorded() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let _p = publish(&lk, "closing", 0, &[]);
    let dir = tempfile::tempdir().unwrap();
    let req = r#"{"room_name": "closing", "file_outputs": [{"filepath": "x.mp4"}]}"#;
    let args = lk.run_args();
    let child = spawn_run(req, dir.path(), &run_args(&args, &[]));
    std::thread::sleep(Duration::from_secs(6));
    let asked = Instant::now();
    lk.delete_room("closing");
    let out = child.wait_with_output().unwrap();
    let took = asked.elapsed();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        took < Duration::from_secs(10),
        "ended {took:?} after the room closed"
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["status"], "EGRESS_COMPLETE");
    assert_eq!(info["details"], tessera::egress::SOURCE_CLOSED);
    let file = dir.path().join("out/x.mp4");
    let duration = num(&ffprobe(&file)["format"]["duration"]);
    assert!(duration > 3.0, "kept {duration} s");
    assert!(coverage_at(&file, duration - 1.0, 0) > 0.3);
}

#[test]
fn losing_the_server_fails_the_egress_and_keeps_the_recording() {
    let _g = common::shared();
    let mut lk = LiveKit::start();
    let p = publish(&lk, "doomed", 0, &[]);
    let dir = tempfile::tempdir().unwrap();
    let req = r#"{"room_name": "doomed", "file_outputs": [{"filepath": "d.mp4"}]}"#;
    let args = lk.run_args();
    let child = spawn_run(req, dir.path(), &run_args(&args, &[]));
    std::thread::sleep(Duration::from_secs(6));
    lk.kill();
    drop(p);
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a lost room is not a complete egress"
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("EgressInfo");
    assert_eq!(info["status"], "EGRESS_FAILED", "{log}");
    let error = info["error"].as_str().unwrap();
    assert!(error.contains("source"), "{error}");
    let file = dir.path().join("out/d.mp4");
    let duration = num(&ffprobe(&file)["format"]["duration"]);
    assert!(duration > 3.0, "kept {duration} s");
    assert!(coverage_at(&file, 2.0, 0) > 0.3);
}

#[test]
fn a_dropped_signaling_connection_is_resumed_and_the_recording_goes_on() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let _p = publish(&lk, "resumed", 0, &[]);
    let proxy = TcpCutter::start(([127, 0, 0, 1], lk.port).into());
    let url = format!("ws://127.0.0.1:{}", proxy.port);
    let dir = tempfile::tempdir().unwrap();
    let req = r#"{"room_name": "resumed", "file_outputs": [{"filepath": "r.mp4"}]}"#;
    let args = [
        "--url",
        &url,
        "--api-key",
        API_KEY,
        "--api-secret",
        API_SECRET,
        "--duration",
        "14",
    ];
    let child = spawn_run(req, dir.path(), &args);
    std::thread::sleep(Duration::from_secs(5));
    proxy.cut();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("signaling resumed"), "{log}");
    let file = dir.path().join("out/r.mp4");
    let (frames, (freeze, at)) = frames_and_longest_freeze(&file);
    eprintln!("{frames} frames, longest freeze {freeze} frames ending at {at}");
    assert!(frames.abs_diff(420) <= 2, "{frames} frames");
    assert!(freeze <= 15, "froze {freeze} frames");
    assert!(
        coverage_at(&file, 13.0, 0) > 0.3,
        "the camera is still there"
    );
}

#[test]
fn after_a_server_restart_the_recorder_rejoins_and_records_on() {
    let _g = common::shared();
    let mut lk = LiveKit::start();
    let _p = publish(&lk, "phoenix", 0, &[]);
    let dir = tempfile::tempdir().unwrap();
    let req = r#"{"room_name": "phoenix", "file_outputs": [{"filepath": "p.mp4"}]}"#;
    let args = lk.run_args();
    let child = spawn_run(req, dir.path(), &run_args(&args, &["--duration", "24"]));
    std::thread::sleep(Duration::from_secs(5));
    // The old session is unknown to the new server: a resume is refused, a rejoin works.
    lk.restart();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("rejoined the room"), "{log}");
    let file = dir.path().join("out/p.mp4");
    let (frames, _) = frames_and_longest_freeze(&file);
    assert!(frames.abs_diff(720) <= 2, "{frames} frames");
    // The publisher (the SDK reconnects too) is recorded again after the restart.
    assert!(coverage_at(&file, 22.0, 0) > 0.3, "the camera is back");
}

#[test]
fn an_empty_room_is_recorded_until_stopped() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let req = r#"{"room_name": "nobody", "file_outputs": [{"filepath": "e.mp4"}]}"#;
    let args = lk.run_args();
    let run = tessera_run(req, &run_args(&args, &["--duration", "3"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let duration = num(&ffprobe(&run.file())["format"]["duration"]);
    assert!((duration - 3.0).abs() < 0.3, "{duration}");
}

#[test]
fn the_speaker_layout_shows_the_loud_participant() {
    let _g = common::shared();
    let lk = LiveKit::start();
    // The first to join is quiet (below the speaking threshold); the second talks.
    let _quiet = publish(&lk, "talk", 0, &["--volume", "0.002"]);
    let _loud = publish(&lk, "talk", 1, &["--volume", "0.3"]);
    let req = r#"{"room_name": "talk", "layout": "speaker",
                  "file_outputs": [{"filepath": "s.mp4"}]}"#;
    let args = lk.run_args();
    let run = tessera_run(req, &run_args(&args, &["--duration", "8"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let frame = frame_rgb(&run.file(), 6.0, W, H);
    let (quiet, loud) = (coverage(&frame, 0), coverage(&frame, 1));
    assert!(
        loud > 3.0 * quiet && loud > 0.3,
        "loud {loud:.3}, quiet {quiet:.3}"
    );
}

#[test]
fn an_audio_only_composite_records_every_tone_and_no_picture() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let _p0 = publish(&lk, "voices", 0, &[]);
    let _p1 = publish(&lk, "voices", 1, &[]);
    let req = r#"{"room_name": "voices", "audio_only": true,
                  "file_outputs": [{"file_type": "OGG", "filepath": "a.ogg"}]}"#;
    let args = lk.run_args();
    let run = tessera_run(req, &run_args(&args, &["--duration", "6"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    assert!(
        !run.stderr().contains("GPU device opened"),
        "an audio-only egress opens no GPU"
    );
    let file = run.file();
    assert_eq!(common::stream_kinds(&ffprobe(&file)), ["audio"]);
    let audio = audio_mono(&file);
    let span = &audio[48_000..5 * 48_000];
    let off = goertzel(span, 360.0, 48_000.0);
    for i in 0..2 {
        let hz = participant_tone_hz(i) as f64;
        assert!(goertzel(span, hz, 48_000.0) > 100.0 * off, "tone {hz}");
    }
}

#[test]
fn with_five_percent_of_media_packets_lost_the_recording_goes_on_without_long_freezes() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let _p0 = publish(&lk, "lossy", 0, &[]);
    let _p1 = publish(&lk, "lossy", 1, &["--codec", "h264"]);
    let relay = LossyRelay::start(([127, 0, 0, 1], lk.udp_port).into(), 0.05);
    let rewrite = format!("127.0.0.1:{}={}", lk.udp_port, relay.addr);
    let req = r#"{"room_name": "lossy", "layout": "grid",
                  "file_outputs": [{"filepath": "l.mp4"}]}"#;
    let args = lk.run_args();
    let run = tessera_run_env(
        req,
        &run_args(&args, &["--duration", "15"]),
        &[
            ("TESSERA_ICE_REWRITE", &rewrite),
            ("TESSERA_ICE_ADVERTISE", &relay.addr.to_string()),
        ],
    );
    assert!(run.output.status.success(), "{}", run.stderr());
    let (forwarded, dropped) = (
        relay.forwarded.load(Ordering::Relaxed),
        relay.dropped.load(Ordering::Relaxed),
    );
    assert!(
        forwarded > 1000,
        "the media went through the relay ({forwarded})"
    );
    let loss = dropped as f64 / (forwarded + dropped) as f64;
    let file = run.file();
    let (frames, (freeze, at)) = frames_and_longest_freeze(&file);
    eprintln!(
        "relay dropped {dropped} of {} packets ({:.1}%); {frames} frames; longest freeze \
         {freeze} frames ({:.0} ms) ending at frame {at}",
        forwarded + dropped,
        loss * 100.0,
        freeze as f64 * 1000.0 / 30.0
    );
    assert!(loss > 0.03, "the relay dropped {:.1}%", loss * 100.0);
    assert!(frames.abs_diff(450) <= 2, "{frames} frames");
    assert!(freeze <= 15, "froze {freeze} frames:\n{}", run.stderr());
    let frame = frame_rgb(&file, 12.0, W, H);
    for i in 0..2 {
        assert!(coverage(&frame, i) > 0.15, "participant {i} at 12 s");
    }
}

/// `receiving pictures` log lines: (track, width) in order.
fn received_widths(log: &str) -> Vec<(String, u32)> {
    log.lines()
        .filter(|l| l.contains("receiving pictures"))
        .map(|l| {
            let field = |name: &str| {
                let at = l.find(&format!("{name}=")).unwrap() + name.len() + 1;
                l[at..].split_whitespace().next().unwrap().to_owned()
            };
            (field("track"), field("width").parse().unwrap())
        })
        .collect()
}

#[test]
fn small_tiles_take_a_small_simulcast_layer() {
    let _g = common::shared();
    let lk = LiveKit::start();
    // Two 720p publishers with three simulcast layers (1280, 640 and 320 wide); side by
    // side in a 720p grid each is drawn 630 wide, so the 640 layer is the one to take.
    let big = [
        "--simulcast",
        "--width",
        "1280",
        "--height",
        "720",
        "--fps",
        "15",
    ];
    let _p0 = publish(&lk, "layers", 0, &big);
    let _p1 = publish(&lk, "layers", 1, &big);
    let req = r#"{"room_name": "layers", "layout": "grid",
                  "file_outputs": [{"filepath": "l.mp4"}]}"#;
    let args = lk.run_args();
    let run = tessera_run(req, &run_args(&args, &["--duration", "8"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let log = run.stderr();
    let widths = received_widths(&log);
    eprintln!("received picture widths: {widths:?}");
    let tracks: std::collections::BTreeSet<_> = widths.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(tracks.len(), 2, "{log}");
    for t in &tracks {
        let last = widths.iter().rev().find(|(x, _)| x == t).unwrap().1;
        assert!(last <= 640, "track {t} ends on a {last}-wide layer");
    }
    assert!(log.contains("asking for a picture size"), "{log}");
}

#[test]
fn flashes_and_beeps_captured_together_stay_within_100_ms_over_a_minute() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let _p = Publisher::start(
        &lk,
        "sync",
        "flasher",
        &["--flash", "--rgb", "30,30,90", "--epoch-ms", "0"],
    );
    let req = r#"{"room_name": "sync", "file_outputs": [{"filepath": "sync.mp4"}]}"#;
    let args = lk.run_args();
    let run = tessera_run(req, &run_args(&args, &["--duration", "60"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let offsets = avsync::offsets(&run.file());
    let p80 = avsync::abs_quantile(&offsets, 0.8);
    let median = avsync::abs_quantile(&offsets, 0.5);
    eprintln!(
        "A/V offsets (beep - flash) over {} pairs: median |d| {:.0} ms, p80 {:.0} ms, all {:?}",
        offsets.len(),
        median * 1e3,
        p80 * 1e3,
        offsets
            .iter()
            .map(|d| (d * 1e3).round() as i64)
            .collect::<Vec<_>>()
    );
    assert!(
        offsets.len() >= 50,
        "only {} flash/beep pairs in 60 s",
        offsets.len()
    );
    assert!(p80 < 0.100, "p80 offset {:.0} ms", p80 * 1e3);
}
