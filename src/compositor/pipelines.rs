//! Shaders, bind group layouts and pipelines: compiled once per device and shared by every
//! compositor on it (shader compilation is the slow part of starting an egress on a
//! software rasteriser).

/// The canvas format: 8-bit R'G'B'A, no sRGB conversion (values are already gamma-coded).
pub(super) const CANVAS_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// Uniform slots are this far apart (the WebGPU minimum uniform offset alignment).
pub(super) const UNIFORM_STRIDE: u64 = 256;

/// Bytes of one layer's uniform block, as the composite bind group layout declares it.
pub(super) const LAYER_UNIFORM_SIZE: u64 = size_of::<LayerUniform>() as u64;

/// The uniform block of `composite.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct LayerUniform {
    pub(super) dst: [f32; 4],
    pub(super) src: [f32; 4],
    pub(super) color: [f32; 4],
    /// The shape's rectangle in pixels: x0, y0, x1, y1.
    pub(super) shape: [f32; 4],
    pub(super) border_color: [f32; 4],
    /// radius, border width (pixels), unused, unused.
    pub(super) params: [f32; 4],
}

/// The uniform block of `nv12.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Nv12Params {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) stride_words: u32,
    pub(super) uv_offset_words: u32,
}

/// The uniform block of `yuv_to_rgba.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct ConvertParams {
    pub(super) mode: u32,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) row_words: u32,
    pub(super) u_offset: u32,
    pub(super) v_offset: u32,
    pub(super) _pad: [u32; 2],
}

pub(super) struct Pipelines {
    /// Composite: dynamic-offset layer uniform, one RGBA picture, a sampler.
    pub layer_layout: wgpu::BindGroupLayout,
    pub solid: wgpu::RenderPipeline,
    pub picture: wgpu::RenderPipeline,
    /// The same, cut to a rounded shape and blended over what is below.
    pub solid_shaped: wgpu::RenderPipeline,
    pub picture_shaped: wgpu::RenderPipeline,
    /// Upload: the packed planes (a byte buffer) and params in, packed RGBA words out.
    pub convert_layout: wgpu::BindGroupLayout,
    pub convert: wgpu::ComputePipeline,
    /// NV12: the canvas in, a storage buffer and params out (compute: measured cheaper
    /// than R8/RG8 render targets on lavapipe).
    pub nv12_layout: wgpu::BindGroupLayout,
    pub nv12: wgpu::ComputePipeline,
}

fn shader(device: &wgpu::Device, name: &str, source: &str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    })
}

fn texture(binding: u32, visibility: wgpu::ShaderStages) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: true },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

/// A storage buffer of a compute pass (`read_only` or read-write).
fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    buffer(
        binding,
        wgpu::ShaderStages::COMPUTE,
        wgpu::BufferBindingType::Storage { read_only },
        false,
        None,
    )
}

/// A plain uniform buffer of a compute pass.
fn uniform(binding: u32) -> wgpu::BindGroupLayoutEntry {
    buffer(
        binding,
        wgpu::ShaderStages::COMPUTE,
        wgpu::BufferBindingType::Uniform,
        false,
        None,
    )
}

fn buffer(
    binding: u32,
    visibility: wgpu::ShaderStages,
    ty: wgpu::BufferBindingType,
    dynamic: bool,
    min: Option<u64>,
) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: dynamic,
            min_binding_size: min.and_then(wgpu::BufferSize::new),
        },
        count: None,
    }
}

fn compute(
    device: &wgpu::Device,
    name: &str,
    source: &str,
    layout: &wgpu::BindGroupLayout,
) -> wgpu::ComputePipeline {
    let module = shader(device, name, source);
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}

fn render_pipeline(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    module: &wgpu::ShaderModule,
    vertex: &str,
    fragment: &str,
    format: wgpu::TextureFormat,
    blend: Option<wgpu::BlendState>,
) -> wgpu::RenderPipeline {
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(fragment),
        layout: Some(layout),
        vertex: wgpu::VertexState {
            module,
            entry_point: Some(vertex),
            compilation_options: Default::default(),
            buffers: &[],
        },
        primitive: wgpu::PrimitiveState {
            topology: wgpu::PrimitiveTopology::TriangleStrip,
            ..Default::default()
        },
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module,
            entry_point: Some(fragment),
            compilation_options: Default::default(),
            // Plain layers are opaque: no blending, no read of the target.
            targets: &[Some(wgpu::ColorTargetState {
                format,
                blend,
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        multiview_mask: None,
        cache: None,
    })
}

impl Pipelines {
    pub(super) fn new(device: &wgpu::Device) -> Pipelines {
        let layer_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("layer"),
            entries: &[
                buffer(
                    0,
                    wgpu::ShaderStages::VERTEX_FRAGMENT,
                    wgpu::BufferBindingType::Uniform,
                    true,
                    Some(LAYER_UNIFORM_SIZE),
                ),
                texture(1, wgpu::ShaderStages::FRAGMENT),
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let module = shader(
            device,
            "composite.wgsl",
            include_str!("../../shaders/composite.wgsl"),
        );
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("composite"),
            bind_group_layouts: &[Some(&layer_layout)],
            immediate_size: 0,
        });
        let pipeline = |fragment: &str, blend: Option<wgpu::BlendState>| {
            render_pipeline(
                device,
                &layout,
                &module,
                "vs_main",
                fragment,
                CANVAS_FORMAT,
                blend,
            )
        };
        let solid = pipeline("fs_solid", None);
        let picture = pipeline("fs_picture", None);
        // Straight alpha over the canvas; the canvas keeps alpha 1.
        let over = Some(wgpu::BlendState {
            color: wgpu::BlendComponent {
                src_factor: wgpu::BlendFactor::SrcAlpha,
                dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
                operation: wgpu::BlendOperation::Add,
            },
            alpha: wgpu::BlendComponent {
                src_factor: wgpu::BlendFactor::Zero,
                dst_factor: wgpu::BlendFactor::One,
                operation: wgpu::BlendOperation::Add,
            },
        });
        let solid_shaped = pipeline("fs_solid_shaped", over);
        let picture_shaped = pipeline("fs_picture_shaped", over);

        let convert_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("yuv_to_rgba"),
            entries: &[storage(0, true), uniform(1), storage(2, false)],
        });
        let convert = compute(
            device,
            "yuv_to_rgba.wgsl",
            include_str!("../../shaders/yuv_to_rgba.wgsl"),
            &convert_layout,
        );

        let nv12_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("nv12"),
            entries: &[
                texture(0, wgpu::ShaderStages::COMPUTE),
                storage(1, false),
                uniform(2),
            ],
        });
        let nv12 = compute(
            device,
            "nv12.wgsl",
            include_str!("../../shaders/nv12.wgsl"),
            &nv12_layout,
        );
        Pipelines {
            layer_layout,
            solid,
            picture,
            solid_shaped,
            picture_shaped,
            convert_layout,
            convert,
            nv12_layout,
            nv12,
        }
    }
}
