//! An NV12 frame being drawn on the CPU, and the three ways a layer reaches it: a fill
//! (opaque rectangles), a scaled picture (opaque, unshaped: the hot path, integer
//! bilinear per plane, straight from the participant's YUV planes), and a per-pixel blend
//! for everything small or translucent (rounded edges, borders, text, images).
//!
//! Coverage follows the rasteriser's rule: a pixel belongs to a rectangle when its centre
//! lies inside (left and top edges inclusive). A chroma sample covers a 2x2 block and
//! takes the average of its four pixels, as the GPU's NV12 pass does.

use std::ops::Range;

use crate::layout::Rect;
use crate::source::{PixelFormat, VideoFrame};

/// Limited-range Y'CbCr in byte units (Y 16..235, Cb/Cr 16..240), as floats.
pub(super) type Yuv = [f32; 3];

/// Bilinear weights are in 1/256ths, as a GPU's 8-bit sub-texel precision.
const ONE: u32 = 256;

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

/// The chroma samples (2-pixel blocks) touching the pixel range `r`, each with the
/// number of its two pixels inside `r` (1 or 2).
fn blocks(r: &Range<i32>) -> impl Iterator<Item = (usize, u32)> + '_ {
    (r.start / 2..(r.end + 1) / 2).map(move |c| {
        let inside = (2 * c..2 * c + 2).filter(|p| r.contains(p)).count() as u32;
        (c as usize, inside)
    })
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

/// The lower texel and the fraction towards the next, clamped to `[0, size - 1]`.
fn clamp_texel(t: f32, size: u32) -> (usize, f32) {
    let t = t.clamp(0.0, (size - 1) as f32);
    // Not negative, so truncation is the floor (and no libm call).
    let i = (t as usize).min(size as usize - 1);
    (i, t - i as f32)
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
        self.sample_planes(dst, src, p, true)
    }

    /// As [`Picture::sample`]; without `luma`, Y is left 0 (chroma only).
    fn sample_planes(&self, dst: Rect, src: Rect, p: (f32, f32), luma: bool) -> Yuv {
        let u = src.x + (p.0 - dst.x) / dst.w * src.w;
        let v = src.y + (p.1 - dst.y) / dst.h * src.h;
        let at = |pl: &Plane<'_>| pl.sample(u * pl.width as f32 - 0.5, v * pl.height as f32 - 0.5);
        [
            if luma { at(&self.planes[0]) } else { 0.0 },
            at(&self.planes[1]),
            at(&self.planes[2]),
        ]
    }
}

/// Per output pixel (or chroma sample) along one axis: the two source samples (already
/// multiplied by the plane's step) and the weight of the second, in 1/256ths.
struct Axis {
    lo: Vec<u32>,
    hi: Vec<u32>,
    w: Vec<u16>,
    /// The largest index in `lo` and `hi`.
    max: usize,
}

impl Axis {
    /// `points`: canvas coordinates of the output samples; the layer maps `dst_lo` +
    /// `dst_len` onto `src_lo` + `src_len` (0..1) of a plane `size` samples long.
    fn new(
        points: impl Iterator<Item = f32>,
        (dst_lo, dst_len): (f32, f32),
        (src_lo, src_len): (f32, f32),
        size: u32,
        step: usize,
    ) -> Axis {
        let (mut lo, mut hi, mut w) = (Vec::new(), Vec::new(), Vec::new());
        for p in points {
            let u = src_lo + (p - dst_lo) / dst_len * src_len;
            let (i, f) = clamp_texel(u * size as f32 - 0.5, size);
            let wt = ((f * ONE as f32 + 0.5) as u32).min(ONE);
            let j = (i + 1).min(size as usize - 1);
            lo.push((i * step) as u32);
            hi.push((j * step) as u32);
            w.push(wt as u16);
        }
        let max = hi.iter().chain(&lo).copied().max().unwrap_or(0) as usize;
        Axis { lo, hi, w, max }
    }

    /// Whether this axis reads consecutive samples without interpolating (a 1:1 copy).
    fn is_copy(&self, step: usize) -> bool {
        self.w.iter().all(|&w| w == 0) && self.lo.windows(2).all(|p| p[1] == p[0] + step as u32)
    }
}

/// Scales one plane's row horizontally into `out` (values x256), per `axis`.
fn h_pass(row: &[u8], axis: &Axis, out: &mut [u16]) {
    assert!(axis.max < row.len(), "axis reads past the row");
    let one = ONE as u16;
    for (o, ((&a, &b), &w)) in out
        .iter_mut()
        .zip(axis.lo.iter().zip(&axis.hi).zip(&axis.w))
    {
        // SAFETY: every index in `axis.lo` and `axis.hi` is at most `axis.max`, which is
        // below `row.len()` (asserted above). This loop is the CPU compositor's hottest:
        // two bounds checks per sample cost more than the arithmetic.
        let (a, b) = unsafe {
            (
                *row.get_unchecked(a as usize) as u16,
                *row.get_unchecked(b as usize) as u16,
            )
        };
        // At most 255 x 256: fits.
        *o = a * (one - w) + b * w;
    }
}

/// Blends two horizontally scaled rows vertically into bytes (`out`: a luma row, or
/// every other byte of an interleaved chroma row).
fn v_pass<'a>(top: &[u16], bottom: &[u16], w: u16, out: impl Iterator<Item = &'a mut u8>) {
    let (w, k) = (w as u32, (ONE - w as u32));
    for ((&t, &b), o) in top.iter().zip(bottom).zip(out) {
        *o = ((t as u32 * k + b as u32 * w + ONE * ONE / 2) >> 16) as u8;
    }
}

/// Horizontally scaled source rows, kept while consecutive output rows reuse them.
struct RowCache {
    rows: [(usize, Vec<u16>); 2],
}

impl RowCache {
    fn new(len: usize) -> RowCache {
        RowCache {
            rows: [(usize::MAX, vec![0; len]), (usize::MAX, vec![0; len])],
        }
    }

    /// Makes rows `a` and `b` present; returns their slots.
    fn get(&mut self, plane: &Plane<'_>, axis: &Axis, a: usize, b: usize) -> (usize, usize) {
        let mut slot_of = |want: usize, keep: usize| {
            if let Some(s) = self.rows.iter().position(|(r, _)| *r == want) {
                return s;
            }
            // Replace the slot not holding the row to keep.
            let s = usize::from(self.rows[0].0 == keep);
            self.rows[s].0 = want;
            h_pass(plane.row(want), axis, &mut self.rows[s].1);
            s
        };
        let sa = slot_of(a, b);
        let sb = slot_of(b, a);
        (sa, sb)
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
    pub fn blend(&mut self, xs: Range<i32>, ys: Range<i32>, f: impl FnMut(i32, i32) -> (Yuv, f32)) {
        self.blend_planes(xs, ys, true, f);
    }

    /// As [`Canvas::blend`]; with `luma` false only the chroma samples are written (the
    /// luma is already drawn).
    fn blend_planes(
        &mut self,
        xs: Range<i32>,
        ys: Range<i32>,
        luma: bool,
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
                        if luma {
                            let d = &mut self.data[py as usize * stride + px as usize];
                            *d = to_byte(*d as f32 * (1.0 - a) + c[0] * a);
                        }
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

    /// An opaque, unshaped picture layer: `src` (0..1) of `pic` scaled into `dst`.
    pub fn picture(&mut self, pic: &Picture<'_>, dst: Rect, src: Rect) {
        let xs = span(dst.x, dst.x + dst.w, self.width);
        let ys = span(dst.y, dst.y + dst.h, self.height);
        if xs.is_empty() || ys.is_empty() || dst.w <= 0.0 || dst.h <= 0.0 {
            return;
        }
        let map_x = ((dst.x, dst.w), (src.x, src.w));
        let map_y = ((dst.y, dst.h), (src.y, src.h));
        // Luma: one sample per pixel centre.
        let luma = pic.planes[0];
        let ax = Axis::new(
            xs.clone().map(|x| x as f32 + 0.5),
            map_x.0,
            map_x.1,
            luma.width,
            1,
        );
        let ay = Axis::new(
            ys.clone().map(|y| y as f32 + 0.5),
            map_y.0,
            map_y.1,
            luma.height,
            1,
        );
        self.draw_plane(&luma, &ax, &ay, 0, xs.start as usize, ys.start as usize, 1);
        // Chroma: whole blocks inside the layer are written; blocks half inside are
        // blended by their coverage.
        let cxs = (xs.start + 1) / 2..xs.end / 2;
        let cys = (ys.start + 1) / 2..ys.end / 2;
        let uv = self.uv_offset();
        if !cxs.is_empty() && !cys.is_empty() {
            for k in 0..2 {
                let plane = pic.planes[1 + k];
                let ax = Axis::new(
                    cxs.clone().map(|c| 2.0 * c as f32 + 1.0),
                    map_x.0,
                    map_x.1,
                    plane.width,
                    plane.step,
                );
                let ay = Axis::new(
                    cys.clone().map(|c| 2.0 * c as f32 + 1.0),
                    map_y.0,
                    map_y.1,
                    plane.height,
                    1,
                );
                let at = uv + k + cxs.start as usize * 2;
                self.draw_plane(&plane, &ax, &ay, at, 0, cys.start as usize, 2);
            }
        }
        // The partly covered blocks along the edges (at most one column or row per side).
        let edge = |x: i32, y: i32| {
            let c = pic.sample_planes(dst, src, (x as f32 + 0.5, y as f32 + 0.5), false);
            (c, 1.0)
        };
        let mut edges = |cx: Range<i32>, cy: Range<i32>| {
            let xr = (cx.start * 2).max(xs.start)..(cx.end * 2).min(xs.end);
            let yr = (cy.start * 2).max(ys.start)..(cy.end * 2).min(ys.end);
            self.blend_planes(xr, yr, false, edge);
        };
        let all_cx = xs.start / 2..(xs.end + 1) / 2;
        let all_cy = ys.start / 2..(ys.end + 1) / 2;
        if cys.start > all_cy.start {
            edges(all_cx.clone(), all_cy.start..cys.start);
        }
        if all_cy.end > cys.end.max(cys.start) {
            edges(all_cx.clone(), cys.end.max(cys.start)..all_cy.end);
        }
        let mid = cys.start..cys.end.max(cys.start);
        if cxs.start > all_cx.start {
            edges(all_cx.start..cxs.start, mid.clone());
        }
        if all_cx.end > cxs.end.max(cxs.start) {
            edges(cxs.end.max(cxs.start)..all_cx.end, mid);
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
            let (sa, sb) = cache.get(plane, ax, lo as usize, hi as usize);
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
    fn blocks_count_their_covered_pixels() {
        assert_eq!(
            blocks(&(1..5)).collect::<Vec<_>>(),
            [(0, 1), (1, 2), (2, 1)]
        );
        assert_eq!(blocks(&(2..4)).collect::<Vec<_>>(), [(1, 2)]);
    }
}
