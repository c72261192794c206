//! LiveKit requests → an [`EgressPlan`]: parsing (LiveKit's proto3 JSON through
//! `livekit-protocol`), validation with errors that name the field, and defaults.
//! Knows nothing of GStreamer, the GPU or sockets.

/// The four output lists every v1 composite request has, with their field paths.
macro_rules! output_lists {
    ($req:expr) => {
        $crate::request::outputs::RequestOutputs {
            files: indexed("file_outputs", &$req.file_outputs),
            segments: indexed("segment_outputs", &$req.segment_outputs),
            streams: indexed("stream_outputs", &$req.stream_outputs),
            images: indexed("image_outputs", &$req.image_outputs),
        }
    };
}

/// Adds a request's deprecated single `output` (file, stream or segments; `$module` is
/// the request's nested module) to the lists, refusing it beside the list it belongs to.
macro_rules! deprecated_output {
    ($lists:expr, $output:expr, $module:ident) => {{
        use livekit_protocol::$module::Output as O;
        #[allow(deprecated)]
        match $output {
            None => {}
            Some(O::File(f)) => deprecated_one(&mut $lists.files, "file", "file_outputs", f)?,
            Some(O::Stream(s)) => {
                deprecated_one(&mut $lists.streams, "stream", "stream_outputs", s)?
            }
            Some(O::Segments(s)) => {
                deprecated_one(&mut $lists.segments, "segments", "segment_outputs", s)?
            }
        }
    }};
}

/// A request's `preset`/`advanced` oneof (`$module` is the request's nested module) as an
/// [`EncodingChoice`].
macro_rules! encoding_choice {
    ($options:expr, $module:ident) => {
        $options.map(|o| {
            use livekit_protocol::$module::Options as O;
            match o {
                O::Preset(n) => EncodingChoice::Preset(n),
                O::Advanced(a) => EncodingChoice::Advanced(a),
            }
        })
    };
}

/// LiveKit's per-output upload oneofs (`$module` is the output's nested module), as one
/// `storage_config::Provider`.
macro_rules! provider_of {
    ($output:expr, $module:ident) => {
        $output.as_ref().map(|o| {
            use livekit_protocol::storage_config::Provider;
            use livekit_protocol::$module::Output as O;
            match o {
                O::S3(x) => Provider::S3(x.clone()),
                O::Gcp(x) => Provider::Gcp(x.clone()),
                O::Azure(x) => Provider::Azure(x.clone()),
                O::AliOss(x) => Provider::AliOss(x.clone()),
            }
        })
    };
}

mod composite;
pub(crate) mod conversation;
pub(crate) mod encoding;
mod error;
pub(crate) mod extensions;
pub(crate) mod kinds;
pub(crate) mod naming;
pub(crate) mod outputs;
pub(crate) mod page_policy;
mod plan;
pub(crate) mod renditions;
pub(crate) mod select;
pub(crate) mod stream_url;
pub(crate) mod web;

pub use composite::{EncodingChoice, parse_room_composite, plan_room_composite};
pub use conversation::Conversation;
pub use encoding::{AudioCodecKind, EncodingParams, H264Profile, VideoCodecKind};
pub use error::RequestError;
pub use extensions::Extensions;
pub use kinds::{Job, TrackOutput, TrackPlan, plan_request};
use livekit_protocol::{EgressSourceType, egress_info};
pub use naming::EgressKind;
pub use outputs::{FileKind, FilePlan, OutputsPlan};
pub use page_policy::PagePolicy;
pub use plan::EgressPlan;
pub use select::{Selection, Tracks};

/// Redacts the secrets of a per-output upload oneof in place.
macro_rules! redact_upload {
    ($output:expr, $module:ident) => {
        if let Some(o) = $output.as_mut() {
            use livekit_protocol::storage_config::Provider as P;
            use livekit_protocol::$module::Output as O;
            let mut p = match o {
                O::S3(x) => P::S3(std::mem::take(x)),
                O::Gcp(x) => P::Gcp(std::mem::take(x)),
                O::Azure(x) => P::Azure(std::mem::take(x)),
                O::AliOss(x) => P::AliOss(std::mem::take(x)),
            };
            crate::storage::spec::redact_provider(&mut p);
            *o = match p {
                P::S3(x) => O::S3(x),
                P::Gcp(x) => O::Gcp(x),
                P::Azure(x) => O::Azure(x),
                P::AliOss(x) => O::AliOss(x),
            };
        }
    };
}

/// Redacts the stream keys of a list of stream outputs.
fn redact_streams<'a>(streams: impl IntoIterator<Item = &'a mut livekit_protocol::StreamOutput>) {
    for s in streams {
        for u in &mut s.urls {
            *u = stream_url::redact_url(u);
        }
    }
}

/// Redacts the outputs shared by the v1 composite requests (the four lists).
macro_rules! redact_lists {
    ($r:expr) => {{
        for f in &mut $r.file_outputs {
            redact_upload!(f.output, encoded_file_output);
        }
        for s in &mut $r.segment_outputs {
            redact_upload!(s.output, segmented_file_output);
        }
        for i in &mut $r.image_outputs {
            redact_upload!(i.output, image_output);
        }
        redact_streams(&mut $r.stream_outputs);
    }};
}

/// Redacts a request's deprecated single `output` (`$module` is the request's nested
/// module).
macro_rules! redact_deprecated_output {
    ($output:expr, $module:ident) => {{
        use livekit_protocol::$module::Output as O;
        #[allow(deprecated)]
        match &mut $output {
            Some(O::File(f)) => redact_upload!(f.output, encoded_file_output),
            Some(O::Segments(s)) => redact_upload!(s.output, segmented_file_output),
            Some(O::Stream(s)) => redact_streams([s]),
            None => {}
        }
    }};
}

/// The request as echoed in `EgressInfo`: stream URLs with their keys redacted, and the
/// storage secrets (keys, secrets, tokens, credentials, proxy passwords).
pub fn redacted(req: &egress_info::Request) -> egress_info::Request {
    use egress_info::Request as R;
    let mut req = req.clone();
    match &mut req {
        R::RoomComposite(r) => {
            redact_lists!(r);
            redact_deprecated_output!(r.output, room_composite_egress_request);
        }
        R::Participant(r) => redact_lists!(r),
        R::TrackComposite(r) => {
            redact_lists!(r);
            redact_deprecated_output!(r.output, track_composite_egress_request);
        }
        R::Web(r) => redact_lists!(r),
        R::Track(r) => {
            if let Some(livekit_protocol::track_egress_request::Output::File(f)) = &mut r.output {
                redact_upload!(f.output, direct_file_output);
            }
        }
        R::Egress(r) => {
            use livekit_protocol::output::Config;
            let configs = r
                .storage
                .iter_mut()
                .chain(r.outputs.iter_mut().filter_map(|o| o.storage.as_mut()));
            for c in configs {
                if let Some(p) = c.provider.as_mut() {
                    crate::storage::spec::redact_provider(p);
                }
            }
            for o in &mut r.outputs {
                if let Some(Config::Stream(s)) = &mut o.config {
                    redact_streams([s]);
                }
            }
        }
        R::Replay(_) => {}
    }
    req
}

/// The `source_type` LiveKit's egress reports for `req`: WEB where it renders a page (a web
/// egress; a room composite or v2 template unless it is audio-only with neither a layout nor
/// a custom base URL), SDK where it subscribes to tracks (participant, track composite, track,
/// v2 media). tessera composites natively either way; the field says what LiveKit would do,
/// so that clients, webhooks and billing that read it see the same value.
pub fn source_type(req: &egress_info::Request) -> EgressSourceType {
    use egress_info::Request as R;
    use livekit_protocol::{export_replay_request as replay, start_egress_request as v2};
    // LiveKit's `ShouldUseSDKSource`.
    let sdk_template = |audio_only: bool, layout: &str, base: &str| {
        if audio_only && layout.is_empty() && base.is_empty() {
            EgressSourceType::Sdk
        } else {
            EgressSourceType::Web
        }
    };
    match req {
        R::RoomComposite(r) => sdk_template(r.audio_only, &r.layout, &r.custom_base_url),
        R::Web(_) => EgressSourceType::Web,
        R::Participant(_) | R::TrackComposite(_) | R::Track(_) => EgressSourceType::Sdk,
        R::Egress(r) => match &r.source {
            Some(v2::Source::Template(t)) => {
                sdk_template(t.audio_only, &t.layout, &t.custom_base_url)
            }
            Some(v2::Source::Web(_)) => EgressSourceType::Web,
            Some(v2::Source::Media(_)) | None => EgressSourceType::Sdk,
        },
        R::Replay(r) => match &r.source {
            Some(replay::Source::Template(t)) => {
                sdk_template(t.audio_only, &t.layout, &t.custom_base_url)
            }
            Some(replay::Source::Web(_)) => EgressSourceType::Web,
            Some(replay::Source::Media(_)) | None => EgressSourceType::Sdk,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::LayoutLibrary;

    fn plan(json: &str) -> Result<EgressPlan, RequestError> {
        let (req, raw) = parse_room_composite(json)?;
        plan_room_composite(req, &Extensions::read(&raw), &LayoutLibrary::builtin())
    }

    #[test]
    fn seed_shape_parses_with_defaults() {
        let p = plan(r#"{"room_name":"my-room","layout":"grid","file_outputs":[{"filepath":"my-test-file.mp4"}]}"#)
            .unwrap();
        assert_eq!(p.room_name, "my-room");
        assert_eq!((p.encoding.width, p.encoding.height), (1280, 720));
        assert_eq!(p.outputs.files[0].kind, FileKind::Mp4);
        assert_eq!(p.outputs.video.len(), 1);
        assert_eq!(p.outputs.audio, vec![AudioCodecKind::Aac]);
        assert!(p.outputs.manifest);
        assert!(p.tracks.audio && p.tracks.video);
    }

    #[test]
    fn source_type_is_what_livekit_reports_per_request() {
        use livekit_protocol as lk;
        use lk::EgressSourceType::{Sdk, Web};
        let room = |audio_only: bool, layout: &str, base: &str| {
            egress_info::Request::RoomComposite(lk::RoomCompositeEgressRequest {
                audio_only,
                layout: layout.into(),
                custom_base_url: base.into(),
                ..Default::default()
            })
        };
        assert_eq!(source_type(&room(false, "", "")), Web);
        assert_eq!(source_type(&room(false, "grid", "")), Web);
        assert_eq!(source_type(&room(true, "", "")), Sdk);
        assert_eq!(source_type(&room(true, "grid", "")), Web);
        assert_eq!(source_type(&room(true, "", "http://t")), Web);
        let web = egress_info::Request::Web(Default::default());
        assert_eq!(source_type(&web), Web);
        for r in [
            egress_info::Request::Participant(Default::default()),
            egress_info::Request::TrackComposite(Default::default()),
            egress_info::Request::Track(Default::default()),
        ] {
            assert_eq!(source_type(&r), Sdk);
        }
        let v2 = |source| {
            egress_info::Request::Egress(lk::StartEgressRequest {
                source: Some(source),
                ..Default::default()
            })
        };
        use lk::start_egress_request::Source;
        let template = |audio_only| {
            Source::Template(lk::TemplateSource {
                audio_only,
                ..Default::default()
            })
        };
        assert_eq!(source_type(&v2(template(false))), Web);
        assert_eq!(source_type(&v2(template(true))), Sdk);
        assert_eq!(source_type(&v2(Source::Web(Default::default()))), Web);
        assert_eq!(source_type(&v2(Source::Media(Default::default()))), Sdk);
    }

    #[test]
    fn camel_case_and_preset_by_name() {
        let p =
            plan(r#"{"roomName":"r","preset":"H264_1080P_60","fileOutputs":[{"filepath":"x"}]}"#)
                .unwrap();
        assert_eq!((p.encoding.width, p.encoding.framerate), (1920, 60));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"room_name":"r","preset":"H264_4K","file_outputs":[{}]}"#,
                "preset",
            ),
            (
                r#"{"room_name":"r","advanced":{"width":1279},"file_outputs":[{}]}"#,
                "advanced.width",
            ),
            (
                r#"{"room_name":"r","advanced":{"width":0},"file_outputs":[{}]}"#,
                "advanced.width",
            ),
            (
                r#"{"room_name":"r","advanced":{"video_bitrate":-1},"file_outputs":[{}]}"#,
                "advanced.video_bitrate",
            ),
            (
                r#"{"room_name":"r","file_outputs":[{"filepath":"../x.mp4"}]}"#,
                "file_outputs[0].filepath",
            ),
            (
                r#"{"room_name":"r","layout":"nope","file_outputs":[{}]}"#,
                "layout",
            ),
            (r#"{"room_name":"","file_outputs":[{}]}"#, "room_name"),
            (r#"{"room_name":"r"}"#, "file_outputs"),
            (
                r#"{"room_name":"r","file_outputs":[{},{},{},{},{},{},{},{}],"image_outputs":[{},{},{},{},{},{},{},{},{}]}"#,
                "image_outputs[8]",
            ),
            (
                r#"{"room_name":"r","file_outputs":[{}],"stream_outputs":[{"urls":["http://x"]}]}"#,
                "stream_outputs[0].urls[0]",
            ),
        ];
        for (json, field) in cases {
            let err = plan(json).unwrap_err();
            assert_eq!(err.field(), Some(field), "{json}: {err}");
            assert!(err.to_string().starts_with(field), "{err}");
        }
    }

    #[test]
    fn malformed_json_is_a_json_error() {
        assert!(matches!(
            plan("{\"room_name\": "),
            Err(RequestError::Json(_))
        ));
    }
}
