//! Counters a running egress keeps for whoever measures it (the capacity harness): frames,
//! deadline misses, and wall time per stage of the frame loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The stages of one tick of the frame loop, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Taking the participants' newest pictures (a decoder's output, or synthetic).
    Source,
    /// Layers, upload and composite submission to the GPU.
    Composite,
    /// Waiting for NV12 frames to come back from the GPU.
    Readback,
    /// Handing frames to the encoder (blocks when the encoder is behind).
    Push,
    /// Mixing and pushing audio.
    Audio,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 5] = [
        Stage::Source,
        Stage::Composite,
        Stage::Readback,
        Stage::Push,
        Stage::Audio,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Source => "source",
            Stage::Composite => "composite",
            Stage::Readback => "readback",
            Stage::Push => "push_to_encoder",
            Stage::Audio => "audio",
        }
    }
}

/// Shared counters of one egress.
#[derive(Debug, Default)]
pub struct EgressStats {
    ticks: AtomicU64,
    late: AtomicU64,
    media_ns: AtomicU64,
    stage_ns: [AtomicU64; 5],
    /// Mean GPU time per composited frame, 0 when not measured.
    gpu_ns: AtomicU64,
}

impl EgressStats {
    /// Counts a tick; `late` when it started more than a frame after its deadline.
    pub fn tick(&self, late: bool, media: Duration) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
        if late {
            self.late.fetch_add(1, Ordering::Relaxed);
        }
        self.media_ns
            .store(media.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Adds wall time to a stage.
    pub fn add(&self, stage: Stage, d: Duration) {
        self.stage_ns[stage as usize].fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Ticks so far.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Late ticks so far.
    pub fn late(&self) -> u64 {
        self.late.load(Ordering::Relaxed)
    }

    /// Media time produced so far.
    pub fn media(&self) -> Duration {
        Duration::from_nanos(self.media_ns.load(Ordering::Relaxed))
    }

    /// Records the compositor's mean GPU time per frame (from timestamp queries).
    pub fn set_gpu_time(&self, per_frame: Duration) {
        self.gpu_ns
            .store(per_frame.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The compositor's mean GPU time per frame, when the device could measure it.
    pub fn gpu_time(&self) -> Option<Duration> {
        let ns = self.gpu_ns.load(Ordering::Relaxed);
        (ns > 0).then(|| Duration::from_nanos(ns))
    }

    /// Wall time spent in a stage so far.
    pub fn stage(&self, stage: Stage) -> Duration {
        Duration::from_nanos(self.stage_ns[stage as usize].load(Ordering::Relaxed))
    }
}
