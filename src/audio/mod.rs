//! Audio mixing: every participant's mono audio summed into fixed blocks of interleaved
//! stereo S16LE at [`AUDIO_RATE`](crate::source::AUDIO_RATE), the format the encoder takes;
//! each participant's level is measured on the way ([`speaker`] picks who is speaking).

pub mod speaker;

use crate::source::RoomSource;

/// Mixes participants' audio, one block at a time, on the egress clock.
#[derive(Debug, Default)]
pub struct Mixer {
    /// Next sample to mix (samples since the start of the egress).
    next_sample: u64,
    scratch: Vec<f32>,
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
    /// and returns them as interleaved stereo S16LE bytes; empty if nothing is due.
    pub fn mix_until(
        &mut self,
        room: &mut dyn RoomSource,
        participants: usize,
        until: u64,
    ) -> Vec<u8> {
        if until <= self.next_sample {
            return Vec::new();
        }
        let n = (until - self.next_sample) as usize;
        self.scratch.clear();
        self.scratch.resize(n, 0.0);
        self.levels.clear();
        for i in 0..participants {
            self.own.clear();
            self.own.resize(n, 0.0);
            room.mix_audio_into(i, self.next_sample, &mut self.own);
            let energy: f32 = self.own.iter().map(|s| s * s).sum();
            self.levels.push((energy / n as f32).sqrt());
            for (m, s) in self.scratch.iter_mut().zip(&self.own) {
                *m += s;
            }
        }
        self.next_sample = until;
        let mut out = Vec::with_capacity(n * 4);
        for s in &self.scratch {
            let v = (s.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16;
            let b = v.to_le_bytes();
            out.extend_from_slice(&[b[0], b[1], b[0], b[1]]);
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
        assert_eq!(m.mix_until(&mut room, 2, 480).len(), 480 * 4);
        assert_eq!(m.mix_until(&mut room, 2, 480).len(), 0);
        assert_eq!(m.mix_until(&mut room, 2, 1600).len(), 1120 * 4);
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
        let bytes = m.mix_until(&mut room, 25, 4800);
        let max = bytes
            .chunks(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]).unsigned_abs())
            .max()
            .unwrap();
        assert!(max <= i16::MAX as u16);
    }
}
