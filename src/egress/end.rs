//! When an egress ends, and how: decided from the media time, the stop request, the
//! requested duration, the session limit and the source's end, all passed in (no clock,
//! no room), so every case is a unit test.

use std::time::Duration;

use livekit_protocol::EgressInfo;

use super::error::EgressError;
use super::report::{LIMIT_REACHED_DETAILS, SOURCE_CLOSED};
use super::stop::{Stop, StopReason};
use crate::source::{RoomSource, SourceEnd};

/// The bounds an egress runs within.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Stop after this much media time (`--duration`).
    pub duration: Option<Duration>,
    /// A session limit: at this much media time the egress ends LIMIT_REACHED.
    pub limit: Option<Duration>,
}

/// Why an egress ends now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Asked to stop (the reason, once known, is LiveKit's end reason).
    Stopped(Option<StopReason>),
    /// The requested duration was recorded.
    Duration,
    /// The session limit was reached (LIMIT_REACHED).
    Limit,
    /// The room (or page) closed.
    SourceClosed,
    /// The source failed: the egress ends FAILED with this.
    SourceFailed(String),
}

impl End {
    /// Decides whether an egress at `media` time ends: a stop request first, then the
    /// duration, the limit, and last the source (`source` is asked only then).
    pub(crate) fn check(
        media: Duration,
        stop: &Stop,
        bounds: Bounds,
        source: impl FnOnce() -> Option<SourceEnd>,
    ) -> Option<End> {
        if stop.requested() {
            return Some(End::Stopped(stop.reason()));
        }
        if bounds.duration.is_some_and(|d| media >= d) {
            return Some(End::Duration);
        }
        if bounds.limit.is_some_and(|d| media >= d) {
            return Some(End::Limit);
        }
        Some(match source()? {
            SourceEnd::Closed => End::SourceClosed,
            SourceEnd::Failed(why) => End::SourceFailed(why),
        })
    }

    /// Writes the end reason into `info.details` (and logs it); `Err` when the egress
    /// ends FAILED.
    pub(crate) fn apply(self, info: &mut EgressInfo, media: Duration) -> Result<(), EgressError> {
        match self {
            End::Stopped(reason) => {
                if let Some(reason) = reason {
                    info.details = reason.details().into();
                }
            }
            End::Duration => {}
            End::Limit => {
                tracing::info!(
                    media_s = media.as_secs_f64(),
                    "session limit reached; finishing the recording"
                );
                info.details = LIMIT_REACHED_DETAILS.into();
            }
            End::SourceClosed => {
                tracing::info!("the source closed; finishing the recording");
                info.details = SOURCE_CLOSED.into();
            }
            End::SourceFailed(why) => {
                tracing::warn!(error = %why, "the source failed; finishing the recording");
                return Err(EgressError::Source(why));
            }
        }
        Ok(())
    }
}

/// Whether an egress of `room` at `media` time ends now, with its end reason applied to
/// `info`: `Some(Ok)` ends it as asked or as its source closed, `Some(Err)` ends it
/// FAILED, `None` goes on.
pub(crate) fn ending(
    room: &dyn RoomSource,
    stop: &Stop,
    bounds: Bounds,
    media: Duration,
    info: &mut EgressInfo,
) -> Option<Result<(), EgressError>> {
    End::check(media, stop, bounds, || room.ended()).map(|end| end.apply(info, media))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn check(
        media: Duration,
        stop: &Stop,
        bounds: Bounds,
        source: Option<SourceEnd>,
    ) -> Option<End> {
        End::check(media, stop, bounds, || source)
    }

    #[test]
    fn nothing_ends_an_unbounded_egress_of_a_live_source() {
        assert_eq!(check(3600 * S, &Stop::new(), Bounds::default(), None), None);
    }

    #[test]
    fn the_duration_and_the_limit_end_at_their_media_time_not_before() {
        let bounds = Bounds {
            duration: Some(10 * S),
            limit: None,
        };
        assert_eq!(
            check(10 * S - Duration::from_nanos(1), &Stop::new(), bounds, None),
            None
        );
        assert_eq!(
            check(10 * S, &Stop::new(), bounds, None),
            Some(End::Duration)
        );
        let bounds = Bounds {
            duration: None,
            limit: Some(5 * S),
        };
        assert_eq!(check(5 * S, &Stop::new(), bounds, None), Some(End::Limit));
        // Both reached at once: the requested duration is the end, not a limit.
        let bounds = Bounds {
            duration: Some(5 * S),
            limit: Some(5 * S),
        };
        assert_eq!(
            check(5 * S, &Stop::new(), bounds, None),
            Some(End::Duration)
        );
    }

    #[test]
    fn a_stop_comes_before_everything_and_the_source_after_everything() {
        let stop = Stop::new();
        stop.request(StopReason::Api);
        let bounds = Bounds {
            duration: Some(S),
            limit: Some(S),
        };
        let end = check(2 * S, &stop, bounds, Some(SourceEnd::Closed));
        assert_eq!(end, Some(End::Stopped(Some(StopReason::Api))));
        let mut asked = false;
        let end = End::check(2 * S, &Stop::new(), bounds, || {
            asked = true;
            None
        });
        assert_eq!(end, Some(End::Duration));
        assert!(
            !asked,
            "the source is not asked once a bound ended the egress"
        );
        let failed = Some(SourceEnd::Failed("lost".into()));
        assert_eq!(
            check(S, &Stop::new(), Bounds::default(), failed),
            Some(End::SourceFailed("lost".into()))
        );
    }

    #[test]
    fn each_end_writes_livekits_end_reason() {
        let details = |end: End| {
            let mut info = EgressInfo::default();
            let r = end.apply(&mut info, S);
            (info.details, r.map_err(|e| e.to_string()))
        };
        assert_eq!(
            details(End::Stopped(Some(StopReason::Api))).0,
            "End reason: StopEgress API"
        );
        assert_eq!(
            details(End::Stopped(Some(StopReason::Killed))).0,
            "End reason: Process killed"
        );
        assert_eq!(details(End::Duration), (String::new(), Ok(())));
        assert_eq!(details(End::Limit).0, LIMIT_REACHED_DETAILS);
        assert_eq!(details(End::SourceClosed).0, SOURCE_CLOSED);
        assert_eq!(
            details(End::SourceFailed("gone".into())).1,
            Err("source: gone".into())
        );
    }
}
