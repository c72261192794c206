//! The CPU compositor: the same scenes as the GPU compositor, drawn straight into NV12 on
//! the CPU. It exists for nodes without a GPU: there a software Vulkan driver
//! (lavapipe) would run the GPU compositor's passes on the CPU, converting every picture
//! to RGBA, drawing an RGBA canvas and converting it back, about 0.8 of a core per
//! 720p30 room; this draws each participant's Y, Cb and Cr planes directly into the
//! frame (integer bilinear, a plain copy when a picture is not scaled), and only edges,
//! text and images per pixel.
//!
//! The API is the GPU compositor's (`send_frames` / `receive_frame_from`); frames are
//! drawn when sent, so one is always ready when received. Blending is done on Y'CbCr,
//! which equals blending R'G'B' and converting afterwards (the conversion is affine); a
//! chroma sample averages its 2x2 block, as the GPU's NV12 pass does. The two agree
//! within the tolerance `tests/core/layout_golden.rs` states.

mod canvas;
mod filter;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use canvas::{Canvas, Picture, Yuv, span};
use filter::{AxisCache, clamp_texel};

use super::error::{CompositorError, MAX_LAYERS, MAX_TARGETS};
use super::frame::Nv12Frame;
use super::gpu_compositor::RING_SIZE;
use super::layers::{Layer, LayerContent, Scene, Shape, lay_out};
use super::text::{Measured, Shaper, Text};
use crate::color::rgb_to_yuv709_f32;
use crate::layout::{Color, Image, Rect};

/// `c` as limited-range BT.709 Y'CbCr in byte units, and its alpha.
fn yuv_of(c: Color) -> (Yuv, f32) {
    let [r, g, b, a] = c.0.map(|v| v.clamp(0.0, 1.0));
    (rgb_to_yuv709_f32([r, g, b]), a)
}

/// Signed distance (pixels) from `p` to the shape's rounded rectangle, negative inside
/// (`composite.wgsl`'s `shape_distance`).
fn shape_distance(s: &Shape, p: (f32, f32)) -> f32 {
    let (lo, hi) = (
        (s.rect.x, s.rect.y),
        (s.rect.x + s.rect.w, s.rect.y + s.rect.h),
    );
    let half = ((hi.0 - lo.0) * 0.5, (hi.1 - lo.1) * 0.5);
    let r = s.radius.min(half.0.min(half.1));
    let q = (
        (p.0 - (lo.0 + hi.0) * 0.5).abs() - half.0 + r,
        (p.1 - (lo.1 + hi.1) * 0.5).abs() - half.1 + r,
    );
    let outside = (q.0.max(0.0).powi(2) + q.1.max(0.0).powi(2)).sqrt();
    outside + q.0.max(q.1).min(0.0) - r
}

/// Cuts a colour to the shape (one-pixel anti-aliased edge) and draws its border
/// (`composite.wgsl`'s `shaped`).
fn shaped(s: &Shape, (c, a): (Yuv, f32), p: (f32, f32)) -> (Yuv, f32) {
    let d = shape_distance(s, p);
    let (mut c, mut a) = (c, a);
    if s.border > 0.0 {
        let t = (d + s.border + 0.5).clamp(0.0, 1.0);
        let (bc, ba) = yuv_of(s.border_color);
        for k in 0..3 {
            c[k] += (bc[k] - c[k]) * t;
        }
        a += (ba - a) * t;
    }
    (c, a * (0.5 - d).clamp(0.0, 1.0))
}

/// A still image drawn into a layer, kept as per-pixel colour and opacity while the layer
/// stays where it is (images are backgrounds and logos: drawn every frame, rarely moved).
struct Sprite {
    xs: std::ops::Range<i32>,
    ys: std::ops::Range<i32>,
    pixels: Vec<(Yuv, f32)>,
    used: bool,
}

/// What a sprite depends on: the image and the layer's geometry, bit for bit.
type SpriteKey = (u64, [u32; 8], [u32; 8]);

fn sprite_key(image: &Image, dst: Rect, src: Rect, shape: Option<Shape>) -> SpriteKey {
    let r = |r: Rect| [r.x, r.y, r.w, r.h].map(f32::to_bits);
    let s = shape.map_or([0; 8], |s| {
        let [a, b, c, d] = r(s.rect);
        [a, b, c, d, s.radius.to_bits(), s.border.to_bits(), 0, 0]
    });
    let [a, b, c, d] = r(dst);
    let [e, f, g, h] = r(src);
    (image.id, [a, b, c, d, e, f, g, h], s)
}

/// Bilinear R'G'B'A sample of `image` at texel coordinates (clamped to the edge).
fn sample_rgba(image: &Image, tx: f32, ty: f32) -> [f32; 4] {
    let (w, h) = (image.width as usize, image.height as usize);
    let (x0, fx) = clamp_texel(tx, image.width);
    let (y0, fy) = clamp_texel(ty, image.height);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let px = |x: usize, y: usize| {
        let i = (y * w + x) * 4;
        [0, 1, 2, 3].map(|k| image.rgba[i + k] as f32 / 255.0)
    };
    let (a, b, c, d) = (px(x0, y0), px(x1, y0), px(x0, y1), px(x1, y1));
    [0, 1, 2, 3].map(|k| {
        let top = a[k] + (b[k] - a[k]) * fx;
        let bottom = c[k] + (d[k] - c[k]) * fx;
        top + (bottom - top) * fy
    })
}

impl Sprite {
    fn new(
        canvas: (u32, u32),
        image: &Image,
        dst: Rect,
        src: Rect,
        shape: Option<Shape>,
    ) -> Sprite {
        let xs = span(dst.x, dst.x + dst.w, canvas.0);
        let ys = span(dst.y, dst.y + dst.h, canvas.1);
        let mut pixels = Vec::with_capacity(xs.len() * ys.len());
        for y in ys.clone() {
            for x in xs.clone() {
                let p = (x as f32 + 0.5, y as f32 + 0.5);
                let u = src.x + (p.0 - dst.x) / dst.w * src.w;
                let v = src.y + (p.1 - dst.y) / dst.h * src.h;
                let [r, g, b, a] = sample_rgba(
                    image,
                    u * image.width as f32 - 0.5,
                    v * image.height as f32 - 0.5,
                );
                let c = (rgb_to_yuv709_f32([r, g, b]), a);
                pixels.push(match &shape {
                    Some(s) => shaped(s, c, p),
                    None => c,
                });
            }
        }
        Sprite {
            xs,
            ys,
            pixels,
            used: true,
        }
    }
}

/// One output size and its drawn frames not yet received.
struct Target {
    width: u32,
    height: u32,
    stride: u32,
    done: VecDeque<Nv12Frame>,
}

/// Composites frames of one egress on the CPU, at one or more output sizes.
pub struct CpuCompositor {
    targets: Vec<Target>,
    /// Fonts and shaped lines, made on the first frame with text.
    shaper: Option<Shaper>,
    sprites: HashMap<SpriteKey, Sprite>,
    axes: AxisCache,
}

impl CpuCompositor {
    /// A compositor for `width` x `height` output (both even).
    pub fn new(width: u32, height: u32) -> Result<CpuCompositor, CompositorError> {
        let mut c = CpuCompositor {
            targets: Vec::new(),
            shaper: None,
            sprites: HashMap::new(),
            axes: AxisCache::default(),
        };
        c.add_target(width, height)?;
        Ok(c)
    }

    /// Adds an output size drawn from the same pictures; returns its target number.
    pub fn add_target(&mut self, width: u32, height: u32) -> Result<usize, CompositorError> {
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(CompositorError::BadSize(width, height));
        }
        if self.targets.len() >= MAX_TARGETS {
            return Err(CompositorError::NoTarget(self.targets.len()));
        }
        self.targets.push(Target {
            width,
            height,
            stride: width.next_multiple_of(4),
            done: VecDeque::new(),
        });
        Ok(self.targets.len() - 1)
    }

    fn target(&self, t: usize) -> Result<&Target, CompositorError> {
        self.targets.get(t).ok_or(CompositorError::NoTarget(t))
    }

    /// Size of target `t`.
    pub fn target_size(&self, t: usize) -> Result<(u32, u32), CompositorError> {
        self.target(t).map(|t| (t.width, t.height))
    }

    /// Whether a frame can be sent to target `t` without receiving one first (at most
    /// [`RING_SIZE`] wait, as on the GPU).
    pub fn can_send_to(&self, t: usize) -> bool {
        self.targets
            .get(t)
            .is_some_and(|t| t.done.len() < RING_SIZE)
    }

    /// Frames sent to target `t` and not yet received.
    pub fn in_flight_of(&self, t: usize) -> usize {
        self.targets.get(t).map_or(0, |t| t.done.len())
    }

    /// The oldest frame sent to target `t` and not yet received (always ready).
    pub fn receive_frame_from(&mut self, t: usize) -> Result<Option<Nv12Frame>, CompositorError> {
        let target = self
            .targets
            .get_mut(t)
            .ok_or(CompositorError::NoTarget(t))?;
        Ok(target.done.pop_front())
    }

    /// Draws each target's scene over `background`.
    pub fn send_frames(
        &mut self,
        background: Color,
        frames: &[(usize, &Scene<'_>)],
        pts: Duration,
    ) -> Result<(), CompositorError> {
        if frames.len() > MAX_TARGETS {
            return Err(CompositorError::NoTarget(frames.len()));
        }
        for &(t, scene) in frames {
            if !self.can_send_to(t) {
                self.target(t)?;
                return Err(CompositorError::RingFull);
            }
            let n = scene.layers.len() + scene.texts.len();
            if n > MAX_LAYERS {
                return Err(CompositorError::TooManyLayers(n));
            }
        }
        for &(t, scene) in frames {
            let frame = self.draw(t, background, scene, pts);
            self.targets[t].done.push_back(frame);
        }
        if let Some(s) = self.shaper.as_mut() {
            s.end_frame();
        }
        self.sprites.retain(|_, s| std::mem::take(&mut s.used));
        self.axes.sweep();
        Ok(())
    }

    fn draw(&mut self, t: usize, background: Color, scene: &Scene<'_>, pts: Duration) -> Nv12Frame {
        let (width, height, stride) = {
            let t = &self.targets[t];
            (t.width, t.height, t.stride)
        };
        let shaper = (!scene.texts.is_empty()).then(|| self.shaper.get_or_insert_with(Shaper::new));
        let (layers, measured) = lay_out(scene, shaper, true);
        let mut data = vec![0u8; stride as usize * height as usize * 3 / 2];
        let mut canvas = Canvas {
            data: &mut data,
            width,
            height,
            stride: stride as usize,
        };
        canvas.clear(yuv_of(background).0);
        for i in 0..=layers.len() {
            for (text, (_, m)) in scene
                .texts
                .iter()
                .zip(&measured)
                .filter(|(_, (at, _))| *at == i)
            {
                let shaper = self.shaper.as_mut().expect("texts were measured");
                draw_text(&mut canvas, shaper, text, m);
            }
            if let Some(layer) = layers.get(i) {
                self.draw_layer(&mut canvas, layer);
            }
        }
        Nv12Frame {
            data,
            stride,
            width,
            height,
            pts,
        }
    }

    fn draw_layer(&mut self, canvas: &mut Canvas<'_>, layer: &Layer<'_>) {
        let d = layer.dst;
        if d.w <= 0.0 || d.h <= 0.0 {
            return;
        }
        let xs = span(d.x, d.x + d.w, canvas.width);
        let ys = span(d.y, d.y + d.h, canvas.height);
        let centre = |x: i32, y: i32| (x as f32 + 0.5, y as f32 + 0.5);
        match (layer.content, &layer.shape) {
            (LayerContent::Solid(c), None) => {
                let (c, a) = yuv_of(c);
                canvas.fill(d, c, a);
            }
            (LayerContent::Picture { frame, src, .. }, None) => {
                canvas.picture(&Picture::new(frame), d, src, &mut self.axes);
            }
            (LayerContent::Solid(c), Some(s)) => {
                let c = yuv_of(c);
                canvas.blend(xs, ys, |x, y| shaped(s, c, centre(x, y)));
            }
            (LayerContent::Picture { frame, src, .. }, Some(s)) => {
                let pic = Picture::new(frame);
                canvas.blend(xs, ys, |x, y| {
                    let p = centre(x, y);
                    shaped(s, (pic.sample(d, src, p), 1.0), p)
                });
            }
            (LayerContent::Image { image, src }, shape) => {
                let key = sprite_key(image, d, src, layer.shape);
                let size = (canvas.width, canvas.height);
                let sprite = self
                    .sprites
                    .entry(key)
                    .or_insert_with(|| Sprite::new(size, image, d, src, *shape));
                sprite.used = true;
                let w = sprite.xs.len();
                let (x0, y0) = (sprite.xs.start, sprite.ys.start);
                let pixels = &sprite.pixels;
                canvas.blend(sprite.xs.clone(), sprite.ys.clone(), |x, y| {
                    pixels[(y - y0) as usize * w + (x - x0) as usize]
                });
            }
        }
    }
}

/// Draws `t`'s glyphs (coverage masks in its colour; colour glyphs as they are), clipped
/// to its clip rectangle and the canvas as glyphon clips them.
fn draw_text(canvas: &mut Canvas<'_>, shaper: &mut Shaper, t: &Text, m: &Measured) {
    let (colour, alpha) = yuv_of(t.color);
    let (cx0, cy0) = ((t.clip.x as i32).max(0), (t.clip.y as i32).max(0));
    let cx1 = ((t.clip.x + t.clip.w) as i32)
        .min(canvas.width as i32)
        .max(cx0);
    let cy1 = ((t.clip.y + t.clip.h) as i32)
        .min(canvas.height as i32)
        .max(cy0);
    shaper.each_glyph(t, m, |gx, gy, image| {
        let (w, h) = (image.placement.width as i32, image.placement.height as i32);
        let xs = gx.max(cx0)..(gx + w).min(cx1);
        let ys = gy.max(cy0)..(gy + h).min(cy1);
        if image.content != glyphon::SwashContent::Color {
            canvas.blend_mask(xs, ys, (&image.data, w as usize, (gx, gy)), colour, alpha);
            return;
        }
        canvas.blend(xs, ys, |x, y| {
            let i = ((y - gy) * w + (x - gx)) as usize;
            let p = &image.data[i * 4..i * 4 + 4];
            let [r, g, b, a] = [p[0], p[1], p[2], p[3]].map(|v| v as f32 / 255.0);
            (rgb_to_yuv709_f32([r, g, b]), a)
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{PixelFormat, VideoFrame};

    fn scene(layers: Vec<Layer<'_>>) -> Scene<'_> {
        Scene::from(layers)
    }

    #[test]
    fn odd_or_empty_sizes_are_refused() {
        assert!(matches!(
            CpuCompositor::new(641, 360),
            Err(CompositorError::BadSize(641, 360))
        ));
        assert!(CpuCompositor::new(0, 2).is_err());
    }

    #[test]
    fn at_most_ring_size_frames_wait_and_come_out_in_order() {
        let mut c = CpuCompositor::new(16, 8).unwrap();
        let black = Color([0.0, 0.0, 0.0, 1.0]);
        let empty = scene(Vec::new());
        for k in 0..RING_SIZE as u64 {
            c.send_frames(black, &[(0, &empty)], Duration::from_millis(k))
                .unwrap();
        }
        assert!(!c.can_send_to(0));
        assert!(matches!(
            c.send_frames(black, &[(0, &empty)], Duration::ZERO),
            Err(CompositorError::RingFull)
        ));
        for k in 0..RING_SIZE as u64 {
            let f = c.receive_frame_from(0).unwrap().unwrap();
            assert_eq!(f.pts, Duration::from_millis(k));
        }
        assert!(c.receive_frame_from(0).unwrap().is_none());
        assert!(matches!(
            c.receive_frame_from(3),
            Err(CompositorError::NoTarget(3))
        ));
    }

    #[test]
    fn an_unscaled_picture_is_copied_exactly() {
        let mut pic = VideoFrame::solid(PixelFormat::I420, 8, 4, [100, 90, 160]);
        for (i, b) in pic.data[..32].iter_mut().enumerate() {
            *b = 16 + i as u8 * 5;
        }
        let mut c = CpuCompositor::new(12, 8).unwrap();
        let layer = Layer::new(
            Rect {
                x: 2.0,
                y: 2.0,
                w: 8.0,
                h: 4.0,
            },
            LayerContent::Picture {
                slot: 0,
                frame: &pic,
                src: Rect::UNIT,
            },
        );
        let s = scene(vec![layer]);
        c.send_frames(Color([0.0, 0.0, 0.0, 1.0]), &[(0, &s)], Duration::ZERO)
            .unwrap();
        let f = c.receive_frame_from(0).unwrap().unwrap();
        for y in 0..4 {
            for x in 0..8 {
                let got = f.yuv_at(x + 2, y + 2);
                assert_eq!(got[0], pic.data[(y * 8 + x) as usize], "Y at {x},{y}");
                assert_eq!([got[1], got[2]], [90, 160], "chroma at {x},{y}");
            }
        }
        // Outside: the background (black: Y 16, neutral chroma).
        assert_eq!(f.yuv_at(0, 0), [16, 128, 128]);
        assert_eq!(f.yuv_at(11, 7), [16, 128, 128]);
    }

    #[test]
    fn a_translucent_colour_blends_as_the_gpu_does() {
        let mut c = CpuCompositor::new(8, 8).unwrap();
        let half_white = Color([1.0, 1.0, 1.0, 0.5]);
        let layer = Layer::new(
            Rect {
                x: 0.0,
                y: 0.0,
                w: 8.0,
                h: 8.0,
            },
            LayerContent::Solid(half_white),
        );
        let s = scene(vec![layer]);
        c.send_frames(Color([0.0, 0.0, 0.0, 1.0]), &[(0, &s)], Duration::ZERO)
            .unwrap();
        let f = c.receive_frame_from(0).unwrap().unwrap();
        // Half of white (235) over black (16): 125.5, and chroma stays neutral.
        let [y, cb, cr] = f.yuv_at(3, 3);
        assert!((125..=126).contains(&y), "{y}");
        assert_eq!([cb, cr], [128, 128]);
    }

    #[test]
    fn a_rounded_corner_leaves_the_background_outside_it() {
        let mut c = CpuCompositor::new(40, 40).unwrap();
        let r = Rect {
            x: 0.0,
            y: 0.0,
            w: 40.0,
            h: 40.0,
        };
        let layer = Layer {
            dst: r,
            content: LayerContent::Solid(Color([1.0, 1.0, 1.0, 1.0])),
            shape: Some(Shape {
                rect: r,
                radius: 12.0,
                border: 0.0,
                border_color: Color([0.0; 4]),
            }),
        };
        let s = scene(vec![layer]);
        c.send_frames(Color([0.0, 0.0, 0.0, 1.0]), &[(0, &s)], Duration::ZERO)
            .unwrap();
        let f = c.receive_frame_from(0).unwrap().unwrap();
        assert_eq!(f.yuv_at(0, 0)[0], 16, "the corner is cut");
        assert_eq!(f.yuv_at(20, 20)[0], 235, "the middle is white");
        assert_eq!(f.yuv_at(20, 0)[0], 235, "the straight edge is whole");
    }

    /// Draws `layer` whole, every pixel through the shape test (what the split must equal).
    fn drawn_whole(layer: &Layer<'_>, (w, h): (u32, u32)) -> Vec<u8> {
        let mut data = vec![0u8; (w * h * 3 / 2) as usize];
        let mut canvas = Canvas {
            data: &mut data,
            width: w,
            height: h,
            stride: w as usize,
        };
        canvas.clear(yuv_of(Color([0.1, 0.3, 0.6, 1.0])).0);
        let (LayerContent::Solid(colour), Some(shape)) = (layer.content, layer.shape) else {
            unreachable!("a shaped colour")
        };
        let d = layer.dst;
        let c = yuv_of(colour);
        canvas.blend(span(d.x, d.x + d.w, w), span(d.y, d.y + d.h, h), |x, y| {
            shaped(&shape, c, (x as f32 + 0.5, y as f32 + 0.5))
        });
        data
    }

    #[test]
    fn a_split_shaped_colour_draws_the_pixels_of_the_whole_one() {
        let size = (64u32, 48u32);
        // Fractional edges (a text's box), whole ones, corners, a border; opaque and not.
        let rects = [
            (3.3, 5.7, 41.2, 30.9),
            (4.0, 6.0, 40.0, 30.0),
            (0.6, 1.5, 63.0, 46.2),
        ];
        for (x, y, w, h) in rects {
            for (radius, border, alpha) in [
                (0.0, 0.0, 0.6),
                (0.0, 0.0, 1.0),
                (5.0, 0.0, 0.6),
                (4.0, 1.5, 1.0),
            ] {
                let r = Rect { x, y, w, h };
                let layer = Layer {
                    dst: r,
                    content: LayerContent::Solid(Color([0.9, 0.8, 0.1, alpha])),
                    shape: Some(Shape {
                        rect: r,
                        radius,
                        border,
                        border_color: Color([0.2, 0.9, 0.3, 1.0]),
                    }),
                };
                let mut c = CpuCompositor::new(size.0, size.1).unwrap();
                let s = scene(vec![layer]);
                c.send_frames(Color([0.1, 0.3, 0.6, 1.0]), &[(0, &s)], Duration::ZERO)
                    .unwrap();
                let split = c.receive_frame_from(0).unwrap().unwrap();
                let whole = drawn_whole(&layer, size);
                let worst = split
                    .data
                    .iter()
                    .zip(&whole)
                    .map(|(a, b)| a.abs_diff(*b))
                    .max()
                    .unwrap();
                assert!(
                    worst <= 1,
                    "{r:?} radius {radius} border {border} alpha {alpha}: off by {worst}"
                );
            }
        }
    }
}
