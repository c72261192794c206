//! Who spoke when: each participant's speaking intervals on the recording's clock, from
//! the levels the mixer measures (a participant speaks while their level is above
//! [`THRESHOLD`]; pauses shorter than [`PAUSE`] do not split an interval; blips shorter
//! than [`SHORTEST`] are not speech). Pure: the egress hands it each mixed block's levels
//! and media time; [`Timeline::finish`] gives the intervals, written as
//! `{egress_id}.speakers.json`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::speaker::THRESHOLD;

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

/// Speaking intervals by identity.
#[derive(Debug, Default)]
pub struct Timeline {
    tracks: BTreeMap<String, Track>,
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
        for (identity, name, level) in levels {
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

    /// Everyone's intervals (those still open end where their speech did), by identity;
    /// participants who never spoke are left out.
    pub fn finish(mut self) -> Vec<SpeakerIntervals> {
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
        let out = t.finish();
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
    fn the_silent_are_left_out() {
        let mut t = Timeline::new();
        feed(&mut t, 0, 1000, 0.0, 0.0);
        assert!(t.finish().is_empty());
    }
}
