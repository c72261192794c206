//! A ring of staging buffers: each frame's NV12 is copied into the next free one and
//! mapped asynchronously; frames are received in the order they were sent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use super::error::CompositorError;
use super::gpu::GpuContext;

const PENDING: u8 = 0;
const MAPPED: u8 = 1;
const FAILED: u8 = 2;

/// How long a map callback may take to be run by another thread's poll once the GPU has
/// finished the copy.
const CALLBACK_GRACE: Duration = Duration::from_secs(2);

struct InFlight {
    slot: usize,
    pts: Duration,
    submission: wgpu::SubmissionIndex,
    state: Arc<AtomicU8>,
}

pub(super) struct Ring {
    buffers: Vec<wgpu::Buffer>,
    free: Vec<usize>,
    in_flight: VecDeque<InFlight>,
    /// Copied into by the command buffer being recorded, not yet submitted.
    staged: Option<(usize, Duration)>,
}

impl Ring {
    pub(super) fn new(gpu: &GpuContext, count: usize, len: u64) -> Ring {
        let buffers = (0..count)
            .map(|_| {
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size: len,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        Ring {
            buffers,
            free: (0..count).rev().collect(),
            in_flight: VecDeque::new(),
            staged: None,
        }
    }

    pub(super) fn has_free(&self) -> bool {
        !self.free.is_empty()
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Records a copy of `source` into a free staging buffer; the caller submits
    /// `encoder` and then calls [`Ring::map_staged`]. The caller checked `has_free`.
    pub(super) fn stage(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        source: &wgpu::Buffer,
        pts: Duration,
    ) {
        let slot = self.free.pop().expect("caller checked has_free");
        encoder.copy_buffer_to_buffer(source, 0, &self.buffers[slot], 0, source.size());
        self.staged = Some((slot, pts));
    }

    /// Starts mapping the buffer staged before `submission`.
    pub(super) fn map_staged(&mut self, submission: &wgpu::SubmissionIndex) {
        let Some((slot, pts)) = self.staged.take() else {
            return;
        };
        let state = Arc::new(AtomicU8::new(PENDING));
        let done = state.clone();
        self.buffers[slot].map_async(wgpu::MapMode::Read, .., move |result| {
            done.store(
                if result.is_ok() { MAPPED } else { FAILED },
                Ordering::Release,
            );
        });
        self.in_flight.push_back(InFlight {
            slot,
            pts,
            submission: submission.clone(),
            state,
        });
    }

    /// After a wait for the submission: its map callback has run or is about to. Other
    /// threads poll the same device (every egress of the process shares it), and the
    /// callback fires on whichever poll collects it, which may still be running it on
    /// another thread when this one returns; so poll and yield until the state is set.
    fn await_callback(gpu: &GpuContext, state: &AtomicU8) -> Result<(), CompositorError> {
        let deadline = std::time::Instant::now() + CALLBACK_GRACE;
        loop {
            gpu.device
                .poll(wgpu::PollType::Poll)
                .map_err(|e| CompositorError::Readback(e.to_string()))?;
            match state.load(Ordering::Acquire) {
                MAPPED => return Ok(()),
                FAILED => {
                    return Err(CompositorError::Readback(
                        "mapping the staging buffer failed".into(),
                    ));
                }
                _ if std::time::Instant::now() >= deadline => {
                    return Err(CompositorError::Readback(format!(
                        "staging buffer not mapped {} ms after the GPU finished",
                        CALLBACK_GRACE.as_millis()
                    )));
                }
                _ => std::thread::yield_now(),
            }
        }
    }

    /// The oldest frame's bytes, if it is ready (or, with `wait`, once it is).
    pub(super) fn receive(
        &mut self,
        gpu: &GpuContext,
        wait: bool,
    ) -> Result<Option<(Vec<u8>, Duration)>, CompositorError> {
        let Some(front) = self.in_flight.front() else {
            return Ok(None);
        };
        let poll = if wait {
            wgpu::PollType::Wait {
                submission_index: Some(front.submission.clone()),
                timeout: None,
            }
        } else {
            wgpu::PollType::Poll
        };
        gpu.device
            .poll(poll)
            .map_err(|e| CompositorError::Readback(e.to_string()))?;
        match front.state.load(Ordering::Acquire) {
            PENDING if !wait => return Ok(None),
            PENDING => Self::await_callback(gpu, &front.state)?,
            FAILED => {
                return Err(CompositorError::Readback(
                    "mapping the staging buffer failed".into(),
                ));
            }
            _ => {}
        }
        let done = self.in_flight.pop_front().expect("front exists");
        let buffer = &self.buffers[done.slot];
        let data = {
            let view = buffer
                .get_mapped_range(..)
                .map_err(|e| CompositorError::Readback(e.to_string()))?;
            view.to_vec()
        };
        buffer.unmap();
        self.free.push(done.slot);
        Ok(Some((data, done.pts)))
    }
}
