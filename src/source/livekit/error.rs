//! Why joining a room failed, and why a participant or track egress could not start.

use std::time::Duration;

use crate::source::SourceEnd;

/// Why joining or staying in a room failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveKitError {
    /// The access token could not be signed (empty key, secret or room).
    #[error("access token: {0}")]
    Token(String),
    /// The signaling connection was refused or lost (bad URL, key or secret; server down).
    #[error("signaling: {0}")]
    Signal(String),
    /// The WebRTC media path failed.
    #[error("media connection: {0}")]
    Media(String),
    /// A step did not finish in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// The step.
        what: &'static str,
        /// How long it was given.
        after: Duration,
    },
    /// A socket could not be opened.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a participant or track egress could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwaitError {
    /// The participant or track never appeared (LiveKit's wording).
    NotFound(String),
    /// Stopped while waiting.
    Stopped,
    /// The room ended, or the connection failed, while waiting.
    Ended(SourceEnd),
}
