//! How an egress is run: where it writes, when it stops, how it reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use super::control::Control;
use super::end::Bounds;
use super::report::StatusSink;
use super::stats::EgressStats;
use super::stop::Stop;
use crate::storage::StorageDefaults;

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
    /// Where the egress hands its info at each change before the end.
    pub status: StatusSink,
}

impl RunOptions {
    /// The media-time bounds the egress ends at.
    pub(crate) fn bounds(&self) -> Bounds {
        Bounds {
            duration: self.duration,
            limit: self.limit,
        }
    }
}
