//! The separable bilinear filter that scales a picture's planes: per output column the
//! two source samples and a weight (`Axis`), a horizontal pass per source row (kept
//! while the next output rows need it: `RowCache`) and a vertical blend into bytes.

/// Bilinear weights are in 1/256ths, as a GPU's 8-bit sub-texel precision.
pub(super) const ONE: u32 = 256;

/// The lower texel and the fraction towards the next, clamped to `[0, size - 1]`.
pub(super) fn clamp_texel(t: f32, size: u32) -> (usize, f32) {
    let t = t.clamp(0.0, (size - 1) as f32);
    // Not negative, so truncation is the floor (and no libm call).
    let i = (t as usize).min(size as usize - 1);
    (i, t - i as f32)
}

/// Per output pixel (or chroma sample) along one axis: the two source samples (already
/// multiplied by the plane's step) and the weight of the second, in 1/256ths.
pub(super) struct Axis {
    pub lo: Vec<u32>,
    pub hi: Vec<u32>,
    pub w: Vec<u16>,
    /// The largest index in `lo` and `hi`.
    max: usize,
    /// The same samples as byte shuffles, where every block of 8 outputs reads within
    /// 16 source bytes (scaling by less than 1.75, samples adjacent).
    blocks: Option<Blocks>,
}

/// Outputs per shuffle block.
const BLOCK: usize = 8;

/// Per block of [`BLOCK`] outputs: the first source byte it reads, shuffle masks that
/// pick each output's two samples from the 16 bytes there (as 16-bit lanes), and the
/// weights of the first and the second sample.
struct Blocks {
    start: Vec<u32>,
    lo: Vec<[u8; 16]>,
    hi: Vec<[u8; 16]>,
    w_lo: Vec<[u16; BLOCK]>,
    w_hi: Vec<[u16; BLOCK]>,
}

impl Blocks {
    fn new(lo: &[u32], hi: &[u32], w: &[u16]) -> Option<Blocks> {
        let n = lo.len() / BLOCK;
        let mut b = Blocks {
            start: Vec::with_capacity(n),
            lo: Vec::with_capacity(n),
            hi: Vec::with_capacity(n),
            w_lo: Vec::with_capacity(n),
            w_hi: Vec::with_capacity(n),
        };
        for k in 0..n {
            let r = k * BLOCK..(k + 1) * BLOCK;
            let start = lo[r.clone()].iter().chain(&hi[r.clone()]).min().copied()?;
            // 0x80 zeroes a lane's high byte: each output is a 16-bit lane.
            let (mut ml, mut mh) = ([0x80u8; 16], [0x80u8; 16]);
            let (mut wl, mut wh) = ([0u16; BLOCK], [0u16; BLOCK]);
            for (j, i) in r.enumerate() {
                let (a, c) = (lo[i] - start, hi[i] - start);
                if a >= 16 || c >= 16 {
                    return None;
                }
                (ml[2 * j], mh[2 * j]) = (a as u8, c as u8);
                (wl[j], wh[j]) = (ONE as u16 - w[i], w[i]);
            }
            b.start.push(start);
            b.lo.push(ml);
            b.hi.push(mh);
            b.w_lo.push(wl);
            b.w_hi.push(wh);
        }
        Some(b)
    }
}

/// Where an axis's output samples are and how the layer maps them: the first sample's
/// canvas coordinate, their count and spacing, the layer's `dst` and `src` extent on this
/// axis, the plane's size and step.
#[derive(Clone, Copy, Debug)]
pub(super) struct AxisSpec {
    pub first: f32,
    pub count: usize,
    pub spacing: f32,
    pub dst: (f32, f32),
    pub src: (f32, f32),
    pub size: u32,
    pub step: usize,
}

impl AxisSpec {
    fn key(&self) -> [u32; 9] {
        [
            self.first.to_bits(),
            self.count as u32,
            self.spacing.to_bits(),
            self.dst.0.to_bits(),
            self.dst.1.to_bits(),
            self.src.0.to_bits(),
            self.src.1.to_bits(),
            self.size,
            self.step as u32,
        ]
    }
}

/// Axes by spec, kept while frames use them (a layout stands still most of the time, so
/// each picture's axes are computed once, not every frame).
#[derive(Default)]
pub(super) struct AxisCache {
    axes: std::collections::HashMap<[u32; 9], (std::sync::Arc<Axis>, bool)>,
}

impl AxisCache {
    /// The axis of `spec`.
    pub fn get(&mut self, spec: &AxisSpec) -> std::sync::Arc<Axis> {
        let entry = self
            .axes
            .entry(spec.key())
            .or_insert_with(|| (std::sync::Arc::new(Axis::of(spec)), true));
        entry.1 = true;
        entry.0.clone()
    }

    /// Forgets the axes no frame used since the last sweep.
    pub fn sweep(&mut self) {
        self.axes.retain(|_, (_, used)| std::mem::take(used));
    }
}

impl Axis {
    fn of(spec: &AxisSpec) -> Axis {
        Axis::new(
            (0..spec.count).map(|i| spec.first + i as f32 * spec.spacing),
            spec.dst,
            spec.src,
            spec.size,
            spec.step,
        )
    }

    /// `points`: canvas coordinates of the output samples; the layer maps `dst_lo` +
    /// `dst_len` onto `src_lo` + `src_len` (0..1) of a plane `size` samples long.
    pub fn new(
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
        let blocks = if ssse3() {
            Blocks::new(&lo, &hi, &w)
        } else {
            None
        };
        Axis {
            lo,
            hi,
            w,
            max,
            blocks,
        }
    }

    /// Whether this axis reads consecutive samples without interpolating (a 1:1 copy).
    pub fn is_copy(&self, step: usize) -> bool {
        self.w.iter().all(|&w| w == 0) && self.lo.windows(2).all(|p| p[1] == p[0] + step as u32)
    }
}

/// Whether the shuffle blocks can run here (checked when an axis is made, not per row).
fn ssse3() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("ssse3");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Scales one plane's row horizontally into `out` (values x256), per `axis`.
fn h_pass(row: &[u8], axis: &Axis, out: &mut [u16]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if let Some(b) = &axis.blocks {
        // SAFETY: an axis has blocks only where the CPU has SSSE3 (`Axis::new`).
        done = unsafe { h_pass_ssse3(row, b, out) };
    }
    h_pass_scalar(row, axis, done, out);
}

/// The shuffle blocks of `h_pass`; returns how many outputs it wrote (whole blocks whose
/// 16 source bytes lie inside `row`, from the first).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
fn h_pass_ssse3(row: &[u8], b: &Blocks, out: &mut [u16]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi16, _mm_loadu_si128, _mm_mullo_epi16, _mm_shuffle_epi8,
        _mm_storeu_si128,
    };
    let mut done = 0;
    for (k, &start) in b.start.iter().enumerate() {
        let start = start as usize;
        if start + 16 > row.len() || (k + 1) * BLOCK > out.len() {
            break;
        }
        // SAFETY: 16 bytes from `start` are inside `row` and 8 lanes from `k * BLOCK`
        // inside `out` (both checked above); unaligned loads and stores are used, and
        // the masks and weights are arrays of exactly 16 bytes.
        unsafe {
            let src = _mm_loadu_si128(row.as_ptr().add(start).cast::<__m128i>());
            let a = _mm_shuffle_epi8(src, _mm_loadu_si128(b.lo[k].as_ptr().cast()));
            let c = _mm_shuffle_epi8(src, _mm_loadu_si128(b.hi[k].as_ptr().cast()));
            // Each product is at most 255 x 256, and so is their sum: 16 bits hold it.
            let v = _mm_add_epi16(
                _mm_mullo_epi16(a, _mm_loadu_si128(b.w_lo[k].as_ptr().cast())),
                _mm_mullo_epi16(c, _mm_loadu_si128(b.w_hi[k].as_ptr().cast())),
            );
            _mm_storeu_si128(out.as_mut_ptr().add(k * BLOCK).cast(), v);
        }
        done = (k + 1) * BLOCK;
    }
    done
}

/// `h_pass` one output at a time, from output `from` on.
fn h_pass_scalar(row: &[u8], axis: &Axis, from: usize, out: &mut [u16]) {
    assert!(axis.max < row.len(), "axis reads past the row");
    let one = ONE as u16;
    for (o, ((&a, &b), &w)) in out
        .iter_mut()
        .zip(axis.lo.iter().zip(&axis.hi).zip(&axis.w))
        .skip(from)
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
pub(super) fn v_pass<'a>(
    top: &[u16],
    bottom: &[u16],
    w: u16,
    out: impl Iterator<Item = &'a mut u8>,
) {
    let (w, k) = (w as u32, (ONE - w as u32));
    for ((&t, &b), o) in top.iter().zip(bottom).zip(out) {
        *o = ((t as u32 * k + b as u32 * w + ONE * ONE / 2) >> 16) as u8;
    }
}

/// Horizontally scaled source rows, kept while consecutive output rows reuse them.
pub(super) struct RowCache {
    pub rows: [(usize, Vec<u16>); 2],
}

impl RowCache {
    pub fn new(len: usize) -> RowCache {
        RowCache {
            rows: [(usize::MAX, vec![0; len]), (usize::MAX, vec![0; len])],
        }
    }

    /// Makes source rows `a` and `b` (`row_of` gives a row's bytes, to the end of the
    /// picture) present; returns their slots.
    pub fn get<'r>(
        &mut self,
        row_of: impl Fn(usize) -> &'r [u8],
        axis: &Axis,
        a: usize,
        b: usize,
    ) -> (usize, usize) {
        let mut slot_of = |want: usize, keep: usize| {
            if let Some(s) = self.rows.iter().position(|(r, _)| *r == want) {
                return s;
            }
            // Replace the slot not holding the row to keep.
            let s = usize::from(self.rows[0].0 == keep);
            self.rows[s].0 = want;
            h_pass(row_of(want), axis, &mut self.rows[s].1);
            s
        };
        let sa = slot_of(a, b);
        let sb = slot_of(b, a);
        (sa, sb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shuffle blocks give exactly the scalar loop's values, scaling up, down a
    /// little (a grid tile) and down by 1.6, from any offset.
    #[test]
    fn shuffle_blocks_match_the_scalar_filter() {
        let row: Vec<u8> = (0..2000u32).map(|i| (i * 37 % 251) as u8).collect();
        for (src_w, out_w, offset) in [
            (640u32, 1280usize, 0.0f32),
            (640, 622, 3.5),
            (960, 600, 1.25),
        ] {
            let axis = Axis::new(
                (0..out_w).map(|x| x as f32 + 0.5 + offset),
                (offset, out_w as f32),
                (0.0, 1.0),
                src_w,
                1,
            );
            assert!(
                axis.blocks.is_some() || !cfg!(target_arch = "x86_64"),
                "{src_w}->{out_w}"
            );
            let (mut fast, mut slow) = (vec![0u16; out_w], vec![0u16; out_w]);
            h_pass(&row, &axis, &mut fast);
            h_pass_scalar(&row, &axis, 0, &mut slow);
            assert_eq!(fast, slow, "{src_w}->{out_w}");
        }
    }

    #[test]
    fn scaling_by_two_or_more_has_no_blocks() {
        let axis = Axis::new(
            (0..100).map(|x| x as f32 + 0.5),
            (0.0, 100.0),
            (0.0, 1.0),
            400,
            1,
        );
        assert!(axis.blocks.is_none());
    }
}
