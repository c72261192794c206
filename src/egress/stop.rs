//! Asking a running egress to stop, and why: the reason becomes LiveKit's
//! `EgressInfo.details` ("End reason: StopEgress API", "End reason: Process killed").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Why an egress was asked to stop (LiveKit's end reasons for a requested stop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `StopEgress`, through livekit-server or the standalone API.
    Api,
    /// The process is ending: a signal to `tessera run`, or a worker's drain bound reached
    /// (LiveKit's egress reports its kill the same way).
    Killed,
}

impl StopReason {
    /// `EgressInfo.details` of an egress stopped for this reason, as LiveKit words it.
    pub fn details(self) -> &'static str {
        match self {
            StopReason::Api => "End reason: StopEgress API",
            StopReason::Killed => "End reason: Process killed",
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    flag: AtomicBool,
    reason: OnceLock<StopReason>,
}

/// A stop request shared by an egress and whoever may stop it (cheap to clone). The first
/// reason given is the one reported.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    shared: Arc<Shared>,
}

impl Stop {
    /// A stop nobody has asked for yet.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks the egress to stop for `reason` (a later reason does not replace the first).
    pub fn request(&self, reason: StopReason) {
        let _ = self.shared.reason.set(reason);
        self.shared.flag.store(true, Ordering::Release);
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.shared.flag.load(Ordering::Acquire)
    }

    /// Why, once asked.
    pub fn reason(&self) -> Option<StopReason> {
        self.requested()
            .then(|| self.shared.reason.get().copied())
            .flatten()
    }

    /// The flag alone, for waits that poll one (a participant's arrival, a page's start).
    pub fn flag(&self) -> &AtomicBool {
        &self.shared.flag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_is_the_one_reported() {
        let stop = Stop::new();
        assert!(!stop.requested());
        assert_eq!(stop.reason(), None);
        let seen_by_egress = stop.clone();
        stop.request(StopReason::Api);
        stop.request(StopReason::Killed);
        assert!(seen_by_egress.requested());
        assert!(seen_by_egress.flag().load(Ordering::Relaxed));
        assert_eq!(seen_by_egress.reason(), Some(StopReason::Api));
        assert_eq!(
            StopReason::Api.details(),
            "End reason: StopEgress API",
            "LiveKit's EndReasonAPI"
        );
        assert_eq!(StopReason::Killed.details(), "End reason: Process killed");
    }
}
