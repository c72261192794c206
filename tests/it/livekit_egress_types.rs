//! Participant, TrackComposite and Track egress, the WebSocket audio output, the v2
//! StartEgressRequest and the dual-channel mixing modes, against a real livekit-server on
//! loopback with publishers using LiveKit's Python SDK. Outputs are read back with
//! ffprobe/ffmpeg; the WebSocket by a server of the test's own. Each test has its own
//! livekit-server on free ports, so two of them run at a time (`common::shared`).

use crate::common;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::livekit::{LiveKit, Publisher, media_clock_start_ms};
use common::relay::LossyRelay;
use common::{
    audio_mono, audio_stereo, ffprobe, files_under, frame_rgb, goertzel, num, spawn_run, stream,
    tessera_run, tessera_run_env, tool,
};
use tessera::source::synthetic::{participant_color, participant_tone_hz};

const W: u32 = 1280;
const H: u32 = 720;
const RATE: f64 = 48_000.0;

fn rgb_arg(c: [u8; 3]) -> String {
    format!("{},{},{}", c[0], c[1], c[2])
}

fn publish(lk: &LiveKit, room: &str, i: usize, extra: &[&str]) -> Publisher {
    let mut args = vec![
        "--rgb".to_owned(),
        rgb_arg(participant_color(i)),
        "--tone".into(),
        participant_tone_hz(i).to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Publisher::start(lk, room, &format!("person-{i}"), &args)
}

/// Fraction of the frame's pixels within 40 of `c` on every channel.
fn coverage_of(frame: &[u8], c: [u8; 3]) -> f64 {
    let n = frame
        .chunks_exact(3)
        .filter(|p| (0..3).all(|k| (p[k] as i32 - c[k] as i32).abs() <= 40))
        .count();
    n as f64 / (frame.len() / 3) as f64
}

fn args_with<'a>(lk: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    lk.iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect()
}

/// The recorded media files (not the manifest) under `dir`.
fn media_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e != "json"))
        .collect()
}

fn tone_power(samples: &[f32], i: usize) -> f64 {
    goertzel(samples, participant_tone_hz(i) as f64, RATE)
}

#[test]
fn participant_egress_records_only_that_participant_or_their_screen_share() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let screen = [250, 250, 250];
    let _p0 = publish(&lk, "part3", 0, &[]);
    let _p1 = publish(&lk, "part3", 1, &["--screen-rgb", &rgb_arg(screen)]);
    let _p2 = publish(&lk, "part3", 2, &["--codec", "h264"]);
    let args = lk.run_args();

    let req = r#"{"room_name": "part3", "identity": "person-1",
                  "file_outputs": [{"filepath": "{room_name}/{publisher_identity}-{time}"}]}"#;
    let run = tessera_run(req, &args_with(&args, &["--duration", "6"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let info = run.info.as_ref().unwrap();
    assert_eq!(info["status"], "EGRESS_COMPLETE");
    assert_eq!(info["participant"]["identity"], "person-1", "{info}");
    let file = run.file();
    let name = file.strip_prefix(run.dir.path().join("out")).unwrap();
    let name = name.to_str().unwrap();
    assert!(
        name.starts_with("part3/person-1-20") && name.ends_with(".mp4") && !name.contains('{'),
        "{name}"
    );
    let frame = frame_rgb(&file, 3.0, W, H);
    let own = coverage_of(&frame, participant_color(1));
    eprintln!("person-1 covers {own:.3}");
    assert!(own > 0.8, "their camera fills the frame: {own:.3}");
    for other in [0, 2] {
        let c = coverage_of(&frame, participant_color(other));
        assert!(c < 0.005, "person-{other} is not recorded: {c:.3}");
    }
    assert!(coverage_of(&frame, screen) < 0.005, "not the screen share");
    let audio = audio_mono(&file);
    let span = &audio[48_000..5 * 48_000];
    let own = tone_power(span, 1);
    for other in [0, 2] {
        let p = tone_power(span, other);
        assert!(own > 100.0 * p, "tone of person-{other}: {p:e} vs {own:e}");
    }

    let req = r#"{"room_name": "part3", "identity": "person-1", "screen_share": true,
                  "file_outputs": [{"filepath": "share.mp4"}]}"#;
    let run = tessera_run(req, &args_with(&args, &["--duration", "5"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let frame = frame_rgb(&run.file(), 3.0, W, H);
    let share = coverage_of(&frame, screen);
    eprintln!("the screen share covers {share:.3}");
    assert!(share > 0.8, "the screen share fills the frame: {share:.3}");
    assert!(coverage_of(&frame, participant_color(1)) < 0.005);
}

#[test]
fn participant_egress_spans_late_audio_and_a_republished_camera_and_ends_when_they_leave() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let mut p = publish(
        &lk,
        "gaps",
        0,
        &[
            "--audio-later",
            "--at",
            "5:publish-audio",
            "--at",
            "10:unpublish-video",
            "--at",
            "15:publish-video",
            "--at",
            "20:leave",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let req = r#"{"room_name": "gaps", "identity": "person-0",
                  "file_outputs": [{"filepath": "gaps.mp4"}]}"#;
    let args = lk.run_args();
    // No --duration: the egress ends by itself once the participant has left.
    let mut child = spawn_run(req, dir.path(), &args_with(&args, &[]));
    let mut stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the egress did not end after the participant left");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = log.join().unwrap();
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    assert!(status.success(), "{log}");
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["status"], "EGRESS_COMPLETE", "{info}");
    assert_eq!(info["details"], "End reason: Source closed");

    let t0 = media_clock_start_ms(&log);
    let at = |name: &str, p: &mut Publisher| (p.action_ms(name) - t0) as f64 / 1000.0;
    let audio_at = at("publish-audio", &mut p);
    let gone_at = at("unpublish-video", &mut p);
    let back_at = at("publish-video", &mut p);
    let left_at = at("leave", &mut p);
    eprintln!(
        "audio {audio_at:.2} s, unpublished {gone_at:.2} s, back {back_at:.2} s, left {left_at:.2} s"
    );
    let file = dir.path().join("out/gaps.mp4");
    let duration = num(&ffprobe(&file)["format"]["duration"]);
    assert!(
        duration > left_at - 0.5,
        "the recording covers the whole span: {duration:.2} s, left at {left_at:.2} s"
    );
    let cover = |t: f64| coverage_of(&frame_rgb(&file, t, W, H), participant_color(0));
    let (before, gap, after) = (
        cover(gone_at - 1.5),
        cover((gone_at + back_at) / 2.0),
        cover(back_at + 2.0),
    );
    eprintln!("coverage before {before:.3}, in the gap {gap:.3}, after {after:.3}");
    let events: Vec<&str> = log
        .lines()
        .filter(|l| {
            [
                "subscrib",
                "receiving",
                "decod",
                "first frame",
                "paused",
                "known track",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .collect();
    assert!(
        before > 0.8 && after > 0.8,
        "the camera before and after; the recorder's log:\n{}",
        events.join("\n")
    );
    assert!(gap < 0.005, "the placeholder in the gap");
    let audio = audio_mono(&file);
    let second = |t: f64| {
        let k = (t * RATE) as usize;
        tone_power(&audio[k..k + 48_000], 0)
    };
    let (silent, heard) = (second(audio_at - 2.5), second(audio_at + 1.5));
    eprintln!("tone before the microphone {silent:e}, after {heard:e}");
    assert!(
        heard > 1e-4 && heard > 1000.0 * silent,
        "the late microphone"
    );
}

#[test]
fn a_participant_who_never_comes_fails_the_egress_and_records_nothing() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let _p = publish(&lk, "ghosts", 0, &[]);
    let req = r#"{"room_name": "ghosts", "identity": "nobody",
                  "file_outputs": [{"filepath": "never.mp4"}]}"#;
    let args = lk.run_args();
    let started = Instant::now();
    let run = tessera_run(req, &args_with(&args, &["--await-timeout", "2"]));
    assert!(!run.output.status.success());
    let info = run.info.as_ref().expect("the final EgressInfo");
    // As LiveKit's egress: its source cannot start, FAILED with psrpc's NotFound (404).
    assert_eq!(info["status"], "EGRESS_FAILED", "{info}");
    assert_eq!(info["error"], "participant nobody not found");
    assert_eq!(info["error_code"], 404, "{info}");
    assert_eq!(info["details"], "End reason: Failure");
    assert!(media_files(run.dir.path()).is_empty());
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn track_composite_takes_the_named_tracks_with_vp8_h264_or_audio_only() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let mut p0 = publish(&lk, "tc", 0, &[]);
    let mut p1 = publish(&lk, "tc", 1, &["--codec", "h264"]);
    let args = lk.run_args();
    let (cam0, mic0, cam1, mic1) = (
        p0.track("camera"),
        p0.track("microphone"),
        p1.track("camera"),
        p1.track("microphone"),
    );

    // VP8 video of person-0 with the Opus audio of person-1.
    let req = format!(
        r#"{{"room_name": "tc", "video_track_id": "{cam0}", "audio_track_id": "{mic1}",
             "file_outputs": [{{"filepath": "{{publisher_identity}}-vp8.mp4"}}]}}"#
    );
    let run = tessera_run(&req, &args_with(&args, &["--duration", "5"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let file = run.file();
    assert!(file.ends_with("person-0-vp8.mp4"), "{file:?}");
    let frame = frame_rgb(&file, 3.0, W, H);
    assert!(coverage_of(&frame, participant_color(0)) > 0.8);
    assert!(coverage_of(&frame, participant_color(1)) < 0.005);
    let audio = audio_mono(&file);
    let span = &audio[48_000..4 * 48_000];
    assert!(tone_power(span, 1) > 100.0 * tone_power(span, 0));

    // H.264 video alone.
    let req = format!(
        r#"{{"room_name": "tc", "video_track_id": "{cam1}",
             "file_outputs": [{{"filepath": "h264.mp4"}}]}}"#
    );
    let run = tessera_run(&req, &args_with(&args, &["--duration", "4"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let probe = ffprobe(&run.file());
    let kinds = common::stream_kinds(&probe);
    assert_eq!(kinds, ["video"], "video only");
    let frame = frame_rgb(&run.file(), 2.5, W, H);
    assert!(coverage_of(&frame, participant_color(1)) > 0.8);

    // Audio only: an OGG of the one microphone.
    let req = format!(
        r#"{{"room_name": "tc", "audio_track_id": "{mic0}",
             "file_outputs": [{{"filepath": "mic"}}]}}"#
    );
    let run = tessera_run(&req, &args_with(&args, &["--duration", "4"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let file = run.file();
    assert!(file.ends_with("mic.ogg"), "{file:?}");
    let probe = ffprobe(&file);
    assert_eq!(stream(&probe, "audio")["codec_name"], "opus");
    let audio = audio_mono(&file);
    let span = &audio[48_000..3 * 48_000];
    assert!(tone_power(span, 0) > 100.0 * tone_power(span, 1));
}

/// Runs a track egress of `track` for `seconds`; returns the run.
fn track_egress(args: &[String], track: &str, seconds: &str) -> common::Run {
    let req = format!(
        r#"{{"room_name": "tracks", "track_id": "{track}",
             "file": {{"filepath": "{{track_type}}-{{track_source}}-{{track_id}}"}}}}"#
    );
    let run = tessera_run(&req, &args_with(args, &["--duration", seconds]));
    assert!(run.output.status.success(), "{}", run.stderr());
    run
}

#[test]
fn track_egress_writes_the_published_codec_without_transcoding() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let mut vp8 = publish(&lk, "tracks", 0, &[]);
    let mut h264 = publish(&lk, "tracks", 1, &["--codec", "h264", "--no-audio"]);
    let args = lk.run_args();
    let cases = [
        (
            vp8.track("microphone"),
            "audio",
            "microphone",
            "ogg",
            "opus",
        ),
        (h264.track("camera"), "video", "camera", "mp4", "h264"),
        (vp8.track("camera"), "video", "camera", "webm", "vp8"),
    ];
    for (track, ty, source, ext, codec) in cases {
        let run = track_egress(&args, &track, "5");
        let log = run.stderr();
        let file = run.file();
        let name = file.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, format!("{ty}-{source}-{track}.{ext}"));
        let probe = ffprobe(&file);
        let s = stream(&probe, ty);
        assert_eq!(s["codec_name"], codec, "{probe}");
        assert_eq!(common::stream_kinds(&probe).len(), 1);
        let duration = num(&probe["format"]["duration"]);
        eprintln!("{name}: {duration:.2} s");
        assert!((duration - 5.0).abs() < 1.0, "{name}: {duration:.2} s");
        // Playable start to end.
        tool(
            "ffmpeg",
            ["-xerror", "-i", file.to_str().unwrap(), "-f", "null", "-"],
        );
        // No re-encode: no encoder was built, and no x264 stamp is in the bitstream.
        assert!(log.contains("frames written as received"), "{log}");
        assert!(!log.contains("video encoder"), "{log}");
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(4).any(|w| w == b"x264"),
            "{name} was not encoded by x264"
        );
        let info = run.info.as_ref().unwrap();
        assert_eq!(info["status"], "EGRESS_COMPLETE");
        assert_eq!(info["file_results"][0]["filename"], name);
    }
}

#[test]
fn track_egress_keeps_real_time_across_packet_loss_and_a_pause() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let mut p = publish(
        &lk,
        "tracks",
        1,
        &[
            "--codec",
            "h264",
            "--no-audio",
            "--at",
            "3:mute-video",
            "--at",
            "5:unmute-video",
        ],
    );
    let camera = p.track("camera");
    let relay = LossyRelay::start(([127, 0, 0, 1], lk.udp_port).into(), 0.05);
    let rewrite = format!("127.0.0.1:{}={}", lk.udp_port, relay.addr);
    let req = format!(
        r#"{{"room_name": "tracks", "track_id": "{camera}", "file": {{"filepath": "lossy"}}}}"#
    );
    let args = lk.run_args();
    let started = Instant::now();
    let run = tessera_run_env(
        &req,
        &args_with(&args, &["--duration", "10"]),
        &[
            ("TESSERA_ICE_REWRITE", &rewrite),
            ("TESSERA_ICE_ADVERTISE", &relay.addr.to_string()),
        ],
    );
    assert!(run.output.status.success(), "{}", run.stderr());
    let dropped = relay.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let forwarded = relay.forwarded.load(std::sync::atomic::Ordering::Relaxed);
    let loss = dropped as f64 / (dropped + forwarded).max(1) as f64;
    assert!(loss > 0.03, "the relay dropped {:.1}%", loss * 100.0);
    let file = run.file();
    let duration = num(&ffprobe(&file)["format"]["duration"]);
    eprintln!(
        "{:.1}% lost; {duration:.2} s recorded in a {:.1} s run",
        loss * 100.0,
        started.elapsed().as_secs_f64()
    );
    // Real time: ten seconds of wall clock are ten seconds of file, pause included.
    assert!((duration - 10.0).abs() < 1.0, "{duration:.2} s");
    // Frames after an unrepaired loss are held back until the next key frame: the file
    // decodes without an error.
    tool(
        "ffmpeg",
        ["-xerror", "-i", file.to_str().unwrap(), "-f", "null", "-"],
    );
    let _ = p.action_ms("unmute-video");
}

/// What the test's WebSocket server received.
#[derive(Debug, Default)]
struct Received {
    content_type: String,
    bytes: usize,
    left: Vec<f32>,
    texts: Vec<String>,
    /// (arrival, unix ms; bytes) of each binary message.
    arrivals: Vec<(i64, usize)>,
    closed: bool,
    /// Pongs received for the one ping the server sends after the first audio.
    pongs: usize,
}

/// Accepts one WebSocket connection on `listener` and reads it to the end.
// tungstenite's handshake callback returns its own (large) error response type.
#[allow(clippy::result_large_err)]
fn serve_one(listener: TcpListener) -> std::thread::JoinHandle<Received> {
    std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut got = Received::default();
        let mut content_type = String::new();
        let mut ws = tungstenite::accept_hdr(
            tcp,
            |req: &tungstenite::handshake::server::Request,
             resp: tungstenite::handshake::server::Response| {
                content_type = req
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                Ok(resp)
            },
        )
        .unwrap();
        got.content_type = content_type;
        loop {
            match ws.read() {
                Ok(tungstenite::Message::Binary(b)) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis() as i64;
                    got.arrivals.push((now, b.len()));
                    got.bytes += b.len();
                    if got.arrivals.len() == 1 {
                        ws.send(tungstenite::Message::Ping("are you there".into()))
                            .unwrap();
                    }
                    got.left.extend(
                        b.chunks_exact(4)
                            .map(|f| i16::from_le_bytes([f[0], f[1]]) as f32 / 32768.0),
                    );
                }
                Ok(tungstenite::Message::Text(t)) => got.texts.push(t.to_string()),
                Ok(tungstenite::Message::Pong(p)) => {
                    assert_eq!(&p[..], b"are you there");
                    got.pongs += 1;
                }
                Ok(tungstenite::Message::Close(_)) => {
                    got.closed = true;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        got
    })
}

#[test]
fn websocket_track_egress_streams_pcm_and_mute_messages() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let mut p = publish(
        &lk,
        "ws",
        2,
        &[
            "--no-video",
            "--at",
            "6:mute-audio",
            "--at",
            "7.5:unmute-audio",
        ],
    );
    let mic = p.track("microphone");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = serve_one(listener);
    let req = format!(
        r#"{{"room_name": "ws", "track_id": "{mic}",
             "websocket_url": "ws://127.0.0.1:{port}/audio"}}"#
    );
    let args = lk.run_args();
    let run = tessera_run(&req, &args_with(&args, &["--duration", "10"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let got = server.join().unwrap();
    assert_eq!(got.content_type, "audio/x-raw");
    assert!(got.closed, "the egress closes the connection");
    assert_eq!(got.pongs, 1, "the egress answers the receiver's ping");
    assert_eq!(got.texts, [r#"{"muted":true}"#, r#"{"muted":false}"#]);
    let info = run.info.as_ref().unwrap();
    assert_eq!(info["status"], "EGRESS_COMPLETE");
    assert!(media_files(run.dir.path()).is_empty());

    // The tone is in the PCM (left channel of the first seconds).
    let tone = participant_tone_hz(2) as f64;
    let window = &got.left[48_000..3 * 48_000];
    let (on, off) = (goertzel(window, tone, RATE), goertzel(window, 360.0, RATE));
    assert!(
        on > 100.0 * off,
        "the tone is in the PCM: {on:e} vs {off:e}"
    );
    // Until the mute the PCM flows at 48 kHz x 2 bytes x 2 channels: the bytes that
    // arrived between the first message and the mute, against that span.
    let muted_at = p.action_ms("mute-audio");
    let first = got.arrivals[0].0;
    let before: usize = got
        .arrivals
        .iter()
        .filter(|(t, _)| *t <= muted_at)
        .map(|(_, n)| n)
        .sum();
    let span_s = (muted_at - first) as f64 / 1000.0;
    let expected = 48_000.0 * 2.0 * 2.0 * span_s;
    eprintln!(
        "{before} bytes in the {span_s:.2} s before the mute ({expected:.0} expected); {} in all",
        got.bytes
    );
    assert!(
        (before as f64 - expected).abs() / expected < 0.02,
        "{before} bytes vs {expected:.0}"
    );
}

/// A listener whose connections buffer little (16 KiB), so a receiver that stops reading
/// pushes back within a second of audio.
fn small_buffer_listener() -> TcpListener {
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let size: libc::c_int = 16 * 1024;
    // SAFETY: a live socket's descriptor and a c_int on the stack with its size.
    let r = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
    listener
}

#[test]
fn a_websocket_receiver_that_stops_reading_fails_the_egress_instead_of_hanging_it() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let mut p = publish(&lk, "ws-stuck", 1, &["--no-video"]);
    let mic = p.track("microphone");
    let listener = small_buffer_listener();
    let port = listener.local_addr().unwrap().port();
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let _ws = tungstenite::accept(tcp).unwrap();
        // Takes the handshake, then never reads; holds the connection open.
        let _ = hold_rx.recv();
    });
    let req = format!(
        r#"{{"room_name": "ws-stuck", "track_id": "{mic}",
             "websocket_url": "ws://127.0.0.1:{port}/audio"}}"#
    );
    let args = lk.run_args();
    // Without a write timeout the egress would block in a send for good; with one it
    // ends FAILED long before the hour it was asked for.
    let run = tessera_run(&req, &args_with(&args, &["--duration", "3600"]));
    drop(hold_tx);
    server.join().unwrap();
    let info = run.info.as_ref().expect("the egress reports its end");
    assert_eq!(info["status"], "EGRESS_FAILED", "{}", run.stderr());
    let error = info["error"].as_str().unwrap();
    assert!(error.contains("took no audio"), "{error}");
    assert_eq!(info["stream_results"][0]["status"], "FAILED", "{info}");
    drop(p);
}

#[test]
fn dual_channel_agent_and_v2_audio_routes_place_each_voice_on_its_channel() {
    let _g = common::shared();
    let lk = LiveKit::start();
    let _human = publish(&lk, "duo", 0, &[]);
    let _agent = publish(&lk, "duo", 1, &["--no-video", "--kind", "agent"]);
    let args = lk.run_args();

    // LiveKit's DUAL_CHANNEL_AGENT: agents left, everyone else right.
    let req = r#"{"room_name": "duo", "audio_only": true, "audio_mixing": "DUAL_CHANNEL_AGENT",
                  "file_outputs": [{"filepath": "dual"}]}"#;
    let run = tessera_run(req, &args_with(&args, &["--duration", "5"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let (left, right) = audio_stereo(&run.file());
    let (l, r) = (&left[48_000..4 * 48_000], &right[48_000..4 * 48_000]);
    let (agent_l, agent_r) = (tone_power(l, 1), tone_power(r, 1));
    let (human_l, human_r) = (tone_power(l, 0), tone_power(r, 0));
    eprintln!("agent L {agent_l:e} R {agent_r:e}; human L {human_l:e} R {human_r:e}");
    assert!(agent_l > 1000.0 * agent_r, "the agent only on the left");
    assert!(human_r > 1000.0 * human_l, "the human only on the right");

    // The v2 request: the human's camera, voices routed the other way round.
    let req = r#"{"room_name": "duo",
        "media": {"participant_video": {"identity": "person-0"},
                  "audio": {"routes": [
                      {"participant_kind": "AGENT", "channel": "AUDIO_CHANNEL_RIGHT"},
                      {"participant_identity": "person-0", "channel": "AUDIO_CHANNEL_LEFT"}]}},
        "outputs": [{"file": {"filepath": "{publisher_identity}-v2.mp4"}}]}"#;
    let run = tessera_run(req, &args_with(&args, &["--duration", "5"]));
    assert!(run.output.status.success(), "{}", run.stderr());
    let info = run.info.as_ref().unwrap();
    assert!(
        info["egress"].is_object(),
        "the v2 request is echoed: {info}"
    );
    let file = run.file();
    assert!(file.ends_with("person-0-v2.mp4"), "{file:?}");
    let frame = frame_rgb(&file, 3.0, W, H);
    assert!(coverage_of(&frame, participant_color(0)) > 0.8);
    let (left, right) = audio_stereo(&file);
    let (l, r) = (&left[48_000..4 * 48_000], &right[48_000..4 * 48_000]);
    assert!(
        tone_power(r, 1) > 1000.0 * tone_power(l, 1),
        "the agent on the right"
    );
    assert!(
        tone_power(l, 0) > 1000.0 * tone_power(r, 0),
        "the human on the left"
    );
}
