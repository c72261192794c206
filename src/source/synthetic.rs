//! A synthetic room for demos, tests and benchmarks: each participant is a field of its
//! own colour with its number drawn in the top-left corner, a white square moving along
//! the lower part (so motion is visible), and a sine tone at its own frequency. Options:
//! participants take turns speaking (the speaker's tone loud, the others' quiet), one
//! shares a screen (a light "slide" with coloured bars), some have no camera.

use std::f64::consts::TAU;
use std::time::Duration;

use super::{AUDIO_RATE, ParticipantInfo, PixelFormat, RoomSource, VideoFrame};
use crate::color::rgb_to_yuv709;

/// Default picture size of a synthetic participant (a typical mid simulcast layer).
pub const DEFAULT_SIZE: (u32, u32) = (640, 360);
/// Amplitude of each participant's tone (full scale is 1.0).
pub const TONE_AMPLITUDE: f32 = 0.1;
/// Amplitude of a participant who is not the one speaking, when they take turns (20 dB
/// below the speaker).
pub const QUIET_AMPLITUDE: f32 = 0.01;
/// Size of the synthetic screen share.
pub const SCREEN_SIZE: (u32, u32) = (960, 540);

/// The colour of participant `i` (8-bit R'G'B'): well-separated hues, never near-grey.
pub fn participant_color(i: usize) -> [u8; 3] {
    // Golden-ratio hue steps; every 8 participants another saturation and value, so hues
    // that come round again stay apart.
    let h = (i as f64 * 0.618_033_988_75 + 0.05).fract() * 6.0;
    let (s, v) = [(0.75, 0.85), (0.55, 0.6), (0.95, 0.7), (0.4, 0.95)][(i / 8) % 4];
    let c = v * s;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let m = v - c;
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    [r, g, b].map(|ch| ((ch + m) * 255.0).round() as u8)
}

/// The tone frequency of participant `i` in Hz: 300, 420, 540, ... (120 Hz apart, so a
/// Goertzel filter over 100 ms tells them apart).
pub fn participant_tone_hz(i: usize) -> u32 {
    300 + 120 * i as u32
}

/// 3x5 bitmaps of the digits 0-9, one row per `u8` (low 3 bits, MSB left).
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

struct Participant {
    info: ParticipantInfo,
    /// The picture without the moving square.
    base: Vec<u8>,
    /// The current picture.
    frame: VideoFrame,
    /// Where the square was drawn last (x, y), to restore from `base`.
    square_at: Option<(u32, u32)>,
    tone_hz: u32,
    /// Whether the camera is on.
    camera: bool,
}

/// N synthetic participants.
pub struct SyntheticRoom {
    room_id: String,
    width: u32,
    height: u32,
    participants: Vec<Participant>,
    /// Peak amplitude of per-frame luma noise (camera-like grain); 0 for clean pictures.
    grain: u8,
    /// Noise generator state (xorshift64).
    seed: u64,
    /// Participants take turns speaking for this long each.
    speaking_turn: Option<Duration>,
    /// The screen share and its owner.
    screen: Option<(usize, VideoFrame)>,
}

impl SyntheticRoom {
    /// A room of `n` participants with pictures of `width` x `height` (even).
    pub fn new(n: usize, width: u32, height: u32) -> SyntheticRoom {
        let participants = (0..n)
            .map(|i| {
                let yuv = rgb_to_yuv709(participant_color(i));
                let mut frame = VideoFrame::solid(PixelFormat::I420, width, height, yuv);
                draw_number(&mut frame.data, width, height, i + 1);
                Participant {
                    info: ParticipantInfo::new(
                        format!("synthetic-{}", i + 1),
                        format!("Participant {}", i + 1),
                    ),
                    base: frame.data.clone(),
                    frame,
                    square_at: None,
                    tone_hz: participant_tone_hz(i),
                    camera: true,
                }
            })
            .collect();
        SyntheticRoom {
            room_id: format!("RM_synthetic{n}"),
            width,
            height,
            participants,
            grain: 0,
            seed: 0x9E37_79B9_7F4A_7C15,
            speaking_turn: None,
            screen: None,
        }
    }

    /// Participants take turns speaking, `turn` each in join order (participant 1 first):
    /// the speaker's tone at [`TONE_AMPLITUDE`], the others' at [`QUIET_AMPLITUDE`].
    pub fn with_speaking_turns(mut self, turn: Duration) -> SyntheticRoom {
        self.speaking_turn = Some(turn).filter(|t| !t.is_zero());
        self
    }

    /// Who speaks at sample `sample` when participants take turns.
    pub fn speaker_at(&self, sample: u64) -> Option<usize> {
        let turn = self.speaking_turn?;
        let turn_samples = (turn.as_secs_f64() * AUDIO_RATE as f64).max(1.0) as u64;
        Some((sample / turn_samples) as usize % self.participants.len().max(1))
    }

    /// Participant `index` (0-based) shares a screen.
    pub fn with_screen_share(mut self, index: usize) -> SyntheticRoom {
        if index < self.participants.len() {
            self.screen = Some((index, slide(index, SCREEN_SIZE.0, SCREEN_SIZE.1)));
        }
        self
    }

    /// Participant `index` (0-based) has their camera off.
    pub fn without_camera(mut self, index: usize) -> SyntheticRoom {
        if let Some(p) = self.participants.get_mut(index) {
            p.camera = false;
        }
        self
    }

    /// Adds temporal luma noise of peak amplitude `grain` (in 8-bit levels) to every
    /// picture, as a camera sensor would: encoders then need bits the way they do for real
    /// video, which clean synthetic pictures never make them spend.
    pub fn with_grain(mut self, grain: u8) -> SyntheticRoom {
        self.grain = grain;
        self
    }

    /// Side of the moving square in pixels.
    fn square_side(&self) -> u32 {
        (self.height / 6) & !1
    }

    /// Top-left of the square at time `t`: it bounces across the lower quarter.
    fn square_position(&self, index: usize, t: Duration) -> (u32, u32) {
        let side = self.square_side();
        let travel = (self.width - side) as f64;
        let speed = travel / (1.5 + 0.25 * index as f64); // one crossing in 1.5-ish seconds
        let d = (t.as_secs_f64() * speed) % (2.0 * travel);
        let x = if d < travel { d } else { 2.0 * travel - d };
        let y = self.height - side - self.height / 12;
        ((x as u32) & !1, y & !1)
    }
}

/// The screen share picture of participant `owner`: a light page with a title bar in
/// the owner's colour and a bar chart (static: uploaded once).
fn slide(owner: usize, width: u32, height: u32) -> VideoFrame {
    let mut frame = VideoFrame::solid(
        PixelFormat::I420,
        width,
        height,
        rgb_to_yuv709([240, 240, 236]),
    );
    let (w, h) = (width as usize, height as usize);
    let fill = |data: &mut [u8], x0: usize, y0: usize, x1: usize, y1: usize, rgb: [u8; 3]| {
        let yuv = rgb_to_yuv709(rgb);
        for y in y0..y1.min(h) {
            for x in x0..x1.min(w) {
                set_pixel(data, w, h, x, y, yuv);
            }
        }
    };
    fill(&mut frame.data, 0, 0, w, h / 8, participant_color(owner));
    let bars = 6;
    let (left, bottom) = (w / 10, h * 9 / 10);
    let bar_w = (w * 8 / 10) / (bars * 2);
    for b in 0..bars {
        let bar_h = h * (20 + 9 * ((b * 7 + 3) % 7)) / 100;
        let x0 = left + b * 2 * bar_w;
        let colour = [[70, 110, 200], [230, 140, 60]][b % 2];
        fill(
            &mut frame.data,
            x0,
            bottom - bar_h,
            x0 + bar_w,
            bottom,
            colour,
        );
    }
    fill(
        &mut frame.data,
        left,
        bottom,
        w - left,
        bottom + 4,
        [60, 60, 60],
    );
    frame
}

/// Draws `n` in white 3x5 digits, scaled, in the top-left corner of an I420 luma plane;
/// chroma under the digits is made neutral.
fn draw_number(data: &mut [u8], width: u32, height: u32, n: usize) {
    let scale = (height / 24).max(2) as usize;
    let margin = scale * 2;
    let (w, h) = (width as usize, height as usize);
    for (k, ch) in n.to_string().bytes().enumerate() {
        let glyph = DIGITS[(ch - b'0') as usize];
        let x0 = margin + k * 4 * scale;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (x, y) = (x0 + col * scale + dx, margin + row * scale + dy);
                        if x < w && y < h {
                            set_pixel(data, w, h, x, y, [235, 128, 128]);
                        }
                    }
                }
            }
        }
    }
}

/// Sets one pixel of a packed I420 frame (chroma is shared by 2x2 pixels).
fn set_pixel(data: &mut [u8], w: usize, h: usize, x: usize, y: usize, yuv: [u8; 3]) {
    data[y * w + x] = yuv[0];
    let (cw, ch) = (w / 2, h / 2);
    let c = (y / 2) * cw + x / 2;
    data[w * h + c] = yuv[1];
    data[w * h + cw * ch + c] = yuv[2];
}

/// `dst = base + noise` over a luma plane, noise uniform in `-grain..=grain`.
fn add_grain(dst: &mut [u8], base: &[u8], grain: u8, seed: &mut u64) {
    let span = 2 * grain as u64 + 1;
    for (chunk, base) in dst.chunks_mut(8).zip(base.chunks(8)) {
        // xorshift64: fast, and random enough to defeat motion compensation.
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let mut r = *seed;
        for (d, b) in chunk.iter_mut().zip(base) {
            let n = (r & 0xff) % span;
            r >>= 8;
            *d = (*b as i32 + n as i32 - grain as i32).clamp(16, 235) as u8;
        }
    }
}

/// Copies (or fills) a square region of an I420 frame.
fn paint_square(
    dst: &mut [u8],
    src: Option<&[u8]>,
    w: usize,
    h: usize,
    (x0, y0): (u32, u32),
    side: u32,
) {
    let (x0, y0, side) = (x0 as usize, y0 as usize, side as usize);
    let (cw, ch) = (w / 2, h / 2);
    for y in y0..(y0 + side).min(h) {
        let row = y * w + x0..y * w + (x0 + side).min(w);
        match src {
            Some(s) => dst[row.clone()].copy_from_slice(&s[row]),
            None => dst[row].fill(235),
        }
    }
    for plane in [w * h, w * h + cw * ch] {
        for y in y0 / 2..((y0 + side) / 2).min(ch) {
            let row = plane + y * cw + x0 / 2..plane + y * cw + ((x0 + side) / 2).min(cw);
            match src {
                Some(s) => dst[row.clone()].copy_from_slice(&s[row]),
                None => dst[row].fill(128),
            }
        }
    }
}

impl RoomSource for SyntheticRoom {
    fn room_id(&self) -> String {
        self.room_id.clone()
    }

    fn participants(&self) -> Vec<ParticipantInfo> {
        self.participants.iter().map(|p| p.info.clone()).collect()
    }

    fn advance_video(&mut self, at: Duration) {
        let side = self.square_side();
        let (w, h) = (self.width as usize, self.height as usize);
        for index in 0..self.participants.len() {
            let pos = self.square_position(index, at);
            let p = &mut self.participants[index];
            if self.grain > 0 {
                add_grain(
                    &mut p.frame.data[..w * h],
                    &p.base[..w * h],
                    self.grain,
                    &mut self.seed,
                );
                p.square_at = None;
            } else if let Some(old) = p.square_at.take() {
                paint_square(&mut p.frame.data, Some(&p.base), w, h, old, side);
            }
            paint_square(&mut p.frame.data, None, w, h, pos, side);
            p.square_at = Some(pos);
            p.frame.pts = at;
            p.frame.seq = VideoFrame::next_seq();
        }
    }

    fn video(&self, index: usize) -> Option<&VideoFrame> {
        self.participants
            .get(index)
            .filter(|p| p.camera)
            .map(|p| &p.frame)
    }

    fn screen_share(&self) -> Option<(usize, &VideoFrame)> {
        self.screen.as_ref().map(|(owner, f)| (*owner, f))
    }

    fn mix_audio_into(&mut self, index: usize, first_sample: u64, out: &mut [f32]) {
        let Some(p) = self.participants.get(index) else {
            return;
        };
        let rate = AUDIO_RATE as u64;
        let step = TAU * p.tone_hz as f64 / rate as f64;
        // Integer phase (cycles * rate, modulo rate) keeps the tone exact for hours.
        let mut phase = TAU * ((p.tone_hz as u64 * first_sample) % rate) as f64 / rate as f64;
        let turn = self
            .speaking_turn
            .map(|t| (t.as_secs_f64() * rate as f64).max(1.0) as u64);
        let n = self.participants.len() as u64;
        for (k, s) in out.iter_mut().enumerate() {
            let amplitude = match turn {
                Some(turn) if ((first_sample + k as u64) / turn) % n != index as u64 => {
                    QUIET_AMPLITUDE
                }
                _ => TONE_AMPLITUDE,
            };
            *s += amplitude * phase.sin() as f32;
            phase += step;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_distinct() {
        for i in 0..25 {
            for j in i + 1..25 {
                let (a, b) = (participant_color(i), participant_color(j));
                let d: i32 = (0..3).map(|c| (a[c] as i32 - b[c] as i32).abs()).sum();
                assert!(d > 30, "{i} {a:?} vs {j} {b:?}");
            }
        }
    }

    #[test]
    fn centre_keeps_the_participant_colour_and_the_square_moves() {
        let mut room = SyntheticRoom::new(2, 640, 360);
        let expect = rgb_to_yuv709(participant_color(1));
        room.advance_video(Duration::ZERO);
        let f0 = room.video(1).unwrap().clone();
        room.advance_video(Duration::from_millis(500));
        let f1 = room.video(1).unwrap().clone();
        assert_eq!(f0.data[180 * 640 + 320], expect[0]);
        assert_ne!(f0.data, f1.data, "the square must move");
        // Restoring works: only the square differs from the base picture.
        let diff = f0.data.iter().zip(&f1.data).filter(|(a, b)| a != b).count();
        assert!(diff < 2 * 60 * 60 * 3 / 2 + 200, "{diff}");
    }

    #[test]
    fn grain_changes_every_frame_within_its_amplitude() {
        let mut room = SyntheticRoom::new(1, 64, 36).with_grain(4);
        room.advance_video(Duration::ZERO);
        let a = room.video(0).unwrap().data.clone();
        room.advance_video(Duration::from_millis(33));
        let b = room.video(0).unwrap().data.clone();
        assert_ne!(a[..64 * 4], b[..64 * 4]);
        let base = rgb_to_yuv709(participant_color(0))[0] as i32;
        // Row 35 is below the number and the square.
        for x in 0..64 {
            assert!((b[35 * 64 + x] as i32 - base).abs() <= 4);
        }
    }

    #[test]
    fn tone_is_continuous_across_blocks() {
        let mut room = SyntheticRoom::new(1, 64, 36);
        let mut whole = vec![0.0; 960];
        room.mix_audio_into(0, 1000, &mut whole);
        let (mut a, mut b) = (vec![0.0; 480], vec![0.0; 480]);
        room.mix_audio_into(0, 1000, &mut a);
        room.mix_audio_into(0, 1480, &mut b);
        a.extend(b);
        for (x, y) in whole.iter().zip(&a) {
            assert!((x - y).abs() < 1e-4);
        }
    }
}
