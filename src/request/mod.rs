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

pub mod encoding;
pub mod extensions;
pub mod kinds;
pub mod naming;
pub mod outputs;
pub mod page_policy;
pub mod renditions;
pub mod select;
pub mod stream_url;
pub mod web;

use livekit_protocol::{
    AudioMixing, EgressSourceType, EncodingOptions, EncodingOptionsPreset,
    RoomCompositeEgressRequest, egress_info,
};
use serde_json::Value;

use crate::layout::{LayoutLibrary, ResolvedLayout};
pub use encoding::{AudioCodecKind, EncodingParams, H264Profile, VideoCodecKind};
pub use extensions::Extensions;
pub use kinds::{Job, TrackOutput, TrackPlan, plan_request};
pub use naming::EgressKind;
pub use outputs::{FileKind, FilePlan, OutputsPlan};
pub use select::Selection;

/// Why a request cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The text is not JSON at all.
    #[error("request is not valid JSON: {0}")]
    Json(String),
    /// The JSON does not fit LiveKit's schema; `field` is the path to the offending value.
    #[error("{field}: {reason}")]
    Schema {
        /// Path of the field, e.g. `advanced.width`.
        field: String,
        /// What the schema said.
        reason: String,
    },
    /// A field has a value that cannot be used.
    #[error("{field}: {reason}")]
    Invalid {
        /// Path of the field, e.g. `file_outputs[0].filepath`.
        field: String,
        /// Why the value is refused.
        reason: String,
    },
}

impl RequestError {
    /// An invalid-value error for `field`.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        RequestError::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The field the error is about, where there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            RequestError::Json(_) => None,
            RequestError::Schema { field, .. } | RequestError::Invalid { field, .. } => Some(field),
        }
    }
}

/// Which media the egress records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracks {
    /// Record (and composite) video.
    pub video: bool,
    /// Record (and mix) audio.
    pub audio: bool,
}

/// A validated composite egress (room composite, participant, track composite, or a v2
/// request with a template or media source), ready to run.
#[derive(Clone, Debug)]
pub struct EgressPlan {
    /// Which LiveKit egress type it is (which filename variables apply).
    pub kind: EgressKind,
    /// What it takes from the room.
    pub selection: Selection,
    /// The room's name.
    pub room_name: String,
    /// The layout, resolved from its template file.
    pub layout: ResolvedLayout,
    /// The layouts known when planning: `UpdateLayout` switches among them.
    pub layouts: LayoutLibrary,
    /// Encoding after presets/advanced/defaults.
    pub encoding: EncodingParams,
    /// Which media are recorded.
    pub tracks: Tracks,
    /// Every output, and the encodes they share.
    pub outputs: OutputsPlan,
    /// The request as parsed, echoed (redacted) in `EgressInfo`.
    pub request: egress_info::Request,
    /// A web egress or a custom web template: the page recorded instead of the room's
    /// tracks (drawn full frame with the `track` layout).
    pub web: Option<web::WebPlan>,
}

/// Parses LiveKit's JSON form of a `RoomCompositeEgressRequest` (snake_case or camelCase keys,
/// enums by name or number), returning the request and the raw JSON.
pub fn parse_room_composite(
    text: &str,
) -> Result<(RoomCompositeEgressRequest, Value), RequestError> {
    let raw = parse_object(text)?;
    let req: RoomCompositeEgressRequest = read_as(&extensions::for_schema(&raw))?;
    Ok((req, raw))
}

/// Reads `raw` as `T` (LiveKit's proto3 JSON), errors naming the field.
pub(crate) fn read_as<T: serde::de::DeserializeOwned>(raw: &Value) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let field = e.path().to_string();
        RequestError::Schema {
            field: if field == "." {
                "request".into()
            } else {
                field
            },
            reason: e.into_inner().to_string(),
        }
    })
}

/// The request text as a JSON object.
fn parse_object(text: &str) -> Result<Value, RequestError> {
    let raw: Value = serde_json::from_str(text).map_err(|e| RequestError::Json(e.to_string()))?;
    if !raw.is_object() {
        return Err(RequestError::Json("expected a JSON object".into()));
    }
    Ok(raw)
}

/// A request's encoding oneof (`preset` or `advanced`), whichever type it came from.
#[derive(Clone, Copy, Debug)]
pub enum EncodingChoice {
    /// `preset`: one of LiveKit's presets, by number.
    Preset(i32),
    /// `advanced`.
    Advanced(EncodingOptions),
}

/// The parts every composite request has, taken from whichever request type.
pub(crate) struct CompositeParts<'a> {
    pub kind: EgressKind,
    pub room_name: &'a str,
    pub layout: &'a str,
    pub encoding: Option<EncodingChoice>,
    pub tracks: Tracks,
    pub has_webhooks: bool,
    pub outputs: outputs::RequestOutputs<'a>,
    /// What the request's JSON adds (tessera's extensions, explicit zeros).
    pub extensions: &'a Extensions,
    pub selection: Selection,
    pub request: egress_info::Request,
    pub web: Option<web::WebPlan>,
}

/// Validates a room composite and applies LiveKit's defaults.
pub fn plan_room_composite(
    req: RoomCompositeEgressRequest,
    extensions: &Extensions,
    layouts: &LayoutLibrary,
) -> Result<EgressPlan, RequestError> {
    let tracks = template_tracks(req.audio_only, req.video_only, "")?;
    let web = custom_template(&req.custom_base_url, &req.layout, "")?;
    let mixing = AudioMixing::try_from(req.audio_mixing).map_err(|_| {
        RequestError::invalid(
            "audio_mixing",
            format!("unknown audio mixing {}", req.audio_mixing),
        )
    })?;
    let mut gathered = output_lists!(req);
    deprecated_output!(gathered, &req.output, room_composite_egress_request);
    let parts = CompositeParts {
        kind: EgressKind::RoomComposite,
        room_name: &req.room_name,
        layout: &req.layout,
        encoding: encoding_choice!(req.options, room_composite_egress_request),
        tracks,
        has_webhooks: !req.webhooks.is_empty(),
        outputs: gathered,
        extensions,
        selection: Selection::room(tracks.video, tracks.audio, mixing.into()),
        request: egress_info::Request::RoomComposite(req.clone()),
        web,
    };
    plan_composite(parts, layouts)
}

/// A room composite's custom web template (v1, or a v2 template source whose fields are
/// under `prefix`): `None` without one. The page awaits its start signal, as LiveKit's
/// template SDK sends it once the room is joined.
pub(crate) fn custom_template(
    custom_base_url: &str,
    layout: &str,
    prefix: &str,
) -> Result<Option<web::WebPlan>, RequestError> {
    if custom_base_url.is_empty() {
        return Ok(None);
    }
    web::check_page_url(custom_base_url, &format!("{prefix}custom_base_url"))?;
    Ok(Some(web::WebPlan {
        page: web::PageSource::Template {
            base_url: custom_base_url.to_owned(),
            layout: layout.to_owned(),
        },
        await_start_signal: true,
    }))
}

/// The media a composite records (the v2 fields under `prefix`); refuses both `_only`
/// flags.
pub(crate) fn template_tracks(
    audio_only: bool,
    video_only: bool,
    prefix: &str,
) -> Result<Tracks, RequestError> {
    if audio_only && video_only {
        return Err(RequestError::invalid(
            &format!("{prefix}video_only"),
            "audio_only and video_only cannot both be set",
        ));
    }
    Ok(Tracks {
        video: !audio_only,
        audio: !video_only,
    })
}

/// Validates the parts of any composite request and applies LiveKit's defaults.
pub(crate) fn plan_composite(
    parts: CompositeParts<'_>,
    layouts: &LayoutLibrary,
) -> Result<EgressPlan, RequestError> {
    if parts.room_name.trim().is_empty() && parts.kind != EgressKind::Web {
        return Err(RequestError::invalid("room_name", "is required"));
    }
    // A page is the egress's one picture, whatever layout it was asked for (a template's
    // `layout` goes to the page).
    let layout_name = if parts.web.is_some() {
        kinds::TRACK_LAYOUT
    } else {
        parts.layout
    };
    let layout = layouts
        .resolve(layout_name)
        .map_err(|e| RequestError::invalid("layout", e.to_string()))?;
    let encoding = match &parts.encoding {
        None => encoding::default_params(),
        Some(EncodingChoice::Preset(n)) => {
            let preset = EncodingOptionsPreset::try_from(*n)
                .map_err(|_| RequestError::invalid("preset", format!("unknown preset {n}")))?;
            encoding::from_preset(preset)?
        }
        Some(EncodingChoice::Advanced(adv)) => encoding::from_advanced(adv, parts.extensions)?,
    };
    if parts.has_webhooks {
        return Err(RequestError::invalid(
            "webhooks",
            "not supported yet by this version of tessera",
        ));
    }
    let outputs = outputs::plan_outputs(&parts.outputs, parts.extensions, parts.tracks, &encoding)?;
    check_variables(&outputs, parts.kind)?;
    Ok(EgressPlan {
        kind: parts.kind,
        selection: parts.selection,
        room_name: parts.room_name.to_owned(),
        layout,
        layouts: layouts.clone(),
        encoding,
        tracks: parts.tracks,
        outputs,
        request: parts.request,
        web: parts.web,
    })
}

/// Refuses filename templates that use a variable the egress type cannot fill.
fn check_variables(o: &OutputsPlan, kind: EgressKind) -> Result<(), RequestError> {
    let mut templates: Vec<(String, &str)> = Vec::new();
    for f in &o.files {
        templates.push((f.field.clone(), &f.filepath_template));
    }
    for s in &o.segments {
        templates.push((format!("{}.filename_prefix", s.field), &s.prefix_template));
        templates.push((format!("{}.playlist_name", s.field), &s.playlist_template));
        if let Some(l) = &s.live_playlist_template {
            templates.push((format!("{}.live_playlist_name", s.field), l));
        }
    }
    for i in &o.images {
        templates.push((format!("{}.filename_prefix", i.field), &i.prefix_template));
    }
    for (field, t) in templates {
        naming::check_variables(t, kind).map_err(|e| RequestError::invalid(&field, e))?;
    }
    Ok(())
}

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

fn indexed<'a, T>(name: &str, list: &'a [T]) -> Vec<(String, &'a T)> {
    list.iter()
        .enumerate()
        .map(|(i, x)| (format!("{name}[{i}]"), x))
        .collect()
}

fn deprecated_one<'a, T>(
    list: &mut Vec<(String, &'a T)>,
    name: &str,
    list_name: &str,
    value: &'a T,
) -> Result<(), RequestError> {
    if !list.is_empty() {
        return Err(RequestError::invalid(
            name,
            format!("use either {name} or {list_name}, not both"),
        ));
    }
    list.push((name.to_owned(), value));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
