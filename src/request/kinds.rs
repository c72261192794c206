//! Every LiveKit egress request tessera runs, told apart and planned: room composite,
//! participant, track composite, track, and the v2 `StartEgressRequest` (template or
//! media source), each mapped onto a composite [`EgressPlan`] or a [`TrackPlan`].

use livekit_protocol::{
    DirectFileOutput, EncodedFileOutput, ImageOutput, ParticipantEgressRequest,
    SegmentedFileOutput, StartEgressRequest, StorageConfig, StreamOutput,
    TrackCompositeEgressRequest, TrackEgressRequest, WebEgressRequest, WebSource, egress_info,
    participant_info::Kind, start_egress_request, storage_config::Provider, track_egress_request,
};
use serde_json::Value;

use super::composite::{
    CompositeParts, EncodingChoice, custom_template, deprecated_one, indexed, parse_object,
    parse_room_composite, plan_composite, plan_room_composite, read_as, template_tracks,
};
use super::error::RequestError;
use super::extensions::Extensions;
use super::naming::{self, EgressKind};
use super::outputs::{RequestOutputs, check_template, own_storage};
use super::plan::EgressPlan;
use super::select::{
    AudioPick, AudioRoute, Channel, Mixing, PictureSource, RouteMatch, Selection, Tracks, VideoPick,
};
use super::web::{PageSource, WebPlan, check_page_url};
use crate::layout::LayoutLibrary;
use crate::storage::StoreSpec;

pub use super::plan::TRACK_LAYOUT;

/// A planned egress.
#[derive(Clone, Debug)]
pub enum Job {
    /// Decoded, composited, encoded once, every output.
    Composite(Box<EgressPlan>),
    /// One track as received, without transcoding.
    Track(Box<TrackPlan>),
}

/// Where a track egress writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackOutput {
    /// A file in the codec's container (its extension follows the codec).
    File {
        /// The `filepath` template.
        filepath_template: String,
        /// Write `{egress_id}.json` beside it.
        manifest: bool,
        /// The output's own storage, if any.
        storage: Option<StoreSpec>,
    },
    /// The audio decoded to PCM (S16LE, 48 kHz, stereo) and sent to this WebSocket URL.
    WebSocket(String),
}

/// A validated track egress.
#[derive(Clone, Debug)]
pub struct TrackPlan {
    /// The room.
    pub room_name: String,
    /// The track (`TR_…`).
    pub track_id: String,
    /// Its output.
    pub output: TrackOutput,
    /// The request, echoed (redacted) in `EgressInfo`.
    pub request: egress_info::Request,
}

/// Which request type a JSON object is, from the fields only that type has.
fn detect(raw: &Value) -> Result<EgressKindOrV2, RequestError> {
    let has = |keys: &[&str]| keys.iter().any(|k| raw.get(*k).is_some());
    if has(&["outputs", "template", "media", "web"]) {
        return Ok(EgressKindOrV2::V2);
    }
    if has(&["url"]) {
        return Ok(EgressKindOrV2::V1(EgressKind::Web));
    }
    if has(&["track_id", "trackId"]) {
        return Ok(EgressKindOrV2::V1(EgressKind::Track));
    }
    if has(&[
        "audio_track_id",
        "audioTrackId",
        "video_track_id",
        "videoTrackId",
    ]) {
        return Ok(EgressKindOrV2::V1(EgressKind::TrackComposite));
    }
    if has(&["identity"]) {
        return Ok(EgressKindOrV2::V1(EgressKind::Participant));
    }
    Ok(EgressKindOrV2::V1(EgressKind::RoomComposite))
}

enum EgressKindOrV2 {
    V1(EgressKind),
    V2,
}

/// Parses and plans any request tessera runs. The type is told by its fields:
/// `outputs`/`template`/`media`/`web` → v2 `StartEgressRequest`; `url` → web;
/// `track_id` → track; `audio_track_id`/`video_track_id` → track composite; `identity`
/// → participant; otherwise a room composite.
pub fn plan_request(text: &str, layouts: &LayoutLibrary) -> Result<Job, RequestError> {
    let raw = parse_object(text)?;
    let ext = Extensions::parse(&raw)?;
    let schema = super::extensions::for_schema(&raw);
    let kind = detect(&raw)?;
    if let (EgressKindOrV2::V1(k @ (EgressKind::Web | EgressKind::Track)), Some(field)) =
        (&kind, super::conversation::named(&raw))
    {
        return Err(super::conversation::refused(field, *k));
    }
    match kind {
        EgressKindOrV2::V1(EgressKind::RoomComposite) => {
            let (req, _) = parse_room_composite(text)?;
            Ok(Job::Composite(Box::new(plan_room_composite(
                req, &ext, layouts,
            )?)))
        }
        EgressKindOrV2::V1(EgressKind::Web) => {
            let req: WebEgressRequest = read_as(&schema)?;
            Ok(Job::Composite(Box::new(plan_web(req, &ext, layouts)?)))
        }
        EgressKindOrV2::V1(EgressKind::Participant) => {
            let req: ParticipantEgressRequest = read_as(&schema)?;
            Ok(Job::Composite(Box::new(plan_participant(
                req, &ext, layouts,
            )?)))
        }
        EgressKindOrV2::V1(EgressKind::TrackComposite) => {
            let req: TrackCompositeEgressRequest = read_as(&schema)?;
            Ok(Job::Composite(Box::new(plan_track_composite(
                req, &ext, layouts,
            )?)))
        }
        EgressKindOrV2::V1(EgressKind::Track) => {
            let req: TrackEgressRequest = read_as(&schema)?;
            Ok(Job::Track(Box::new(plan_track(req)?)))
        }
        EgressKindOrV2::V2 => {
            let req: StartEgressRequest = read_as(&schema)?;
            plan_start(req, &ext, layouts)
        }
    }
}

/// `WebEgressRequest`: a page recorded in Chromium, drawn full frame.
pub fn plan_web(
    req: WebEgressRequest,
    extensions: &Extensions,
    layouts: &LayoutLibrary,
) -> Result<EgressPlan, RequestError> {
    let mut outputs = output_lists!(req);
    deprecated_output!(outputs, &req.output, web_egress_request);
    let source = WebSource {
        url: req.url.clone(),
        audio_only: req.audio_only,
        video_only: req.video_only,
        await_start_signal: req.await_start_signal,
    };
    let (tracks, web) = web_source(&source, "")?;
    let parts = CompositeParts {
        kind: EgressKind::Web,
        room_name: "",
        layout: TRACK_LAYOUT,
        encoding: encoding_choice!(req.options, web_egress_request),
        tracks,
        has_webhooks: !req.webhooks.is_empty(),
        outputs,
        extensions,
        selection: Selection::room(tracks.video, tracks.audio, Mixing::Default),
        request: egress_info::Request::Web(req.clone()),
        web: Some(web),
    };
    plan_composite(parts, layouts)
}

/// A web source's media and page (its fields under `prefix`).
fn web_source(s: &WebSource, prefix: &str) -> Result<(Tracks, WebPlan), RequestError> {
    check_page_url(&s.url, &format!("{prefix}url"))?;
    let tracks = template_tracks(s.audio_only, s.video_only, prefix)?;
    let web = WebPlan {
        page: PageSource::Url(s.url.clone()),
        await_start_signal: s.await_start_signal,
    };
    Ok((tracks, web))
}

fn required(value: &str, field: &str) -> Result<(), RequestError> {
    if value.trim().is_empty() {
        return Err(RequestError::invalid(field, "is required"));
    }
    Ok(())
}

/// `ParticipantEgressRequest`: one participant's camera (or screen share) and its audio.
pub fn plan_participant(
    req: ParticipantEgressRequest,
    extensions: &Extensions,
    layouts: &LayoutLibrary,
) -> Result<EgressPlan, RequestError> {
    required(&req.identity, "identity")?;
    let selection = Selection {
        video: VideoPick::Participant {
            identity: req.identity.clone(),
            source: if req.screen_share {
                PictureSource::ScreenShare
            } else {
                PictureSource::Camera
            },
        },
        audio: AudioPick::Participant {
            identity: req.identity.clone(),
            screen_share: req.screen_share,
        },
        mixing: Mixing::Default,
    };
    let parts = CompositeParts {
        kind: EgressKind::Participant,
        room_name: &req.room_name,
        layout: TRACK_LAYOUT,
        encoding: encoding_choice!(req.options, participant_egress_request),
        tracks: Tracks {
            video: true,
            audio: true,
        },
        has_webhooks: !req.webhooks.is_empty(),
        outputs: output_lists!(req),
        extensions,
        selection,
        request: egress_info::Request::Participant(req.clone()),
        web: None,
    };
    plan_composite(parts, layouts)
}

/// `TrackCompositeEgressRequest`: one audio and one video track (either may be absent).
pub fn plan_track_composite(
    req: TrackCompositeEgressRequest,
    extensions: &Extensions,
    layouts: &LayoutLibrary,
) -> Result<EgressPlan, RequestError> {
    let tracks = Tracks {
        video: !req.video_track_id.trim().is_empty(),
        audio: !req.audio_track_id.trim().is_empty(),
    };
    if !tracks.video && !tracks.audio {
        return Err(RequestError::invalid(
            "video_track_id",
            "set video_track_id, audio_track_id, or both",
        ));
    }
    let selection = Selection {
        video: if tracks.video {
            VideoPick::Track(req.video_track_id.clone())
        } else {
            VideoPick::None
        },
        audio: if tracks.audio {
            AudioPick::Track(req.audio_track_id.clone())
        } else {
            AudioPick::None
        },
        mixing: Mixing::Default,
    };
    let mut outputs = output_lists!(req);
    deprecated_output!(outputs, &req.output, track_composite_egress_request);
    let parts = CompositeParts {
        kind: EgressKind::TrackComposite,
        room_name: &req.room_name,
        layout: TRACK_LAYOUT,
        encoding: encoding_choice!(req.options, track_composite_egress_request),
        tracks,
        has_webhooks: !req.webhooks.is_empty(),
        outputs,
        extensions,
        selection,
        request: egress_info::Request::TrackComposite(req.clone()),
        web: None,
    };
    plan_composite(parts, layouts)
}

/// `TrackEgressRequest`: one track, no transcoding (or its audio over a WebSocket).
pub fn plan_track(req: TrackEgressRequest) -> Result<TrackPlan, RequestError> {
    required(&req.room_name, "room_name")?;
    required(&req.track_id, "track_id")?;
    if !req.webhooks.is_empty() {
        return Err(RequestError::invalid(
            "webhooks",
            "not supported yet by this version of tessera",
        ));
    }
    let output = match &req.output {
        None => {
            return Err(RequestError::invalid(
                "file",
                "no output requested: set file or websocket_url",
            ));
        }
        Some(track_egress_request::Output::File(f)) => direct_file(f)?,
        Some(track_egress_request::Output::WebsocketUrl(url)) => {
            let rest = url
                .strip_prefix("ws://")
                .or_else(|| url.strip_prefix("wss://"));
            match rest {
                None => {
                    return Err(RequestError::invalid(
                        "websocket_url",
                        format!("must start with ws:// or wss://, got {url:?}"),
                    ));
                }
                Some(r) if r.is_empty() || r.starts_with('/') => {
                    return Err(RequestError::invalid("websocket_url", "has no host"));
                }
                Some(_) => {}
            }
            TrackOutput::WebSocket(url.clone())
        }
    };
    Ok(TrackPlan {
        room_name: req.room_name.clone(),
        track_id: req.track_id.clone(),
        output,
        request: egress_info::Request::Track(req),
    })
}

fn direct_file(f: &DirectFileOutput) -> Result<TrackOutput, RequestError> {
    let storage = own_storage(provider_of!(f.output, direct_file_output), "file")?;
    naming::check_variables(&f.filepath, EgressKind::Track)
        .map_err(|e| RequestError::invalid("file.filepath", e))?;
    // The extension follows the codec, known at start; any of them checks containment.
    check_template(&f.filepath, "file.filepath", ".mp4")?;
    Ok(TrackOutput::File {
        filepath_template: f.filepath.clone(),
        manifest: !f.disable_manifest,
        storage,
    })
}

/// The v2 request's outputs in v1 form (storage: the output's own, else the request's).
#[derive(Default)]
struct V2Outputs {
    files: Vec<(String, EncodedFileOutput)>,
    segments: Vec<(String, SegmentedFileOutput)>,
    streams: Vec<(String, StreamOutput)>,
    images: Vec<(String, ImageOutput)>,
}

fn v2_outputs(req: &StartEgressRequest) -> Result<V2Outputs, RequestError> {
    use livekit_protocol::output::Config;
    let mut out = V2Outputs::default();
    if req.outputs.is_empty() {
        return Err(RequestError::invalid(
            "outputs",
            "no output requested: add a file, stream, segments or images output",
        ));
    }
    for (i, o) in req.outputs.iter().enumerate() {
        let storage: Option<&StorageConfig> = o.storage.as_ref().or(req.storage.as_ref());
        let provider = storage.and_then(|s| s.provider.clone());
        macro_rules! upload {
            ($module:ident) => {
                provider.clone().map(|p| {
                    use livekit_protocol::$module::Output as O;
                    match p {
                        Provider::S3(x) => O::S3(x),
                        Provider::Gcp(x) => O::Gcp(x),
                        Provider::Azure(x) => O::Azure(x),
                        Provider::AliOss(x) => O::AliOss(x),
                    }
                })
            };
        }
        match &o.config {
            None => {
                return Err(RequestError::invalid(
                    &format!("outputs[{i}]"),
                    "set one of file, stream, segments, images",
                ));
            }
            Some(Config::File(f)) => out.files.push((
                format!("outputs[{i}].file"),
                EncodedFileOutput {
                    file_type: f.file_type,
                    filepath: f.filepath.clone(),
                    disable_manifest: f.disable_manifest,
                    output: upload!(encoded_file_output),
                },
            )),
            Some(Config::Segments(s)) => {
                let mut s = s.clone();
                if s.output.is_none() {
                    s.output = upload!(segmented_file_output);
                }
                out.segments.push((format!("outputs[{i}].segments"), s));
            }
            Some(Config::Images(im)) => {
                let mut im = im.clone();
                if im.output.is_none() {
                    im.output = upload!(image_output);
                }
                out.images.push((format!("outputs[{i}].images"), im));
            }
            Some(Config::Stream(s)) => out
                .streams
                .push((format!("outputs[{i}].stream"), s.clone())),
        }
    }
    Ok(out)
}

fn refs<T>(list: &[(String, T)]) -> Vec<(String, &T)> {
    list.iter().map(|(f, x)| (f.clone(), x)).collect()
}

/// A v2 media source: the video it takes (a track, or a participant's camera or screen
/// share) and its audio routes, as a track composite's selection.
fn media_source(m: &livekit_protocol::MediaSource) -> Result<(Tracks, Selection), RequestError> {
    use livekit_protocol::media_source::Video;
    let video = match &m.video {
        None => VideoPick::None,
        Some(Video::VideoTrackId(t)) => {
            required(t, "media.video_track_id")?;
            VideoPick::Track(t.clone())
        }
        Some(Video::ParticipantVideo(p)) => {
            required(&p.identity, "media.participant_video.identity")?;
            VideoPick::Participant {
                identity: p.identity.clone(),
                source: if p.prefer_screen_share {
                    PictureSource::PreferScreenShare
                } else {
                    PictureSource::Camera
                },
            }
        }
    };
    let audio = match &m.audio {
        None => AudioPick::None,
        Some(a) => {
            let mut routes = Vec::new();
            for (i, r) in a.routes.iter().enumerate() {
                use livekit_protocol::audio_route::Match;
                let field = format!("media.audio.routes[{i}]");
                let matcher = match &r.r#match {
                    None => {
                        return Err(RequestError::invalid(
                            &field,
                            "set track_id, participant_identity or participant_kind",
                        ));
                    }
                    Some(Match::TrackId(t)) => RouteMatch::Track(t.clone()),
                    Some(Match::ParticipantIdentity(p)) => RouteMatch::Identity(p.clone()),
                    Some(Match::ParticipantKind(k)) => {
                        RouteMatch::Kind(Kind::try_from(*k).map_err(|_| {
                            RequestError::invalid(
                                &format!("{field}.participant_kind"),
                                format!("unknown participant kind {k}"),
                            )
                        })?)
                    }
                };
                let channel =
                    livekit_protocol::AudioChannel::try_from(r.channel).map_err(|_| {
                        RequestError::invalid(
                            &format!("{field}.channel"),
                            format!("unknown channel {}", r.channel),
                        )
                    })?;
                routes.push(AudioRoute {
                    matcher,
                    channel: Channel::from(channel),
                });
            }
            if routes.is_empty() && !a.capture_all {
                AudioPick::None
            } else {
                AudioPick::Routes {
                    capture_all: a.capture_all,
                    routes,
                }
            }
        }
    };
    let tracks = Tracks {
        video: video != VideoPick::None,
        audio: audio != AudioPick::None,
    };
    if !tracks.video && !tracks.audio {
        return Err(RequestError::invalid(
            "media",
            "set a video (video_track_id or participant_video) or audio routes",
        ));
    }
    let selection = Selection {
        video,
        audio,
        mixing: Mixing::Default,
    };
    Ok((tracks, selection))
}

/// The v2 `StartEgressRequest`: a template source is a room composite, a media source a
/// track composite with audio routes; per-output storage falls back to the request's.
pub fn plan_start(
    req: StartEgressRequest,
    extensions: &Extensions,
    layouts: &LayoutLibrary,
) -> Result<Job, RequestError> {
    use start_egress_request::{Encoding, Source};
    let outputs = v2_outputs(&req)?;
    let encoding = req.encoding.map(|e| match e {
        Encoding::Preset(n) => EncodingChoice::Preset(n),
        Encoding::Advanced(a) => EncodingChoice::Advanced(a),
    });
    let mut web = None;
    let (kind, layout, tracks, selection) = match &req.source {
        None => {
            return Err(RequestError::invalid(
                "template",
                "set a source: template, web or media",
            ));
        }
        Some(Source::Web(w)) => {
            let (tracks, plan) = web_source(w, "web.")?;
            web = Some(plan);
            let selection = Selection::room(tracks.video, tracks.audio, Mixing::Default);
            (EgressKind::Web, TRACK_LAYOUT, tracks, selection)
        }
        Some(Source::Template(t)) => {
            let tracks = template_tracks(t.audio_only, t.video_only, "template.")?;
            web = custom_template(&t.custom_base_url, &t.layout, "template.")?;
            let selection = Selection::room(tracks.video, tracks.audio, Mixing::Default);
            (
                EgressKind::RoomComposite,
                t.layout.as_str(),
                tracks,
                selection,
            )
        }
        Some(Source::Media(m)) => {
            let (tracks, selection) = media_source(m)?;
            (EgressKind::TrackComposite, TRACK_LAYOUT, tracks, selection)
        }
    };
    let parts = CompositeParts {
        kind,
        room_name: &req.room_name,
        layout,
        encoding,
        tracks,
        has_webhooks: !req.webhooks.is_empty(),
        outputs: RequestOutputs {
            files: refs(&outputs.files),
            segments: refs(&outputs.segments),
            streams: refs(&outputs.streams),
            images: refs(&outputs.images),
        },
        extensions,
        selection,
        request: egress_info::Request::Egress(req.clone()),
        web,
    };
    Ok(Job::Composite(Box::new(plan_composite(parts, layouts)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> Result<Job, RequestError> {
        plan_request(json, &LayoutLibrary::builtin())
    }

    fn composite(json: &str) -> EgressPlan {
        match plan(json).unwrap() {
            Job::Composite(p) => *p,
            Job::Track(_) => panic!("expected a composite"),
        }
    }

    #[test]
    fn participant_requests_take_one_participant() {
        let p = composite(
            r#"{"room_name":"r","identity":"bob","screen_share":true,"file_outputs":[{"filepath":"{publisher_identity}.mp4"}]}"#,
        );
        assert_eq!(p.kind, EgressKind::Participant);
        assert_eq!(p.layout.requested, TRACK_LAYOUT);
        assert_eq!(
            p.selection.video,
            VideoPick::Participant {
                identity: "bob".into(),
                source: PictureSource::ScreenShare
            }
        );
        assert!(matches!(
            p.request,
            egress_info::Request::Participant(ref r) if r.identity == "bob"
        ));
    }

    #[test]
    fn track_composite_may_be_audio_only() {
        let p = composite(r#"{"roomName":"r","audioTrackId":"TR_a","fileOutputs":[{}]}"#);
        assert_eq!(p.kind, EgressKind::TrackComposite);
        assert!(p.tracks.audio && !p.tracks.video);
        assert_eq!(p.outputs.files[0].kind, crate::request::FileKind::Ogg);
        assert_eq!(p.selection.audio, AudioPick::Track("TR_a".into()));
    }

    #[test]
    fn track_requests_are_not_transcoded() {
        let Job::Track(t) =
            plan(r#"{"room_name":"r","track_id":"TR_x","file":{"filepath":"{track_id}"}}"#)
                .unwrap()
        else {
            panic!("expected a track egress")
        };
        assert_eq!(t.track_id, "TR_x");
        assert!(matches!(t.output, TrackOutput::File { manifest: true, .. }));
        let Job::Track(w) =
            plan(r#"{"room_name":"r","track_id":"TR_x","websocket_url":"ws://127.0.0.1:9/a"}"#)
                .unwrap()
        else {
            panic!("expected a track egress")
        };
        assert_eq!(
            w.output,
            TrackOutput::WebSocket("ws://127.0.0.1:9/a".into())
        );
    }

    #[test]
    fn v2_media_source_maps_routes_and_storage() {
        let p = composite(
            r#"{"room_name":"r",
                "media":{"participant_video":{"identity":"bob","prefer_screen_share":true},
                         "audio":{"routes":[{"participant_kind":"AGENT","channel":"AUDIO_CHANNEL_LEFT"},
                                            {"participant_identity":"bob","channel":"AUDIO_CHANNEL_RIGHT"}]}},
                "storage":{"s3":{"bucket":"b","region":"us-east-1","access_key":"k","secret":"s"}},
                "outputs":[{"file":{"filepath":"a.mp4"}},{"segments":{"filename_prefix":"h"}}]}"#,
        );
        assert_eq!(p.kind, EgressKind::TrackComposite);
        let AudioPick::Routes {
            routes,
            capture_all,
        } = &p.selection.audio
        else {
            panic!("routes expected")
        };
        assert!(!capture_all);
        assert_eq!(routes[0].matcher, RouteMatch::Kind(Kind::Agent));
        assert_eq!(routes[0].channel, Channel::Left);
        assert!(
            p.outputs.files[0].storage.is_some(),
            "request-level storage applies"
        );
        assert!(p.outputs.segments[0].storage.is_some());
        let echoed = crate::request::redacted(&p.request);
        let text = format!("{echoed:?}");
        assert!(!text.contains("secret: \"s\""), "{text}");
    }

    #[test]
    fn v2_requests_read_tesseras_extensions_as_v1_requests_do() {
        // Before extensions were read once per request, a v2 request's were ignored.
        let p = composite(
            r#"{"room_name":"r","template":{"layout":"grid"},
                "advanced":{"width":1280,"height":720},
                "outputs":[{"segments":{"filename_prefix":"h","renditions":[{"height":720},{"height":360}]}},
                           {"images":{"capture_interval":5,"image_codec":"IC_PNG"}}]}"#,
        );
        let ladder: Vec<_> = p.outputs.segments[0]
            .variants
            .iter()
            .map(|v| v.name.clone())
            .collect();
        assert_eq!(ladder, ["720p", "360p"]);
        assert_eq!(p.outputs.video.len(), 2, "{:?}", p.outputs.video);
        assert_eq!(
            p.outputs.images[0].format,
            crate::request::outputs::ImageFormat::Png
        );
        let err = plan(
            r#"{"room_name":"r","template":{},"advanced":{"width":0},"outputs":[{"file":{}}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("advanced.width"), "{err}");
        let err = plan(
            r#"{"room_name":"r","template":{},"outputs":[{"segments":{"renditions":[{"height":720}]}}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("outputs[0].segments.renditions"), "{err}");
    }

    #[test]
    fn v2_template_source_is_a_room_composite() {
        let p = composite(
            r#"{"room_name":"r","template":{"layout":"speaker","audio_only":false},"preset":"H264_1080P_30","outputs":[{"file":{}}]}"#,
        );
        assert_eq!(p.kind, EgressKind::RoomComposite);
        assert!(p.selection.is_room());
        assert_eq!(p.encoding.width, 1920);
    }

    #[test]
    fn a_web_request_records_its_page_full_frame() {
        use crate::request::web::PageSource;
        let p = composite(
            r#"{"url":"http://127.0.0.1:8080/p","await_start_signal":true,"video_only":true,"file_outputs":[{}]}"#,
        );
        assert_eq!(p.kind, EgressKind::Web);
        assert_eq!(p.layout.requested, TRACK_LAYOUT);
        assert_eq!((p.tracks.video, p.tracks.audio), (true, false));
        let web = p.web.as_ref().unwrap();
        assert_eq!(web.page, PageSource::Url("http://127.0.0.1:8080/p".into()));
        assert!(web.await_start_signal);
        let v2 = composite(r#"{"web":{"url":"https://example.com/"},"outputs":[{"file":{}}]}"#);
        assert_eq!(v2.kind, EgressKind::Web);
        assert!(!v2.web.unwrap().await_start_signal);
    }

    #[test]
    fn a_custom_template_keeps_its_layout_name_for_the_page() {
        use crate::request::web::PageSource;
        for json in [
            r#"{"room_name":"r","layout":"my-own","custom_base_url":"https://t.example/","file_outputs":[{}]}"#,
            r#"{"room_name":"r","template":{"layout":"my-own","custom_base_url":"https://t.example/"},"outputs":[{"file":{}}]}"#,
        ] {
            let p = composite(json);
            assert_eq!(p.kind, EgressKind::RoomComposite);
            assert_eq!(p.layout.requested, TRACK_LAYOUT, "drawn full frame");
            let web = p.web.unwrap();
            assert!(web.await_start_signal, "templates always await the signal");
            assert_eq!(
                web.page,
                PageSource::Template {
                    base_url: "https://t.example/".into(),
                    layout: "my-own".into()
                }
            );
        }
        let plain = composite(r#"{"room_name":"r","layout":"grid","file_outputs":[{}]}"#);
        assert!(plain.web.is_none());
        assert_eq!(plain.layout.requested, "grid");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"room_name":"r","identity":"","file_outputs":[{}]}"#,
                "identity",
            ),
            (
                r#"{"room_name":"r","identity":"a","file_outputs":[{"filepath":"{track_id}"}]}"#,
                "file_outputs[0].filepath",
            ),
            (
                r#"{"room_name":"r","file_outputs":[{"filepath":"{publisher_identity}"}]}"#,
                "file_outputs[0].filepath",
            ),
            (
                r#"{"room_name":"r","audio_track_id":"","video_track_id":"","file_outputs":[{}]}"#,
                "video_track_id",
            ),
            (r#"{"room_name":"r","track_id":"TR_x"}"#, "file"),
            (
                r#"{"room_name":"r","track_id":"TR_x","websocket_url":"http://x"}"#,
                "websocket_url",
            ),
            (r#"{"url":"file:///etc/passwd","file_outputs":[{}]}"#, "url"),
            (
                r#"{"url":"https://x","audio_only":true,"video_only":true}"#,
                "video_only",
            ),
            (
                r#"{"web":{"url":"chrome://settings"},"outputs":[{"file":{}}]}"#,
                "web.url",
            ),
            (
                r#"{"room_name":"r","custom_base_url":"ftp://t/","file_outputs":[{}]}"#,
                "custom_base_url",
            ),
            (
                r#"{"room_name":"r","template":{"custom_base_url":"x"},"outputs":[{"file":{}}]}"#,
                "template.custom_base_url",
            ),
            (r#"{"room_name":"r","template":{}}"#, "outputs"),
            (
                r#"{"room_name":"r","media":{"audio":{"routes":[{"channel":"AUDIO_CHANNEL_LEFT"}]}},"outputs":[{"file":{}}]}"#,
                "media.audio.routes[0]",
            ),
            (
                r#"{"room_name":"r","audio_mixing":"NOPE","file_outputs":[{}]}"#,
                "audio_mixing",
            ),
        ];
        for (json, field) in cases {
            let err = plan(json).unwrap_err();
            assert_eq!(err.field(), Some(field), "{json}: {err}");
        }
    }
}
