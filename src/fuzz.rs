//! Property tests that feed hostile input to every parser facing the outside: requests as
//! JSON and as protobuf (CLI, standalone API, psrpc), psrpc frames read from Redis, the
//! SDP a server sends, RTCP as the network delivers it, and the names that go into
//! paths and playlists. Each asserts no panic and, where input is refused, an error that
//! says something. CI runs the default case count (256 per property); `scripts/fuzz.sh`
//! runs them with `PROPTEST_CASES` set much higher.

use std::collections::HashMap;

use proptest::prelude::*;
use prost::Message;

use crate::layout::LayoutLibrary;
use crate::request::naming::{NameContext, resolve_filepath};

/// Requests that plan, to be mutated.
const VALID: [&str; 6] = [
    r#"{"room_name": "demo", "layout": "grid", "file_outputs": [{"filepath": "{room_name}-{time}.mp4"}]}"#,
    r#"{"room_name": "r", "segment_outputs": [{"filename_prefix": "hls/x", "playlist_name": "p.m3u8", "segment_duration": 2}], "image_outputs": [{"capture_interval": 5, "width": 320, "height": 180}]}"#,
    r#"{"url": "https://example.com/", "stream_outputs": [{"urls": ["rtmp://127.0.0.1/live/k"]}]}"#,
    r#"{"room_name": "r", "track_id": "TR_abc", "websocket_url": "ws://127.0.0.1:9/a"}"#,
    r#"{"room_name": "r", "identity": "alice", "advanced": {"width": 640, "height": 360, "framerate": 30, "video_codec": "VP8"}, "file_outputs": [{"filepath": "a.webm"}]}"#,
    r#"{"room_name": "r", "template": {"layout": "speaker"}, "outputs": [{"file": {"filepath": "x.mp4"}}]}"#,
];

fn layouts() -> &'static LayoutLibrary {
    static L: std::sync::OnceLock<LayoutLibrary> = std::sync::OnceLock::new();
    L.get_or_init(LayoutLibrary::builtin)
}

/// `text` with `edits` applied: each replaces the byte at a position with another.
fn mutate(text: &str, edits: &[(usize, u8)]) -> String {
    let mut b = text.as_bytes().to_vec();
    for (at, byte) in edits {
        let i = at % b.len();
        b[i] = *byte;
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// A JSON value built from the request format's own keys and awkward values.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let key = prop::sample::select(vec![
        "room_name",
        "layout",
        "file_outputs",
        "filepath",
        "segment_outputs",
        "stream_outputs",
        "image_outputs",
        "urls",
        "advanced",
        "width",
        "height",
        "framerate",
        "preset",
        "audio_only",
        "video_only",
        "url",
        "track_id",
        "identity",
        "websocket_url",
        "s3",
        "bucket",
        "outputs",
        "template",
        "media",
        "file_type",
        "segment_duration",
        "capture_interval",
        "playlist_name",
        "filename_prefix",
        "renditions",
        "audio_route",
    ]);
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,24}".prop_map(serde_json::Value::from),
        Just(serde_json::json!("../../etc/passwd")),
        Just(serde_json::json!("a\nb\r#EXT-X-ENDLIST")),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(-1)),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// A refusal must say what is wrong.
fn says_something(e: &impl std::fmt::Display) -> bool {
    !e.to_string().trim().is_empty()
}

proptest! {
    #[test]
    fn arbitrary_json_requests_never_panic(text in "\\PC{0,300}") {
        if let Err(e) = crate::request::plan_request(&text, layouts()) {
            prop_assert!(says_something(&e));
        }
    }

    #[test]
    fn mutated_requests_never_panic(
        base in prop::sample::select(VALID.to_vec()),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let text = mutate(base, &edits);
        if let Err(e) = crate::request::plan_request(&text, layouts()) {
            prop_assert!(says_something(&e));
        }
    }

    #[test]
    fn format_shaped_requests_never_panic(v in json_value()) {
        if let Err(e) = crate::request::plan_request(&v.to_string(), layouts()) {
            prop_assert!(says_something(&e));
        }
    }

    #[test]
    fn protobuf_requests_from_the_bus_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        if let Ok(req) = crate::service::rpc::StartEgressRequest::decode(bytes.as_slice())
            && let Some(r) = &req.request
            && let Err(e) = crate::service::intake::plan(r, layouts())
        {
            prop_assert!(says_something(&e));
        }
    }

    #[test]
    fn mutated_protobuf_requests_never_panic(
        base in prop::sample::select(VALID.to_vec()),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        // A valid request as the standalone API gets it, then corrupted on the wire.
        let Ok(req) = serde_json::from_str::<livekit_protocol::RoomCompositeEgressRequest>(base) else {
            return Ok(());
        };
        let mut bytes = req.encode_to_vec();
        if bytes.is_empty() {
            return Ok(());
        }
        for (at, b) in &edits {
            let i = at % bytes.len();
            bytes[i] = *b;
        }
        if let Ok(r) = livekit_protocol::RoomCompositeEgressRequest::decode(bytes.as_slice()) {
            let r = crate::service::rpc::start_egress_request::Request::RoomComposite(r);
            if let Err(e) = crate::service::intake::plan(&r, layouts()) {
                prop_assert!(says_something(&e));
            }
        }
    }

    #[test]
    fn psrpc_frames_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = crate::service::psrpc::wire::Envelope::decode(&bytes);
    }

    #[test]
    fn a_servers_sdp_never_panics(
        lines in prop::collection::vec(prop_oneof![
            Just("v=0".to_owned()),
            Just("m=audio 9 UDP/TLS/RTP/SAVPF 111".to_owned()),
            Just("m=video 9 UDP/TLS/RTP/SAVPF 96 97".to_owned()),
            Just("a=mid:0".to_owned()),
            Just("a=msid:PA_x TR_y".to_owned()),
            Just("a=rtpmap:111 opus/48000/2".to_owned()),
            Just("a=candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host".to_owned()),
            "\\PC{0,60}",
        ], 0..30),
        mids in prop::collection::hash_map("\\PC{0,4}", "\\PC{0,8}", 0..3),
    ) {
        let sdp = lines.join("\r\n");
        let _ = crate::source::livekit::sdp::offered_media(&sdp, &mids);
        let map: HashMap<std::net::SocketAddr, std::net::SocketAddr> =
            [("127.0.0.1:7882".parse().unwrap(), "127.0.0.2:7882".parse().unwrap())].into();
        let _ = crate::source::livekit::sdp::rewrite_candidates(&sdp, &map);
    }

    #[test]
    fn rtcp_from_the_network_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = str0m::rtp::rtcp::Rtcp::try_from(bytes.as_slice());
    }

    #[test]
    fn names_never_escape_the_output_or_break_a_playlist(
        room in "\\PC{0,40}",
        template in "\\PC{0,40}",
    ) {
        let ctx = NameContext {
            room_name: &room,
            room_id: "RM_x",
            time: chrono::Utc::now(),
            ..Default::default()
        };
        if let Ok(name) = resolve_filepath(&template, &ctx, ".m3u8") {
            if let Ok(rel) = crate::request::naming::contained(&name) {
                prop_assert!(!rel.is_absolute(), "{rel:?}");
                prop_assert!(
                    rel.components().all(|c| matches!(c, std::path::Component::Normal(_))),
                    "{rel:?}"
                );
            }
            let line = crate::output::playlist::uri_line(&name);
            prop_assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        }
    }

    #[test]
    fn go_durations_never_panic(text in "\\PC{0,30}") {
        let _ = crate::go_duration::parse_go_duration(&text);
    }
}
