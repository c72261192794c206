//! What ends a running egress FAILED, and the code LiveKit reports for it.

use crate::compositor::CompositorError;
use crate::encode::EncodeError;

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
