//! The GPU compositor: participants' YUV pictures in, one NV12 frame per tick out.
//!
//! Per frame: each new picture is uploaded as YUV planes into its participant's slot and
//! converted once to an RGBA texture on the GPU (`yuv_to_rgba.wgsl`); the layers (cell
//! backgrounds, pictures, scaled and cropped) are drawn into an RGBA canvas
//! (`composite.wgsl`); a compute pass converts the canvas to NV12 (`nv12.wgsl`), copied
//! into the next staging buffer of a ring and mapped asynchronously. The caller reads
//! frames back later, so the GPU never waits for the CPU (`send_frame` /
//! `receive_frame`, as rav1e's encoder API).

pub mod backend;
pub mod cpu;
mod draw;
pub mod gpu;
mod pipelines;
pub mod preview;
mod readback;
pub mod scene;
mod slots;
pub mod text;
mod timer;

use std::sync::Arc;
use std::time::Duration;

pub use backend::{Backend, BackendChoice, Compositor};
pub use cpu::CpuCompositor;
pub use gpu::{GpuContext, GpuError};
use pipelines::CANVAS_FORMAT;
use readback::Ring;
use timer::Timer;

use crate::layout::{Color, Image, Rect};
use crate::source::VideoFrame;
use slots::{ImageSlot, Slot};
use text::TextState;
pub use text::{Anchor, Text, TextBox};

/// Staging buffers in flight: frame N is read back while N+1 and N+2 are drawn.
pub const RING_SIZE: usize = 3;
/// Uniform slots are this far apart (the WebGPU minimum uniform offset alignment).
const UNIFORM_STRIDE: u64 = 256;
/// Most layers one frame may draw (cells and pictures together): a 16x16 grid, the most a
/// layout rule allows, needs up to 768 (a picture and two bars per cell).
pub const MAX_LAYERS: usize = 1024;
/// Most output sizes one compositor draws (the main frame, HLS renditions, thumbnails).
pub const MAX_TARGETS: usize = 8;

/// Why a frame could not be composited.
#[derive(Debug, thiserror::Error)]
pub enum CompositorError {
    /// Every staging buffer is waiting to be read: call `receive_frame` first.
    #[error("readback ring is full; receive a frame first")]
    RingFull,
    /// More layers than [`MAX_LAYERS`].
    #[error("too many layers: {0} (max {MAX_LAYERS})")]
    TooManyLayers(usize),
    /// The output size is unusable.
    #[error("output size {0}x{1} must be even and non-zero")]
    BadSize(u32, u32),
    /// Mapping a staging buffer failed (device lost).
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// Text could not be prepared (the glyph atlas is full).
    #[error("text: {0}")]
    Text(String),
    /// No such target, or more than [`MAX_TARGETS`].
    #[error("no output target {0} (at most {MAX_TARGETS})")]
    NoTarget(usize),
}

/// One NV12 frame read back from the GPU, laid out as GStreamer's default NV12.
#[derive(Debug)]
pub struct Nv12Frame {
    /// Y plane (`stride` x height) then interleaved CbCr (`stride` x height/2).
    pub data: Vec<u8>,
    /// Bytes per row of both planes (width rounded up to 4).
    pub stride: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Presentation time given to `send_frame`.
    pub pts: Duration,
}

impl Nv12Frame {
    /// The frame as packed 8-bit RGB (BT.709 limited range).
    pub fn to_rgb(&self) -> Vec<u8> {
        let (w, h, s) = (
            self.width as usize,
            self.height as usize,
            self.stride as usize,
        );
        crate::color::nv12_to_rgb(&self.data, w, h, s)
    }
}

impl Nv12Frame {
    /// The Y, Cb, Cr bytes at pixel (x, y).
    pub fn yuv_at(&self, x: u32, y: u32) -> [u8; 3] {
        let s = self.stride as usize;
        let uv = s * self.height as usize + (y as usize / 2) * s + (x as usize / 2) * 2;
        [
            self.data[y as usize * s + x as usize],
            self.data[uv],
            self.data[uv + 1],
        ]
    }
}

/// What one layer draws.
#[derive(Clone, Copy, Debug)]
pub enum LayerContent<'a> {
    /// A solid colour (alpha below 1 blends over what is under it).
    Solid(Color),
    /// A picture; `slot` names the texture set that holds it (one per participant).
    Picture {
        /// Texture slot (stable per participant, so textures are reused).
        slot: usize,
        /// The picture.
        frame: &'a VideoFrame,
        /// Part of the picture to draw, 0..1.
        src: Rect,
    },
    /// A still image (a background), blended by its alpha.
    Image {
        /// The image (uploaded once per `id`).
        image: &'a Image,
        /// Part of the image to draw, 0..1.
        src: Rect,
    },
}

/// A rounded outline a layer is cut to, with an optional border inside its edge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    /// The outline's rectangle (canvas pixels); the layer is drawn only inside it.
    pub rect: Rect,
    /// Corner radius, pixels.
    pub radius: f32,
    /// Border width inside the edge, pixels (0: none).
    pub border: f32,
    /// Border colour.
    pub border_color: Color,
}

/// A rectangle of the canvas and what fills it; layers are drawn in order.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    /// Destination in canvas pixels.
    pub dst: Rect,
    /// Content.
    pub content: LayerContent<'a>,
    /// Rounded corners and border; `None` is a plain (cheaper, unblended) rectangle.
    pub shape: Option<Shape>,
}

impl<'a> Layer<'a> {
    /// A plain rectangle of `content`.
    pub fn new(dst: Rect, content: LayerContent<'a>) -> Layer<'a> {
        Layer {
            dst,
            content,
            shape: None,
        }
    }
}

/// Everything one target draws in a frame: layers in order, and texts placed between
/// them.
#[derive(Clone, Debug, Default)]
pub struct Scene<'a> {
    /// Layers, bottom first.
    pub layers: Vec<Layer<'a>>,
    /// Texts (each drawn after `after` layers).
    pub texts: Vec<Text>,
}

impl<'a> From<Vec<Layer<'a>>> for Scene<'a> {
    fn from(layers: Vec<Layer<'a>>) -> Scene<'a> {
        Scene {
            layers,
            texts: Vec::new(),
        }
    }
}

/// Bytes of one layer's uniform block, as the composite bind group layout declares it.
pub(super) const LAYER_UNIFORM_SIZE: u64 = size_of::<LayerUniform>() as u64;

/// The uniform block of `composite.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LayerUniform {
    dst: [f32; 4],
    src: [f32; 4],
    color: [f32; 4],
    /// The shape's rectangle in pixels: x0, y0, x1, y1.
    shape: [f32; 4],
    border_color: [f32; 4],
    /// radius, border width (pixels), unused, unused.
    params: [f32; 4],
}

/// The uniform block of `nv12.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Nv12Params {
    width: u32,
    height: u32,
    stride_words: u32,
    uv_offset_words: u32,
}

/// The uniform block of `yuv_to_rgba.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ConvertParams {
    mode: u32,
    width: u32,
    height: u32,
    row_words: u32,
    u_offset: u32,
    v_offset: u32,
    _pad: [u32; 2],
}

/// One output size: its canvas, NV12 conversion and readback ring.
struct Target {
    width: u32,
    height: u32,
    /// Row stride of the NV12 frames (GStreamer's: width rounded up to 4).
    stride: u32,
    canvas_view: wgpu::TextureView,
    /// Canvas in, `nv12_buffer` out.
    nv12_bind_group: wgpu::BindGroup,
    nv12_buffer: wgpu::Buffer,
    ring: Ring,
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
    gpu: Arc<GpuContext>,
    /// `[0]` is the main output; more come from [`GpuCompositor::add_target`].
    targets: Vec<Target>,
    uniforms: wgpu::Buffer,
    sampler: wgpu::Sampler,
    /// Bind group with a dummy texture, for solid layers.
    solid_bind_group: wgpu::BindGroup,
    slots: Vec<Option<Slot>>,
    /// Still images by id.
    images: std::collections::HashMap<u64, ImageSlot>,
    /// Fonts and glyph atlas, made on the first frame with text.
    text: Option<TextState>,
    /// Samples GPU time per frame, where the device has timestamp queries.
    timer: Option<Timer>,
}

fn texture(
    gpu: &GpuContext,
    width: u32,
    height: u32,
    format: wgpu::TextureFormat,
    usage: wgpu::TextureUsages,
) -> wgpu::Texture {
    gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("tessera"),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage,
        view_formats: &[],
    })
}

fn uniform_buffer(gpu: &GpuContext, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.len() as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.queue.write_buffer(&buffer, 0, bytes);
    buffer
}

fn view(t: &wgpu::Texture) -> wgpu::TextureView {
    t.create_view(&Default::default())
}

/// Bind group entries in binding order (0, 1, ...).
fn bind_group(
    gpu: &GpuContext,
    layout: &wgpu::BindGroupLayout,
    resources: &[wgpu::BindingResource<'_>],
) -> wgpu::BindGroup {
    let entries: Vec<_> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: r.clone(),
        })
        .collect();
    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("tessera"),
        layout,
        entries: &entries,
    })
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
        let solid_bind_group = Self::layer_bind_group(&gpu, &uniforms, &sampler, &dummy);
        Ok(GpuCompositor {
            timer: Timer::new(&gpu),
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

    /// Adds an output size drawn from the same pictures (an HLS rendition, a thumbnail);
    /// returns its target number for [`GpuCompositor::send_frames`].
    pub fn add_target(&mut self, width: u32, height: u32) -> Result<usize, CompositorError> {
        if self.targets.len() >= MAX_TARGETS {
            return Err(CompositorError::NoTarget(self.targets.len()));
        }
        self.targets.push(Target::new(&self.gpu, width, height)?);
        Ok(self.targets.len() - 1)
    }

    fn target(&self, t: usize) -> Result<&Target, CompositorError> {
        self.targets.get(t).ok_or(CompositorError::NoTarget(t))
    }

    /// Size of target `t`.
    pub fn target_size(&self, t: usize) -> Result<(u32, u32), CompositorError> {
        self.target(t).map(|t| (t.width, t.height))
    }

    fn layer_bind_group(
        gpu: &GpuContext,
        uniforms: &wgpu::Buffer,
        sampler: &wgpu::Sampler,
        picture: &wgpu::TextureView,
    ) -> wgpu::BindGroup {
        let p = gpu.pipelines();
        bind_group(
            gpu,
            &p.layer_layout,
            &[
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: uniforms,
                    offset: 0,
                    size: wgpu::BufferSize::new(LAYER_UNIFORM_SIZE),
                }),
                wgpu::BindingResource::TextureView(picture),
                wgpu::BindingResource::Sampler(sampler),
            ],
        )
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
}
