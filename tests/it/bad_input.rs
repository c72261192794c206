//! Bad input: a clear error naming the field, a non-zero exit, and no file written.

use crate::common;

use common::*;

fn rejected(request: &str, args: &[&str], field: &str) {
    let run = tessera_run(request, args);
    let stderr = run.stderr();
    assert!(!run.output.status.success(), "accepted: {request}");
    assert!(
        stderr.contains(field),
        "error does not name {field:?}:\n{stderr}"
    );
    assert!(
        files_under(run.dir.path()).is_empty(),
        "files written for {request}: {:?}",
        files_under(run.dir.path())
    );
}

#[test]
fn malformed_json() {
    let _shared = common::shared();
    rejected(
        r#"{"room_name": "r", "file_outputs": [{"filepath": "x.mp4"}"#,
        &[],
        "not valid JSON",
    );
}

#[test]
fn unknown_preset() {
    let _shared = common::shared();
    rejected(
        r#"{"room_name": "r", "preset": "H264_8K_240", "file_outputs": [{}]}"#,
        &[],
        "preset",
    );
}

#[test]
fn odd_width() {
    let _shared = common::shared();
    rejected(
        r#"{"room_name": "r", "advanced": {"width": 1281, "height": 720}, "file_outputs": [{}]}"#,
        &[],
        "advanced.width",
    );
}

#[test]
fn zero_width() {
    let _shared = common::shared();
    rejected(
        r#"{"room_name": "r", "advanced": {"width": 0, "height": 720}, "file_outputs": [{}]}"#,
        &[],
        "advanced.width",
    );
}

#[test]
fn negative_bitrate() {
    let _shared = common::shared();
    rejected(
        r#"{"room_name": "r", "advanced": {"video_bitrate": -3000}, "file_outputs": [{}]}"#,
        &[],
        "advanced.video_bitrate",
    );
}

#[test]
fn filepath_escaping_the_output_directory() {
    let _shared = common::shared();
    rejected(
        r#"{"room_name": "r", "file_outputs": [{"filepath": "../../escape.mp4"}]}"#,
        &[],
        "file_outputs[0].filepath",
    );
    rejected(
        r#"{"room_name": "r", "file_outputs": [{"filepath": "/tmp/abs.mp4"}]}"#,
        &[],
        "file_outputs[0].filepath",
    );
}

#[test]
fn unknown_layout() {
    let _shared = common::shared();
    rejected(
        r#"{"room_name": "r", "layout": "mosaic-deluxe", "file_outputs": [{}]}"#,
        &[],
        "layout",
    );
}

#[test]
fn wrong_type() {
    let _shared = common::shared();
    rejected(
        r#"{"room_name": "r", "advanced": {"framerate": "fast"}, "file_outputs": [{}]}"#,
        &[],
        "advanced.framerate",
    );
}

#[test]
fn bad_room_spec_and_duration() {
    let _shared = common::shared();
    rejected(
        r#"{"room_name": "r", "file_outputs": [{}]}"#,
        &["--room", "synthetic:0"],
        "--room",
    );
    rejected(
        r#"{"room_name": "r", "file_outputs": [{}]}"#,
        &["--duration", "-1"],
        "--duration",
    );
}

#[test]
fn participant_track_and_v2_requests_name_their_fields() {
    let _shared = common::shared();
    rejected(
        r#"{"room_name": "r", "identity": "bob", "file_outputs": [{"filepath": "{track_id}.mp4"}]}"#,
        &[],
        "file_outputs[0].filepath: {track_id} does not apply to a participant egress",
    );
    rejected(
        r#"{"room_name": "r", "track_id": "TR_x", "websocket_url": "http://127.0.0.1/x"}"#,
        &[],
        "websocket_url",
    );
    rejected(
        r#"{"room_name": "r", "media": {"audio": {"routes": [{"channel": "AUDIO_CHANNEL_LEFT"}]}},
            "outputs": [{"file": {}}]}"#,
        &[],
        "media.audio.routes[0]",
    );
    // Only a LiveKit room has participants and tracks to pick.
    rejected(
        r#"{"room_name": "r", "identity": "bob", "file_outputs": [{}]}"#,
        &[],
        "--url",
    );
    rejected(
        r#"{"room_name": "r", "track_id": "TR_x", "file": {}}"#,
        &[],
        "--url",
    );
}
