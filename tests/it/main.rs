//! Tessera end to end: the real `tessera` binary (and the worker) against real services on
//! loopback — livekit-server with Python SDK publishers, Chromium, Redis, MinIO,
//! fake-gcs-server, Azurite, nginx-rtmp, SRT — with every output checked the way a user
//! would (ffprobe, decoded pixels and tones, playlists parsed, objects read back).
//!
//! One binary, one module per area. Tests that run in real time and check timing take
//! [`common::exclusive`]; the rest take [`common::shared`] and may run two at a time.

mod common;

mod bad_input;
mod bench;
mod bundle;
mod captions;
mod encoding_options;
mod file_types;
mod hls;
mod images;
mod kill;
mod layout_files;
mod live_layout;
mod livekit_egress_types;
mod livekit_room;
mod record_room;
mod service;
mod stop_signals;
mod storage_gcs_azure;
mod storage_s3;
mod store_services;
mod streams;
mod web_egress;
