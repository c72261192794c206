//! GPU time per frame from timestamp queries: written at the first and last pass of a
//! sampled frame, resolved and mapped asynchronously (the CPU never waits for it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use super::gpu::GpuContext;

/// One frame in this many is timed.
const EVERY: u32 = 15;
const IDLE: u8 = 0;
const PENDING: u8 = 1;
const MAPPED: u8 = 2;
const FAILED: u8 = 3;

/// Times sampled frames on the GPU.
pub(super) struct Timer {
    pub(super) set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    state: Arc<AtomicU8>,
    period_ns: f64,
    frames: u32,
    total: Duration,
    samples: u32,
}

impl Timer {
    /// A timer, if the device can write timestamps.
    pub(super) fn new(gpu: &GpuContext) -> Option<Timer> {
        if !gpu.timestamps {
            return None;
        }
        let buffer = |usage| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: 16,
                usage,
                mapped_at_creation: false,
            })
        };
        Some(Timer {
            set: gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("frame time"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            read: buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
            state: Arc::new(AtomicU8::new(IDLE)),
            period_ns: gpu.queue.get_timestamp_period() as f64,
            frames: 0,
            total: Duration::ZERO,
            samples: 0,
        })
    }

    /// Collects a finished sample; returns whether this frame should be timed.
    pub(super) fn begin_frame(&mut self) -> bool {
        match self.state.load(Ordering::Acquire) {
            MAPPED => {
                if let Ok(view) = self.read.get_mapped_range(..) {
                    let t0 = u64::from_le_bytes(view[0..8].try_into().expect("8 bytes"));
                    let t1 = u64::from_le_bytes(view[8..16].try_into().expect("8 bytes"));
                    drop(view);
                    if t1 > t0 {
                        self.total +=
                            Duration::from_nanos(((t1 - t0) as f64 * self.period_ns) as u64);
                        self.samples += 1;
                    }
                }
                self.read.unmap();
                self.state.store(IDLE, Ordering::Release);
            }
            FAILED => self.state.store(IDLE, Ordering::Release),
            _ => {}
        }
        self.frames += 1;
        self.state.load(Ordering::Acquire) == IDLE && self.frames.is_multiple_of(EVERY)
    }

    /// Records the resolve and copy of a timed frame's two timestamps.
    pub(super) fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.resolve_query_set(&self.set, 0..2, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.read, 0, 16);
    }

    /// Starts reading a timed frame's timestamps once it is submitted.
    pub(super) fn submitted(&self) {
        self.state.store(PENDING, Ordering::Release);
        let state = self.state.clone();
        self.read.map_async(wgpu::MapMode::Read, .., move |r| {
            state.store(if r.is_ok() { MAPPED } else { FAILED }, Ordering::Release);
        });
    }

    /// Mean GPU time of the timed frames.
    pub(super) fn mean(&self) -> Option<Duration> {
        (self.samples > 0).then(|| self.total / self.samples)
    }
}
