//! File containers and track selections: MP4 + OGG + MP3 from one egress (each audio
//! codec encoded once), WebM with VP8, audio-only and video-only recordings.

use crate::common;

use common::*;

fn codecs(path: &std::path::Path) -> Vec<String> {
    ffprobe(path)["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap().to_owned())
        .collect()
}

fn duration(path: &std::path::Path) -> f64 {
    num(&ffprobe(path)["format"]["duration"])
}

#[test]
fn mp4_ogg_and_mp3_from_one_egress() {
    let _shared = common::shared();
    let request = r#"{
      "room_name": "files",
      "file_outputs": [
        {"filepath": "a.mp4"},
        {"file_type": "OGG", "filepath": "a"},
        {"file_type": "MP3", "filepath": "a"},
        {"filepath": "second/copy.mp4"}
      ]
    }"#;
    let run = tessera_run(request, &["--duration", "3", "--fast"]);
    assert!(run.output.status.success(), "{}", run.stderr());
    let out = run.dir.path().join("out");
    assert_eq!(codecs(&out.join("a.mp4")), ["h264", "aac"]);
    assert_eq!(codecs(&out.join("a.ogg")), ["opus"]);
    assert_eq!(codecs(&out.join("a.mp3")), ["mp3"]);
    assert_eq!(codecs(&out.join("second/copy.mp4")), ["h264", "aac"]);
    for f in ["a.mp4", "a.ogg", "a.mp3", "second/copy.mp4"] {
        let d = duration(&out.join(f));
        assert!((d - 3.0).abs() < 0.3, "{f}: {d} s");
    }
    let info = run.info.as_ref().unwrap();
    assert_eq!(info["file_results"].as_array().unwrap().len(), 4);
    // Two MP4s of one encode are the same bytes but for their headers' creation times:
    // their video packets match exactly.
    let packets = |f: &str| {
        tool(
            "ffprobe",
            [
                "-select_streams",
                "v",
                "-show_entries",
                "packet=size",
                "-of",
                "csv=p=0",
                out.join(f).to_str().unwrap(),
            ],
        )
    };
    assert_eq!(packets("a.mp4"), packets("second/copy.mp4"));
}

#[test]
fn webm_is_vp8_and_opus() {
    let _shared = common::shared();
    let request = r#"{"room_name": "w", "file_outputs": [{"filepath": "w.webm"}]}"#;
    let run = tessera_run(request, &["--duration", "3", "--fast"]);
    assert!(run.output.status.success(), "{}", run.stderr());
    let f = run.dir.path().join("out/w.webm");
    assert_eq!(codecs(&f), ["vp8", "opus"]);
    assert!((duration(&f) - 3.0).abs() < 0.3);
}

#[test]
fn audio_only_and_video_only() {
    let _shared = common::shared();
    let request = r#"{"room_name": "a", "audio_only": true,
        "file_outputs": [{"filepath": "voice"}, {"filepath": "voice.mp4", "file_type": "MP4"}]}"#;
    let run = tessera_run(request, &["--duration", "3", "--fast"]);
    assert!(run.output.status.success(), "{}", run.stderr());
    let out = run.dir.path().join("out");
    // LiveKit's default for audio-only is OGG.
    assert_eq!(codecs(&out.join("voice.ogg")), ["opus"]);
    assert_eq!(codecs(&out.join("voice.mp4")), ["aac"]);

    let request =
        r#"{"room_name": "v", "video_only": true, "file_outputs": [{"filepath": "v.mp4"}]}"#;
    let run = tessera_run(request, &["--duration", "3", "--fast"]);
    assert!(run.output.status.success(), "{}", run.stderr());
    assert_eq!(codecs(&run.dir.path().join("out/v.mp4")), ["h264"]);
}

#[test]
fn conflicting_outputs_are_refused_naming_the_field() {
    let _shared = common::shared();
    let cases = [
        (
            r#"{"room_name": "x", "file_outputs": [{"filepath": "a.mp4"}, {"filepath": "b.webm"}]}"#,
            "file_outputs[1].filepath",
        ),
        (
            r#"{"room_name": "x", "video_only": true, "file_outputs": [{"file_type": "OGG"}]}"#,
            "file_outputs[0].file_type",
        ),
        (
            r#"{"room_name": "x", "advanced": {"audio_codec": "OPUS"},
                "stream_outputs": [{"urls": ["rtmp://h/app/k"]}]}"#,
            "advanced.audio_codec",
        ),
        (
            r#"{"room_name": "x", "audio_only": true, "image_outputs": [{"capture_interval": 1}]}"#,
            "image_outputs[0]",
        ),
        (
            r#"{"room_name": "x", "segment_outputs": [{"segment_duration": 600}]}"#,
            "segment_outputs[0].segment_duration",
        ),
    ];
    for (request, field) in cases {
        let run = tessera_run(request, &["--duration", "1"]);
        assert_eq!(
            run.output.status.code(),
            Some(2),
            "{request}\n{}",
            run.stderr()
        );
        assert!(
            run.stderr().contains(&format!("{field}:")),
            "{request}: expected {field}\n{}",
            run.stderr()
        );
        assert!(files_under(run.dir.path()).is_empty(), "nothing written");
    }
}

#[test]
fn dual_channel_alternate_keeps_each_voice_on_its_side_in_aac_and_opus() {
    let _shared = common::shared();
    use tessera::source::synthetic::participant_tone_hz;
    let req = r#"{"room_name": "r", "audio_mixing": "DUAL_CHANNEL_ALTERNATE",
                  "file_outputs": [{"filepath": "alt.mp4"}, {"filepath": "alt.ogg"}]}"#;
    let run = tessera_run(req, &["--room", "synthetic:2", "--duration", "3", "--fast"]);
    assert!(run.output.status.success(), "{}", run.stderr());
    let (first, second) = (participant_tone_hz(0) as f64, participant_tone_hz(1) as f64);
    for name in ["alt.mp4", "alt.ogg"] {
        let (l, r) = audio_stereo(&run.dir.path().join("out").join(name));
        let (l, r) = (&l[48_000..2 * 48_000], &r[48_000..2 * 48_000]);
        let p = |s: &[f32], hz: f64| goertzel(s, hz, 48_000.0);
        // LiveKit's alternate mixing: the first voice left, the second right; each at
        // least 40 dB above its leak into the other side.
        assert!(
            p(l, first) > 1e4 * p(r, first),
            "{name}: first voice leaks right"
        );
        assert!(
            p(r, second) > 1e4 * p(l, second),
            "{name}: second voice leaks left"
        );
    }
}
