//! The worker service (`tessera serve`): a drop-in egress worker for livekit-server,
//! configured by [`crate::config::ServiceConfig`].
//!
//! - `bus.rs`: Redis pub/sub and queue locks, as psrpc's Redis bus;
//! - `psrpc/`: psrpc's wire format (`wire.rs`) and its server and client sides;
//! - `rpc.rs`: the egress RPCs' messages and method table;
//! - `admission.rs`: what an egress costs, whether it fits, the claim's affinity (pure);
//! - `intake.rs`: a received request planned into a job (its shape, kind and limit);
//! - `lenient.rs`: LiveKit's lenient reading of a request (`tessera.lenient`, pure);
//! - `worker.rs`: many egresses in one process, isolated, reported; `worker_error.rs`:
//!   why it refuses a request (mapped to psrpc's codes and to Twirp's by their callers);
//! - `handlers.rs`: the psrpc methods served, adapted onto the worker;
//! - `io_info.rs`: livekit-server's IOInfo (CreateEgress, UpdateEgress with retries);
//! - `registry.rs`: workers watching each other's heartbeats (a dead worker's egresses
//!   end FAILED); `liveness.rs`: when another worker may be taken for dead (pure);
//! - `http.rs`, `metrics.rs`: `/health`, `/metrics`, the standalone Twirp API;
//! - `serve.rs`: putting it together, signals and drain.

pub(crate) mod admission;
pub mod bus;
pub(crate) mod handlers;
pub(crate) mod http;
pub(crate) mod intake;
pub(crate) mod io_info;
pub(crate) mod leftovers;
pub(crate) mod lenient;
pub(crate) mod liveness;
pub(crate) mod metrics;
pub mod psrpc;
pub(crate) mod registry;
pub mod rpc;
pub mod serve;
pub(crate) mod worker;
pub(crate) mod worker_error;

pub use crate::config::ServiceConfig;
pub use serve::{ServeError, serve};
