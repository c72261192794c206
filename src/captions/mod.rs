//! Captions from the room's transcriptions: data packets reassembled into segment updates
//! ([`transcript`]), segments placed on the recording's clock as cues ([`cues`]), and
//! those cues written as WebVTT ([`webvtt`]: the sidecar file and HLS subtitle segments).
//! Pure: the LiveKit session hands in packets, the egress the media times.

pub mod cues;
pub mod transcript;
pub mod webvtt;

pub use cues::{Captions, Cue};
pub use transcript::{Assembler, Heard, Speaker};
