//! Small GPU resource helpers shared by the compositor's parts: textures, uniform
//! buffers, views and bind groups.

use super::gpu::GpuContext;
use super::pipelines::LAYER_UNIFORM_SIZE;

pub(super) fn texture(
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

pub(super) fn uniform_buffer(gpu: &GpuContext, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.len() as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.queue.write_buffer(&buffer, 0, bytes);
    buffer
}

pub(super) fn view(t: &wgpu::Texture) -> wgpu::TextureView {
    t.create_view(&Default::default())
}

/// Bind group entries in binding order (0, 1, ...).
pub(super) fn bind_group(
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

/// A composite bind group: the layer uniforms, `picture` and the sampler.
pub(super) fn layer_bind_group(
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
