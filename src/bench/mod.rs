//! The capacity harness (`tessera bench`): how many rooms of a shape this node holds in
//! real time. It ramps the number of concurrent egresses in one process (each room's
//! participants decode real clips), measures each step (deadline misses, real-time
//! factor, CPU by thread class, memory, frame-loop stages), does the same with a plain
//! GStreamer CPU pipeline in the same run, and writes a JSON report, a Markdown summary,
//! an SVG plot and a cost profile for the service.

//!
//! [`probe`] and [`ramp`] need no GStreamer (the GPU run's `gpu_rooms` benchmark uses them
//! on machines without it); the rest does.

#[cfg(feature = "egress")]
pub(crate) mod baseline;
#[cfg(feature = "egress")]
mod harness;
pub mod probe;
pub mod ramp;
#[cfg(feature = "egress")]
pub mod report;
#[cfg(feature = "egress")]
mod rtmp;
#[cfg(feature = "egress")]
pub(crate) mod run;

#[cfg(feature = "egress")]
pub use harness::*;
#[cfg(feature = "egress")]
pub use run::Shape;
