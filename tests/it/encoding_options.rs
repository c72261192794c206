//! Each encoding option changes what ffprobe reports: size, frame rate, profile, audio
//! codec, sample rate, key-frame spacing, and bitrates (±10% on a 10 s clip).

use crate::common;

use common::*;
use serde_json::json;

fn record(request: serde_json::Value, room: &str, secs: f64) -> (Run, serde_json::Value) {
    let run = tessera_run(
        &request.to_string(),
        &["--room", room, "--duration", &secs.to_string(), "--fast"],
    );
    assert!(run.output.status.success(), "{}", run.stderr());
    let probe = ffprobe(&run.file());
    (run, probe)
}

fn request(options: serde_json::Value) -> serde_json::Value {
    let mut r = json!({"room_name": "opts", "file_outputs": [{"filepath": "x.mp4"}]});
    r.as_object_mut()
        .unwrap()
        .extend(options.as_object().unwrap().clone());
    r
}

#[test]
fn small_baseline_opus() {
    let _shared = common::shared();
    let (_run, probe) = record(
        request(json!({"advanced": {
            "width": 640, "height": 360, "framerate": 15,
            "video_codec": "H264_BASELINE", "audio_codec": "OPUS"
        }})),
        "synthetic:4",
        2.0,
    );
    let v = stream(&probe, "video");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert!(
        (rate(&v["avg_frame_rate"]) - 15.0).abs() <= 0.45,
        "{}",
        v["avg_frame_rate"]
    );
    assert_eq!(v["profile"], "Constrained Baseline");
    let a = stream(&probe, "audio");
    assert_eq!(a["codec_name"], "opus");
    assert_eq!(a["sample_rate"], "48000");
}

#[test]
fn high_profile_aac_32k_with_one_second_key_frames() {
    let _shared = common::shared();
    let (run, probe) = record(
        request(json!({"advanced": {
            "width": 854, "height": 480, "framerate": 24, "video_codec": "H264_HIGH",
            "audio_codec": "AAC", "audio_frequency": 32000, "key_frame_interval": 1.0
        }})),
        "synthetic:2",
        3.0,
    );
    let v = stream(&probe, "video");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(854), Some(480))
    );
    assert!((rate(&v["avg_frame_rate"]) - 24.0).abs() <= 0.72);
    assert_eq!(v["profile"], "High");
    let a = stream(&probe, "audio");
    assert_eq!(
        (a["codec_name"].as_str(), a["sample_rate"].as_str()),
        (Some("aac"), Some("32000"))
    );

    // Key frames at 0, 1 and 2 s (x264 may add a scene-cut one; none may be missing).
    let keys = ffprobe_values(
        &run.file(),
        &[
            "-select_streams",
            "v",
            "-skip_frame",
            "nokey",
            "-show_entries",
            "frame=pts_time",
        ],
    );
    for want in [0.0, 1.0, 2.0] {
        assert!(
            keys.iter().any(|k| (k - want).abs() < 0.05),
            "no key frame at {want}s: {keys:?}"
        );
    }
}

#[test]
fn portrait_preset() {
    let _shared = common::shared();
    let (_run, probe) = record(
        request(json!({"preset": "PORTRAIT_H264_720P_30"})),
        "synthetic:2",
        1.0,
    );
    let v = stream(&probe, "video");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(720), Some(1280))
    );
    assert_eq!(v["profile"], "Main");
}

#[test]
fn bitrates_are_honoured_on_a_ten_second_clip() {
    let _shared = common::shared();
    // Camera-like grain, so the encoder has a reason to spend the bits it is given.
    let (_run, probe) = record(
        request(json!({"advanced": {
            "width": 640, "height": 360, "framerate": 30,
            "video_bitrate": 1200, "audio_bitrate": 96
        }})),
        "synthetic:4,grain=6",
        10.0,
    );
    let video_kbps = num(&stream(&probe, "video")["bit_rate"]) / 1000.0;
    let audio_kbps = num(&stream(&probe, "audio")["bit_rate"]) / 1000.0;
    assert!(
        (video_kbps - 1200.0).abs() <= 120.0,
        "video {video_kbps} kbit/s for 1200"
    );
    assert!(
        (audio_kbps - 96.0).abs() <= 9.6,
        "audio {audio_kbps} kbit/s for 96"
    );
}

#[test]
fn audio_only_and_video_only() {
    let _shared = common::shared();
    let (_run, probe) = record(request(json!({"audio_only": true})), "synthetic:2", 1.0);
    assert_eq!(stream_kinds(&probe), ["audio"]);
    let (_run, probe) = record(request(json!({"video_only": true})), "synthetic:2", 1.0);
    assert_eq!(stream_kinds(&probe), ["video"]);
}
