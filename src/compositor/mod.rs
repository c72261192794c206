//! The GPU compositor: participants' YUV pictures in, one NV12 frame per tick out.
//!
//! Per frame: each new picture is uploaded as YUV planes into its participant's slot and
//! converted once to an RGBA texture on the GPU (`yuv_to_rgba.wgsl`); the layers (cell
//! backgrounds, pictures, scaled and cropped) are drawn into an RGBA canvas
//! (`composite.wgsl`); a compute pass converts the canvas to NV12 (`nv12.wgsl`), copied
//! into the next staging buffer of a ring and mapped asynchronously. The caller reads
//! frames back later, so the GPU never waits for the CPU (`send_frame` /
//! `receive_frame`, as rav1e's encoder API).

pub(crate) mod backend;
mod batch;
mod captions;
pub(crate) mod cpu;
mod draw;
mod error;
mod frame;
pub(crate) mod gpu;
mod gpu_compositor;
mod layers;
mod pipelines;
pub mod preview;
mod readback;
mod resources;
pub mod scene;
mod slots;
pub(crate) mod text;
mod timer;

pub use backend::{Backend, BackendChoice, Compositor};
pub use captions::{CaptionLook, add_captions};
pub use cpu::CpuCompositor;
pub use error::{CompositorError, MAX_LAYERS, MAX_TARGETS};
pub use frame::Nv12Frame;
pub use gpu::{GpuContext, GpuError};
pub use gpu_compositor::{GpuCompositor, RING_SIZE};
pub use layers::{Layer, LayerContent, Scene, Shape};
pub use text::{Anchor, Text, TextBox};
