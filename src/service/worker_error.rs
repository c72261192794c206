//! Why the worker refuses or fails a request: one type for every caller. The psrpc
//! handlers map it to psrpc's codes (what livekit-server's client sees), the standalone
//! API to Twirp's; the worker knows neither.

/// Why the worker refused or failed a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkerError {
    /// The worker is draining (shutting down): it takes no new egress.
    #[error("egress worker is shutting down")]
    Draining,
    /// The request cannot be run; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// An egress with this id is known (running, or one of the recently ended).
    #[error("egress {0} already exists")]
    Exists(String),
    /// The node has no room for the egress now.
    #[error("{0}")]
    NoCapacity(String),
    /// No egress with this id is known.
    #[error("egress {0} not found")]
    NotFound(String),
    /// The egress cannot take the request now (it is ending, or has ended).
    #[error("{0}")]
    NotRunning(String),
    /// livekit-server could not be reached (IOInfo.CreateEgress got no answer).
    #[error("{0}")]
    Unavailable(String),
    /// livekit-server refused the egress (IOInfo.CreateEgress), with its psrpc code.
    #[error("CreateEgress: {message}")]
    Refused {
        /// livekit-server's psrpc error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The egress did not answer a request in time.
    #[error("the egress did not answer")]
    Timeout,
    /// A failure inside the worker (a thread, the bus).
    #[error("{0}")]
    Internal(String),
}
