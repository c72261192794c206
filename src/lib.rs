//! tessera: a GPU-composited, LiveKit-compatible egress.
//!
//! The crate is laid out as a pure core with IO at the edges:
//! - [`request`] turns a LiveKit request into an [`request::EgressPlan`] (no IO);
//! - [`layout`] reads layout template files and computes tile geometry (no GPU);
//! - [`source`] produces participants' media (synthetic today, LiveKit later);
//! - [`audio`] mixes participants' audio into fixed blocks;
//! - [`compositor`] owns the shared wgpu device and composes frames to NV12;
//! - [`encode`] and [`output`] build the single GStreamer encode and its outputs;
//! - [`egress`] runs one egress and reports its `EgressInfo`;
//! - [`bench`] measures how many egresses this node holds in real time.

pub mod audio;
pub mod bench;
pub mod color;
pub mod compositor;
#[cfg(feature = "gst")]
pub mod egress;
#[cfg(feature = "gst")]
pub mod encode;
#[cfg(all(test, feature = "gst"))]
mod fuzz;
pub mod go_duration;
pub mod info;
#[cfg(feature = "gst")]
pub mod launch;
pub mod layout;
pub mod output;
pub mod panics;
pub mod request;
#[cfg(feature = "gst")]
pub mod service;
pub mod source;
pub mod storage;
