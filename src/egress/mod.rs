//! One egress: room source → compositor + mixer → one encode per codec → every output, on
//! one clock, with its `EgressInfo` kept as LiveKit reports it
//! (STARTING → ACTIVE → ENDING → COMPLETE / FAILED).
//!
//! [`run`] drives a composite egress: its outputs are claimed (`targets`), its frame loop
//! (`frame_loop::EgressRun`) is opened, started and ticked on the wall clock until it ends
//! (`end`), then drained and finished, and its files are uploaded (`uploads`) and reported
//! (`report`). Track and WebSocket egresses (`track`, `websocket`) share the reporting,
//! the end and the uploads. Each module is a leaf or imports only its siblings.

mod channels;
pub(crate) mod control;
mod conversation;
mod end;
mod error;
mod frame_loop;
mod graph;
pub(crate) mod live_layout;
mod options;
mod pacing;
mod report;
pub(crate) mod stats;
mod stop;
mod targets;
pub(crate) mod track;
mod uploads;
pub(crate) mod websocket;

use std::time::{Duration, Instant};

use livekit_protocol::{EgressInfo, EgressStatus};

use crate::compositor::Backend;
use crate::info::now_ns;
use crate::output::claim;
use crate::request::EgressPlan;
use crate::request::naming::NameContext;
use crate::source::RoomSource;
pub use control::Control;
pub use error::EgressError;
use frame_loop::EgressRun;
pub use options::RunOptions;
pub use report::{
    ABORTED_CODE, FAILURE_DETAILS, LIMIT_REACHED, LIMIT_REACHED_DETAILS, SOURCE_CLOSED,
    STOPPED_BEFORE_STARTED, STREAMS_STOPPED, StatusSink, aborted, failed, initial_info,
    stopped_before_start,
};
use report::{conclude, file_written};
pub use stop::{Stop, StopReason};
use targets::Outputs;

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
    let mut outputs = match targets::open(plan, &ctx, &mut uploads) {
        Ok(o) => o,
        Err(e) => return failed(info, e),
    };
    if plan.conversation.isolated_audio {
        outputs.isolated_dir = Some(opts.out_dir.join(".isolated").join(egress_id));
    }
    let (written, mut error) = record(plan, room, backend, opts, &ctx, &mut outputs, &mut info);
    if let Err(e) = finish_mp4s(plan, &mut outputs, written) {
        error.get_or_insert(e);
    }
    let ended = now_ns();
    for (target, q) in outputs.files.iter().zip(&uploads.files) {
        file_written(&mut info, target, q.as_ref(), written, ended);
    }
    if let Err(e) = write_captions(&mut info, &mut outputs, &uploads, written, ended) {
        error.get_or_insert(e);
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
    write_speakers(&info, &mut outputs, &stored, &opts.out_dir, written);
    if plan.outputs.manifest
        && let Some(path) = targets::write_manifest(&info, &outputs, &opts.out_dir, Some(&stored))
    {
        stored.upload_manifest(&path);
    }
    info
}

/// Finishes every MP4 file written when the conversation adds to it: the participants'
/// isolated tracks and the chapters at speaker changes (remuxed, not re-encoded), then
/// removes the tracks' working files.
fn finish_mp4s(
    plan: &EgressPlan,
    outputs: &mut Outputs,
    written: Duration,
) -> Result<(), EgressError> {
    // The remux serves isolated tracks, or only the timeline's chapters: its errors name
    // what the request asked for.
    let field = match plan.conversation.isolated_audio {
        true => "isolated_audio",
        false => "speaker_timeline",
    };
    let error = |reason: String| EgressError::Output {
        field: field.into(),
        reason,
    };
    let (tracks, failed) = match outputs.isolated.take() {
        Some(Ok(t)) => (t, None),
        Some(Err(e)) => (Vec::new(), Some(error(e.to_string()))),
        None => (Vec::new(), None),
    };
    let chapters: Vec<(Duration, String)> = outputs
        .conversation
        .as_ref()
        .and_then(|c| c.chapters(written))
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.start, c.title))
        .collect();
    let mut result = failed.map_or(Ok(()), Err);
    if !tracks.is_empty() || !chapters.is_empty() {
        for (f, target) in plan.outputs.files.iter().zip(&outputs.files) {
            if f.kind != crate::request::FileKind::Mp4 || !target.local_path.exists() {
                continue;
            }
            let main = crate::output::isolated::MainStreams {
                video: f.video,
                audio: f.audio,
            };
            let path = &target.local_path;
            match crate::output::isolated::remux_mp4(path, main, &tracks, &chapters) {
                Ok(()) => {
                    tracing::info!(file = %path.display(), tracks = tracks.len(), chapters = chapters.len(), "MP4 finished with the conversation")
                }
                Err(e) => {
                    result = result.and(Err(error(e.to_string())));
                }
            }
        }
    }
    if let Some(dir) = &outputs.isolated_dir {
        let _ = std::fs::remove_dir_all(dir);
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent); // only when no other egress uses it
        }
    }
    result
}

/// Writes the WebVTT sidecar of every file written (queued with it, listed in the
/// results); sidecars of files not written are forgotten.
fn write_captions(
    info: &mut EgressInfo,
    outputs: &mut Outputs,
    uploads: &uploads::Uploads,
    written: Duration,
    ended: i64,
) -> Result<(), EgressError> {
    let Some(cues) = outputs.conversation.as_ref().and_then(|c| c.cues(written)) else {
        return Ok(());
    };
    let mut kept = Vec::new();
    let sidecars = std::mem::take(&mut outputs.sidecars);
    for ((file, vtt), q) in outputs.files.iter().zip(sidecars).zip(&uploads.files) {
        if !file.local_path.exists() {
            continue;
        }
        conversation::write_webvtt(&vtt.local_path, &cues).map_err(|e| EgressError::Output {
            field: "captions".into(),
            reason: format!("{}: {e}", vtt.local_path.display()),
        })?;
        file_written(info, &vtt, q.as_ref(), written, ended);
        kept.push(vtt);
    }
    tracing::info!(cues = cues.len(), files = kept.len(), "captions written");
    outputs.sidecars = kept;
    Ok(())
}

/// Writes `{egress_id}.speakers.json` beside the manifest (and uploads it to the
/// manifest's store) when the egress keeps a speaker timeline.
fn write_speakers(
    info: &EgressInfo,
    outputs: &mut Outputs,
    stored: &uploads::Finished,
    out_dir: &std::path::Path,
    written: Duration,
) {
    let Some(speakers) = outputs.conversation.as_mut().and_then(|c| c.speakers()) else {
        return;
    };
    match conversation::write_speakers(out_dir, info, written, &speakers) {
        Ok(path) => {
            outputs.speakers = Some(stored.upload_beside_manifest(&path, "speaker timeline"));
        }
        Err(e) => tracing::warn!(error = %e, "cannot write the speaker timeline"),
    }
}

/// Opens the frame loop, starts it, ticks it on the wall clock until it ends, drains and
/// finishes it; returns the media time written and the error that ended it, if one did.
fn record(
    plan: &EgressPlan,
    room: &mut dyn RoomSource,
    backend: Option<Backend>,
    opts: &RunOptions,
    ctx: &NameContext<'_>,
    outputs: &mut Outputs,
    info: &mut EgressInfo,
) -> (Duration, Option<EgressError>) {
    let mut run = match EgressRun::open(plan, backend, opts, ctx, outputs) {
        Ok(run) => run,
        Err(e) => return (Duration::ZERO, Some(e)),
    };
    if let Err(e) = run.start(info, outputs) {
        return (Duration::ZERO, Some(e));
    }
    let clock = Instant::now();
    room.start(clock);
    tracing::info!(
        unix_ms = chrono::Utc::now().timestamp_millis(),
        "media clock started (media time 0 is composed now)"
    );
    let mut error = loop {
        let media = run.media_time();
        if let Some(end) = end::ending(room, &opts.stop, opts.bounds(), media, info) {
            break end.err();
        }
        let mut late = false;
        if opts.realtime {
            let pace = run.pace(clock.elapsed());
            late = pace.late;
            if let Some(behind) = pace.behind {
                let behind_ms = behind.as_millis() as u64;
                tracing::warn!(behind_ms, "egress is falling behind real time");
            }
            if !pace.wait.is_zero() {
                std::thread::sleep(pace.wait);
            }
        }
        match run.tick(room, info, outputs, late) {
            Ok(true) => {}
            Ok(false) => break None,
            Err(e) => break Some(e),
        }
    };
    // Ending: drain the GPU rings, close the streams, let the muxers finish their files.
    report::set_status(info, EgressStatus::EgressEnding, &opts.status);
    if let Err(e) = run.drain(outputs) {
        error.get_or_insert(e);
    }
    let written = run.finish(info, outputs, &mut error);
    (written, error)
}
