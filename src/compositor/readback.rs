//! A ring of staging buffers: each frame's NV12 is copied into the next free one and
//! mapped asynchronously; frames are received in the order they were sent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use super::{CompositorError, GpuContext};

const PENDING: u8 = 0;
const MAPPED: u8 = 1;
const FAILED: u8 = 2;

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
            PENDING => {
                // The submission is done; the map callback runs on the next poll.
                gpu.device
                    .poll(wgpu::PollType::Poll)
                    .map_err(|e| CompositorError::Readback(e.to_string()))?;
                if front.state.load(Ordering::Acquire) != MAPPED {
                    return Err(CompositorError::Readback(
                        "staging buffer not mapped after the GPU finished".into(),
                    ));
                }
            }
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
