//! Participants' pictures on the GPU (one slot each: YUV planes in, RGBA texture out,
//! uploaded only when the picture changes) and still images (background images), uploaded
//! once per image.

use super::gpu::GpuContext;
use super::pipelines::{CANVAS_FORMAT, ConvertParams};
use super::resources::{bind_group, layer_bind_group, texture, uniform_buffer, view};
use crate::layout::Image;
use crate::source::{PixelFormat, VideoFrame};

/// One participant's picture on the GPU: its YUV planes and their RGBA conversion.
pub(super) struct Slot {
    pub(super) format: PixelFormat,
    pub(super) width: u32,
    pub(super) height: u32,
    /// The picture as uploaded: its packed planes, bytes in words.
    pub(super) planes: wgpu::Buffer,
    pub(super) convert_bind_group: wgpu::BindGroup,
    /// The conversion's output (rows padded to 256 bytes) and the texture it is copied to.
    pub(super) rgba_buffer: wgpu::Buffer,
    pub(super) rgba: wgpu::Texture,
    pub(super) rgba_row_bytes: u32,
    /// Composite bind group (layer uniform + the RGBA texture + sampler).
    pub(super) bind_group: wgpu::BindGroup,
    /// `seq` of the picture now in the textures (no re-upload while unchanged).
    pub(super) seq: Option<u64>,
}

/// A still image on the GPU and its composite bind group.
pub(super) struct ImageSlot {
    _texture: wgpu::Texture,
    pub bind_group: wgpu::BindGroup,
    /// Whether a frame used it since the last sweep.
    pub used: bool,
}

impl Slot {
    /// A slot for pictures of `frame`'s format and size; `uniforms` and `sampler` are the
    /// compositor's, for its composite bind group.
    pub(super) fn new(
        gpu: &GpuContext,
        frame: &VideoFrame,
        uniforms: &wgpu::Buffer,
        sampler: &wgpu::Sampler,
    ) -> Slot {
        let (w, h) = (frame.width, frame.height);
        let len = VideoFrame::len_for(w, h) as u64;
        let planes = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("planes"),
            size: len.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let rgba = texture(
            gpu,
            w,
            h,
            CANVAS_FORMAT,
            wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::TEXTURE_BINDING,
        );
        let rgba_view = view(&rgba);
        let rgba_row_bytes = (w * 4).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
        let rgba_buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("rgba"),
            size: rgba_row_bytes as u64 * h as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let luma = w * h;
        let params = ConvertParams {
            mode: u32::from(frame.format == PixelFormat::Nv12),
            width: w,
            height: h,
            row_words: rgba_row_bytes / 4,
            u_offset: luma,
            v_offset: luma + (w / 2) * (h / 2),
            _pad: [0; 2],
        };
        let params = uniform_buffer(gpu, "convert params", bytemuck::bytes_of(&params));
        let p = gpu.pipelines();
        let convert_bind_group = bind_group(
            gpu,
            &p.convert_layout,
            &[
                planes.as_entire_binding(),
                params.as_entire_binding(),
                rgba_buffer.as_entire_binding(),
            ],
        );
        Slot {
            format: frame.format,
            width: w,
            height: h,
            planes,
            convert_bind_group,
            rgba_buffer,
            rgba,
            rgba_row_bytes,
            bind_group: layer_bind_group(gpu, uniforms, sampler, &rgba_view),
            seq: None,
        }
    }

    /// Whether pictures like `frame` fit this slot (same format and size).
    pub(super) fn fits(&self, frame: &VideoFrame) -> bool {
        self.format == frame.format && self.width == frame.width && self.height == frame.height
    }

    /// Uploads the frame's planes unless they are already here; returns whether the slot
    /// needs converting.
    pub(super) fn upload(&mut self, queue: &wgpu::Queue, frame: &VideoFrame) -> bool {
        if self.seq == Some(frame.seq) {
            return false;
        }
        self.seq = Some(frame.seq);
        let len = VideoFrame::len_for(frame.width, frame.height);
        let bytes = &frame.data[..len];
        // Buffer writes go in whole words; pad the rare odd-sized tail.
        let whole = len - len % wgpu::COPY_BUFFER_ALIGNMENT as usize;
        queue.write_buffer(&self.planes, 0, &bytes[..whole]);
        if whole < len {
            let mut tail = [0u8; wgpu::COPY_BUFFER_ALIGNMENT as usize];
            tail[..len - whole].copy_from_slice(&bytes[whole..]);
            queue.write_buffer(&self.planes, whole as u64, &tail);
        }
        true
    }
}

impl ImageSlot {
    /// `image` uploaded, with its composite bind group.
    pub(super) fn new(
        gpu: &GpuContext,
        image: &Image,
        uniforms: &wgpu::Buffer,
        sampler: &wgpu::Sampler,
    ) -> ImageSlot {
        let tex = texture(
            gpu,
            image.width,
            image.height,
            CANVAS_FORMAT,
            wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::TEXTURE_BINDING,
        );
        gpu.queue.write_texture(
            tex.as_image_copy(),
            &image.rgba,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(image.width * 4),
                rows_per_image: None,
            },
            tex.size(),
        );
        let bind_group = layer_bind_group(gpu, uniforms, sampler, &view(&tex));
        ImageSlot {
            _texture: tex,
            bind_group,
            used: true,
        }
    }
}
