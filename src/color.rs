//! BT.709 limited-range colour conversion: the CPU reference for the WGSL shaders
//! (`shaders/composite.wgsl` decodes YUV, `shaders/nv12.wgsl` encodes it).

/// Luma coefficients of BT.709.
pub const KR: f32 = 0.2126;
/// Luma coefficient of blue.
pub const KB: f32 = 0.0722;

/// 8-bit R'G'B' → limited-range Y'CbCr (Y 16..235, Cb/Cr 16..240), BT.709.
pub fn rgb_to_yuv709(rgb: [u8; 3]) -> [u8; 3] {
    rgb_to_yuv709_f32(rgb.map(|c| c as f32 / 255.0)).map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// R'G'B' in 0..=1 → limited-range Y'CbCr in byte units, unrounded (what the CPU
/// compositor blends in).
pub fn rgb_to_yuv709_f32([r, g, b]: [f32; 3]) -> [f32; 3] {
    let y = KR * r + (1.0 - KR - KB) * g + KB * b;
    let cb = (b - y) / (2.0 * (1.0 - KB));
    let cr = (r - y) / (2.0 * (1.0 - KR));
    [16.0 + 219.0 * y, 128.0 + 224.0 * cb, 128.0 + 224.0 * cr]
}

/// Limited-range Y'CbCr, BT.709 → 8-bit R'G'B' (clamped).
pub fn yuv709_to_rgb(yuv: [u8; 3]) -> [u8; 3] {
    let y = (yuv[0] as f32 - 16.0) / 219.0;
    let cb = (yuv[1] as f32 - 128.0) / 224.0;
    let cr = (yuv[2] as f32 - 128.0) / 224.0;
    let r = y + 2.0 * (1.0 - KR) * cr;
    let b = y + 2.0 * (1.0 - KB) * cb;
    let g = (y - KR * r - KB * b) / (1.0 - KR - KB);
    [r, g, b].map(|c| (c * 255.0).round().clamp(0.0, 255.0) as u8)
}

/// NV12 (BT.709 limited; a `stride`-byte Y plane of `height` rows, then interleaved CbCr
/// rows at half height) → packed 8-bit RGB.
pub fn nv12_to_rgb(data: &[u8], width: usize, height: usize, stride: usize) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(width * height * 3);
    let uv = &data[stride * height..];
    for y in 0..height {
        let row = &data[y * stride..y * stride + width];
        let uv_row = &uv[(y / 2) * stride..];
        for (x, &luma) in row.iter().enumerate() {
            let c = (x / 2) * 2;
            rgb.extend_from_slice(&yuv709_to_rgb([luma, uv_row[c], uv_row[c + 1]]));
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from ITU-R BT.709 limited range (as ffmpeg's and GStreamer's
    /// converters produce them for 8-bit input).
    #[test]
    fn reference_values() {
        assert_eq!(rgb_to_yuv709([0, 0, 0]), [16, 128, 128]);
        assert_eq!(rgb_to_yuv709([255, 255, 255]), [235, 128, 128]);
        assert_eq!(rgb_to_yuv709([255, 0, 0]), [63, 102, 240]);
        assert_eq!(rgb_to_yuv709([0, 255, 0]), [173, 42, 26]);
        assert_eq!(rgb_to_yuv709([0, 0, 255]), [32, 240, 118]);
    }

    #[test]
    fn round_trip_is_close() {
        for rgb in [
            [200, 30, 90],
            [10, 220, 140],
            [128, 128, 128],
            [250, 240, 20],
        ] {
            let back = yuv709_to_rgb(rgb_to_yuv709(rgb));
            for c in 0..3 {
                assert!(
                    (back[c] as i32 - rgb[c] as i32).abs() <= 2,
                    "{rgb:?} -> {back:?}"
                );
            }
        }
    }
}
