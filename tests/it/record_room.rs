//! A synthetic room recorded end to end by the real binary, checked with ffprobe/ffmpeg:
//! codecs, size, rate, duration, each participant's colour in its grid cell and each
//! participant's tone in the mix, and `EgressInfo` agreeing with the file.

use crate::common;

use common::*;
use tessera::source::synthetic::{participant_color, participant_tone_hz};

const REQUEST: &str = r#"{
  "room_name": "my-room",
  "layout": "grid",
  "file_outputs": [{"filepath": "recordings/{room_name}-{time}"}]
}"#;

/// Per-channel tolerance (8-bit levels) for a flat colour after YUV→RGB on the GPU,
/// RGB→NV12, x264 at 3 Mbit/s and ffmpeg's decode back to RGB.
const COLOR_TOLERANCE: f64 = 20.0;

fn check_room(n: usize, secs: f64, centres: &[(u32, u32)]) {
    let run = tessera_run(
        REQUEST,
        &[
            "--room",
            &format!("synthetic:{n}"),
            "--duration",
            &secs.to_string(),
        ],
    );
    assert!(
        run.output.status.success(),
        "exit {:?}\n{}",
        run.output.status,
        run.stderr()
    );
    let info = run.info.as_ref().expect("EgressInfo JSON on stdout");
    assert!(info["egress_id"].as_str().unwrap().starts_with("EG_"));
    assert_eq!(info["status"], "EGRESS_COMPLETE");
    assert_eq!(info["room_name"], "my-room");
    let file = run.file();

    // EgressInfo agrees with the file.
    let result = &info["file_results"][0];
    let filename = result["filename"].as_str().unwrap();
    assert!(
        filename.starts_with("recordings/my-room-") && filename.ends_with(".mp4"),
        "{filename}"
    );
    assert!(file.ends_with(filename), "{} vs {filename}", file.display());
    assert_eq!(result["location"].as_str().unwrap(), file.to_str().unwrap());
    assert_eq!(
        num(&result["size"]) as u64,
        std::fs::metadata(&file).unwrap().len()
    );
    assert!(num(&result["started_at"]) <= num(&result["ended_at"]));
    // The deprecated single-file result mirrors it, for older clients.
    assert_eq!(&info["file"], result);

    // ffprobe: H.264 at 1280x720, 30 fps (±3%), AAC, duration within ±0.5 s.
    let probe = ffprobe(&file);
    let v = stream(&probe, "video");
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert!(
        (rate(&v["avg_frame_rate"]) - 30.0).abs() <= 0.9,
        "{}",
        v["avg_frame_rate"]
    );
    let a = stream(&probe, "audio");
    assert_eq!(a["codec_name"], "aac");
    // A/V sync: both streams start together (within a frame).
    let (vs, as_) = (num(&v["start_time"]), num(&a["start_time"]));
    assert!(
        (vs - as_).abs() < 0.030,
        "video starts at {vs} s, audio at {as_} s"
    );
    let duration = num(&probe["format"]["duration"]);
    assert!(
        (duration - secs).abs() <= 0.5,
        "duration {duration} for a {secs} s run"
    );
    let reported = num(&result["duration"]) / 1e9;
    assert!(
        (reported - duration).abs() <= 0.2,
        "EgressInfo says {reported} s, ffprobe {duration} s"
    );

    // Each participant's colour at its cell centre.
    let frame = frame_rgb(&file, secs / 2.0, 1280, 720);
    for (i, &(x, y)) in centres.iter().enumerate() {
        let got = mean_rgb(&frame, 1280, x, y, 4);
        let want = participant_color(i);
        for c in 0..3 {
            assert!(
                (got[c] - want[c] as f64).abs() <= COLOR_TOLERANCE,
                "participant {i} at ({x},{y}): got {got:?}, want {want:?}"
            );
        }
    }

    // Each participant's tone is in the mix; a tone nobody plays is not.
    let audio = audio_mono(&file);
    let window = &audio[24_000..72_000.min(audio.len())];
    let silent = goertzel(window, participant_tone_hz(n) as f64, 48_000.0);
    for i in 0..n {
        let f = participant_tone_hz(i) as f64;
        let power = goertzel(window, f, 48_000.0);
        let between = goertzel(window, f + 60.0, 48_000.0);
        assert!(
            power > 1e-4,
            "participant {i}'s {f} Hz tone is missing: {power}"
        );
        assert!(
            power > 50.0 * between && power > 50.0 * silent,
            "{f} Hz: {power} vs {between} / {silent}"
        );
    }
}

#[test]
fn four_person_room() {
    let _shared = common::shared();
    // 2x2 grid: quadrant centres.
    check_room(4, 3.0, &[(320, 180), (960, 180), (320, 540), (960, 540)]);
}

#[test]
fn nine_person_room() {
    let _shared = common::shared();
    // 3x3 grid: ninth centres.
    let centres: Vec<(u32, u32)> = (0..9)
        .map(|i| (1280 / 6 * (2 * (i % 3) + 1), 720 / 6 * (2 * (i / 3) + 1)))
        .collect();
    check_room(9, 3.0, &centres);
}
