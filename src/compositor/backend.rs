//! Which compositor draws an egress's frames: the GPU one on a real GPU, the CPU one
//! where the only adapter is a software rasteriser (or there is none). Both take the same
//! scenes and give the same NV12 frames; `auto` picks by the adapter.

use std::sync::Arc;
use std::time::Duration;

use super::cpu::CpuCompositor;
use super::error::CompositorError;
use super::frame::Nv12Frame;
use super::gpu::{GpuContext, GpuError};
use super::gpu_compositor::GpuCompositor;
use super::layers::Scene;
use crate::layout::Color;

/// The compositor asked for (`--compositor`, `TESSERA_COMPOSITOR`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The GPU compositor on a hardware adapter; the CPU compositor when the only
    /// adapter is a software one (lavapipe, llvmpipe) or there is none. With
    /// `TESSERA_GPU` naming an adapter, that adapter, whatever it is.
    #[default]
    Auto,
    /// The GPU compositor on the best adapter, software ones included.
    Gpu,
    /// The CPU compositor, no GPU device opened.
    Cpu,
}

/// The compositor an egress gets: the shared GPU device, or the CPU.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The GPU compositor on this device (shared by every egress of the process).
    Gpu(Arc<GpuContext>),
    /// The CPU compositor.
    Cpu,
}

impl Backend {
    /// Opens the backend `choice` names (see [`BackendChoice`]).
    pub fn open(choice: BackendChoice) -> Result<Backend, GpuError> {
        let named = std::env::var("TESSERA_GPU").is_ok_and(|s| !s.is_empty());
        match choice {
            BackendChoice::Cpu => Ok(Backend::Cpu),
            BackendChoice::Gpu => GpuContext::new().map(Backend::Gpu),
            BackendChoice::Auto if named => GpuContext::new().map(Backend::Gpu),
            BackendChoice::Auto => match GpuContext::new() {
                Ok(gpu) if !gpu.is_software() => Ok(Backend::Gpu(gpu)),
                Ok(gpu) => {
                    tracing::info!(
                        adapter = %gpu.info.name,
                        "only a software GPU adapter: compositing on the CPU (--compositor gpu to use it)"
                    );
                    Ok(Backend::Cpu)
                }
                Err(e) => {
                    tracing::info!(error = %e, "no GPU adapter: compositing on the CPU");
                    Ok(Backend::Cpu)
                }
            },
        }
    }

    /// A short description: `gpu: NAME (KIND)` or `cpu`.
    pub fn describe(&self) -> String {
        match self {
            Backend::Gpu(g) => format!("gpu: {} ({:?})", g.info.name, g.info.device_type),
            Backend::Cpu => "cpu".to_owned(),
        }
    }

    /// A compositor for `width` x `height` output.
    pub fn compositor(&self, width: u32, height: u32) -> Result<Compositor, CompositorError> {
        Ok(match self {
            Backend::Gpu(g) => {
                Compositor::Gpu(Box::new(GpuCompositor::new(g.clone(), width, height)?))
            }
            Backend::Cpu => Compositor::Cpu(Box::new(CpuCompositor::new(width, height)?)),
        })
    }
}

/// A compositor of either backend, with their common API.
pub enum Compositor {
    /// On the GPU.
    Gpu(Box<GpuCompositor>),
    /// On the CPU.
    Cpu(Box<CpuCompositor>),
}

impl Compositor {
    /// Adds an output size; returns its target number.
    pub fn add_target(&mut self, width: u32, height: u32) -> Result<usize, CompositorError> {
        match self {
            Compositor::Gpu(c) => c.add_target(width, height),
            Compositor::Cpu(c) => c.add_target(width, height),
        }
    }

    /// Size of target `t`.
    pub fn target_size(&self, t: usize) -> Result<(u32, u32), CompositorError> {
        match self {
            Compositor::Gpu(c) => c.target_size(t),
            Compositor::Cpu(c) => c.target_size(t),
        }
    }

    /// Whether a frame can be sent to target `t` without receiving one first.
    pub fn can_send_to(&self, t: usize) -> bool {
        match self {
            Compositor::Gpu(c) => c.can_send_to(t),
            Compositor::Cpu(c) => c.can_send_to(t),
        }
    }

    /// Frames sent to target `t` and not yet received.
    pub fn in_flight_of(&self, t: usize) -> usize {
        match self {
            Compositor::Gpu(c) => c.in_flight_of(t),
            Compositor::Cpu(c) => c.in_flight_of(t),
        }
    }

    /// Draws each target's scene over `background` and queues its frame.
    pub fn send_frames(
        &mut self,
        background: Color,
        frames: &[(usize, &Scene<'_>)],
        pts: Duration,
    ) -> Result<(), CompositorError> {
        match self {
            Compositor::Gpu(c) => c.send_frames(background, frames, pts),
            Compositor::Cpu(c) => c.send_frames(background, frames, pts),
        }
    }

    /// The oldest frame of target `t` not yet received; with `wait`, waits for the GPU.
    pub fn receive_frame_from(
        &mut self,
        t: usize,
        wait: bool,
    ) -> Result<Option<Nv12Frame>, CompositorError> {
        match self {
            Compositor::Gpu(c) => c.receive_frame_from(t, wait),
            Compositor::Cpu(c) => c.receive_frame_from(t),
        }
    }

    /// Mean GPU time per frame (GPU compositor with timestamp queries only).
    pub fn gpu_time_per_frame(&self) -> Option<Duration> {
        match self {
            Compositor::Gpu(c) => c.gpu_time_per_frame(),
            Compositor::Cpu(_) => None,
        }
    }
}
