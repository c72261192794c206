//! The egress's clock: media time of each frame, the audio samples each frame carries,
//! and how long to wait for a frame's time on the wall clock (and whether it is late).
//! Handed the elapsed time, never reading a clock, so it is tested on simulated time.

use std::time::Duration;

/// Falling this far behind real time is logged (once).
const BEHIND_WARNING: Duration = Duration::from_secs(1);

/// Frame `k` of an egress at `fps` frames per second is composed at media time
/// `k / fps`; its audio runs to sample `(k + 1) · rate / fps`.
#[derive(Debug)]
pub(crate) struct Pacer {
    fps: u64,
    audio_rate: u64,
    behind_warned: bool,
}

/// What to do before composing a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pace {
    /// Sleep this long first (its time has not come).
    pub wait: Duration,
    /// The frame is due more than a frame ago.
    pub late: bool,
    /// The egress just fell more than a second behind real time (reported once).
    pub behind: Option<Duration>,
}

impl Pacer {
    /// A pacer for `fps` frames and `audio_rate` samples per second.
    pub(crate) fn new(fps: u32, audio_rate: u32) -> Pacer {
        Pacer {
            fps: u64::from(fps.max(1)),
            audio_rate: u64::from(audio_rate),
            behind_warned: false,
        }
    }

    /// Media time of frame `tick`.
    pub(crate) fn pts(&self, tick: u64) -> Duration {
        Duration::from_nanos(tick * 1_000_000_000 / self.fps)
    }

    /// How long one frame lasts.
    pub(crate) fn frame_duration(&self) -> Duration {
        Duration::from_nanos(1_000_000_000 / self.fps)
    }

    /// The audio sample (from media time 0) at which frame `tick`'s audio ends.
    pub(crate) fn audio_until(&self, tick: u64) -> u64 {
        (tick + 1) * self.audio_rate / self.fps
    }

    /// Media time of audio sample `sample`.
    pub(crate) fn sample_time(&self, sample: u64) -> Duration {
        Duration::from_nanos(sample * 1_000_000_000 / self.audio_rate.max(1))
    }

    /// Frame `tick` when `elapsed` has passed on the wall clock since media time 0.
    pub(crate) fn pace(&mut self, tick: u64, elapsed: Duration) -> Pace {
        let t = self.pts(tick);
        let late = elapsed > t + self.frame_duration();
        let wait = t.saturating_sub(elapsed);
        let lag = elapsed.saturating_sub(t);
        let behind = (lag > BEHIND_WARNING && !self.behind_warned).then_some(lag);
        self.behind_warned |= behind.is_some();
        Pace { wait, late, behind }
    }

    /// Whether frame `tick` sends the source its drawn picture sizes (twice a second).
    pub(crate) fn hints_due(&self, tick: u64) -> bool {
        tick.is_multiple_of((self.fps / 2).max(1))
    }

    /// Whole seconds of media at frame `tick`, every ten seconds (a progress line).
    pub(crate) fn progress(&self, tick: u64) -> Option<u64> {
        (tick > 0 && tick.is_multiple_of(self.fps * 10)).then(|| tick / self.fps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn frames_and_their_audio_tile_media_time_without_drift() {
        let p = Pacer::new(30, 48_000);
        assert_eq!(p.pts(0), Duration::ZERO);
        assert_eq!(p.pts(30), Duration::from_secs(1));
        assert_eq!(p.pts(1), Duration::from_nanos(33_333_333));
        // 1600 samples a frame at 30 fps; an hour later still exact.
        assert_eq!(p.audio_until(0), 1600);
        assert_eq!(p.audio_until(30 * 3600 - 1), 48_000 * 3600);
        assert_eq!(p.sample_time(48_000), Duration::from_secs(1));
        // 24 fps: 2000 samples a frame; 25 fps at 44.1 kHz: 1764.
        assert_eq!(Pacer::new(24, 48_000).audio_until(0), 2000);
        assert_eq!(Pacer::new(25, 44_100).audio_until(24), 44_100);
    }

    #[test]
    fn a_frame_waits_for_its_time_and_is_late_only_a_frame_after_it() {
        let mut p = Pacer::new(25, 48_000); // 40 ms frames
        let early = p.pace(10, 390 * MS);
        assert_eq!((early.wait, early.late), (10 * MS, false));
        let on_time = p.pace(10, 430 * MS);
        assert_eq!((on_time.wait, on_time.late), (Duration::ZERO, false));
        let late = p.pace(10, 441 * MS);
        assert_eq!((late.wait, late.late), (Duration::ZERO, true));
    }

    #[test]
    fn falling_a_second_behind_is_reported_once() {
        let mut p = Pacer::new(25, 48_000);
        assert_eq!(p.pace(0, 1000 * MS).behind, None);
        assert_eq!(p.pace(0, 1001 * MS).behind, Some(1001 * MS));
        assert_eq!(p.pace(1, 5000 * MS).behind, None);
    }

    #[test]
    fn hints_twice_a_second_and_progress_every_ten() {
        let p = Pacer::new(30, 48_000);
        let hints: Vec<u64> = (0..61).filter(|&k| p.hints_due(k)).collect();
        assert_eq!(hints, [0, 15, 30, 45, 60]);
        assert_eq!(p.progress(0), None);
        assert_eq!(p.progress(299), None);
        assert_eq!(p.progress(300), Some(10));
        // One frame a second still hints every frame.
        assert!(Pacer::new(1, 48_000).hints_due(7));
    }
}
