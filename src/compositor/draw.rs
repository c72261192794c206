//! Drawing one frame: a scene per target (layers, and texts with their boxes) becomes
//! uniforms, uploads, the YUV→RGBA conversions of new pictures, a composite pass and an
//! NV12 pass per target, and a staged readback, in one submission.

use std::time::Duration;

use super::text::{self, Shaper, TextState};
use super::timer::Timer;
use super::{
    Color, CompositorError, GpuCompositor, Layer, LayerContent, LayerUniform, MAX_LAYERS,
    MAX_TARGETS, Rect, Scene, Shape, UNIFORM_STRIDE,
};

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
        let submission = self.gpu.queue.submit([encoder.finish()]);
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

/// The layers to draw for `scene`: its layers with shaped ones split (see
/// [`split_shaped`]) and boxes behind its texts added; and per text, the layer count
/// after which it draws and its measured box. `shaper` measures the texts (needed only
/// when the scene has any). With `even`, shaped layers are split on even pixel columns
/// and rows (see [`split_shaped`]).
pub(super) fn lay_out<'s>(
    scene: &Scene<'s>,
    shaper: Option<&mut Shaper>,
    even: bool,
) -> (Vec<Layer<'s>>, Vec<(usize, text::Measured)>) {
    // Splitting makes up to 5 layers of one; huge scenes are drawn unsplit to stay
    // within the GPU's uniform slots (the CPU has none).
    let split = even || scene.layers.len() * 5 + scene.texts.len() * 2 <= MAX_LAYERS;
    let push = |l: &Layer<'s>, out: &mut Vec<Layer<'s>>| {
        if split {
            split_shaped(l, out, even);
        } else {
            out.push(*l);
        }
    };
    let measured: Vec<text::Measured> = match shaper {
        Some(shaper) => scene.texts.iter().map(|t| shaper.measure(t)).collect(),
        None => Vec::new(),
    };
    let mut order: Vec<usize> = (0..scene.texts.len()).collect();
    order.sort_by_key(|&i| scene.texts[i].after);
    let mut next = order.into_iter().peekable();
    // Per text, the number of drawn layers (its box included) before it.
    let mut at = vec![0; scene.texts.len()];
    let mut layers = Vec::with_capacity(scene.layers.len() + scene.texts.len());
    for k in 0..=scene.layers.len() {
        while let Some(i) = next.next_if(|&i| scene.texts[i].after <= k) {
            let (t, m) = (&scene.texts[i], &measured[i]);
            if let Some(b) = t.background {
                let (x, y) = (
                    (m.left - b.padding).max(t.clip.x),
                    (m.top - b.padding / 2.0).max(t.clip.y),
                );
                let right = (m.left + m.width + b.padding).min(t.clip.x + t.clip.w);
                let bottom = (m.top + m.height + b.padding / 2.0).min(t.clip.y + t.clip.h);
                let r = Rect {
                    x,
                    y,
                    w: (right - x).max(0.0),
                    h: (bottom - y).max(0.0),
                };
                layers.push(Layer {
                    dst: r,
                    content: LayerContent::Solid(b.color),
                    shape: Some(Shape {
                        rect: r,
                        radius: b.radius,
                        border: 0.0,
                        border_color: b.color,
                    }),
                });
            }
            at[i] = layers.len();
        }
        if let Some(l) = scene.layers.get(k) {
            push(l, &mut layers);
        }
    }
    (layers, at.into_iter().zip(measured).collect())
}

/// The part of `src` that `part` (inside `dst`) shows.
fn sub_src(dst: Rect, src: Rect, part: Rect) -> Rect {
    Rect {
        x: src.x + (part.x - dst.x) / dst.w * src.w,
        y: src.y + (part.y - dst.y) / dst.h * src.h,
        w: part.w / dst.w * src.w,
        h: part.h / dst.h * src.h,
    }
}

/// Pushes `layer` to `out`, split when it is shaped and opaque: the interior, away from
/// the rounded corners and the border, is drawn by the plain opaque pipeline and only the
/// band along the edges by the blended, shaped one. The pixels are the same (each piece
/// samples exactly the texture coordinates the whole quad would); on a software
/// rasteriser the blended shape test costs per pixel, so this keeps it to the edges.
/// With `even` the split is finer (see [`split_fine`]).
fn split_shaped<'a>(layer: &Layer<'a>, out: &mut Vec<Layer<'a>>, even: bool) {
    let opaque = match layer.content {
        LayerContent::Solid(c) => c.0[3] >= 1.0,
        LayerContent::Picture { .. } => true,
        LayerContent::Image { .. } => false,
    };
    // The CPU draws a translucent colour's plain pieces with one blend each (they do not
    // overlap), so it splits those too.
    let solid = matches!(layer.content, LayerContent::Solid(_));
    if even && let Some(shape) = layer.shape.filter(|_| opaque || solid) {
        split_fine(layer, shape, out);
        return;
    }
    let Some(shape) = layer.shape.filter(|_| opaque) else {
        out.push(*layer);
        return;
    };
    let band = shape.radius.max(shape.border).ceil() + 1.0;
    let d = layer.dst;
    let (r, b) = (shape.rect, band);
    let x0 = d.x.max(r.x + b);
    let y0 = d.y.max(r.y + b);
    let x1 = (d.x + d.w).min(r.x + r.w - b);
    let y1 = (d.y + d.h).min(r.y + r.h - b);
    if x1 - x0 < 2.0 * band || y1 - y0 < 2.0 * band {
        out.push(*layer);
        return;
    }
    let inner = Rect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    };
    let piece = |part: Rect, shape: Option<Shape>| piece(layer, part, shape);
    out.push(piece(inner, None));
    let edges = [
        Rect { h: y0 - d.y, ..d },
        Rect {
            y: y1,
            h: d.y + d.h - y1,
            ..d
        },
        Rect {
            y: y0,
            w: x0 - d.x,
            h: inner.h,
            ..d
        },
        Rect {
            x: x1,
            y: y0,
            w: d.x + d.w - x1,
            h: inner.h,
        },
    ];
    for e in edges.into_iter().filter(|e| e.w > 0.0 && e.h > 0.0) {
        out.push(piece(e, Some(shape)));
    }
}

/// The part `part` of `layer` (a picture's source cropped to match), with `shape`.
fn piece<'a>(layer: &Layer<'a>, part: Rect, shape: Option<Shape>) -> Layer<'a> {
    Layer {
        dst: part,
        content: match layer.content {
            LayerContent::Picture { slot, frame, src } => LayerContent::Picture {
                slot,
                frame,
                src: sub_src(layer.dst, src, part),
            },
            other => other,
        },
        shape,
    }
}

/// The CPU compositor's split of a shaped layer (opaque, or a colour): the plain pieces
/// are a cross (the middle, and the sides between the corners), so only the rounded
/// corners and a strip as wide as the border (plus the anti-aliased pixel) along the
/// straight edges are drawn per pixel. Every line between pieces is on an even pixel, so no 2x2 chroma
/// block straddles two pieces (its chroma is drawn per block).
fn split_fine<'a>(layer: &Layer<'a>, shape: Shape, out: &mut Vec<Layer<'a>>) {
    let d = layer.dst;
    let r = shape.rect;
    let corner = shape.radius.max(shape.border).ceil() + 1.0;
    let b = shape.border;
    let up = |v: f32| (v / 2.0).ceil() * 2.0;
    let down = |v: f32| (v / 2.0).floor() * 2.0;
    let (dx1, dy1) = (d.x + d.w, d.y + d.h);
    // A pixel whose centre is at least the border plus half a pixel inside a straight
    // edge is the layer's own (no anti-aliasing, no border): the strip along an edge is
    // only as wide as that, and none where the layer's own edge is that far in.
    let strip_lo = |lo: f32, edge: f32| if lo >= edge + b { lo } else { up(edge + b) };
    let strip_hi = |hi: f32, edge: f32| if hi <= edge - b { hi } else { down(edge - b) };
    // Lines: outer edge, end of the straight-edge strip, end of the corner, mirrored.
    // A layer narrower than the corners (a bar beside a picture) has lines out of order:
    // each is kept inside the layer and at or after the one before. A moved line lands
    // on another line or the layer's edge, so the lines between pieces stay even, and
    // the cells that vanish are the parts the layer does not have.
    let lines = |lo: f32, hi: f32, edge_lo: f32, edge_hi: f32| {
        let (s0, s1) = (strip_lo(lo, edge_lo), strip_hi(hi, edge_hi));
        let (c0, c1) = (up(s0.max(edge_lo + corner)), down(s1.min(edge_hi - corner)));
        let mut l = [lo, s0, c0, c1, s1, hi];
        for k in 1..5 {
            l[k] = l[k].clamp(lo, hi).max(l[k - 1]);
        }
        l
    };
    let xs = lines(d.x, dx1, r.x, r.x + r.w);
    let ys = lines(d.y, dy1, r.y, r.y + r.h);
    // Plain: the middle column from strip to strip, and the middle row's side cells.
    let plain =
        |i: usize, j: usize| (i == 2 && (1..=3).contains(&j)) || (j == 2 && (i == 1 || i == 3));
    for j in 0..5 {
        for i in 0..5 {
            let part = Rect {
                x: xs[i],
                y: ys[j],
                w: xs[i + 1] - xs[i],
                h: ys[j + 1] - ys[j],
            };
            if part.w > 0.0 && part.h > 0.0 {
                out.push(piece(layer, part, (!plain(i, j)).then_some(shape)));
            }
        }
    }
}
