//! Planning a composite: a request's JSON read against LiveKit's schema, and the parts
//! every composite request has (room, layout, encoding, outputs, selection), from
//! whichever request type, validated into an [`EgressPlan`].

use livekit_protocol::{
    AudioMixing, EncodingOptions, EncodingOptionsPreset, RoomCompositeEgressRequest, egress_info,
};
use serde_json::Value;

use super::encoding;
use super::error::RequestError;
use super::extensions::{self, Extensions};
use super::naming::{self, EgressKind};
use super::outputs::{self, OutputsPlan};
use super::plan::{EgressPlan, TRACK_LAYOUT};
use super::select::{Selection, Tracks};
use super::web;
use crate::layout::LayoutLibrary;

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
pub(crate) fn parse_object(text: &str) -> Result<Value, RequestError> {
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
        TRACK_LAYOUT
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
    let mut conversation = parts.extensions.conversation;
    if conversation.any() && (parts.web.is_some() || parts.kind == EgressKind::Web) {
        let field = if conversation.captions() {
            "captions"
        } else {
            "speaker_timeline"
        };
        return Err(super::conversation::refused(field, parts.kind));
    }
    if conversation.isolated_audio && !parts.tracks.audio {
        return Err(RequestError::invalid(
            "isolated_audio",
            "the request records no audio (video_only)",
        ));
    }
    // A layout may burn captions in by itself (`[captions] enabled = true`).
    if layout.layout.captions.enabled && parts.web.is_none() && parts.kind != EgressKind::Web {
        conversation.burn_in = true;
        conversation.speaker_timeline = true;
    }
    let mut outputs =
        outputs::plan_outputs(&parts.outputs, parts.extensions, parts.tracks, &encoding)?;
    check_carried(&conversation, &outputs)?;
    for s in &mut outputs.segments {
        s.subtitles = conversation.webvtt;
        s.isolated_audio = conversation.isolated_audio && s.audio;
    }
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
        conversation,
    })
}

/// Refuses what no output would carry: WebVTT without a file or HLS output, isolated
/// tracks without an MP4 file or HLS output with audio.
fn check_carried(c: &super::Conversation, o: &OutputsPlan) -> Result<(), RequestError> {
    if c.webvtt && o.files.is_empty() && o.segments.is_empty() {
        return Err(RequestError::invalid(
            "captions.webvtt",
            "needs a file or segment (HLS) output to write the captions beside",
        ));
    }
    let carries = o
        .files
        .iter()
        .any(|f| f.kind == outputs::FileKind::Mp4 && f.audio.is_some())
        || o.segments.iter().any(|s| s.audio);
    if c.isolated_audio && !carries {
        return Err(RequestError::invalid(
            "isolated_audio",
            "needs an MP4 file output or a segment (HLS) output with audio to carry the tracks",
        ));
    }
    Ok(())
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

pub(crate) fn indexed<'a, T>(name: &str, list: &'a [T]) -> Vec<(String, &'a T)> {
    list.iter()
        .enumerate()
        .map(|(i, x)| (format!("{name}[{i}]"), x))
        .collect()
}

pub(crate) fn deprecated_one<'a, T>(
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
