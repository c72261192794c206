//! Drawing one frame: a scene per target (layers, and texts with their boxes) becomes
//! uniforms, uploads, the YUV→RGBA conversions of new pictures, a composite pass and an
//! NV12 pass per target, and a staged readback, in one command buffer: submitted with the
//! other rooms' of the device by its batcher ([`super::batch`]), or alone.

use std::time::Duration;

use super::error::{CompositorError, MAX_LAYERS, MAX_TARGETS};
use super::gpu_compositor::GpuCompositor;
use super::layers::{Layer, LayerContent, Scene, Shape, lay_out};
use super::pipelines::{LayerUniform, UNIFORM_STRIDE};
use super::text::TextState;
use super::timer::Timer;
use crate::layout::{Color, Rect};

impl GpuCompositor {
    /// Draws `layers` over `background` on the main target and queues its NV12 readback.
    pub fn send_frame(
        &mut self,
        background: Color,
        layers: &[Layer<'_>],
        pts: Duration,
    ) -> Result<(), CompositorError> {
        let scene = Scene::from(layers.to_vec());
        self.send_frames(background, &[(0, &scene)], pts)
    }

    /// Draws each target's scene (in that target's pixels) over `background` and queues
    /// each target's NV12 readback; pictures are uploaded and converted once for all.
    pub fn send_frames(
        &mut self,
        background: Color,
        frames: &[(usize, &Scene<'_>)],
        pts: Duration,
    ) -> Result<(), CompositorError> {
        self.check_room(frames)?;
        let drawn = self.lay_out_frames(frames)?;
        let (to_convert, first_uniform) = self.write_uniforms(frames, &drawn);
        let mut encoder = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("frame"),
            });
        // A sampled frame gets a timestamp before its first pass and after its last.
        let timed = self.timer.as_mut().is_some_and(Timer::begin_frame);
        let query_set = timed.then(|| self.timer.as_ref().expect("timed").set.clone());
        let stamps = query_set.as_ref();
        if !to_convert.is_empty() {
            self.encode_conversions(&mut encoder, &to_convert, stamps);
        }
        let last = frames.len().saturating_sub(1);
        for (n, ((&(t, _), (layers, groups)), &first)) in
            frames.iter().zip(&drawn).zip(&first_uniform).enumerate()
        {
            let pass = TargetPass {
                target: t,
                layers,
                groups,
                first_uniform: first,
                background,
                begin: stamps.filter(|_| n == 0 && to_convert.is_empty()),
                end: stamps.filter(|_| n == last),
            };
            self.encode_target(&mut encoder, &pass);
            let target = &mut self.targets[t];
            target.ring.stage(&mut encoder, &target.nv12_buffer, pts);
        }
        if timed && let Some(timer) = &self.timer {
            timer.resolve(&mut encoder);
        }
        let commands = encoder.finish();
        let submission = if self.batched {
            let queue = &self.gpu.queue;
            self.gpu.batcher.submit(commands, |all| queue.submit(all))
        } else {
            self.gpu.queue.submit([commands])
        };
        if let Some(state) = self.text.as_mut() {
            state.end_frame();
        }
        self.images.retain(|_, i| std::mem::take(&mut i.used));
        for &(t, _) in frames {
            self.targets[t].ring.map_staged(&submission);
        }
        if timed && let Some(timer) = &self.timer {
            timer.submitted();
        }
        Ok(())
    }

    /// Every target has a free readback slot and every scene fits the layer limit.
    fn check_room(&self, frames: &[(usize, &Scene<'_>)]) -> Result<(), CompositorError> {
        for &(t, scene) in frames {
            if !self.target(t)?.ring.has_free() {
                return Err(CompositorError::RingFull);
            }
            let n = scene.layers.len() + scene.texts.len();
            if n > MAX_LAYERS {
                return Err(CompositorError::TooManyLayers(n));
            }
        }
        if frames.len() > MAX_TARGETS {
            return Err(CompositorError::NoTarget(frames.len()));
        }
        Ok(())
    }

    /// Per target: the layers with text boxes added, and where each text group draws
    /// (its texts shaped and prepared in that target's pixels).
    fn lay_out_frames<'s>(
        &mut self,
        frames: &[(usize, &'s Scene<'s>)],
    ) -> Result<Vec<Drawn<'s>>, CompositorError> {
        let mut drawn = Vec::with_capacity(frames.len());
        for &(t, scene) in frames {
            let shaper = (!scene.texts.is_empty()).then(|| {
                &mut self
                    .text
                    .get_or_insert_with(|| TextState::new(&self.gpu))
                    .shaper
            });
            let (layers, measured) = lay_out(scene, shaper, false);
            let mut groups = Vec::new();
            if let Some(state) = self.text.as_mut()
                && !measured.is_empty()
            {
                let target = &self.targets[t];
                let texts: Vec<_> = scene
                    .texts
                    .iter()
                    .zip(measured)
                    .map(|(tx, (at, m))| (tx, at, m))
                    .collect();
                groups = state
                    .prepare(&self.gpu, t, (target.width, target.height), &texts)
                    .map_err(|e| CompositorError::Text(e.to_string()))?;
            }
            drawn.push((layers, groups));
        }
        Ok(drawn)
    }

    /// Uploads the pictures and images the layers show and writes every layer's uniform;
    /// returns the picture slots to convert and each target's first uniform.
    fn write_uniforms(
        &mut self,
        frames: &[(usize, &Scene<'_>)],
        drawn: &[(Vec<Layer<'_>>, Vec<usize>)],
    ) -> (Vec<usize>, Vec<usize>) {
        let mut to_convert = Vec::new();
        let total: usize = drawn.iter().map(|(l, _)| l.len()).sum();
        let mut uniforms = vec![0u8; UNIFORM_STRIDE as usize * total.max(1)];
        let mut first_uniform = Vec::with_capacity(frames.len());
        let mut at_layer = 0usize;
        for (&(t, _), (layers, _)) in frames.iter().zip(drawn) {
            first_uniform.push(at_layer);
            let target = &self.targets[t];
            let size = (target.width as f32, target.height as f32);
            for layer in layers {
                let (src, color) = match layer.content {
                    LayerContent::Solid(c) => (Rect::UNIT, c.0),
                    LayerContent::Picture { slot, frame, src } => {
                        if self.upload(slot, frame) {
                            to_convert.push(slot);
                        }
                        (src, [0.0; 4])
                    }
                    LayerContent::Image { image, src } => {
                        self.upload_image(image);
                        (src, [0.0; 4])
                    }
                };
                let u = layer_uniform(layer, src, color, size);
                let at = at_layer * UNIFORM_STRIDE as usize;
                uniforms[at..at + size_of::<LayerUniform>()]
                    .copy_from_slice(bytemuck::bytes_of(&u));
                at_layer += 1;
            }
        }
        self.gpu.queue.write_buffer(&self.uniforms, 0, &uniforms);
        (to_convert, first_uniform)
    }

    /// New pictures' YUV → RGBA conversions (a compute pass, then copies into their
    /// textures); the pass opens the frame's timestamps when `stamps` is given.
    fn encode_conversions(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        to_convert: &[usize],
        stamps: Option<&wgpu::QuerySet>,
    ) {
        let p = self.gpu.pipelines();
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("yuv_to_rgba"),
                timestamp_writes: stamps.map(|q| wgpu::ComputePassTimestampWrites {
                    query_set: q,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: None,
                }),
            });
            pass.set_pipeline(&p.convert);
            for &slot in to_convert {
                let s = self.slots[slot].as_ref().expect("uploaded above");
                pass.set_bind_group(0, &s.convert_bind_group, &[]);
                pass.dispatch_workgroups(
                    s.width.div_ceil(4).div_ceil(8),
                    (s.height / 2).div_ceil(8),
                    1,
                );
            }
        }
        for &slot in to_convert {
            let s = self.slots[slot].as_ref().expect("uploaded above");
            encoder.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer: &s.rgba_buffer,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: 0,
                        bytes_per_row: Some(s.rgba_row_bytes),
                        rows_per_image: None,
                    },
                },
                s.rgba.as_image_copy(),
                s.rgba.size(),
            );
        }
    }

    /// One target's composite pass (layers and texts over the background) and its NV12
    /// pass.
    fn encode_target(&self, encoder: &mut wgpu::CommandEncoder, job: &TargetPass<'_, '_>) {
        let target = &self.targets[job.target];
        {
            let [r, g, b, a] = job.background.0.map(f64::from);
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("composite"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &target.canvas_view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color { r, g, b, a }),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                timestamp_writes: job.begin.map(|q| wgpu::RenderPassTimestampWrites {
                    query_set: q,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: None,
                }),
                ..Default::default()
            });
            self.draw_layers(&mut pass, job);
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("nv12"),
            timestamp_writes: job.end.map(|q| wgpu::ComputePassTimestampWrites {
                query_set: q,
                beginning_of_pass_write_index: None,
                end_of_pass_write_index: Some(1),
            }),
        });
        pass.set_pipeline(&self.gpu.pipelines().nv12);
        pass.set_bind_group(0, &target.nv12_bind_group, &[]);
        pass.dispatch_workgroups(
            (target.stride / 4).div_ceil(8),
            (target.height / 2).div_ceil(8),
            1,
        );
    }

    /// Draws a target's layers in order, each text group after the layers it follows.
    fn draw_layers(&self, pass: &mut wgpu::RenderPass<'_>, job: &TargetPass<'_, '_>) {
        let p = self.gpu.pipelines();
        let mut last_pipeline = None;
        for i in 0..=job.layers.len() {
            for (g, _) in job.groups.iter().enumerate().filter(|(_, at)| **at == i) {
                if let Some(state) = &self.text {
                    state.render(job.target, g, pass);
                    // Text sets its own pipeline and bind group.
                    last_pipeline = None;
                }
            }
            let Some(layer) = job.layers.get(i) else {
                break;
            };
            let blended = layer.shape.is_some();
            let (pipeline, bind_group) = match layer.content {
                LayerContent::Solid(c) if blended || c.0[3] < 1.0 => {
                    (&p.solid_shaped, &self.solid_bind_group)
                }
                LayerContent::Solid(_) => (&p.solid, &self.solid_bind_group),
                LayerContent::Picture { slot, .. } => (
                    if blended {
                        &p.picture_shaped
                    } else {
                        &p.picture
                    },
                    &self.slots[slot]
                        .as_ref()
                        .expect("uploaded above")
                        .bind_group,
                ),
                LayerContent::Image { image, .. } => {
                    (&p.picture_shaped, &self.images[&image.id].bind_group)
                }
            };
            if last_pipeline != Some(pipeline) {
                pass.set_pipeline(pipeline);
                last_pipeline = Some(pipeline);
            }
            let offset = ((job.first_uniform + i) as u64 * UNIFORM_STRIDE) as u32;
            pass.set_bind_group(0, bind_group, &[offset]);
            pass.draw(0..4, 0..1);
        }
    }
}

/// One target's layers (text boxes added) and where each of its text groups draws.
type Drawn<'s> = (Vec<Layer<'s>>, Vec<usize>);

/// What one target's passes draw.
struct TargetPass<'a, 'l> {
    target: usize,
    layers: &'a [Layer<'l>],
    /// Each text group's position among the layers.
    groups: &'a [usize],
    /// The uniform of the first layer.
    first_uniform: usize,
    background: Color,
    /// The frame's start timestamp goes before this composite pass.
    begin: Option<&'a wgpu::QuerySet>,
    /// The frame's end timestamp goes after this NV12 pass.
    end: Option<&'a wgpu::QuerySet>,
}

/// A layer's uniform: its destination in clip space (`size`: the target's pixels), its
/// source rectangle, colour and shape.
fn layer_uniform(
    layer: &Layer<'_>,
    src: Rect,
    color: [f32; 4],
    (w, h): (f32, f32),
) -> LayerUniform {
    let d = layer.dst;
    let shape = layer.shape.unwrap_or(Shape {
        rect: d,
        radius: 0.0,
        border: 0.0,
        border_color: Color([0.0; 4]),
    });
    let r = shape.rect;
    LayerUniform {
        dst: [
            d.x / w * 2.0 - 1.0,
            1.0 - d.y / h * 2.0,
            (d.x + d.w) / w * 2.0 - 1.0,
            1.0 - (d.y + d.h) / h * 2.0,
        ],
        src: [src.x, src.y, src.x + src.w, src.y + src.h],
        color,
        shape: [r.x, r.y, r.x + r.w, r.y + r.h],
        border_color: shape.border_color.0,
        params: [shape.radius, shape.border, 0.0, 0.0],
    }
}
