//! One clock for every received track: RTP time mapped to the session's media time.
//!
//! A frame is presented at the time its sender captured it, moved onto the local clock by
//! the smallest transit delay seen so far, plus a fixed playout delay that covers jitter,
//! retransmissions and decoding. RTCP sender reports give each track's RTP time on the
//! sender's wall clock (NTP); a participant's audio and video share that clock, and one
//! transit offset per participant keeps them in sync. Until a track's first sender report
//! arrives its own RTP clock is used, anchored the same way.

/// Seconds on the session clock (0 = when the room source was created).
pub type Seconds = f64;

/// The latest RTCP sender report of a track.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SenderReport {
    /// The sender's wall clock at the report, seconds since the Unix epoch.
    pub ntp: f64,
    /// The RTP time at that instant.
    pub rtp: u64,
}

/// A participant's clock: the transit offset from their wall clock to ours.
#[derive(Clone, Debug, Default)]
pub struct ParticipantClock {
    offset: Option<f64>,
}

/// One track's clock.
#[derive(Clone, Debug)]
pub struct TrackClock {
    rate: f64,
    offset: Option<f64>,
    last: Option<Seconds>,
}

impl TrackClock {
    /// A track whose RTP clock runs at `rate` Hz.
    pub fn new(rate: u32) -> TrackClock {
        TrackClock {
            rate: rate.max(1) as f64,
            offset: None,
            last: None,
        }
    }

    /// The session time at which the frame with RTP time `rtp` (extended), received at
    /// `arrival`, should be shown or heard, `delay` after its capture on our clock.
    /// Never earlier than the track's previous frame.
    pub fn presentation(
        &mut self,
        participant: &mut ParticipantClock,
        rtp: u64,
        arrival: Seconds,
        report: Option<SenderReport>,
        delay: Seconds,
    ) -> Seconds {
        let at = match report {
            Some(sr) => {
                // Reports and media timestamps are extended separately: diff in 32 bits.
                let ticks = (rtp as u32).wrapping_sub(sr.rtp as u32) as i32;
                let captured = sr.ntp + ticks as f64 / self.rate;
                let offset = min_offset(&mut participant.offset, arrival - captured);
                captured + offset
            }
            None => {
                let captured = rtp as f64 / self.rate;
                let offset = min_offset(&mut self.offset, arrival - captured);
                captured + offset
            }
        } + delay;
        let at = self.last.map_or(at, |last| at.max(last));
        self.last = Some(at);
        at
    }
}

fn min_offset(slot: &mut Option<f64>, seen: f64) -> f64 {
    let o = slot.map_or(seen, |o| o.min(seen));
    *slot = Some(o);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: f64 = 0.2;

    #[test]
    fn jitter_is_removed_from_a_tracks_timeline() {
        let mut p = ParticipantClock::default();
        let mut video = TrackClock::new(90_000);
        let jitter = [0.010, 0.045, 0.002, 0.030, 0.000, 0.060];
        let times: Vec<f64> = jitter
            .iter()
            .enumerate()
            .map(|(i, j)| {
                let rtp = 1_000_000 + i as u64 * 3000; // 30 fps
                video.presentation(&mut p, rtp, 5.0 + i as f64 / 30.0 + j, None, DELAY)
            })
            .collect();
        // Anchored at the smallest transit seen so far: from the fifth frame on the
        // spacing is exactly the frame period.
        for w in times[4..].windows(2) {
            assert!((w[1] - w[0] - 1.0 / 30.0).abs() < 1e-9, "{times:?}");
        }
        assert!(times.windows(2).all(|w| w[1] >= w[0]), "never goes back");
        assert!((times[0] - (5.0 + 0.010 + DELAY)).abs() < 1e-9);
    }

    #[test]
    fn audio_and_video_captured_together_play_together() {
        // Sender wall clock starts at 1000 s; the video RTP clock and the audio RTP clock
        // have unrelated origins; the video path is 80 ms slower.
        let mut p = ParticipantClock::default();
        let mut video = TrackClock::new(90_000);
        let mut audio = TrackClock::new(48_000);
        let v_sr = SenderReport {
            ntp: 1000.0,
            rtp: 7_000,
        };
        let a_sr = SenderReport {
            ntp: 1000.0,
            rtp: 123_456,
        };
        // A flash and a beep both captured at sender time 1002.5; our clock reads 40.0 at
        // sender time 1000.0 plus transit.
        let beep_rtp = 123_456 + (2.5 * 48_000.0) as u64;
        let flash_rtp = 7_000 + (2.5 * 90_000.0) as u64;
        // Earlier frames establish the transit: audio 10 ms, video 90 ms.
        audio.presentation(&mut p, 123_456, 40.010, Some(a_sr), DELAY);
        video.presentation(&mut p, 7_000, 40.090, Some(v_sr), DELAY);
        let heard = audio.presentation(&mut p, beep_rtp, 42.510, Some(a_sr), DELAY);
        let seen = video.presentation(&mut p, flash_rtp, 42.590, Some(v_sr), DELAY);
        assert!((heard - seen).abs() < 1e-6, "beep {heard} flash {seen}");
        assert!((heard - (42.510 + DELAY)).abs() < 1e-6);
    }

    #[test]
    fn a_report_across_the_32_bit_wrap_still_maps() {
        let mut p = ParticipantClock::default();
        let mut audio = TrackClock::new(48_000);
        let sr = SenderReport {
            ntp: 50.0,
            rtp: u32::MAX as u64 - 480,
        };
        // 20 ms after the report, the 32-bit timestamp has wrapped (extended it has not).
        let t0 = audio.presentation(&mut p, sr.rtp, 1.0, Some(sr), 0.0);
        let t1 = audio.presentation(&mut p, sr.rtp + 960, 1.02, Some(sr), 0.0);
        assert!((t1 - t0 - 0.02).abs() < 1e-9, "{t0} {t1}");
    }
}
