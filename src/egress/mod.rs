//! One egress: room source → compositor + mixer → one encode per codec → every output, on
//! one clock, with its `EgressInfo` kept as LiveKit reports it
//! (STARTING → ACTIVE → ENDING → COMPLETE / FAILED).

pub mod control;
mod graph;
pub mod hook;
pub mod layout;
pub mod stats;
mod stop;
pub mod track;
mod uploads;
pub mod websocket;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use livekit_protocol::{EgressInfo, EgressStatus, FileInfo, StreamInfoList, egress_info};

use crate::audio::Mixer;
use crate::compositor::{AnyCompositor, Backend, CompositorError, Nv12Frame, scene};
use crate::encode::{self, EncodeError};
use crate::info::now_ns;
use crate::output::claim;
use crate::output::images::ImagesOutput;
use crate::output::manifest::{Manifest, ManifestFile, ManifestImage, ManifestPlaylist};
use crate::output::{FileTarget, file_target, prefix_target};
use crate::request::EgressPlan;
use crate::request::naming::NameContext;
use crate::source::{AUDIO_RATE, RoomSource, SourceEnd};
use crate::storage::{StorageDefaults, UploadQueue};
pub use control::Control;
use control::handle_control;
use graph::Graph;
use layout::LiveLayout;
use stats::{EgressStats, Stage};
pub use stop::{Stop, StopReason};

/// How long to wait for the muxers to finish after end-of-stream.
const EOS_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong in a running egress (reported in `EgressInfo.error`).
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The GPU compositor failed.
    #[error("compositor: {0}")]
    Compositor(#[from] CompositorError),
    /// Building the encode failed.
    #[error("encoder: {0}")]
    Encode(#[from] EncodeError),
    /// GStreamer reported an error.
    #[error("pipeline: {0}")]
    Pipeline(String),
    /// An output could not be named, created or written.
    #[error("{field}: {reason}")]
    Output {
        /// Request field.
        field: String,
        /// Why.
        reason: String,
    },
    /// Every stream failed and the egress has no other output.
    #[error("every stream output failed: {0}")]
    StreamsFailed(String),
    /// Files could be stored neither in their store nor in the backup (they stay on disk).
    #[error("{0}")]
    Upload(String),
    /// The room source failed (connection lost, removed from the room).
    #[error("source: {0}")]
    Source(String),
    /// The participant or track the request names never came (LiveKit's wording).
    #[error("{0}")]
    NotFound(String),
    /// The page of a web egress or custom template did not load (LiveKit's wording).
    #[error("page load error: {0}")]
    PageLoad(String),
    /// A defect in tessera (a panic in the egress's code), caught so the worker goes on.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EgressError {
    /// `EgressInfo.error_code` of an egress that failed with this error: the HTTP status of
    /// the psrpc code LiveKit's egress fails with in the same case.
    pub fn error_code(&self) -> i32 {
        match self {
            // psrpc.Internal: pipeline, encoder and handler errors.
            EgressError::Compositor(_)
            | EgressError::Encode(_)
            | EgressError::Pipeline(_)
            | EgressError::Internal(_) => 500,
            // psrpc.InvalidArgument: a bad output, a failed upload, a page that won't load.
            EgressError::Output { .. } | EgressError::Upload(_) | EgressError::PageLoad(_) => 400,
            // psrpc.Unavailable: every stream failed, the room connection failed.
            EgressError::StreamsFailed(_) | EgressError::Source(_) => 503,
            // psrpc.NotFound: ErrParticipantNotFound, ErrTrackNotFound.
            EgressError::NotFound(_) => 404,
        }
    }
}

/// `EgressInfo.details` of an egress whose room closed, as LiveKit words it.
pub const SOURCE_CLOSED: &str = "End reason: Source closed";

/// `EgressInfo.details` of a stream-only egress whose last stream was removed
/// (`UpdateStream`), as LiveKit words it.
pub const STREAMS_STOPPED: &str = "End reason: All streams stopped";

/// `EgressInfo.details` of an egress ended by a session limit, as LiveKit words it.
pub const LIMIT_REACHED_DETAILS: &str = "End reason: Session limit reached";

/// `EgressInfo.error` of an egress ended by a session limit, as LiveKit words it.
pub const LIMIT_REACHED: &str = "Session limit reached";

/// `EgressInfo.error` of an egress stopped before it could start, as LiveKit words it.
pub const STOPPED_BEFORE_STARTED: &str = "Stop called before pipeline could start";

/// `EgressInfo.details` of a FAILED egress with no other end reason, as LiveKit words it.
pub const FAILURE_DETAILS: &str = "End reason: Failure";

/// `EgressInfo.error_code` of an ABORTED egress: LiveKit's `SetAborted` sets 412
/// (precondition failed).
pub const ABORTED_CODE: i32 = 412;

/// Ends an egress that never started (stopped first, its start signal never came, its
/// source closed first): ABORTED with `error` and LiveKit's 412, nothing recorded.
pub fn aborted(mut info: EgressInfo, error: &str) -> EgressInfo {
    tracing::warn!(egress_id = %info.egress_id, error, "egress aborted before it started");
    info.error = error.to_owned();
    info.error_code = ABORTED_CODE;
    info.ended_at = now_ns();
    set_status(&mut info, EgressStatus::EgressAborted);
    info
}

/// Ends an egress stopped (by `stop`'s reason) before it could start: ABORTED, with the
/// end reason in `details` as LiveKit reports it.
pub fn stopped_before_start(mut info: EgressInfo, stop: &Stop) -> EgressInfo {
    if let Some(reason) = stop.reason() {
        info.details = reason.details().into();
    }
    aborted(info, STOPPED_BEFORE_STARTED)
}

/// How to run an egress.
#[derive(Debug)]
pub struct RunOptions {
    /// Directory local files are written under.
    pub out_dir: PathBuf,
    /// Stop after this much media time.
    pub duration: Option<Duration>,
    /// Asked to stop gracefully (StopEgress, SIGINT, SIGTERM, a drain), with the reason.
    pub stop: Stop,
    /// Pace to the wall clock (a live room); off renders as fast as possible.
    pub realtime: bool,
    /// Requests while running.
    pub control: Option<Receiver<Control>>,
    /// Counters for a harness that measures the egress.
    pub stats: Option<Arc<EgressStats>>,
    /// The worker's default storage, backup store and local-storage policy.
    pub storage: StorageDefaults,
    /// A session limit (the worker's `session_limits`): at this much media time the
    /// egress ends LIMIT_REACHED, its files finished and kept.
    pub limit: Option<Duration>,
}

/// The egress's info at the start, before anything runs: every requested stream is listed
/// (ACTIVE, its key redacted), as LiveKit lists them from the start, so that a client
/// polling `ListEgress` sees them.
pub fn initial_info(egress_id: &str, plan: &EgressPlan, room_id: &str) -> EgressInfo {
    let mut info = starting_info(egress_id, &plan.room_name, &plan.request, room_id);
    info.stream_results = crate::output::stream::requested_infos(&plan.outputs.streams, now_ns());
    info
}

/// STARTING, with the request echoed (redacted) and LiveKit's `source_type` for it.
pub(crate) fn starting_info(
    egress_id: &str,
    room_name: &str,
    request: &egress_info::Request,
    room_id: &str,
) -> EgressInfo {
    EgressInfo {
        egress_id: egress_id.to_owned(),
        room_id: room_id.to_owned(),
        room_name: room_name.to_owned(),
        source_type: crate::request::source_type(request) as i32,
        status: EgressStatus::EgressStarting as i32,
        request: Some(crate::request::redacted(request)),
        updated_at: now_ns(),
        ..Default::default()
    }
}

fn set_status(info: &mut EgressInfo, status: EgressStatus) {
    info.status = status as i32;
    info.updated_at = now_ns();
    tracing::info!(egress_id = %info.egress_id, status = status.as_str_name(), "egress status");
    hook::notify(info);
}

/// The streams changed (an update, a failure, a retry): `info` takes their infos and is
/// reported at once, so clients polling `ListEgress` see it.
fn streams_changed(info: &mut EgressInfo, graph: &Graph) {
    info.stream_results = graph.streams.infos();
    info.updated_at = now_ns();
    hook::notify(info);
}

/// Ends an egress FAILED with `e` as its error, its code, and (unless it has an end reason
/// already) LiveKit's "End reason: Failure".
pub fn failed(mut info: EgressInfo, e: EgressError) -> EgressInfo {
    tracing::error!(egress_id = %info.egress_id, error = %e, "egress failed");
    info.error = e.to_string();
    info.error_code = e.error_code();
    if info.details.is_empty() {
        info.details = FAILURE_DETAILS.into();
    }
    if info.ended_at == 0 {
        info.ended_at = now_ns();
    }
    set_status(&mut info, EgressStatus::EgressFailed);
    info
}

/// Everything an egress writes, while it runs.
struct Outputs {
    files: Vec<FileTarget>,
    images: Vec<ImagesOutput>,
    /// Each HLS playlist written and its segments (filled at the end).
    playlists: Vec<(String, Vec<String>)>,
    /// Upload queue of each segment output (`None`: local disk).
    segment_uploads: Vec<Option<UploadQueue>>,
    /// The directory each segment output's names resolve in.
    segment_roots: Vec<std::path::PathBuf>,
}

/// Runs the egress until `opts.duration`, a stop request, or an error; returns the final
/// `EgressInfo` (COMPLETE, or FAILED with `error`). Everything recorded up to a failure is
/// finalised and reported.
pub fn run(
    egress_id: &str,
    plan: &EgressPlan,
    room: &mut dyn RoomSource,
    backend: Option<Backend>,
    opts: &RunOptions,
) -> EgressInfo {
    let room_id = room.room_id();
    let publisher = room.publisher_identity().unwrap_or_default();
    let mut info = initial_info(egress_id, plan, &room_id);
    let ctx = NameContext {
        room_name: &plan.room_name,
        room_id: &room_id,
        time: chrono::Utc::now(),
        publisher_identity: &publisher,
        ..Default::default()
    };
    // Every output's store is settled before any file exists.
    let staging = claim::staging_dir(&opts.out_dir, egress_id);
    let mut uploads =
        match uploads::Uploads::start(&plan.outputs, &opts.storage, &opts.out_dir, &staging) {
            Ok(u) => u,
            Err(e) => return failed(info, e),
        };
    let mut outputs = match claim_targets(plan, &ctx, &mut uploads) {
        Ok(o) => o,
        Err(e) => return failed(info, e),
    };
    for (im, q) in plan.outputs.images.iter().zip(&uploads.images) {
        match ImagesOutput::new(im, uploads.root(q.as_ref()), &ctx, q.clone()) {
            Ok(o) => outputs.images.push(o),
            Err(e) => {
                return failed(
                    info,
                    EgressError::Output {
                        field: format!("{}.filename_prefix", im.field),
                        reason: e.to_string(),
                    },
                );
            }
        }
    }

    let result = record(plan, room, backend, opts, &ctx, &mut outputs, &mut info);
    let ended = now_ns();
    let (written, mut error) = match result {
        Ok(d) => (d, None),
        Err((d, e)) => (d, Some(e)),
    };
    for (target, q) in outputs.files.iter().zip(&uploads.files) {
        file_written(&mut info, target, q.as_ref(), written, ended);
    }
    for im in &mut outputs.images {
        match im.finish(ended) {
            Ok(r) => info.image_results.push(r),
            Err((r, e)) => {
                info.image_results.push(r);
                error.get_or_insert(EgressError::Output {
                    field: im.field().to_owned(),
                    reason: e.to_string(),
                });
            }
        }
    }
    // Every file is queued: wait for the uploads, then report where each file went.
    let mut stored = uploads.finish();
    let info = conclude(info, Some(&mut stored), error, ended);
    if plan.outputs.manifest
        && let Some(path) = write_manifest(&info, &outputs, &opts.out_dir, Some(&stored))
    {
        stored.upload_manifest(&path);
    }
    info
}

/// Resolves and claims every file, playlist and image prefix the egress writes (each in
/// its store's staging directory or the output directory), so that a clash with another
/// egress fails this one before anything is recorded.
fn claim_targets(
    plan: &EgressPlan,
    ctx: &NameContext<'_>,
    uploads: &mut uploads::Uploads,
) -> Result<Outputs, EgressError> {
    let mut outputs = Outputs {
        files: Vec::new(),
        images: Vec::new(),
        playlists: Vec::new(),
        segment_uploads: uploads.segments.clone(),
        segment_roots: Vec::new(),
    };
    let output_error = |field: &str, reason: String| EgressError::Output {
        field: field.to_owned(),
        reason,
    };
    for (f, q) in plan.outputs.files.iter().zip(uploads.files.clone()) {
        let root = uploads.root(q.as_ref()).to_owned();
        let target = file_target(&root, &f.filepath_template, f.kind.extension(), ctx)
            .map_err(|e| output_error(&f.field, e.to_string()))?;
        create_parent(&target.local_path).map_err(|r| output_error(&f.field, r))?;
        uploads.claim_file(q.as_ref(), &target.local_path, &f.field)?;
        outputs.files.push(target);
    }
    for (s, q) in plan.outputs.segments.iter().zip(uploads.segments.clone()) {
        let root = uploads.root(q.as_ref()).to_owned();
        let field = format!("{}.playlist_name", s.field);
        let playlist = crate::output::hls::main_playlist(&root, s, ctx)
            .map_err(|e| output_error(&field, e.to_string()))?;
        uploads.claim_name(q.as_ref(), &playlist.local_path, &field)?;
        outputs.segment_roots.push(root);
    }
    for (im, q) in plan.outputs.images.iter().zip(uploads.images.clone()) {
        let root = uploads.root(q.as_ref()).to_owned();
        let field = format!("{}.filename_prefix", im.field);
        let prefix = prefix_target(&root, &im.prefix_template, im.format.extension(), ctx)
            .map_err(|e| output_error(&field, e.to_string()))?;
        uploads.claim_name(q.as_ref(), &prefix.local_path, &field)?;
    }
    Ok(outputs)
}

/// Creates the directory a file goes in; the error names it.
fn create_parent(path: &std::path::Path) -> Result<(), String> {
    match path.parent() {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display())),
        None => Ok(()),
    }
}

/// Whether an egress ends now, and how: asked to (a stop request, or `media` reached the
/// requested duration) or its source closed (LiveKit's "Source closed" in `details`) →
/// `Some(Ok)`; its source failed → `Some(Err)`; `None` while it goes on.
fn ending(
    room: &dyn RoomSource,
    opts: &RunOptions,
    media: Duration,
    info: &mut EgressInfo,
) -> Option<Result<(), EgressError>> {
    if opts.stop.requested() {
        if let Some(reason) = opts.stop.reason() {
            info.details = reason.details().into();
        }
        return Some(Ok(()));
    }
    if opts.duration.is_some_and(|d| media >= d) {
        return Some(Ok(()));
    }
    if opts.limit.is_some_and(|d| media >= d) {
        tracing::info!(
            media_s = media.as_secs_f64(),
            "session limit reached; finishing the recording"
        );
        info.details = LIMIT_REACHED_DETAILS.into();
        return Some(Ok(()));
    }
    match room.ended()? {
        SourceEnd::Closed => {
            tracing::info!("the source closed; finishing the recording");
            info.details = SOURCE_CLOSED.into();
            Some(Ok(()))
        }
        SourceEnd::Failed(why) => {
            tracing::warn!(error = %why, "the source failed; finishing the recording");
            Some(Err(EgressError::Source(why)))
        }
    }
}

/// A finished file: queued for its store, and in the results (unless nothing was written).
fn file_written(
    info: &mut EgressInfo,
    target: &FileTarget,
    upload: Option<&UploadQueue>,
    written: Duration,
    ended: i64,
) {
    let size = std::fs::metadata(&target.local_path).map_or(0, |m| m.len() as i64);
    if size == 0 {
        return;
    }
    if let Some(q) = upload {
        q.file(&target.local_path);
    }
    info.file_results.push(FileInfo {
        filename: target.filename.clone(),
        location: target.local_path.display().to_string(),
        started_at: info.started_at,
        ended_at: ended,
        duration: written.as_nanos() as i64,
        size,
    });
}

/// The end of every egress, once its uploads are done: each result's location where its
/// store put it, the deprecated single `result`, the times, and COMPLETE, or FAILED with
/// `error` (an upload failure alone fails the egress too; media errors come first).
fn conclude(
    mut info: EgressInfo,
    stored: Option<&mut uploads::Finished>,
    mut error: Option<EgressError>,
    ended: i64,
) -> EgressInfo {
    if let Some(stored) = stored {
        for f in &mut info.file_results {
            f.location = stored.location(&f.location);
        }
        for s in &mut info.segment_results {
            s.playlist_location = stored.location(&s.playlist_location);
            if !s.live_playlist_location.is_empty() {
                s.live_playlist_location = stored.location(&s.live_playlist_location);
            }
        }
        info.backup_storage_used = stored.backup_used;
        if let Some(e) = stored.error.take() {
            error.get_or_insert(e);
        }
    }
    // The deprecated single `result`, as LiveKit still fills it for older clients.
    #[allow(deprecated)]
    {
        info.result = if let Some(f) = info.file_results.first() {
            Some(egress_info::Result::File(f.clone()))
        } else if let Some(s) = info.segment_results.first() {
            Some(egress_info::Result::Segments(s.clone()))
        } else if !info.stream_results.is_empty() {
            Some(egress_info::Result::Stream(StreamInfoList {
                info: info.stream_results.clone(),
            }))
        } else {
            None
        };
    }
    if info.started_at == 0 {
        info.started_at = ended;
    }
    info.ended_at = ended;
    match error {
        None if info.details == LIMIT_REACHED_DETAILS => {
            // LiveKit's `SetLimitReached`: 413, "Session limit reached".
            info.error = LIMIT_REACHED.into();
            info.error_code = 413;
            set_status(&mut info, EgressStatus::EgressLimitReached);
            info
        }
        None => {
            set_status(&mut info, EgressStatus::EgressComplete);
            info
        }
        Some(e) => failed(info, e),
    }
}

/// Writes the manifest (URLs for uploaded files); returns its path.
fn write_manifest(
    info: &EgressInfo,
    outputs: &Outputs,
    out_dir: &std::path::Path,
    stored: Option<&uploads::Finished>,
) -> Option<PathBuf> {
    let location = |local: &str| stored.map_or_else(|| local.to_owned(), |s| s.location(local));
    let playlists = &outputs.playlists;
    let manifest = Manifest {
        files: outputs
            .files
            .iter()
            .map(|f| ManifestFile {
                filename: f.filename.clone(),
                location: location(&f.local_path.display().to_string()),
            })
            .collect(),
        playlists: if playlists.is_empty() {
            info.segment_results
                .iter()
                .map(|s| ManifestPlaylist {
                    location: s.playlist_location.clone(),
                    segments: Vec::new(),
                })
                .collect()
        } else {
            playlists
                .iter()
                .map(|(path, segments)| ManifestPlaylist {
                    location: location(path),
                    segments: segments.iter().map(|s| location(s)).collect(),
                })
                .collect()
        },
        images: outputs
            .images
            .iter()
            .flat_map(|o| o.records())
            .map(|r| ManifestImage {
                filename: r.filename,
                location: location(&r.location),
                timestamp: r.timestamp,
            })
            .collect(),
        ..Manifest::of(info)
    };
    match manifest.write(out_dir) {
        Ok(path) => Some(path),
        Err(e) => {
            tracing::warn!(error = %e, "cannot write the manifest");
            None
        }
    }
}

/// Where a composited frame of each target goes.
enum Dest {
    /// Video encode `i`.
    Encode(usize),
    /// Image output `i`.
    Image(usize),
}

/// Builds and runs the graph; returns the media duration written.
fn record(
    plan: &EgressPlan,
    room: &mut dyn RoomSource,
    backend: Option<Backend>,
    opts: &RunOptions,
    ctx: &NameContext<'_>,
    outputs: &mut Outputs,
    info: &mut EgressInfo,
) -> Result<Duration, (Duration, EgressError)> {
    let p = &plan.encoding;
    let o = &plan.outputs;
    let at_start = |e: EgressError| (Duration::ZERO, e);
    let epoch = chrono::Utc::now();

    // Targets: one per video encode (0 is the request size), then one per image output.
    let mut compositor = match (&backend, plan.tracks.video) {
        (Some(b), true) => Some(
            b.compositor(p.width, p.height)
                .map_err(|e| at_start(e.into()))?,
        ),
        _ => None,
    };
    let mut dests: Vec<Dest> = Vec::new();
    let mut image_targets = Vec::new();
    if let Some(comp) = compositor.as_mut() {
        dests.push(Dest::Encode(0));
        for (i, v) in o.video.iter().enumerate().skip(1) {
            comp.add_target(v.width, v.height)
                .map_err(|e| at_start(e.into()))?;
            dests.push(Dest::Encode(i));
        }
        for (j, im) in outputs.images.iter().enumerate() {
            let (w, h) = im.size();
            image_targets.push(comp.add_target(w, h).map_err(|e| at_start(e.into()))?);
            dests.push(Dest::Image(j));
        }
    }
    let encoder = match (&compositor, o.video.is_empty()) {
        (Some(_), false) => Some(encode::shared_video_encoder().map_err(|e| at_start(e.into()))?),
        _ => None,
    };
    let mut graph = graph::build(
        plan,
        encoder.as_ref(),
        &outputs.files,
        &outputs.segment_roots,
        ctx,
        epoch,
    )
    .map_err(at_start)?;
    for (h, q) in graph.hls.iter_mut().zip(&outputs.segment_uploads) {
        if let Some(q) = q {
            h.set_uploads(q.clone());
        }
    }
    let bus = graph.pipeline.bus().expect("pipelines have a bus");
    graph.pipeline.set_state(gst::State::Playing).map_err(|_| {
        at_start(EgressError::Pipeline(
            drain_bus(&bus, &mut graph)
                .err()
                .map_or_else(|| "cannot start".into(), |e| e.to_string()),
        ))
    })?;
    info.started_at = now_ns();
    for h in &mut graph.hls {
        h.set_started(info.started_at);
    }
    for im in &mut outputs.images {
        im.set_started(info.started_at);
    }
    graph.streams.start(&o.streams);
    info.stream_results = graph.streams.infos();
    set_status(info, EgressStatus::EgressActive);
    if o.manifest {
        write_manifest(info, outputs, &opts.out_dir, None);
    }

    let fps = p.framerate as u64;
    let frame_duration = Duration::from_nanos(1_000_000_000 / fps);
    let pts_of = |k: u64| Duration::from_nanos(k * 1_000_000_000 / fps);
    let mut mixer = Mixer::new();
    let mut lag_warned = false;
    let clock = Instant::now();
    room.start(clock);
    tracing::info!(
        unix_ms = chrono::Utc::now().timestamp_millis(),
        "media clock started (media time 0 is composed now)"
    );
    let mut live = LiveLayout::new(plan.layout.clone(), plan.layouts.clone());
    // Each participant's channel, fixed when first heard (as LiveKit assigns it per track).
    let mut heard: std::collections::HashMap<String, crate::request::select::Channel> =
        Default::default();
    let mut channels = Vec::new();
    let only_streams = o.files.is_empty() && o.segments.is_empty() && o.images.is_empty();

    let mut tick: u64 = 0;
    // The loop ends with the error that ended it, if one did.
    let mut error = loop {
        let t = pts_of(tick);
        if let Some(end) = ending(room, opts, t, info) {
            break end.err();
        }
        let mut late = false;
        if opts.realtime {
            let elapsed = clock.elapsed();
            late = elapsed > t + frame_duration;
            if t > elapsed {
                std::thread::sleep(t - elapsed);
            } else if elapsed - t > Duration::from_secs(1) && !lag_warned {
                tracing::warn!(
                    behind_ms = (elapsed - t).as_millis() as u64,
                    "egress is falling behind real time"
                );
                lag_warned = true;
            }
        }
        if let Some(rx) = &opts.control {
            while let Ok(c) = rx.try_recv() {
                handle_control(c, &mut graph, info, &mut live, room);
            }
        }
        if let Some(layout) = room.requested_layout() {
            // LiveKit's UpdateLayout through livekit-server: the egress participant's
            // metadata `{"layout": …}`.
            match live.update_layout(&layout) {
                Ok(()) => {
                    tracing::info!(layout = %live.name(), "layout switched (participant metadata)")
                }
                Err(e) => {
                    tracing::warn!(layout, error = %e, "layout in participant metadata refused")
                }
            }
        }
        live.poll_file(t);
        let infos = room.participants();
        let participants = infos.len();
        // Drawn participants come first; the others are only heard.
        let drawn = infos.iter().take_while(|p| p.drawn).count();
        for p in &infos {
            if !heard.contains_key(&p.identity) {
                let order = heard.len();
                let channel = p
                    .channel
                    .unwrap_or_else(|| plan.selection.mixing.channel(order, p.agent));
                heard.insert(p.identity.clone(), channel);
            }
        }
        channels.clear();
        channels.extend(infos.iter().map(|p| {
            p.channel
                .unwrap_or_else(|| heard.get(&p.identity).copied().unwrap_or_default())
        }));
        let stats = opts.stats.as_deref();
        let mut mark = Instant::now();
        let mut lap = |stage: Stage| {
            if let Some(s) = stats {
                let now = Instant::now();
                s.add(stage, now - mark);
                mark = now;
            }
        };
        let mut hints = None;
        let step = (|| -> Result<(), EgressError> {
            if let Some(comp) = compositor.as_mut() {
                // Pictures first (their borrow of the room ends before audio is mixed).
                room.advance_video(t);
                lap(Stage::Source);
                let frames: Vec<_> = (0..drawn).map(|i| room.video(i)).collect();
                let members = scene::members(&infos[..drawn], &frames);
                let pictures = scene::Pictures {
                    cameras: &frames,
                    screen_share: room.screen_share(),
                };
                let mut targets: Vec<usize> = (0..o.video.len()).collect();
                for (j, im) in outputs.images.iter_mut().enumerate() {
                    if im.due(t) {
                        targets.push(image_targets[j]);
                    }
                }
                if !targets.is_empty() {
                    let sizes: Vec<_> = targets
                        .iter()
                        .map(|&k| {
                            let (w, h) = comp.target_size(k).expect("target exists");
                            (k, w, h)
                        })
                        .collect();
                    let background = live.theme().background;
                    if tick.is_multiple_of((fps / 2).max(1)) {
                        // As drawn at the last tick (the live source adapts within ~1 s).
                        hints = Some(live.picture_sizes().clone());
                    }
                    let scenes = live.scenes(&sizes, &members, &pictures, t);
                    for &k in &targets {
                        if !comp.can_send_to(k) {
                            let done = comp.receive_frame_from(k, true)?.expect("ring is full");
                            lap(Stage::Readback);
                            deliver(&dests[k], done, &graph, outputs, epoch, frame_duration)?;
                            lap(Stage::Push);
                        }
                    }
                    let sends: Vec<_> = targets.iter().copied().zip(&scenes).collect();
                    comp.send_frames(background, &sends, t)?;
                    lap(Stage::Composite);
                }
                for (k, dest) in dests.iter().enumerate() {
                    while let Some(done) = comp.receive_frame_from(k, false)? {
                        lap(Stage::Readback);
                        deliver(dest, done, &graph, outputs, epoch, frame_duration)?;
                        lap(Stage::Push);
                    }
                }
            }
            // Mixed even without an audio output: the levels pick the active speaker.
            let from = mixer.position();
            let until = (tick + 1) * AUDIO_RATE as u64 / fps;
            let bytes = mixer.mix_until(room, participants, &channels, until);
            if !bytes.is_empty() {
                let pts = Duration::from_nanos(from * 1_000_000_000 / AUDIO_RATE as u64);
                let dur = Duration::from_nanos((until - from) * 1_000_000_000 / AUDIO_RATE as u64);
                let levels = mixer.levels();
                live.hear(&levels[..drawn.min(levels.len())], dur);
                if let Some(src) = graph.audio.as_ref() {
                    graph::push(src, bytes, pts, dur)?;
                }
            }
            lap(Stage::Audio);
            drain_bus(&bus, &mut graph)?;
            if graph.streams.poll() {
                // A stream failed or is retried: clients polling ListEgress see it now.
                streams_changed(info, &graph);
            }
            if only_streams && graph.streams.all_failed() {
                let why = graph
                    .streams
                    .infos()
                    .last()
                    .map(|s| s.error.clone())
                    .unwrap_or_default();
                return Err(EgressError::StreamsFailed(why));
            }
            Ok(())
        })();
        if let Err(e) = step {
            break Some(e);
        }
        if only_streams && graph.streams.all_ended() {
            // Every stream was removed (those that failed too would have failed the
            // egress above): LiveKit ends the egress, COMPLETE.
            tracing::info!("no stream left; finishing the egress");
            info.details = STREAMS_STOPPED.into();
            break None;
        }
        if let Some(sizes) = hints {
            room.picture_sizes(&sizes);
        }
        tick += 1;
        if let Some(s) = &opts.stats {
            s.tick(late, pts_of(tick));
        }
        if tick.is_multiple_of(fps * 10) {
            tracing::info!(media_s = tick / fps, "recording");
        }
    };

    // Ending: drain the GPU rings, close the streams, let the muxers finish their files.
    set_status(info, EgressStatus::EgressEnding);
    if let (Some(stats), Some(t)) = (
        &opts.stats,
        compositor
            .as_ref()
            .and_then(AnyCompositor::gpu_time_per_frame),
    ) {
        stats.set_gpu_time(t);
    }
    if let Some(comp) = compositor.as_mut() {
        'targets: for (k, dest) in dests.iter().enumerate() {
            while comp.in_flight_of(k) > 0 {
                let done = match comp.receive_frame_from(k, true) {
                    Ok(Some(done)) => done,
                    Ok(None) => break,
                    Err(e) => {
                        error.get_or_insert(e.into());
                        break 'targets;
                    }
                };
                if let Err(e) = deliver(dest, done, &graph, outputs, epoch, frame_duration) {
                    error.get_or_insert(e);
                    break 'targets;
                }
            }
        }
    }
    info.stream_results = graph.streams.finish_all();
    for src in graph.video.iter().chain(graph.audio.iter()) {
        let _ = src.end_of_stream();
    }
    // An egress of images alone has no encode, so no end-of-stream to wait for.
    if (!graph.video.is_empty() || graph.audio.is_some())
        && let Err(e) = wait_for_eos(&bus, &mut graph)
    {
        error.get_or_insert(e);
    }
    let _ = graph.pipeline.set_state(gst::State::Null);
    let ended = now_ns();
    // Every tick completed sent one frame (and its audio).
    let written = pts_of(tick);
    for h in &mut graph.hls {
        match h.finish(ended, written) {
            Ok(r) => info.segment_results.push(r),
            Err(e) => {
                error.get_or_insert(EgressError::Output {
                    field: "segment_outputs".into(),
                    reason: e.to_string(),
                });
            }
        }
    }
    outputs.playlists = graph.hls.iter().flat_map(|h| h.files()).collect();
    tracing::info!(
        frames = tick,
        media_s = written.as_secs_f64(),
        "egress finished"
    );
    match error {
        None => Ok(written),
        Some(e) => Err((written, e)),
    }
}

/// Hands a composited frame to its encode or image output.
fn deliver(
    dest: &Dest,
    frame: Nv12Frame,
    graph: &Graph,
    outputs: &Outputs,
    epoch: chrono::DateTime<chrono::Utc>,
    frame_duration: Duration,
) -> Result<(), EgressError> {
    match *dest {
        Dest::Encode(i) => match graph.video.get(i) {
            Some(src) => graph::push(src, frame.data, frame.pts, frame_duration),
            None => Ok(()),
        },
        Dest::Image(j) => {
            let at = epoch + frame.pts;
            outputs.images[j].submit(frame, at);
            Ok(())
        }
    }
}

/// Handles one message of the main bus: segment events go to their HLS output, errors
/// end the egress, warnings are logged.
fn on_message(msg: &gst::Message, graph: &mut Graph) -> Result<(), EgressError> {
    match msg.view() {
        gst::MessageView::Error(e) => Err(EgressError::Pipeline(graph::error_text(msg, e))),
        gst::MessageView::Warning(w) => {
            tracing::warn!(warning = %w.error(), "pipeline warning");
            Ok(())
        }
        gst::MessageView::Element(_) => {
            for h in &mut graph.hls {
                match h.on_message(msg) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        return Err(EgressError::Output {
                            field: "segment_outputs".into(),
                            reason: e.to_string(),
                        });
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Handles the main bus until end-of-stream (every muxer finished), an error, or
/// [`EOS_TIMEOUT`].
fn wait_for_eos(bus: &gst::Bus, graph: &mut Graph) -> Result<(), EgressError> {
    let deadline = Instant::now() + EOS_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            return Err(EgressError::Pipeline(
                "timed out finishing the outputs".into(),
            ));
        };
        if let gst::MessageView::Eos(_) = msg.view() {
            return Ok(());
        }
        on_message(&msg, graph)?;
    }
}

/// Handles every message waiting on the main bus.
fn drain_bus(bus: &gst::Bus, graph: &mut Graph) -> Result<(), EgressError> {
    while let Some(msg) = bus.pop() {
        on_message(&msg, graph)?;
    }
    Ok(())
}
