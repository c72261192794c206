//! A composited frame as it comes back: NV12, laid out as GStreamer's default.

use std::time::Duration;

/// One NV12 frame read back from the GPU, laid out as GStreamer's default NV12.
#[derive(Debug)]
pub struct Nv12Frame {
    /// Y plane (`stride` x height) then interleaved CbCr (`stride` x height/2).
    pub data: Vec<u8>,
    /// Bytes per row of both planes (width rounded up to 4).
    pub stride: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Presentation time given to `send_frame`.
    pub pts: Duration,
}

impl Nv12Frame {
    /// The frame as packed 8-bit RGB (BT.709 limited range).
    pub fn to_rgb(&self) -> Vec<u8> {
        let (w, h, s) = (
            self.width as usize,
            self.height as usize,
            self.stride as usize,
        );
        crate::color::nv12_to_rgb(&self.data, w, h, s)
    }
}

impl Nv12Frame {
    /// The Y, Cb, Cr bytes at pixel (x, y).
    pub fn yuv_at(&self, x: u32, y: u32) -> [u8; 3] {
        let s = self.stride as usize;
        let uv = s * self.height as usize + (y as usize / 2) * s + (x as usize / 2) * 2;
        [
            self.data[y as usize * s + x as usize],
            self.data[uv],
            self.data[uv + 1],
        ]
    }
}
