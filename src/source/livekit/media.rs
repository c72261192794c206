//! Decoded media waiting for the egress clock: a queue of pictures per video track and
//! a sample-indexed buffer of sound per participant.

use std::collections::VecDeque;
use std::time::Duration;

use crate::source::VideoFrame;

/// The most audio kept ahead of the egress clock (older sound is dropped first).
const MAX_AUDIO: usize = 10 * crate::source::AUDIO_RATE as usize;
/// The most pictures kept ahead of the egress clock per track (past it, the queue is
/// thinned: see [`PictureQueue::push`]).
const MAX_PICTURES: usize = 90;

/// Mono samples placed by their sample index on the session clock.
#[derive(Debug, Default)]
pub struct AudioRing {
    /// Sample index of `buf[0]`.
    start: u64,
    buf: VecDeque<f32>,
}

impl AudioRing {
    /// Writes `samples` starting at sample index `at` (silence fills a gap; sound already
    /// consumed is skipped).
    pub fn write(&mut self, at: u64, samples: &[f32]) {
        if self.buf.is_empty() && at > self.start {
            self.start = at;
        }
        let skip = self.start.saturating_sub(at) as usize;
        if skip >= samples.len() {
            return;
        }
        let at = at.max(self.start);
        let offset = (at - self.start) as usize;
        if offset > self.buf.len() {
            self.buf.resize(offset, 0.0);
        }
        for (k, s) in samples[skip..].iter().enumerate() {
            match self.buf.get_mut(offset + k) {
                Some(slot) => *slot = *s,
                None => self.buf.push_back(*s),
            }
        }
        while self.buf.len() > MAX_AUDIO {
            self.buf.pop_front();
            self.start += 1;
        }
    }

    /// Adds samples `first..first + out.len()` into `out` and forgets everything before
    /// the end of that span.
    pub fn mix_into(&mut self, first: u64, out: &mut [f32]) {
        for (k, o) in out.iter_mut().enumerate() {
            let i = first + k as u64;
            if i >= self.start
                && let Some(s) = self.buf.get((i - self.start) as usize)
            {
                *o += *s;
            }
        }
        let end = first + out.len() as u64;
        while self.start < end && !self.buf.is_empty() {
            self.buf.pop_front();
            self.start += 1;
        }
        if self.buf.is_empty() {
            self.start = self.start.max(end);
        }
    }
}

/// Decoded pictures of one video track in presentation order.
#[derive(Debug, Default)]
pub struct PictureQueue {
    queue: VecDeque<VideoFrame>,
}

impl PictureQueue {
    /// Adds a decoded picture (its `pts` on the session clock).
    pub fn push(&mut self, frame: VideoFrame) {
        let pos = self.queue.partition_point(|f| f.pts <= frame.pts);
        self.queue.insert(pos, frame);
        while self.queue.len() > MAX_PICTURES {
            self.thin();
        }
    }

    /// Drops one picture to stay within [`MAX_PICTURES`]: the one whose neighbours are
    /// closest in time (the oldest of equals), never the earliest or the newest. A clock
    /// that fell far behind (an egress that cannot keep up) then still finds pictures
    /// near its time, fewer a second, where dropping the oldest left it none for as long
    /// as it stayed behind (the picture froze); memory stays bounded either way.
    fn thin(&mut self) {
        let n = self.queue.len();
        let at = (1..n.saturating_sub(1))
            .min_by_key(|&k| (self.queue[k + 1].pts - self.queue[k - 1].pts, k))
            .unwrap_or(0);
        self.queue.remove(at);
    }

    /// Whether a picture is due at `at`.
    pub fn has_due(&self, at: Duration) -> bool {
        self.queue.front().is_some_and(|f| f.pts <= at)
    }

    /// Drops every picture earlier than `at`.
    pub fn drop_before(&mut self, at: Duration) {
        while self.queue.front().is_some_and(|f| f.pts < at) {
            self.queue.pop_front();
        }
    }

    /// The earliest picture, if any.
    pub fn take_first(&mut self) -> Option<VideoFrame> {
        self.queue.pop_front()
    }

    /// The newest picture not later than `at`, if any arrived since the last call (older
    /// ones are dropped).
    pub fn take_due(&mut self, at: Duration) -> Option<VideoFrame> {
        let mut due = None;
        while self.queue.front().is_some_and(|f| f.pts <= at) {
            due = self.queue.pop_front();
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::PixelFormat;

    #[test]
    fn audio_lands_at_its_sample_index() {
        let mut r = AudioRing::default();
        r.write(1000, &[1.0; 10]);
        r.write(1020, &[2.0; 10]); // a 10-sample gap of silence
        let mut out = vec![0.5; 40];
        r.mix_into(995, &mut out);
        assert_eq!(
            &out[0..5],
            &[0.5; 5],
            "before the first sample: nothing added"
        );
        assert_eq!(&out[5..15], &[1.5; 10]);
        assert_eq!(&out[15..25], &[0.5; 10], "the gap is silent");
        assert_eq!(&out[25..35], &[2.5; 10]);
        // Consumed sound is never played twice; late sound for a consumed span is dropped.
        r.write(1000, &[9.0; 10]);
        let mut again = vec![0.0; 40];
        r.mix_into(995, &mut again);
        assert!(again.iter().all(|s| *s == 0.0), "{again:?}");
    }

    #[test]
    fn overlapping_writes_replace() {
        let mut r = AudioRing::default();
        r.write(0, &[1.0; 8]);
        r.write(4, &[3.0; 8]);
        let mut out = vec![0.0; 12];
        r.mix_into(0, &mut out);
        assert_eq!(
            out,
            [1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
        );
    }

    #[test]
    fn pictures_come_out_newest_due_first() {
        let mut q = PictureQueue::default();
        for ms in [66, 0, 33, 100] {
            let mut f = VideoFrame::solid(PixelFormat::I420, 2, 2, [16, 128, 128]);
            f.pts = Duration::from_millis(ms);
            q.push(f);
        }
        assert_eq!(
            q.take_due(Duration::from_millis(70))
                .unwrap()
                .pts
                .as_millis(),
            66
        );
        assert!(q.take_due(Duration::from_millis(80)).is_none());
        assert_eq!(
            q.take_due(Duration::from_secs(1)).unwrap().pts.as_millis(),
            100
        );
    }

    fn picture_at(ms: u64) -> VideoFrame {
        let mut f = VideoFrame::solid(PixelFormat::I420, 2, 2, [16, 128, 128]);
        f.pts = Duration::from_millis(ms);
        f
    }

    #[test]
    fn a_clock_far_behind_still_finds_pictures_near_its_time() {
        // 10 s of 30 fps arrive while the egress clock stays at 0 (it fell behind).
        let mut q = PictureQueue::default();
        let sent: Vec<u64> = (0..300).map(|k| k * 1000 / 30).collect();
        for &ms in &sent {
            q.push(picture_at(ms));
        }
        // Bounded, the newest kept, and pictures spread over the whole 10 s: each second
        // of it still has one within 150 ms of any moment.
        assert_eq!(q.queue.len(), MAX_PICTURES);
        assert_eq!(q.queue.back().unwrap().pts.as_millis(), 9966);
        let kept: Vec<u128> = q.queue.iter().map(|f| f.pts.as_millis()).collect();
        assert_eq!(kept[0], 0, "the earliest is kept");
        for w in kept.windows(2) {
            assert!(w[1] - w[0] <= 300, "a gap of {} ms: {kept:?}", w[1] - w[0]);
        }
        // The clock catches up frame by frame: a new picture at least every 9 frames
        // (dropping the oldest instead showed none for the first 7 s).
        let (mut shown, mut still, mut longest) = (0, 0, 0);
        for k in 0..300u64 {
            if q.take_due(Duration::from_millis(k * 1000 / 30)).is_some() {
                shown += 1;
                still = 0;
            } else {
                still += 1;
                longest = longest.max(still);
            }
        }
        assert_eq!(shown, MAX_PICTURES);
        assert!(longest <= 9, "{longest} frames without a new picture");
    }

    #[test]
    fn dropping_before_a_time_keeps_every_later_picture() {
        let mut q = PictureQueue::default();
        for ms in (0..20).map(|k| k * 100) {
            q.push(picture_at(ms));
        }
        q.drop_before(Duration::from_millis(500));
        let kept: Vec<u128> = q.queue.iter().map(|f| f.pts.as_millis()).collect();
        assert_eq!(kept, (5..20).map(|k| k * 100).collect::<Vec<u128>>());
    }
}
