//! A track egress's view of its track: the frames as received (no decoding), or its
//! audio decoded, plus the publisher's mute changes.

use std::sync::mpsc::Sender;

pub use super::decode::Codec;

/// One received frame, as the publisher encoded it.
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    /// Its codec.
    pub codec: Codec,
    /// One access unit (H.264 Annex B), VP8/VP9 frame, AV1 temporal unit or Opus packet.
    pub data: Vec<u8>,
    /// RTP time, extended past the 32-bit wrap.
    pub rtp: u64,
    /// RTP clock rate (90 kHz video, 48 kHz Opus).
    pub clock_rate: u32,
    /// A key frame (always true for audio).
    pub keyframe: bool,
    /// The first frame after a gap that could not be repaired.
    pub discont: bool,
}

/// What a tap delivers.
#[derive(Clone, Debug)]
pub enum Tapped {
    /// A received frame (`TapMode::Encoded`).
    Frame(EncodedFrame),
    /// Decoded mono samples at 48 kHz, the first at session sample `at` (`TapMode::Pcm`).
    Pcm {
        /// Sample index on the session clock.
        at: u64,
        /// Mono f32 samples.
        samples: Vec<f32>,
    },
    /// The publisher muted (true) or unmuted (false) the track.
    Muted(bool),
}

/// How a tapped track is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapMode {
    /// Frames as received: nothing is decoded.
    Encoded,
    /// Audio decoded to samples.
    Pcm,
}

/// Where a track egress takes its track from the session.
#[derive(Clone, Debug)]
pub struct Tap {
    /// The track (`TR_…`).
    pub track: String,
    /// Frames or samples.
    pub mode: TapMode,
    /// Where they go.
    pub tx: Sender<Tapped>,
}
