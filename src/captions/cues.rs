//! Transcribed segments placed on the recording's clock, and the cues they make: a cue
//! starts when its segment's first text (interim or final) reached the recorder, shows the
//! segment's newest text (a final replaces its interims), and lasts until the later of its
//! last update and a reading time for its length, cut where the same speaker's next cue
//! starts. Pure: times are media times handed in.

use std::collections::HashMap;
use std::time::Duration;

/// Shortest time a cue stays up.
const MIN_SHOWN: Duration = Duration::from_millis(1500);
/// Reading time per character beyond that (about 15 characters a second).
const PER_CHAR: Duration = Duration::from_millis(65);
/// Longest a cue stays up after its last update.
const MAX_SHOWN: Duration = Duration::from_secs(7);
/// Segments kept at most (the oldest final ones are the ones that go).
const MAX_SEGMENTS: usize = 100_000;
/// Bytes of text kept at most (a room whose senders exceed it keeps its first captions;
/// an hour of speech is well under 1 MiB).
const MAX_TEXT_BYTES: usize = 16 << 20;

/// One caption: who, what, from when to when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cue {
    /// Media time it appears.
    pub start: Duration,
    /// Media time it goes.
    pub end: Duration,
    /// The speaker's identity.
    pub identity: String,
    /// The speaker's display name (their identity when they have none).
    pub name: String,
    /// The text.
    pub text: String,
    /// Its segment's final text (an egress that ends before the final keeps the interim).
    pub is_final: bool,
}

/// One segment as heard so far.
#[derive(Clone, Debug)]
struct Segment {
    identity: String,
    name: String,
    text: String,
    first: Duration,
    last: Duration,
    is_final: bool,
}

/// Every segment heard, in the order they started.
#[derive(Debug, Default)]
pub struct Captions {
    segments: Vec<Segment>,
    /// (identity, segment id) → index in `segments`.
    index: HashMap<(String, String), usize>,
    /// Bytes of text held.
    bytes: usize,
    /// Whether the bounds were hit (logged once).
    full: bool,
}

impl Captions {
    /// Nothing heard yet.
    pub fn new() -> Captions {
        Captions::default()
    }

    /// Whether nothing was heard.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Segment `id` of `identity` (shown as `name`) reads `text` as of media time `at`.
    pub fn hear(
        &mut self,
        at: Duration,
        identity: &str,
        name: &str,
        id: &str,
        text: &str,
        is_final: bool,
    ) {
        let key = (identity.to_owned(), id.to_owned());
        let existing = self.index.get(&key).copied();
        let held = existing.map_or(0, |i| self.segments[i].text.len());
        let over = self.bytes - held + text.len() > MAX_TEXT_BYTES
            || (existing.is_none() && self.segments.len() >= MAX_SEGMENTS);
        if over {
            if !self.full {
                tracing::warn!("caption text over its bounds: later captions are dropped");
                self.full = true;
            }
            return;
        }
        if let Some(i) = existing {
            let s = &mut self.segments[i];
            if s.is_final && !is_final {
                return; // a late interim never undoes the final
            }
            self.bytes = self.bytes - held + text.len();
            s.text = text.to_owned();
            s.last = at.max(s.first);
            s.is_final = is_final;
            return;
        }
        self.bytes += text.len();
        self.index.insert(key, self.segments.len());
        self.segments.push(Segment {
            identity: identity.to_owned(),
            name: if name.is_empty() { identity } else { name }.to_owned(),
            text: text.to_owned(),
            first: at,
            last: at,
            is_final,
        });
    }

    /// Every cue with text, by start time, none ending after `until` (the recording's
    /// length; a cue starting at or after it is dropped).
    pub fn cues(&self, until: Duration) -> Vec<Cue> {
        cues_of(&self.segments, until)
    }

    /// The cues on screen at media time `at`, oldest first (for burning in, every frame):
    /// the same cues as [`Captions::cues`], found among the newest [`SHOWING_SCAN`]
    /// segments only.
    pub fn showing(&self, at: Duration) -> Vec<Cue> {
        let from = self.segments.len().saturating_sub(SHOWING_SCAN);
        let mut cues = cues_of(&self.segments[from..], Duration::MAX);
        cues.retain(|c| c.start <= at && at < c.end);
        cues
    }
}

/// The cues of `segments`, by start time, none ending after `until`: each lasts until
/// the later of its last update and its reading time, cut where the same speaker's next
/// cue starts.
fn cues_of(segments: &[Segment], until: Duration) -> Vec<Cue> {
    let mut order: Vec<&Segment> = segments
        .iter()
        .filter(|s| !s.text.trim().is_empty())
        .collect();
    order.sort_by_key(|s| s.first);
    let mut cues = Vec::new();
    for (k, s) in order.iter().enumerate() {
        if s.first >= until {
            continue;
        }
        let text = s.text.trim();
        let mut end = s.last.max(s.first + reading_time(text)).min(until);
        if let Some(next) = order[k + 1..].iter().find(|n| n.identity == s.identity) {
            end = end.min(next.first.max(s.first + Duration::from_millis(1)));
        }
        cues.push(Cue {
            start: s.first,
            end,
            identity: s.identity.clone(),
            name: s.name.clone(),
            text: text.to_owned(),
            is_final: s.is_final,
        });
    }
    cues
}

/// Segments [`Captions::showing`] looks through (the newest).
pub const SHOWING_SCAN: usize = 64;

/// How long a text stays up at least: [`MIN_SHOWN`] plus [`PER_CHAR`] a character, at
/// most [`MAX_SHOWN`].
pub fn reading_time(text: &str) -> Duration {
    (MIN_SHOWN + PER_CHAR * text.chars().count() as u32).min(MAX_SHOWN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_final_replaces_its_interim_and_keeps_the_first_time() {
        let mut c = Captions::new();
        c.hear(ms(1000), "alice", "Alice", "s1", "helo wor", false);
        c.hear(ms(1800), "alice", "Alice", "s1", "hello world", true);
        // A late interim never undoes it.
        c.hear(ms(1900), "alice", "Alice", "s1", "hello wor", false);
        let cues = c.cues(ms(60_000));
        assert_eq!(cues.len(), 1);
        assert_eq!(cues[0].text, "hello world");
        assert_eq!(cues[0].start, ms(1000));
        assert_eq!(cues[0].end, ms(1000) + reading_time("hello world"));
        assert!(cues[0].is_final);
    }

    #[test]
    fn the_same_speakers_next_cue_cuts_the_last_one_and_others_overlap() {
        let mut c = Captions::new();
        c.hear(ms(0), "a", "", "1", "first", true);
        c.hear(ms(500), "b", "Bea", "1", "overlapping", true);
        c.hear(ms(1200), "a", "", "2", "second", true);
        c.hear(ms(1300), "a", "", "3", "   ", true);
        let cues = c.cues(ms(2000));
        let who: Vec<_> = cues
            .iter()
            .map(|c| (c.name.as_str(), c.start, c.end))
            .collect();
        assert_eq!(
            who,
            [
                ("a", ms(0), ms(1200)),
                ("Bea", ms(500), ms(2000)),
                ("a", ms(1200), ms(2000))
            ]
        );
        assert_eq!(c.showing(ms(1100)).len(), 2);
        assert_eq!(c.showing(ms(1250))[1].text, "second");
        // Nothing starts at or after the end of the recording.
        assert!(c.cues(ms(400)).iter().all(|c| c.identity == "a"));
    }

    #[test]
    fn a_flood_of_text_is_bounded() {
        let mut c = Captions::new();
        let big = "x".repeat(1 << 20);
        for i in 0..40 {
            c.hear(ms(i), "a", "", &i.to_string(), &big, true);
        }
        assert_eq!(c.segments.len(), 16);
        assert!(c.bytes <= MAX_TEXT_BYTES);
        // Revising a segment within the bound still works.
        c.hear(ms(50), "a", "", "0", "short", true);
        assert_eq!(c.cues(ms(60_000))[0].text, "short");
    }

    #[test]
    fn a_long_update_keeps_the_cue_up_and_reading_time_is_bounded() {
        let mut c = Captions::new();
        c.hear(ms(0), "a", "", "1", "x", false);
        c.hear(ms(9000), "a", "", "1", "x y", false);
        assert_eq!(c.cues(ms(60_000))[0].end, ms(9000));
        assert_eq!(reading_time(&"w".repeat(1000)), MAX_SHOWN);
        assert_eq!(reading_time(""), MIN_SHOWN);
    }
}
