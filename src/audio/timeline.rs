//! Who spoke when: each participant's speaking intervals on the recording's clock, from
//! the levels the mixer measures (a participant speaks while their level is above
//! [`THRESHOLD`]; pauses shorter than [`PAUSE`] do not split an interval; blips shorter
//! than [`SHORTEST`] are not speech). Pure: the egress hands it each mixed block's levels
//! and media time; [`Timeline::intervals`] gives the intervals, written as
//! `{egress_id}.speakers.json`, and [`Timeline::chapters`] the MP4 chapters.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::speaker::{SpeakerDetector, THRESHOLD};

/// A pause that does not end an interval.
pub const PAUSE: Duration = Duration::from_millis(500);
/// An interval shorter than this is dropped (a cough, a click).
pub const SHORTEST: Duration = Duration::from_millis(200);

/// One interval, in seconds of the recording.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    /// When the speech started.
    pub start: f64,
    /// When it ended.
    pub end: f64,
}

/// One participant's intervals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpeakerIntervals {
    /// Their identity.
    pub identity: String,
    /// Their display name.
    pub name: String,
    /// Total time speaking, seconds.
    pub speaking_s: f64,
    /// When they spoke, in order.
    pub intervals: Vec<Interval>,
}

#[derive(Debug, Default)]
struct Track {
    name: String,
    done: Vec<(Duration, Duration)>,
    /// The interval being spoken: start, and the end of its last loud block.
    open: Option<(Duration, Duration)>,
}

impl Track {
    fn close(&mut self) {
        if let Some((start, end)) = self.open.take()
            && end - start >= SHORTEST
        {
            self.done.push((start, end));
        }
    }
}

/// A chapter: from when, whose turn (their display name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chapter {
    /// Media time it starts.
    pub start: Duration,
    /// The speaker's name.
    pub title: String,
}

/// Speaking intervals by identity, and who had the floor when (the active speaker, as
/// the layouts pick it).
#[derive(Debug, Default)]
pub struct Timeline {
    tracks: BTreeMap<String, Track>,
    detector: SpeakerDetector,
    /// Each change of active speaker: when, and their display name.
    turns: Vec<(Duration, String)>,
}

impl Timeline {
    /// Nobody heard yet.
    pub fn new() -> Timeline {
        Timeline::default()
    }

    /// The block of media time `at..at + len` had these levels: `(identity, name, level)`
    /// per participant heard.
    pub fn hear<'a>(
        &mut self,
        at: Duration,
        len: Duration,
        levels: impl IntoIterator<Item = (&'a str, &'a str, f32)>,
    ) {
        let heard: Vec<_> = levels.into_iter().collect();
        let all: Vec<f32> = heard.iter().map(|h| h.2).collect();
        if let Some(i) = self.detector.update(&all, len) {
            let (identity, name, _) = heard[i];
            let title = if name.is_empty() { identity } else { name };
            if self.turns.last().is_none_or(|(_, t)| t != title) {
                self.turns.push((at, title.to_owned()));
            }
        }
        for (identity, name, level) in heard {
            let t = self.tracks.entry(identity.to_owned()).or_default();
            if t.name.is_empty() {
                t.name = name.to_owned();
            }
            if level < THRESHOLD {
                if t.open.is_some_and(|(_, end)| at >= end + PAUSE) {
                    t.close();
                }
                continue;
            }
            t.open = match t.open {
                Some((start, _)) => Some((start, at + len)),
                None => Some((at, at + len)),
            };
        }
    }

    /// Chapters at the changes of active speaker that hold for at least `shortest` (a
    /// shorter turn stays in the chapter around it), the first from time 0, none at or
    /// after `end`.
    pub fn chapters(&self, shortest: Duration, end: Duration) -> Vec<Chapter> {
        let mut out: Vec<Chapter> = Vec::new();
        for (k, (start, title)) in self.turns.iter().enumerate() {
            let until = self.turns.get(k + 1).map_or(end, |t| t.0).min(end);
            if *start >= end || until.saturating_sub(*start) < shortest {
                continue;
            }
            match out.last() {
                Some(last) if last.title == *title => {}
                Some(_) => out.push(Chapter {
                    start: *start,
                    title: title.clone(),
                }),
                None => out.push(Chapter {
                    start: Duration::ZERO,
                    title: title.clone(),
                }),
            }
        }
        out
    }

    /// Everyone's intervals (those still open end where their speech did), by identity;
    /// participants who never spoke are left out.
    pub fn intervals(&mut self) -> Vec<SpeakerIntervals> {
        let secs = |d: Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
        let mut out = Vec::new();
        for (identity, t) in &mut self.tracks {
            t.close();
            if t.done.is_empty() {
                continue;
            }
            let total: Duration = t.done.iter().map(|(s, e)| *e - *s).sum();
            out.push(SpeakerIntervals {
                identity: identity.clone(),
                name: if t.name.is_empty() { identity } else { &t.name }.clone(),
                speaking_s: secs(total),
                intervals: t
                    .done
                    .iter()
                    .map(|&(s, e)| Interval {
                        start: secs(s),
                        end: secs(e),
                    })
                    .collect(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: Duration = Duration::from_millis(20);

    /// Feeds `ms` of blocks with these levels for a and b from `from` ms.
    fn feed(t: &mut Timeline, from: u64, ms: u64, a: f32, b: f32) {
        for k in 0..ms / 20 {
            let at = Duration::from_millis(from + k * 20);
            t.hear(at, BLOCK, [("a", "Ann", a), ("b", "", b)]);
        }
    }

    #[test]
    fn intervals_follow_the_levels_with_short_pauses_bridged() {
        let mut t = Timeline::new();
        feed(&mut t, 0, 1000, 0.1, 0.0);
        feed(&mut t, 1000, 300, 0.0, 0.0); // a pause: bridged
        feed(&mut t, 1300, 700, 0.1, 0.1); // both talk
        feed(&mut t, 2000, 1000, 0.0, 0.1);
        feed(&mut t, 3000, 100, 0.2, 0.0); // a blip: dropped
        feed(&mut t, 3100, 1000, 0.0, 0.0);
        feed(&mut t, 4100, 400, 0.1, 0.0); // still open at the end
        let out = t.intervals();
        assert_eq!(t.intervals(), out, "asking twice changes nothing");
        let a = &out[0];
        assert_eq!((a.identity.as_str(), a.name.as_str()), ("a", "Ann"));
        assert_eq!(
            a.intervals,
            [
                Interval {
                    start: 0.0,
                    end: 2.0
                },
                Interval {
                    start: 4.1,
                    end: 4.5
                }
            ]
        );
        assert_eq!(a.speaking_s, 2.4);
        assert_eq!(out[1].name, "b");
        assert_eq!(
            out[1].intervals,
            [Interval {
                start: 1.3,
                end: 3.0
            }]
        );
    }

    #[test]
    fn chapters_follow_turns_that_last() {
        let mut t = Timeline::new();
        feed(&mut t, 0, 5000, 0.0, 0.1); // b (no name: the identity)
        feed(&mut t, 5000, 1000, 0.1, 0.0); // a, briefly
        feed(&mut t, 6000, 4000, 0.0, 0.1); // b again
        feed(&mut t, 10_000, 6000, 0.1, 0.0); // a
        let secs = Duration::from_secs;
        let chapters = t.chapters(secs(3), secs(16));
        let got: Vec<_> = chapters
            .iter()
            .map(|c| (c.start.as_millis() / 100, c.title.as_str()))
            .collect();
        // b from 0 (the first chapter starts the file), Ann from about 10.3 s.
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], (0, "b"));
        assert_eq!(got[1].1, "Ann");
        assert!((100..=106).contains(&got[1].0), "{got:?}");
        assert!(t.chapters(secs(3), secs(9)).len() == 1);
    }

    #[test]
    fn the_silent_are_left_out() {
        let mut t = Timeline::new();
        feed(&mut t, 0, 1000, 0.0, 0.0);
        assert!(t.intervals().is_empty());
    }
}
