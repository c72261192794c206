//! Audio mixing: every participant's mono audio summed into fixed blocks of interleaved
//! stereo S16LE at [`AUDIO_RATE`](crate::source::AUDIO_RATE), the format the encoder takes;
//! each participant's level is measured on the way ([`speaker`] picks who is speaking).

pub mod speaker;
pub mod timeline;

use crate::request::select::Channel;
use crate::source::RoomSource;

/// One sample as S16: clamped to full scale, rounded.
pub fn to_s16(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16
}

/// Mixes participants' audio, one block at a time, on the egress clock.
#[derive(Debug, Default)]
pub struct Mixer {
    /// Next sample to mix (samples since the start of the egress).
    next_sample: u64,
    left: Vec<f32>,
    right: Vec<f32>,
    /// One participant's samples, to measure their level.
    own: Vec<f32>,
    /// RMS level of each participant over the last block mixed.
    levels: Vec<f32>,
}

impl Mixer {
    /// A mixer at sample 0.
    pub fn new() -> Mixer {
        Mixer::default()
    }

    /// Each participant's RMS level (full scale 1.0) over the last block mixed.
    pub fn levels(&self) -> &[f32] {
        &self.levels
    }

    /// Samples mixed so far.
    pub fn position(&self) -> u64 {
        self.next_sample
    }

    /// Mixes samples up to (not including) `until` for the first `participants` of `room`
    /// (participant `i` on `channels[i]`, both channels where the slice is short) and
    /// returns them as interleaved stereo S16LE bytes; empty if nothing is due.
    pub fn mix_until(
        &mut self,
        room: &mut dyn RoomSource,
        participants: usize,
        channels: &[Channel],
        until: u64,
    ) -> Vec<u8> {
        self.mix_until_each(room, participants, channels, until, &mut |_, _, _| {})
    }

    /// [`Mixer::mix_until`], handing `each` every participant's own samples on the way
    /// (participant index, first sample, mono samples): their isolated tracks.
    pub fn mix_until_each(
        &mut self,
        room: &mut dyn RoomSource,
        participants: usize,
        channels: &[Channel],
        until: u64,
        each: &mut dyn FnMut(usize, u64, &[f32]),
    ) -> Vec<u8> {
        if until <= self.next_sample {
            return Vec::new();
        }
        let n = (until - self.next_sample) as usize;
        for side in [&mut self.left, &mut self.right] {
            side.clear();
            side.resize(n, 0.0);
        }
        self.levels.clear();
        for i in 0..participants {
            self.own.clear();
            self.own.resize(n, 0.0);
            room.mix_audio_into(i, self.next_sample, &mut self.own);
            each(i, self.next_sample, &self.own);
            let energy: f32 = self.own.iter().map(|s| s * s).sum();
            self.levels.push((energy / n as f32).sqrt());
            let channel = channels.get(i).copied().unwrap_or_default();
            if channel != Channel::Right {
                for (m, s) in self.left.iter_mut().zip(&self.own) {
                    *m += s;
                }
            }
            if channel != Channel::Left {
                for (m, s) in self.right.iter_mut().zip(&self.own) {
                    *m += s;
                }
            }
        }
        self.next_sample = until;
        let mut out = Vec::with_capacity(n * 4);
        for (l, r) in self.left.iter().zip(&self.right) {
            out.extend_from_slice(&to_s16(*l).to_le_bytes());
            out.extend_from_slice(&to_s16(*r).to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::synthetic::SyntheticRoom;

    #[test]
    fn blocks_are_contiguous_and_stereo() {
        let mut room = SyntheticRoom::new(2, 64, 36);
        let mut m = Mixer::new();
        assert_eq!(m.mix_until(&mut room, 2, &[], 480).len(), 480 * 4);
        assert_eq!(m.mix_until(&mut room, 2, &[], 480).len(), 0);
        assert_eq!(m.mix_until(&mut room, 2, &[], 1600).len(), 1120 * 4);
        assert_eq!(m.position(), 1600);
        // A sine of amplitude A has an RMS of A / sqrt(2).
        let want = crate::source::synthetic::TONE_AMPLITUDE / 2f32.sqrt();
        assert!(
            m.levels().iter().all(|l| (l - want).abs() < 0.002),
            "{:?}",
            m.levels()
        );
    }

    #[test]
    fn loud_sums_are_clamped_not_wrapped() {
        let mut room = SyntheticRoom::new(25, 64, 36);
        let mut m = Mixer::new();
        let bytes = m.mix_until(&mut room, 25, &[], 4800);
        let max = bytes
            .chunks(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]).unsigned_abs())
            .max()
            .unwrap();
        assert!(max <= i16::MAX as u16);
    }

    #[test]
    fn a_participant_on_one_channel_is_silent_on_the_other() {
        let mut room = SyntheticRoom::new(2, 64, 36);
        let mut m = Mixer::new();
        let bytes = m.mix_until(&mut room, 2, &[Channel::Left, Channel::Right], 4800);
        let mut m1 = Mixer::new();
        let only_first = m1.mix_until(&mut room, 1, &[Channel::Left], 4800);
        let side = |b: &[u8], ch: usize| -> f64 {
            b.chunks(4)
                .map(|f| i16::from_le_bytes([f[2 * ch], f[2 * ch + 1]]) as f64)
                .map(|v| v * v)
                .sum()
        };
        assert!(side(&only_first, 0) > 0.0);
        assert_eq!(side(&only_first, 1), 0.0, "right must be silent");
        assert!(side(&bytes, 0) > 0.0 && side(&bytes, 1) > 0.0);
    }
}
