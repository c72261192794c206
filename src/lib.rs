//! tessera: a GPU-composited, LiveKit-compatible egress.
//!
//! The crate is laid out as a pure core with IO at the edges:
//! - [`request`] turns a LiveKit request into a plan ([`request::Job`]) (no IO);
//! - [`layout`] reads layout template files and computes tile geometry (no GPU);
//! - [`source`] produces participants' media: a synthetic room, a real LiveKit room
//!   (WebRTC with str0m, GStreamer decoders), a web page in Chromium, or decoded clips;
//! - [`audio`] mixes participants' audio into fixed blocks;
//! - [`compositor`] composes frames to NV12 on the GPU (wgpu) or the CPU;
//! - [`encode`] and [`output`] build the single GStreamer encode and its outputs;
//! - [`storage`] uploads finished files to S3, GCS or Azure;
//! - [`egress`] runs one egress (its frame loop, its end) and reports its `EgressInfo`;
//! - [`launch`] opens a job's source and runs it to its end (the CLI and the worker);
//! - [`service`] is the egress worker behind livekit-server (psrpc over Redis);
//! - [`bench`] measures how many egresses this node holds in real time.
//!
//! The `gst` feature (on by default) builds everything that needs GStreamer: `egress`,
//! `encode`, `launch`, `service`, the LiveKit, web and clip sources and the GStreamer
//! outputs. Without it the compositor, layouts, requests and storage build alone (the GPU
//! benchmarks use that).

pub mod async_thread;
pub mod audio;
pub mod backoff;
pub mod bench;
pub mod capacity;
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
pub mod secret;
#[cfg(feature = "gst")]
pub mod service;
pub mod source;
pub mod storage;
