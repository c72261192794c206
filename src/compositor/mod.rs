//! The GPU compositor: participants' YUV pictures in, one NV12 frame per tick out.
//!
//! Per frame: upload each visible picture's planes into its slot's textures, draw the
//! layers (cell backgrounds, pictures) into an RGBA canvas with YUV→RGB in the fragment
//! shader, convert the canvas to NV12 in a compute pass, copy it into the next staging
//! buffer of a ring and map it asynchronously. The caller reads frames back later, so the
//! GPU never waits for the CPU (`send_frame` / `receive_frame`, as rav1e's encoder API).

pub mod gpu;
mod readback;
pub mod scene;

use std::sync::Arc;
use std::time::Duration;

pub use gpu::{GpuContext, GpuError};
use readback::Ring;

use crate::layout::{Color, Rect};
use crate::source::{PixelFormat, VideoFrame};

/// Staging buffers in flight: frame N is read back while N+1 and N+2 are drawn.
pub const RING_SIZE: usize = 3;
/// Uniform slots are this far apart (the WebGPU minimum uniform offset alignment).
const UNIFORM_STRIDE: u64 = 256;
/// Most layers one frame may draw (cells and pictures together).
pub const MAX_LAYERS: usize = 128;

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
    /// The Y, Cb, Cr bytes at pixel (x, y).
    pub fn yuv_at(&self, x: u32, y: u32) -> [u8; 3] {
        let s = self.stride as usize;
        let uv = s * self.height as usize + (y as usize / 2) * s + (x as usize / 2) * 2;
        [self.data[y as usize * s + x as usize], self.data[uv], self.data[uv + 1]]
    }
}

/// What one layer draws.
#[derive(Clone, Copy, Debug)]
pub enum LayerContent<'a> {
    /// A solid colour.
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
}

/// A rectangle of the canvas and what fills it; layers are drawn in order.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    /// Destination in canvas pixels.
    pub dst: Rect,
    /// Content.
    pub content: LayerContent<'a>,
}

/// The uniform block of `composite.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LayerUniform {
    dst: [f32; 4],
    src: [f32; 4],
    color: [f32; 4],
    mode: u32,
    _pad: [u32; 3],
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

/// Textures holding one participant's current picture.
struct Slot {
    format: PixelFormat,
    width: u32,
    height: u32,
    planes: Vec<wgpu::Texture>,
    bind_group: wgpu::BindGroup,
}

/// Composites frames of one egress. Many compositors share one [`GpuContext`].
pub struct Compositor {
    gpu: Arc<GpuContext>,
    width: u32,
    height: u32,
    stride: u32,
    layer_layout: wgpu::BindGroupLayout,
    solid_pipeline: wgpu::RenderPipeline,
    picture_pipeline: wgpu::RenderPipeline,
    nv12_pipeline: wgpu::ComputePipeline,
    nv12_bind_group: wgpu::BindGroup,
    canvas_view: wgpu::TextureView,
    uniforms: wgpu::Buffer,
    sampler: wgpu::Sampler,
    nv12_buffer: wgpu::Buffer,
    /// Bind group with 2x2 dummy textures, for solid layers.
    solid_bind_group: wgpu::BindGroup,
    slots: Vec<Option<Slot>>,
    ring: Ring,
}

fn shader(gpu: &GpuContext, name: &str, source: &str) -> wgpu::ShaderModule {
    gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    })
}

fn texture_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT | wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: true },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

impl Compositor {
    /// A compositor for `width` x `height` output (both even).
    pub fn new(gpu: Arc<GpuContext>, width: u32, height: u32) -> Result<Compositor, CompositorError> {
        if width == 0 || height == 0 || width % 2 != 0 || height % 2 != 0 {
            return Err(CompositorError::BadSize(width, height));
        }
        let device = &gpu.device;
        let stride = width.next_multiple_of(4);
        let nv12_len = stride as u64 * height as u64 * 3 / 2;

        let layer_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("layer"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(size_of::<LayerUniform>() as u64),
                    },
                    count: None,
                },
                texture_entry(1),
                texture_entry(2),
                texture_entry(3),
                wgpu::BindGroupLayoutEntry {
                    binding: 4,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let composite = shader(&gpu, "composite.wgsl", include_str!("../../shaders/composite.wgsl"));
        let render_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("composite"),
            bind_group_layouts: &[Some(&layer_layout)],
            immediate_size: 0,
        });
        let pipeline = |entry: &str| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(entry),
                layout: Some(&render_layout),
                vertex: wgpu::VertexState {
                    module: &composite,
                    entry_point: Some("vs_main"),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                primitive: wgpu::PrimitiveState { topology: wgpu::PrimitiveTopology::TriangleStrip, ..Default::default() },
                depth_stencil: None,
                multisample: wgpu::MultisampleState::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &composite,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    // Opaque layers: no blending, no read of the canvas.
                    targets: &[Some(wgpu::ColorTargetState {
                        format: wgpu::TextureFormat::Rgba8Unorm,
                        blend: None,
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let solid_pipeline = pipeline("fs_solid");
        let picture_pipeline = pipeline("fs_picture");

        let canvas = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("canvas"),
            size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::TEXTURE_BINDING,
            view_formats: &[],
        });
        let canvas_view = canvas.create_view(&Default::default());
        let nv12_buffer = device.create_buffer(&wgpu::BufferDescriptor {
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
        let params_buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("nv12 params"),
            size: size_of::<Nv12Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.queue.write_buffer(&params_buffer, 0, bytemuck::bytes_of(&params));
        let nv12_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("nv12"),
            entries: &[
                texture_entry(0),
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let nv12_bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("nv12"),
            layout: &nv12_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&canvas_view) },
                wgpu::BindGroupEntry { binding: 1, resource: nv12_buffer.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: params_buffer.as_entire_binding() },
            ],
        });
        let nv12_module = shader(&gpu, "nv12.wgsl", include_str!("../../shaders/nv12.wgsl"));
        let nv12_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("nv12"),
            bind_group_layouts: &[Some(&nv12_layout)],
            immediate_size: 0,
        });
        let nv12_pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("nv12"),
            layout: Some(&nv12_pipeline_layout),
            module: &nv12_module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });

        let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("layers"),
            size: UNIFORM_STRIDE * MAX_LAYERS as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("bilinear"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            ..Default::default()
        });
        let dummy: Vec<_> = (0..3).map(|_| plane_texture(&gpu, 2, 2, wgpu::TextureFormat::R8Unorm)).collect();
        let solid_bind_group = layer_bind_group(&gpu, &layer_layout, &uniforms, &sampler, [&dummy[0], &dummy[1], &dummy[2]]);
        let ring = Ring::new(&gpu, RING_SIZE, nv12_len);
        Ok(Compositor {
            gpu,
            width,
            height,
            stride,
            layer_layout,
            solid_pipeline,
            picture_pipeline,
            nv12_pipeline,
            nv12_bind_group,
            canvas_view,
            uniforms,
            sampler,
            nv12_buffer,
            solid_bind_group,
            slots: Vec::new(),
            ring,
        })
    }

    /// Output width.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Output height.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Whether a frame can be sent without receiving one first.
    pub fn can_send(&self) -> bool {
        self.ring.has_free()
    }

    /// Frames sent and not yet received.
    pub fn in_flight(&self) -> usize {
        self.ring.in_flight()
    }

    /// Makes sure `slot` has textures of the frame's format and size, and uploads it.
    fn upload(&mut self, slot: usize, frame: &VideoFrame) {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        let fits = self.slots[slot]
            .as_ref()
            .is_some_and(|s| s.format == frame.format && s.width == frame.width && s.height == frame.height);
        if !fits {
            let (w, h) = (frame.width, frame.height);
            let planes = match frame.format {
                PixelFormat::I420 => vec![
                    plane_texture(&self.gpu, w, h, wgpu::TextureFormat::R8Unorm),
                    plane_texture(&self.gpu, w / 2, h / 2, wgpu::TextureFormat::R8Unorm),
                    plane_texture(&self.gpu, w / 2, h / 2, wgpu::TextureFormat::R8Unorm),
                ],
                PixelFormat::Nv12 => vec![
                    plane_texture(&self.gpu, w, h, wgpu::TextureFormat::R8Unorm),
                    plane_texture(&self.gpu, w / 2, h / 2, wgpu::TextureFormat::Rg8Unorm),
                ],
            };
            // NV12 has no third plane; the shader ignores binding 3 then.
            let third = planes.get(2).unwrap_or(&planes[1]);
            let bind_group =
                layer_bind_group(&self.gpu, &self.layer_layout, &self.uniforms, &self.sampler, [&planes[0], &planes[1], third]);
            self.slots[slot] = Some(Slot { format: frame.format, width: w, height: h, planes, bind_group });
        }
        let s = self.slots[slot].as_ref().expect("slot was just filled");
        let (w, h) = (frame.width as usize, frame.height as usize);
        let luma = w * h;
        let chroma = (w / 2) * (h / 2);
        let parts: Vec<(&wgpu::Texture, &[u8], u32)> = match frame.format {
            PixelFormat::I420 => vec![
                (&s.planes[0], &frame.data[..luma], w as u32),
                (&s.planes[1], &frame.data[luma..luma + chroma], (w / 2) as u32),
                (&s.planes[2], &frame.data[luma + chroma..luma + 2 * chroma], (w / 2) as u32),
            ],
            PixelFormat::Nv12 => vec![
                (&s.planes[0], &frame.data[..luma], w as u32),
                (&s.planes[1], &frame.data[luma..luma + 2 * chroma], (w / 2 * 2) as u32),
            ],
        };
        for (texture, bytes, row) in parts {
            let size = texture.size();
            self.gpu.queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                bytes,
                wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(row), rows_per_image: None },
                size,
            );
        }
    }

    /// Draws `layers` over `background` and queues the NV12 readback of the result.
    pub fn send_frame(&mut self, background: Color, layers: &[Layer<'_>], pts: Duration) -> Result<(), CompositorError> {
        if !self.ring.has_free() {
            return Err(CompositorError::RingFull);
        }
        if layers.len() > MAX_LAYERS {
            return Err(CompositorError::TooManyLayers(layers.len()));
        }
        let (w, h) = (self.width as f32, self.height as f32);
        let mut uniforms = vec![0u8; UNIFORM_STRIDE as usize * layers.len().max(1)];
        for (i, layer) in layers.iter().enumerate() {
            if let LayerContent::Picture { slot, frame, .. } = layer.content {
                self.upload(slot, frame);
            }
            let d = layer.dst;
            let (mode, src, color) = match layer.content {
                LayerContent::Solid(c) => (2, Rect::UNIT, c.0),
                LayerContent::Picture { frame, src, .. } => (u32::from(frame.format == PixelFormat::Nv12), src, [0.0; 4]),
            };
            let u = LayerUniform {
                dst: [d.x / w * 2.0 - 1.0, 1.0 - d.y / h * 2.0, (d.x + d.w) / w * 2.0 - 1.0, 1.0 - (d.y + d.h) / h * 2.0],
                src: [src.x, src.y, src.x + src.w, src.y + src.h],
                color,
                mode,
                _pad: [0; 3],
            };
            let at = i * UNIFORM_STRIDE as usize;
            uniforms[at..at + size_of::<LayerUniform>()].copy_from_slice(bytemuck::bytes_of(&u));
        }
        self.gpu.queue.write_buffer(&self.uniforms, 0, &uniforms);

        let mut encoder = self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("frame") });
        {
            let [r, g, b, a] = background.0.map(f64::from);
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("composite"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &self.canvas_view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations { load: wgpu::LoadOp::Clear(wgpu::Color { r, g, b, a }), store: wgpu::StoreOp::Store },
                })],
                ..Default::default()
            });
            for (i, layer) in layers.iter().enumerate() {
                let (pipeline, bind_group) = match layer.content {
                    LayerContent::Solid(_) => (&self.solid_pipeline, &self.solid_bind_group),
                    LayerContent::Picture { slot, .. } => {
                        (&self.picture_pipeline, &self.slots[slot].as_ref().expect("uploaded above").bind_group)
                    }
                };
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, bind_group, &[(i as u64 * UNIFORM_STRIDE) as u32]);
                pass.draw(0..4, 0..1);
            }
        }
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("nv12"), timestamp_writes: None });
            pass.set_pipeline(&self.nv12_pipeline);
            pass.set_bind_group(0, &self.nv12_bind_group, &[]);
            pass.dispatch_workgroups((self.stride / 4).div_ceil(8), (self.height / 2).div_ceil(8), 1);
        }
        self.ring.submit(&self.gpu, encoder, &self.nv12_buffer, pts);
        Ok(())
    }

    /// The oldest frame sent and not yet received. With `wait`, blocks until the GPU has
    /// finished it; without, returns `None` if it is not ready (or nothing is in flight).
    pub fn receive_frame(&mut self, wait: bool) -> Result<Option<Nv12Frame>, CompositorError> {
        let Some((data, pts)) = self.ring.receive(&self.gpu, wait)? else { return Ok(None) };
        Ok(Some(Nv12Frame { data, stride: self.stride, width: self.width, height: self.height, pts }))
    }

    /// Frees the textures of a participant slot that is no longer shown.
    pub fn release_slot(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            *s = None;
        }
    }
}

fn plane_texture(gpu: &GpuContext, width: u32, height: u32, format: wgpu::TextureFormat) -> wgpu::Texture {
    gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("plane"),
        size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

fn layer_bind_group(
    gpu: &GpuContext,
    layout: &wgpu::BindGroupLayout,
    uniforms: &wgpu::Buffer,
    sampler: &wgpu::Sampler,
    planes: [&wgpu::Texture; 3],
) -> wgpu::BindGroup {
    let views = planes.map(|t| t.create_view(&Default::default()));
    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("layer"),
        layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: uniforms,
                    offset: 0,
                    size: wgpu::BufferSize::new(size_of::<LayerUniform>() as u64),
                }),
            },
            wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&views[0]) },
            wgpu::BindGroupEntry { binding: 2, resource: wgpu::BindingResource::TextureView(&views[1]) },
            wgpu::BindGroupEntry { binding: 3, resource: wgpu::BindingResource::TextureView(&views[2]) },
            wgpu::BindGroupEntry { binding: 4, resource: wgpu::BindingResource::Sampler(sampler) },
        ],
    })
}
