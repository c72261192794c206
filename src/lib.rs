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
//! - [`service`] is the egress worker behind livekit-server (psrpc over Redis), set up by
//!   [`config`], the one reader of its YAML configuration file;
//! - [`bench`] measures how many egresses this node holds in real time.
//!
//! The `egress` feature (on by default) is the egress itself, everything that needs
//! GStreamer or a room: the modules `egress`, `encode`, `launch`, `service`, `config`, the
//! LiveKit, web and clip sources, the GStreamer outputs and the `tessera` binary. Without
//! it the compositors, layouts, requests and storage build alone (the GPU benchmark on a
//! machine without GStreamer uses that).

pub mod async_thread;
pub mod audio;
pub mod backoff;
pub mod bench;
pub mod capacity;
pub mod captions;
pub mod color;
pub mod compositor;
#[cfg(feature = "egress")]
pub mod config;
#[cfg(feature = "egress")]
pub mod egress;
#[cfg(feature = "egress")]
pub mod encode;
#[cfg(all(test, feature = "egress"))]
mod fuzz;
pub mod go_duration;
pub mod info;
#[cfg(feature = "egress")]
pub mod launch;
pub mod layout;
#[cfg(feature = "egress")]
pub mod output;
pub mod panics;
pub mod request;
pub mod secret;
#[cfg(feature = "egress")]
pub mod service;
pub mod source;
pub mod storage;
mod switch;
