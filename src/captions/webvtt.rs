//! WebVTT text: a whole recording's captions (the sidecar file), and the cues of one HLS
//! segment with its `X-TIMESTAMP-MAP` (the subtitles rendition). Each cue names its speaker
//! in a voice tag (`<v Alice>`).

use std::fmt::Write;
use std::ops::Range;
use std::time::Duration;

use super::cues::Cue;

/// `HH:MM:SS.mmm`.
pub fn timestamp(t: Duration) -> String {
    let ms = t.as_millis();
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Text with WebVTT's reserved characters escaped, on one line per line of the text
/// (blank lines would end the cue).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push('\n');
        }
        for ch in line.chars() {
            match ch {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
        }
    }
    out
}

/// A voice annotation may not hold `>` or line breaks.
fn voice(name: &str) -> String {
    escape(&name.replace(['\n', '\r'], " "))
}

fn write_cue(out: &mut String, n: usize, cue: &Cue) {
    let _ = write!(
        out,
        "{n}\n{} --> {}\n<v {}>{}\n\n",
        timestamp(cue.start),
        timestamp(cue.end),
        voice(&cue.name),
        escape(&cue.text)
    );
}

/// The whole recording's captions.
pub fn document(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for (i, c) in cues.iter().enumerate() {
        write_cue(&mut out, i + 1, c);
    }
    out
}

/// The cues of the HLS segment covering media time `span`: those showing at any time in
/// it, with their own times (players cut them to the segment). `mpegts` is the MPEG-TS
/// time (90 kHz) of media time 0 in the video segments, so players line the cues up.
pub fn segment(cues: &[Cue], span: Range<Duration>, mpegts: u64) -> String {
    let mut out = format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n\n");
    let shown = cues
        .iter()
        .filter(|c| c.start < span.end && c.end > span.start);
    for (i, c) in shown.enumerate() {
        write_cue(&mut out, i + 1, c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start: u64, end: u64, name: &str, text: &str) -> Cue {
        Cue {
            start: Duration::from_millis(start),
            end: Duration::from_millis(end),
            identity: name.to_lowercase(),
            name: name.into(),
            text: text.into(),
            is_final: true,
        }
    }

    #[test]
    fn cues_carry_their_speaker_and_escaped_text() {
        let doc = document(&[
            cue(1500, 3_723_004, "Alice", "a <b> & c\n\nnext"),
            cue(0, 10, "Eve>x", "hi"),
        ]);
        assert_eq!(
            doc,
            "WEBVTT\n\n1\n00:00:01.500 --> 01:02:03.004\n<v Alice>a &lt;b&gt; &amp; c\nnext\n\n\
             2\n00:00:00.000 --> 00:00:00.010\n<v Eve&gt;x>hi\n\n"
        );
    }

    #[test]
    fn a_segment_holds_the_cues_showing_in_it() {
        let cues = [cue(0, 1000, "A", "one"), cue(5500, 7000, "B", "two")];
        let s = segment(
            &cues,
            Duration::from_secs(4)..Duration::from_secs(6),
            126_000,
        );
        assert!(s.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n"));
        assert!(s.contains("<v B>two") && !s.contains("one"), "{s}");
        let empty = segment(&cues, Duration::from_secs(2)..Duration::from_secs(4), 0);
        assert!(!empty.contains("-->"));
    }
}
