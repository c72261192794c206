//! The GPU compositor of one egress: its output sizes (targets, each a canvas, an NV12
//! conversion and a readback ring), the participants' picture slots and still images,
//! text, and frames read back. Drawing a frame is in `draw.rs`.

use std::sync::Arc;
use std::time::Duration;

use super::error::{CompositorError, MAX_LAYERS, MAX_TARGETS};
use super::frame::Nv12Frame;
use super::gpu::GpuContext;
use super::pipelines::{CANVAS_FORMAT, Nv12Params, UNIFORM_STRIDE};
use super::readback::Ring;
use super::resources::{bind_group, layer_bind_group, texture, uniform_buffer, view};
use super::slots::{ImageSlot, Slot};
use super::text::TextState;
use super::timer::Timer;
use crate::layout::Image;
use crate::source::VideoFrame;

/// Staging buffers in flight: frame N is read back while N+1 and N+2 are drawn.
pub const RING_SIZE: usize = 3;
/// One output size: its canvas, NV12 conversion and readback ring.
pub(super) struct Target {
    pub(super) width: u32,
    pub(super) height: u32,
    /// Row stride of the NV12 frames (GStreamer's: width rounded up to 4).
    pub(super) stride: u32,
    pub(super) canvas_view: wgpu::TextureView,
    /// Canvas in, `nv12_buffer` out.
    pub(super) nv12_bind_group: wgpu::BindGroup,
    pub(super) nv12_buffer: wgpu::Buffer,
    pub(super) ring: Ring,
}

impl Target {
    fn new(gpu: &GpuContext, width: u32, height: u32) -> Result<Target, CompositorError> {
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(CompositorError::BadSize(width, height));
        }
        let p = gpu.pipelines();
        let stride = width.next_multiple_of(4);
        let nv12_len = stride as u64 * height as u64 * 3 / 2;
        let canvas = texture(
            gpu,
            width,
            height,
            CANVAS_FORMAT,
            wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::TEXTURE_BINDING,
        );
        let canvas_view = view(&canvas);
        let nv12_buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("nv12"),
            size: nv12_len,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let params = Nv12Params {
            width,
            height,
            stride_words: stride / 4,
            uv_offset_words: stride * height / 4,
        };
        let params_buffer = uniform_buffer(gpu, "nv12 params", bytemuck::bytes_of(&params));
        let nv12_bind_group = bind_group(
            gpu,
            &p.nv12_layout,
            &[
                wgpu::BindingResource::TextureView(&canvas_view),
                nv12_buffer.as_entire_binding(),
                params_buffer.as_entire_binding(),
            ],
        );
        Ok(Target {
            width,
            height,
            stride,
            canvas_view,
            nv12_bind_group,
            nv12_buffer,
            ring: Ring::new(gpu, RING_SIZE, nv12_len),
        })
    }
}

/// Composites frames of one egress, at one or more output sizes (targets) that share the
/// participants' uploaded pictures. Many compositors share one [`GpuContext`].
pub struct GpuCompositor {
    pub(super) gpu: Arc<GpuContext>,
    /// `[0]` is the main output; more come from [`GpuCompositor::add_target`].
    pub(super) targets: Vec<Target>,
    pub(super) uniforms: wgpu::Buffer,
    pub(super) sampler: wgpu::Sampler,
    /// Bind group with a dummy texture, for solid layers.
    pub(super) solid_bind_group: wgpu::BindGroup,
    pub(super) slots: Vec<Option<Slot>>,
    /// Still images by id.
    pub(super) images: std::collections::HashMap<u64, ImageSlot>,
    /// Fonts and glyph atlas, made on the first frame with text.
    pub(super) text: Option<TextState>,
    /// Samples GPU time per frame, where the device has timestamp queries.
    pub(super) timer: Option<Timer>,
    /// Whether its frames go out in the device's batched submissions, or alone.
    pub(super) batched: bool,
}

impl GpuCompositor {
    /// A compositor for `width` x `height` output (both even).
    pub fn new(
        gpu: Arc<GpuContext>,
        width: u32,
        height: u32,
    ) -> Result<GpuCompositor, CompositorError> {
        let main = Target::new(&gpu, width, height)?;
        let uniforms = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("layers"),
            size: UNIFORM_STRIDE * (MAX_LAYERS * MAX_TARGETS) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let sampler = gpu.device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("bilinear"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            ..Default::default()
        });
        let dummy = view(&texture(
            &gpu,
            1,
            1,
            CANVAS_FORMAT,
            wgpu::TextureUsages::TEXTURE_BINDING,
        ));
        let solid_bind_group = layer_bind_group(&gpu, &uniforms, &sampler, &dummy);
        Ok(GpuCompositor {
            timer: Timer::new(&gpu),
            batched: gpu.batching(),
            gpu,
            targets: vec![main],
            uniforms,
            sampler,
            solid_bind_group,
            slots: Vec::new(),
            images: Default::default(),
            text: None,
        })
    }

    /// Whether this compositor's frames go out in the device's batched submissions (the
    /// default, unless `TESSERA_GPU_BATCH=0`) or each in a submission of its own.
    pub fn set_batched(&mut self, batched: bool) {
        self.batched = batched;
    }

    /// Whether its frames go out in the device's batched submissions.
    pub fn batched(&self) -> bool {
        self.batched
    }

    /// Adds an output size drawn from the same pictures (an HLS rendition, a thumbnail);
    /// returns its target number for [`GpuCompositor::send_frames`].
    pub fn add_target(&mut self, width: u32, height: u32) -> Result<usize, CompositorError> {
        if self.targets.len() >= MAX_TARGETS {
            return Err(CompositorError::NoTarget(self.targets.len()));
        }
        self.targets.push(Target::new(&self.gpu, width, height)?);
        Ok(self.targets.len() - 1)
    }

    pub(super) fn target(&self, t: usize) -> Result<&Target, CompositorError> {
        self.targets.get(t).ok_or(CompositorError::NoTarget(t))
    }

    /// Size of target `t`.
    pub fn target_size(&self, t: usize) -> Result<(u32, u32), CompositorError> {
        self.target(t).map(|t| (t.width, t.height))
    }

    /// Output width (main target).
    pub fn width(&self) -> u32 {
        self.targets[0].width
    }

    /// Output height (main target).
    pub fn height(&self) -> u32 {
        self.targets[0].height
    }

    /// Whether a frame can be sent to the main target without receiving one first.
    pub fn can_send(&self) -> bool {
        self.can_send_to(0)
    }

    /// Whether a frame can be sent to target `t` without receiving one first.
    pub fn can_send_to(&self, t: usize) -> bool {
        self.targets.get(t).is_some_and(|t| t.ring.has_free())
    }

    /// Frames sent to the main target and not yet received.
    pub fn in_flight(&self) -> usize {
        self.in_flight_of(0)
    }

    /// Frames sent to target `t` and not yet received.
    pub fn in_flight_of(&self, t: usize) -> usize {
        self.targets.get(t).map_or(0, |t| t.ring.in_flight())
    }

    /// Mean GPU time of a frame (every target's passes), from timestamp queries on
    /// sampled frames; `None` when the device has none or nothing was timed yet.
    pub fn gpu_time_per_frame(&self) -> Option<Duration> {
        self.timer.as_ref().and_then(Timer::mean)
    }

    /// The oldest frame sent and not yet received. With `wait`, blocks until the GPU has
    /// finished it; without, returns `None` if it is not ready (or nothing is in flight).
    pub fn receive_frame(&mut self, wait: bool) -> Result<Option<Nv12Frame>, CompositorError> {
        self.receive_frame_from(0, wait)
    }

    /// As [`GpuCompositor::receive_frame`], for target `t`.
    pub fn receive_frame_from(
        &mut self,
        t: usize,
        wait: bool,
    ) -> Result<Option<Nv12Frame>, CompositorError> {
        let target = self
            .targets
            .get_mut(t)
            .ok_or(CompositorError::NoTarget(t))?;
        let Some((data, pts)) = target.ring.receive(&self.gpu, wait)? else {
            return Ok(None);
        };
        Ok(Some(Nv12Frame {
            data,
            stride: target.stride,
            width: target.width,
            height: target.height,
            pts,
        }))
    }

    /// `slot`, (re)made for the frame's format and size if it differs.
    pub(super) fn ensure_slot(&mut self, slot: usize, frame: &VideoFrame) -> &mut Slot {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        if !self.slots[slot].as_ref().is_some_and(|s| s.fits(frame)) {
            self.slots[slot] = Some(Slot::new(&self.gpu, frame, &self.uniforms, &self.sampler));
        }
        self.slots[slot].as_mut().expect("slot was just filled")
    }

    /// Uploads the frame's planes into `slot` unless they are already there; returns
    /// whether the slot needs converting.
    pub(super) fn upload(&mut self, slot: usize, frame: &VideoFrame) -> bool {
        let queue = self.gpu.queue.clone();
        self.ensure_slot(slot, frame).upload(&queue, frame)
    }

    /// Uploads `image` unless it is already on the GPU.
    pub(super) fn upload_image(&mut self, image: &Image) {
        if let Some(slot) = self.images.get_mut(&image.id) {
            slot.used = true;
            return;
        }
        let slot = ImageSlot::new(&self.gpu, image, &self.uniforms, &self.sampler);
        self.images.insert(image.id, slot);
    }
}
