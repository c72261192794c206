//! What an egress reports: its status as it changes (handed to the run's [`StatusSink`]),
//! its file results, and its end (COMPLETE, LIMIT_REACHED, FAILED or ABORTED) with
//! LiveKit's wording. A leaf of `egress`: the composite, track, WebSocket and control code
//! all report through it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use livekit_protocol::{
    EgressInfo, EgressStatus, FileInfo, StreamInfo, StreamInfoList, egress_info,
};

use super::error::EgressError;
use super::stop::Stop;
use super::uploads::Finished;
use crate::info::now_ns;
use crate::output::FileTarget;
use crate::request::EgressPlan;
use crate::storage::UploadQueue;

/// Where a running egress hands its `EgressInfo` each time it changes before the end
/// (STARTING → ACTIVE → ENDING, stream updates): the worker keeps it for `ListEgress` and
/// sends it to livekit-server. The end is not handed here: it is what the run returns.
#[derive(Clone, Default)]
pub struct StatusSink(Option<Arc<Report>>);

/// What a sink calls with each change.
type Report = dyn Fn(&EgressInfo) + Send + Sync;

impl StatusSink {
    /// A sink calling `f` with each change.
    pub fn new(f: impl Fn(&EgressInfo) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    /// A sink that drops every change (the CLI reports only the end).
    pub fn none() -> Self {
        Self(None)
    }

    /// Hands `info` to the sink.
    pub(crate) fn report(&self, info: &EgressInfo) {
        if let Some(f) = &self.0 {
            f(info);
        }
    }
}

impl fmt::Debug for StatusSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "StatusSink"
        } else {
            "StatusSink(none)"
        })
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
    set_status(&mut info, EgressStatus::EgressAborted, &StatusSink::none());
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

/// Moves `info` to `status`, logs it and hands it to `sink`.
pub(crate) fn set_status(info: &mut EgressInfo, status: EgressStatus, sink: &StatusSink) {
    info.status = status as i32;
    info.updated_at = now_ns();
    tracing::info!(egress_id = %info.egress_id, status = status.as_str_name(), "egress status");
    sink.report(info);
}

/// The streams changed (an update, a failure, a retry): `info` takes their infos and is
/// handed to `sink` at once, so clients polling `ListEgress` see it.
pub(crate) fn streams_changed(info: &mut EgressInfo, streams: Vec<StreamInfo>, sink: &StatusSink) {
    info.stream_results = streams;
    info.updated_at = now_ns();
    sink.report(info);
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
    set_status(&mut info, EgressStatus::EgressFailed, &StatusSink::none());
    info
}

/// A finished file: queued for its store, and in the results (unless nothing was written).
pub(crate) fn file_written(
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
pub(crate) fn conclude(
    mut info: EgressInfo,
    stored: Option<&mut Finished>,
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
            set_status(
                &mut info,
                EgressStatus::EgressLimitReached,
                &StatusSink::none(),
            );
            info
        }
        None => {
            set_status(&mut info, EgressStatus::EgressComplete, &StatusSink::none());
            info
        }
        Some(e) => failed(info, e),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;

    fn recorded(details: &str) -> EgressInfo {
        EgressInfo {
            egress_id: "EG_test".into(),
            status: EgressStatus::EgressEnding as i32,
            started_at: 5 * SECOND,
            details: details.into(),
            file_results: vec![FileInfo {
                filename: "a.mp4".into(),
                location: "/out/a.mp4".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn an_egress_that_ended_as_asked_is_complete_with_its_single_result() {
        let info = conclude(
            recorded("End reason: StopEgress API"),
            None,
            None,
            9 * SECOND,
        );
        assert_eq!(info.status, EgressStatus::EgressComplete as i32);
        assert_eq!((info.started_at, info.ended_at), (5 * SECOND, 9 * SECOND));
        assert_eq!((info.error.as_str(), info.error_code), ("", 0));
        #[allow(deprecated)]
        let single = match info.result.clone() {
            Some(egress_info::Result::File(f)) => f.filename,
            other => panic!("{other:?}"),
        };
        assert_eq!(single, "a.mp4");
    }

    #[test]
    fn a_session_limit_ends_limit_reached_with_livekits_413() {
        let info = conclude(recorded(LIMIT_REACHED_DETAILS), None, None, 9 * SECOND);
        assert_eq!(info.status, EgressStatus::EgressLimitReached as i32);
        assert_eq!((info.error.as_str(), info.error_code), (LIMIT_REACHED, 413));
    }

    #[test]
    fn an_error_fails_the_egress_and_keeps_an_earlier_end_reason() {
        let e = EgressError::Source("the room connection was lost".into());
        let info = conclude(recorded(""), None, Some(e), 9 * SECOND);
        assert_eq!(info.status, EgressStatus::EgressFailed as i32);
        assert_eq!(info.error, "source: the room connection was lost");
        assert_eq!(
            (info.error_code, info.details.as_str()),
            (503, FAILURE_DETAILS)
        );
        assert_eq!(
            info.file_results.len(),
            1,
            "what was recorded is still reported"
        );
        let e = EgressError::StreamsFailed("rtmp refused".into());
        let info = conclude(recorded(SOURCE_CLOSED), None, Some(e), 9 * SECOND);
        assert_eq!(info.details, SOURCE_CLOSED);
    }

    #[test]
    fn a_never_started_egress_gets_its_end_as_its_start_and_aborted_is_412() {
        let mut info = recorded("");
        info.started_at = 0;
        let info = conclude(info, None, None, 9 * SECOND);
        assert_eq!(info.started_at, 9 * SECOND);
        let stop = Stop::new();
        stop.request(super::super::stop::StopReason::Api);
        let info = stopped_before_start(EgressInfo::default(), &stop);
        assert_eq!(info.status, EgressStatus::EgressAborted as i32);
        assert_eq!(
            (info.error.as_str(), info.error_code),
            (STOPPED_BEFORE_STARTED, ABORTED_CODE)
        );
        assert_eq!(info.details, "End reason: StopEgress API");
    }

    #[test]
    fn only_changes_before_the_end_reach_the_sink() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let sink = StatusSink::new(move |i| s.lock().unwrap().push(i.status));
        let mut info = EgressInfo::default();
        set_status(&mut info, EgressStatus::EgressActive, &sink);
        streams_changed(&mut info, Vec::new(), &sink);
        let _ = failed(info, EgressError::Internal("boom".into()));
        let active = EgressStatus::EgressActive as i32;
        assert_eq!(*seen.lock().unwrap(), [active, active]);
        assert_eq!(format!("{sink:?}"), "StatusSink");
    }
}
