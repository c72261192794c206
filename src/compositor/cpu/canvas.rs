//! An NV12 frame being drawn on the CPU, and the three ways a layer reaches it: a fill
//! (opaque rectangles), a scaled picture (opaque, unshaped: the hot path, integer
//! bilinear per plane, straight from the participant's YUV planes), and a per-pixel blend
//! for everything small or translucent (rounded edges, borders, text, images).
//!
//! Coverage follows the rasteriser's rule: a pixel belongs to a rectangle when its centre
//! lies inside (left and top edges inclusive). A chroma sample covers a 2x2 block and
//! takes the average of its four pixels, as the GPU's NV12 pass does.

use std::ops::Range;

use super::filter::{Axis, AxisCache, AxisSpec, ONE, RowCache, clamp_texel, v_pass};
use crate::layout::Rect;
use crate::source::{PixelFormat, VideoFrame};

/// Limited-range Y'CbCr in byte units (Y 16..235, Cb/Cr 16..240), as floats.
pub(super) type Yuv = [f32; 3];

/// An NV12 frame laid out as GStreamer's default: Y rows of `stride` bytes, then
/// interleaved CbCr rows of `stride` bytes at half height.
pub(super) struct Canvas<'a> {
    pub data: &'a mut [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
}

/// The pixels whose centres lie in `[lo, hi)` along an axis of `size` pixels.
pub(super) fn span(lo: f32, hi: f32, size: u32) -> Range<i32> {
    let a = ((lo - 0.5).ceil() as i32).clamp(0, size as i32);
    let b = ((hi - 0.5).ceil() as i32).clamp(0, size as i32);
    a..b.max(a)
}

/// How many of chroma block `c`'s two pixels are inside the pixel range `r`.
fn covered(c: i32, r: &Range<i32>) -> u32 {
    (2 * c..2 * c + 2).filter(|p| r.contains(p)).count() as u32
}

/// The chroma samples (2-pixel blocks) touching the pixel range `r`, each with the
/// number of its two pixels inside `r` (1 or 2).
fn blocks(r: &Range<i32>) -> impl Iterator<Item = (usize, u32)> + '_ {
    (r.start / 2..(r.end + 1) / 2).map(move |c| (c as usize, covered(c, r)))
}

fn to_byte(v: f32) -> u8 {
    (v + 0.5).clamp(0.0, 255.0) as u8
}

/// A plane of a participant's picture: where it starts, its row length, and the distance
/// between samples (2 for one component of NV12's interleaved chroma).
#[derive(Clone, Copy)]
struct Plane<'a> {
    data: &'a [u8],
    offset: usize,
    stride: usize,
    step: usize,
    width: u32,
    height: u32,
}

impl<'a> Plane<'a> {
    fn row(&self, y: usize) -> &'a [u8] {
        &self.data[self.offset + y * self.stride..]
    }

    fn at(&self, x: usize, y: usize) -> u8 {
        self.row(y)[x * self.step]
    }

    /// Bilinear sample at texel coordinates (texel centres at integers), clamped to the
    /// edge, as a float in byte units.
    fn sample(&self, tx: f32, ty: f32) -> f32 {
        let (x0, fx) = clamp_texel(tx, self.width);
        let (y0, fy) = clamp_texel(ty, self.height);
        let x1 = (x0 + 1).min(self.width as usize - 1);
        let y1 = (y0 + 1).min(self.height as usize - 1);
        let top = self.at(x0, y0) as f32 * (1.0 - fx) + self.at(x1, y0) as f32 * fx;
        let bottom = self.at(x0, y1) as f32 * (1.0 - fx) + self.at(x1, y1) as f32 * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

/// The planes of a picture: Y, Cb, Cr.
pub(super) struct Picture<'a> {
    planes: [Plane<'a>; 3],
}

impl<'a> Picture<'a> {
    pub fn new(f: &'a VideoFrame) -> Picture<'a> {
        let (w, h) = (f.width as usize, f.height as usize);
        let (cw, ch) = (f.width / 2, f.height / 2);
        let luma = Plane {
            data: &f.data,
            offset: 0,
            stride: w,
            step: 1,
            width: f.width,
            height: f.height,
        };
        let chroma = |offset, stride, step| Plane {
            data: &f.data,
            offset,
            stride,
            step,
            width: cw,
            height: ch,
        };
        let planes = match f.format {
            PixelFormat::I420 => [
                luma,
                chroma(w * h, w / 2, 1),
                chroma(w * h + (w / 2) * (h / 2), w / 2, 1),
            ],
            PixelFormat::Nv12 => [luma, chroma(w * h, w, 2), chroma(w * h + 1, w, 2)],
        };
        Picture { planes }
    }

    /// The colour at canvas point `p` of a layer drawing `src` (0..1 of the picture)
    /// into `dst`.
    pub fn sample(&self, dst: Rect, src: Rect, p: (f32, f32)) -> Yuv {
        let u = src.x + (p.0 - dst.x) / dst.w * src.w;
        let v = src.y + (p.1 - dst.y) / dst.h * src.h;
        let at = |pl: &Plane<'_>| pl.sample(u * pl.width as f32 - 0.5, v * pl.height as f32 - 0.5);
        [
            at(&self.planes[0]),
            at(&self.planes[1]),
            at(&self.planes[2]),
        ]
    }
}

impl Canvas<'_> {
    fn uv_offset(&self) -> usize {
        self.stride * self.height as usize
    }

    /// Fills every pixel with `c`.
    pub fn clear(&mut self, c: Yuv) {
        let uv = self.uv_offset();
        let (y, cb, cr) = (to_byte(c[0]), to_byte(c[1]), to_byte(c[2]));
        self.data[..uv].fill(y);
        for p in self.data[uv..].chunks_exact_mut(2) {
            p[0] = cb;
            p[1] = cr;
        }
    }

    /// A rectangle of `c` at opacity `a` (1: opaque).
    pub fn fill(&mut self, r: Rect, c: Yuv, a: f32) {
        let xs = span(r.x, r.x + r.w, self.width);
        let ys = span(r.y, r.y + r.h, self.height);
        if xs.is_empty() || ys.is_empty() {
            return;
        }
        let (x0, x1) = (xs.start as usize, xs.end as usize);
        if a >= 1.0 {
            let y = to_byte(c[0]);
            for row in ys.clone() {
                let at = row as usize * self.stride;
                self.data[at + x0..at + x1].fill(y);
            }
        } else {
            // Fixed point, 1/256ths: one multiply-add per byte.
            let k = (a.clamp(0.0, 1.0) * ONE as f32).round() as u32;
            let add = (c[0].clamp(0.0, 255.0) * k as f32).round() as u32 + ONE / 2;
            for row in ys.clone() {
                let at = row as usize * self.stride;
                for d in &mut self.data[at + x0..at + x1] {
                    *d = ((*d as u32 * (ONE - k) + add) >> 8) as u8;
                }
            }
        }
        let uv = self.uv_offset();
        let xb: Vec<_> = blocks(&xs).collect();
        for (cy, ny) in blocks(&ys) {
            let row = uv + cy * self.stride;
            for &(cx, nx) in &xb {
                let a = a * (nx * ny) as f32 / 4.0;
                for k in 0..2 {
                    let d = &mut self.data[row + cx * 2 + k];
                    *d = to_byte(*d as f32 * (1.0 - a) + c[1 + k] * a);
                }
            }
        }
    }

    /// Blends per pixel over `xs` x `ys`: `f(x, y)` gives the colour and opacity of the
    /// pixel whose top-left corner is (x, y). Chroma takes the average of its block.
    pub fn blend(
        &mut self,
        xs: Range<i32>,
        ys: Range<i32>,
        mut f: impl FnMut(i32, i32) -> (Yuv, f32),
    ) {
        let (xs, ys) = (
            xs.start.max(0)..xs.end.min(self.width as i32),
            ys.start.max(0)..ys.end.min(self.height as i32),
        );
        if xs.is_empty() || ys.is_empty() {
            return;
        }
        let (stride, uv) = (self.stride, self.uv_offset());
        for cy in ys.start / 2..(ys.end + 1) / 2 {
            for cx in xs.start / 2..(xs.end + 1) / 2 {
                let (mut a_sum, mut cb, mut cr) = (0.0, 0.0, 0.0);
                for py in [2 * cy, 2 * cy + 1].into_iter().filter(|p| ys.contains(p)) {
                    for px in [2 * cx, 2 * cx + 1].into_iter().filter(|p| xs.contains(p)) {
                        let (c, a) = f(px, py);
                        if a <= 0.0 {
                            continue;
                        }
                        let d = &mut self.data[py as usize * stride + px as usize];
                        *d = to_byte(*d as f32 * (1.0 - a) + c[0] * a);
                        a_sum += a;
                        cb += a * c[1];
                        cr += a * c[2];
                    }
                }
                if a_sum <= 0.0 {
                    continue;
                }
                let at = uv + cy as usize * stride + cx as usize * 2;
                let keep = 1.0 - a_sum / 4.0;
                self.data[at] = to_byte(self.data[at] as f32 * keep + cb / 4.0);
                self.data[at + 1] = to_byte(self.data[at + 1] as f32 * keep + cr / 4.0);
            }
        }
    }

    /// Blends a coverage mask in one colour: the fast path of [`Canvas::blend`] for text
    /// (fixed point, no closure). `mask` holds one byte a pixel, `mask_w` wide, its
    /// top-left pixel at `origin`; `xs` x `ys` must lie inside it. Each pixel takes
    /// `alpha` times its coverage; chroma the average of its block, as `blend` does.
    pub fn blend_mask(
        &mut self,
        xs: Range<i32>,
        ys: Range<i32>,
        (mask, mask_w, origin): (&[u8], usize, (i32, i32)),
        c: Yuv,
        alpha: f32,
    ) {
        let (xs, ys) = (
            xs.start.max(0)..xs.end.min(self.width as i32),
            ys.start.max(0)..ys.end.min(self.height as i32),
        );
        if xs.is_empty() || ys.is_empty() {
            return;
        }
        // Opacity in 1/256ths from the coverage byte; colours as bytes.
        let a = (alpha.clamp(0.0, 1.0) * 256.0).round() as u32;
        let weight = |x: i32, y: i32| -> u32 {
            let m = mask[(y - origin.1) as usize * mask_w + (x - origin.0) as usize] as u32;
            (a * m + 127) / 255
        };
        let [cy_, cb, cr] = c.map(|v| v.clamp(0.0, 255.0).round() as u32);
        let (stride, uv) = (self.stride, self.uv_offset());
        for y in ys.clone() {
            let row = y as usize * stride;
            for x in xs.clone() {
                let k = weight(x, y);
                if k > 0 {
                    let d = &mut self.data[row + x as usize];
                    *d = ((*d as u32 * (256 - k) + cy_ * k + 128) >> 8) as u8;
                }
            }
        }
        for by in ys.start / 2..(ys.end + 1) / 2 {
            for bx in xs.start / 2..(xs.end + 1) / 2 {
                let mut k_sum = 0;
                for py in [2 * by, 2 * by + 1].into_iter().filter(|p| ys.contains(p)) {
                    for px in [2 * bx, 2 * bx + 1].into_iter().filter(|p| xs.contains(p)) {
                        k_sum += weight(px, py);
                    }
                }
                if k_sum == 0 {
                    continue;
                }
                let at = uv + by as usize * stride + bx as usize * 2;
                for (i, v) in [cb, cr].into_iter().enumerate() {
                    let d = &mut self.data[at + i];
                    *d = ((*d as u32 * (1024 - k_sum) + v * k_sum + 512) >> 10) as u8;
                }
            }
        }
    }

    /// An opaque, unshaped picture layer: `src` (0..1) of `pic` scaled into `dst`.
    pub fn picture(&mut self, pic: &Picture<'_>, dst: Rect, src: Rect, axes: &mut AxisCache) {
        let xs = span(dst.x, dst.x + dst.w, self.width);
        let ys = span(dst.y, dst.y + dst.h, self.height);
        if xs.is_empty() || ys.is_empty() || dst.w <= 0.0 || dst.h <= 0.0 {
            return;
        }
        let spec =
            |r: &Range<i32>, first: f32, spacing: f32, d: (f32, f32), s: (f32, f32), size, step| {
                AxisSpec {
                    first,
                    count: r.len(),
                    spacing,
                    dst: d,
                    src: s,
                    size,
                    step,
                }
            };
        let (dx, dy) = ((dst.x, dst.w), (dst.y, dst.h));
        let (sx, sy) = ((src.x, src.w), (src.y, src.h));
        // Luma: one sample per pixel centre.
        let luma = pic.planes[0];
        let centres = |r: &Range<i32>| r.start as f32 + 0.5;
        let ax = axes.get(&spec(&xs, centres(&xs), 1.0, dx, sx, luma.width, 1));
        let ay = axes.get(&spec(&ys, centres(&ys), 1.0, dy, sy, luma.height, 1));
        self.draw_plane(&luma, &ax, &ay, 0, xs.start as usize, ys.start as usize, 1);
        // Chroma: one sample per block the layer touches, at the block's centre; a block
        // an odd edge cuts in half (or a quarter, at a corner) is blended by coverage.
        let cxs = xs.start / 2..(xs.end + 1) / 2;
        let cys = ys.start / 2..(ys.end + 1) / 2;
        let uv = self.uv_offset();
        let cover = |c: i32, r: &Range<i32>| covered(c, r) as f32 / 2.0;
        // Bytes of the cut blocks as they were, with the layer's share of each.
        let mut cut = Vec::new();
        let mut note = |cx: i32, cy: i32, data: &[u8]| {
            let a = cover(cx, &xs) * cover(cy, &ys);
            if a < 1.0 {
                let at = uv + cy as usize * self.stride + cx as usize * 2;
                cut.push((at, [data[at], data[at + 1]], a));
            }
        };
        let (first_row, last_row) = (cys.start, cys.end - 1);
        for cx in cxs.clone() {
            note(cx, first_row, self.data);
            if last_row != first_row {
                note(cx, last_row, self.data);
            }
        }
        for cy in cys.start + 1..cys.end - 1 {
            note(cxs.start, cy, self.data);
            if cxs.end - 1 != cxs.start {
                note(cxs.end - 1, cy, self.data);
            }
        }
        for k in 0..2 {
            let plane = pic.planes[1 + k];
            let first_x = 2.0 * cxs.start as f32 + 1.0;
            let first_y = 2.0 * cys.start as f32 + 1.0;
            let ax = axes.get(&spec(&cxs, first_x, 2.0, dx, sx, plane.width, plane.step));
            let ay = axes.get(&spec(&cys, first_y, 2.0, dy, sy, plane.height, 1));
            let at = uv + k + cxs.start as usize * 2;
            self.draw_plane(&plane, &ax, &ay, at, 0, cys.start as usize, 2);
        }
        for (at, old, a) in cut {
            for (d, o) in self.data[at..at + 2].iter_mut().zip(old) {
                *d = to_byte(o as f32 * (1.0 - a) + *d as f32 * a);
            }
        }
    }

    /// Scales `plane` into the canvas: output row `y0 + j` (of this plane's rows, at byte
    /// `at` of the plane with samples `out_step` apart) from `ay`'s rows and `ax`'s
    /// columns. `x0` is the first output column.
    #[allow(clippy::too_many_arguments)]
    fn draw_plane(
        &mut self,
        plane: &Plane<'_>,
        ax: &Axis,
        ay: &Axis,
        at: usize,
        x0: usize,
        y0: usize,
        out_step: usize,
    ) {
        let n = ax.w.len();
        let copy = out_step == 1 && ax.is_copy(plane.step);
        let mut cache = RowCache::new(n);
        for (j, ((&lo, &hi), &w)) in ay.lo.iter().zip(&ay.hi).zip(&ay.w).enumerate() {
            let start = at + (y0 + j) * self.stride + x0;
            let out = &mut self.data[start..start + (n - 1) * out_step + 1];
            if copy && w == 0 {
                let from = ax.lo[0] as usize;
                out.copy_from_slice(&plane.row(lo as usize)[from..from + n]);
                continue;
            }
            let (sa, sb) = cache.get(|r| plane.row(r), ax, lo as usize, hi as usize);
            let (top, bottom) = (&cache.rows[sa].1, &cache.rows[sb].1);
            if out_step == 1 {
                v_pass(top, bottom, w, out.iter_mut());
            } else {
                v_pass(top, bottom, w, out.iter_mut().step_by(out_step));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_follow_pixel_centres() {
        assert_eq!(span(0.0, 4.0, 10), 0..4);
        assert_eq!(span(0.4, 4.6, 10), 0..5);
        assert_eq!(span(0.6, 4.4, 10), 1..4);
        assert_eq!(span(-3.0, 40.0, 10), 0..10);
        assert_eq!(span(5.0, 5.0, 10), 5..5);
    }

    #[test]
    fn a_mask_blends_as_the_general_blend_does() {
        let (w, h) = (12u32, 10u32);
        let base: Vec<u8> = (0..w * h * 3 / 2).map(|i| (i * 37 % 251) as u8).collect();
        let mask: Vec<u8> = (0..7 * 6).map(|i| (i * 53 % 256) as u8).collect();
        let (c, alpha) = ([200.0, 90.0, 160.0], 0.8);
        let (xs, ys, origin) = (3..10, 1..7, (3, 1));
        let draw = |fast: bool| {
            let mut data = base.clone();
            let mut canvas = Canvas {
                data: &mut data,
                width: w,
                height: h,
                stride: w as usize,
            };
            if fast {
                canvas.blend_mask(xs.clone(), ys.clone(), (&mask, 7, origin), c, alpha);
            } else {
                canvas.blend(xs.clone(), ys.clone(), |x, y| {
                    let m = mask[((y - origin.1) * 7 + (x - origin.0)) as usize];
                    (c, alpha * m as f32 / 255.0)
                });
            }
            data
        };
        let (slow, fast) = (draw(false), draw(true));
        let worst = slow.iter().zip(&fast).map(|(a, b)| a.abs_diff(*b)).max();
        assert!(worst <= Some(1), "{worst:?}");
        assert_ne!(fast, base);
    }

    #[test]
    fn blocks_count_their_covered_pixels() {
        assert_eq!(
            blocks(&(1..5)).collect::<Vec<_>>(),
            [(0, 1), (1, 2), (2, 1)]
        );
        assert_eq!(blocks(&(2..4)).collect::<Vec<_>>(), [(1, 2)]);
    }
}
