//! One planned job run to its end: its source opened (a synthetic room, a LiveKit room,
//! a page in Chromium), the egress run on the calling thread, the final `EgressInfo`
//! returned. `tessera run` and the worker service (`service/`) both start egresses here.

use std::time::Duration;

use livekit_protocol::{EgressInfo, TrackType};

use crate::compositor::{Backend, BackendChoice, GpuError};
use crate::egress::{self, EgressError, RunOptions, Stop};
use crate::request::page_policy::PagePolicy;
use crate::request::select::{AudioPick, VideoPick};
use crate::request::web::{PageSource, WebPlan};
use crate::request::{EgressPlan, Job, Selection, TrackOutput};
use crate::secret::Secret;
use crate::source::RoomSource;
use crate::source::SourceEnd;
use crate::source::livekit::tap::{self, Tap, TapMode};
use crate::source::livekit::{
    AwaitError, ConnectOptions, LiveKitRoom, recorder_token, template_token_ttl,
};
use crate::source::synthetic::SyntheticRoom;
use crate::source::web::{TemplateRoom, WebError, WebOptions, WebPage};

/// A LiveKit server the worker records rooms of.
#[derive(Clone, Debug)]
pub struct RoomServer {
    /// `ws://` or `wss://`.
    pub url: String,
    /// API key.
    pub key: String,
    /// API secret.
    pub secret: Secret,
}

/// Where a room composite's room comes from.
pub enum Room {
    /// A synthetic room (`tessera run` without `--url`).
    Synthetic(SyntheticRoom),
    /// A room on a LiveKit server.
    LiveKit(RoomServer),
    /// No room to record (a worker without `ws_url`): only a web egress of a URL runs.
    None,
}

/// Which compositor an egress gets.
#[derive(Clone, Debug)]
pub enum Compositing {
    /// Opened for this egress (`--compositor`).
    Open(BackendChoice),
    /// One shared by every egress of the process (the worker's device).
    Shared(Backend),
}

impl Compositing {
    fn backend(&self) -> Result<Backend, GpuError> {
        match self {
            Compositing::Open(choice) => Backend::open(*choice),
            Compositing::Shared(b) => Ok(b.clone()),
        }
    }
}

/// How a job is started.
#[derive(Clone, Debug)]
pub struct LaunchOptions {
    /// How long a participant, track or a page's start signal may take.
    pub await_timeout: Duration,
    /// The compositor.
    pub compositing: Compositing,
    /// Render as fast as possible (synthetic rooms only).
    pub fast: bool,
    /// The addresses a web egress's page may reach.
    pub page_policy: PagePolicy,
}

/// Why a job could not be started at all (no `EgressInfo` exists for it yet).
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The request needs what this launch lacks (a LiveKit server, real time).
    #[error("{0}")]
    Unsupported(String),
    /// No compositor could be opened.
    #[error("compositor: {0}")]
    Compositor(#[from] GpuError),
    /// Joining the room failed.
    #[error("joining {url}: {reason}")]
    Join {
        /// The server.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Runs `job` as egress `egress_id` on this thread until it ends; returns its final info
/// (COMPLETE, FAILED, ABORTED or LIMIT_REACHED). `Err` only when it could not start.
pub fn run_job(
    egress_id: &str,
    job: Job,
    room: Room,
    opts: RunOptions,
    launch: &LaunchOptions,
) -> Result<EgressInfo, LaunchError> {
    match job {
        Job::Composite(plan) => run_composite(egress_id, &plan, room, opts, launch),
        Job::Track(plan) => {
            let server = match room {
                Room::LiveKit(s) => s,
                Room::None => return Err(no_server()),
                Room::Synthetic(_) => {
                    return Err(LaunchError::Unsupported(
                        "a track egress records a LiveKit room: give --url (and --api-key, --api-secret)"
                            .into(),
                    ));
                }
            };
            let plan = *plan;
            let mut o =
                ConnectOptions::new(&server.url, &server.key, &server.secret, &plan.room_name);
            o.identity = egress_id.to_owned();
            o.selection = Selection {
                video: VideoPick::Track(plan.track_id.clone()),
                audio: AudioPick::Track(plan.track_id.clone()),
                mixing: Default::default(),
            };
            let (tx, rx) = tap::channel(tap::PCM_HELD_SAMPLES);
            let websocket = matches!(plan.output, TrackOutput::WebSocket(_));
            o.tap = Some(Tap {
                track: plan.track_id.clone(),
                mode: if websocket {
                    TapMode::Pcm
                } else {
                    TapMode::Encoded
                },
                tx,
            });
            tracing::info!(url = %server.url, room = %plan.room_name, track = %plan.track_id, "joining the room");
            let room = LiveKitRoom::connect(o).map_err(|e| LaunchError::Join {
                url: server.url.clone(),
                reason: e.to_string(),
            })?;
            let base = egress::track::initial_track_info(egress_id, &plan, &room.room_id());
            if let Err(e) = room.await_subject(launch.await_timeout, opts.stop.flag()) {
                return Ok(not_started(base, e, &opts.stop));
            }
            let Some(track) = room.published(&plan.track_id) else {
                let why = format!("track {} not found", plan.track_id);
                return Ok(egress::failed(base, EgressError::NotFound(why)));
            };
            if websocket && track.kind != TrackType::Audio {
                let why = EgressError::Output {
                    field: "websocket_url".into(),
                    reason: format!(
                        "track {} is {}; a WebSocket takes an audio track",
                        plan.track_id,
                        track.kind.as_str_name().to_ascii_lowercase()
                    ),
                };
                return Ok(egress::failed(base, why));
            }
            Ok(if websocket {
                egress::websocket::run(egress_id, &plan, &room, &rx, &opts)
            } else {
                egress::track::run_file(egress_id, &plan, &track, &room, &rx, &opts)
            })
        }
    }
}

fn run_composite(
    egress_id: &str,
    plan: &EgressPlan,
    room: Room,
    opts: RunOptions,
    launch: &LaunchOptions,
) -> Result<EgressInfo, LaunchError> {
    // The compositor first: a page's recording starts at its start signal.
    let backend = if plan.tracks.video {
        Some(launch.compositing.backend()?)
    } else {
        None
    };
    let server = match &room {
        Room::LiveKit(s) => Some(s.clone()),
        Room::Synthetic(_) | Room::None => None,
    };
    let mut source: Box<dyn RoomSource> = match (&plan.web, room) {
        (Some(web), _) => {
            if launch.fast {
                return Err(LaunchError::Unsupported(
                    "--fast: a web egress records a live page in real time".into(),
                ));
            }
            match open_page(web, plan, server.as_ref(), egress_id, launch, &opts)? {
                Ok(page) => Box::new(page),
                Err(info) => return Ok(info),
            }
        }
        (None, Room::LiveKit(server)) => {
            let mut o =
                ConnectOptions::new(&server.url, &server.key, &server.secret, &plan.room_name);
            o.identity = egress_id.to_owned();
            o.selection = plan.selection.clone();
            o.video_size = (plan.encoding.width, plan.encoding.height);
            o.transcripts = plan.conversation.captions();
            tracing::info!(url = %server.url, room = %plan.room_name, kind = plan.kind.label(), "joining the room");
            let room = LiveKitRoom::connect(o).map_err(|e| LaunchError::Join {
                url: server.url.clone(),
                reason: e.to_string(),
            })?;
            if let Err(e) = room.await_subject(launch.await_timeout, opts.stop.flag()) {
                let base = egress::initial_info(egress_id, plan, &room.room_id());
                return Ok(not_started(base, e, &opts.stop));
            }
            Box::new(room)
        }
        (None, Room::Synthetic(_)) if !plan.selection.is_room() => {
            return Err(LaunchError::Unsupported(format!(
                "a {} egress records a LiveKit room: give --url (and --api-key, --api-secret)",
                plan.kind.label()
            )));
        }
        (None, Room::Synthetic(room)) => Box::new(room),
        (None, Room::None) => return Err(no_server()),
    };
    tracing::info!(egress_id, room = %plan.room_name, layout = %plan.layout.requested, "starting egress");
    Ok(egress::run(
        egress_id,
        plan,
        source.as_mut(),
        backend,
        &opts,
    ))
}

/// The error of a room egress on a worker that knows no LiveKit server.
fn no_server() -> LaunchError {
    LaunchError::Unsupported(
        "ws_url: no LiveKit server is configured to record the room from".into(),
    )
}

/// Opens the page of a web egress or custom template (a template gets the server's URL
/// and a recorder's token); `Ok(Err(info))` when the egress ended before recording (the
/// page failed to load: FAILED; no start signal or stopped first: ABORTED).
fn open_page(
    web: &WebPlan,
    plan: &EgressPlan,
    server: Option<&RoomServer>,
    egress_id: &str,
    launch: &LaunchOptions,
    run: &RunOptions,
) -> Result<Result<WebPage, EgressInfo>, LaunchError> {
    let start_timeout = launch.await_timeout;
    let stop = &run.stop;
    let base = egress::initial_info(egress_id, plan, "");
    let template = match (&web.page, server) {
        (PageSource::Url(_), _) => None,
        (PageSource::Template { .. }, Some(s)) => Some(TemplateRoom {
            ws_url: s.url.clone(),
            api_key: s.key.clone(),
            api_secret: s.secret.clone(),
            room_name: plan.room_name.clone(),
        }),
        (PageSource::Template { .. }, None) => {
            return Err(LaunchError::Unsupported(
                "custom_base_url: a custom template joins a LiveKit room: give --url (and --api-key, --api-secret)"
                    .into(),
            ));
        }
    };
    let url = match &template {
        None => web.page_url(None),
        Some(t) => {
            // The token travels in the page's URL: valid only as long as the egress may be.
            let bound = run.duration.into_iter().chain(run.limit).min();
            let ttl = template_token_ttl(bound, start_timeout);
            let token = match recorder_token(
                &t.api_key,
                t.api_secret.expose(),
                egress_id,
                &t.room_name,
                ttl,
            ) {
                Ok(t) => t,
                Err(e) => {
                    return Ok(Err(egress::failed(
                        base,
                        EgressError::Source(e.to_string()),
                    )));
                }
            };
            web.page_url(Some((&t.ws_url, &token)))
        }
    };
    let opts = WebOptions {
        egress_id: egress_id.to_owned(),
        url,
        width: plan.encoding.width,
        height: plan.encoding.height,
        fps: plan.encoding.framerate,
        video: plan.tracks.video,
        audio: plan.tracks.audio,
        await_start_signal: web.await_start_signal,
        start_timeout,
        template,
        policy: launch.page_policy,
    };
    tracing::info!(
        egress_id,
        kind = plan.kind.label(),
        await_start_signal = web.await_start_signal,
        "opening the page"
    );
    Ok(match WebPage::open(opts, stop.flag()) {
        Ok(page) => Ok(page),
        Err(WebError::NoStartSignal) => {
            Err(egress::aborted(base, crate::source::web::NO_START_SIGNAL))
        }
        Err(WebError::Stopped) => Err(egress::stopped_before_start(base, stop)),
        Err(WebError::Load(why)) => Err(egress::failed(base, EgressError::PageLoad(why))),
        Err(e @ WebError::Launch(_)) => {
            Err(egress::failed(base, EgressError::Source(e.to_string())))
        }
    })
}

/// The info of an egress whose participant or track never came (FAILED, 404, as LiveKit's
/// egress fails its source), that was stopped before it started (ABORTED, with the stop's
/// end reason), or whose room ended or failed first.
fn not_started(base: EgressInfo, e: AwaitError, stop: &Stop) -> EgressInfo {
    match e {
        AwaitError::NotFound(why) => egress::failed(base, EgressError::NotFound(why)),
        AwaitError::Stopped => egress::stopped_before_start(base, stop),
        AwaitError::Ended(SourceEnd::Closed) => {
            let mut info = egress::aborted(base, egress::STOPPED_BEFORE_STARTED);
            info.details = egress::SOURCE_CLOSED.into();
            info
        }
        AwaitError::Ended(SourceEnd::Failed(why)) => egress::failed(base, EgressError::Source(why)),
    }
}
