//! The HLS subtitles rendition: captions as segmented WebVTT beside an HLS output's media
//! segments, one subtitle segment per media segment (same span, same count), each with an
//! `X-TIMESTAMP-MAP` that ties its cue times to the media segments' MPEG-TS clock, listed
//! in playlists of their own that the master names as `EXT-X-MEDIA TYPE=SUBTITLES`.
//!
//! While recording, a subtitle segment is written when its media segment closes, with the
//! cues known then; at the end every one is rewritten with the final cues (a transcription
//! finalised late reaches the recording, not only the live edge).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::captions::{Cue, webvtt};
use crate::output::{FileTarget, atomic_write, playlist, relative_uri};
use crate::storage::UploadQueue;

/// MPEG-TS packet size.
const TS_PACKET: usize = 188;

/// The MPEG-TS time of media time 0, from a media segment starting at `start`.
pub fn mpegts_of(segment: &Path, start: Duration) -> Option<u64> {
    let pts = first_pts(&std::fs::read(segment).ok()?)?;
    Some(pts.saturating_sub(start.as_nanos() as u64 * 9 / 100_000))
}

/// The first PES presentation time (90 kHz) in an MPEG-TS stream, if any.
pub fn first_pts(ts: &[u8]) -> Option<u64> {
    for p in ts.chunks_exact(TS_PACKET) {
        if p[0] != 0x47 || p[1] & 0x40 == 0 {
            continue; // not synced, or no payload unit starts here
        }
        let afc = (p[3] >> 4) & 0x3;
        let mut at = 4;
        if afc & 0x2 != 0 {
            at += 1 + p[4] as usize;
        }
        if afc & 0x1 == 0 || at + 14 > TS_PACKET {
            continue;
        }
        let pes = &p[at..];
        if pes[..3] != [0, 0, 1] || pes[7] & 0x80 == 0 {
            continue; // not a PES header, or no PTS
        }
        let b = &pes[9..14];
        let pts = ((b[0] as u64 >> 1) & 0x07) << 30
            | (b[1] as u64) << 22
            | ((b[2] as u64) >> 1) << 15
            | (b[3] as u64) << 7
            | (b[4] as u64) >> 1;
        return Some(pts);
    }
    None
}

/// One HLS output's subtitles.
pub struct SubtitleTrack {
    /// Segment path prefix (`…/seg_captions`).
    prefix: String,
    playlist: FileTarget,
    live: Option<FileTarget>,
    target_s: u32,
    epoch: DateTime<Utc>,
    /// Each segment's path and media span, in order.
    spans: Vec<(PathBuf, Range<Duration>)>,
    segments: Vec<playlist::Segment>,
    /// Segments not yet written.
    pending: usize,
}

impl SubtitleTrack {
    /// Subtitles for the media segments named `{prefix}_NNNNN.ts`, listed in the playlist
    /// `{playlist}_captions.m3u8` (and a live one beside the live playlist).
    pub fn new(
        prefix: &Path,
        main: &FileTarget,
        live: Option<&FileTarget>,
        target_s: u32,
        epoch: DateTime<Utc>,
    ) -> SubtitleTrack {
        let named = |t: &FileTarget| {
            let strip = |s: &str| s.strip_suffix(".m3u8").unwrap_or(s).to_owned();
            FileTarget {
                filename: format!("{}_captions.m3u8", strip(&t.filename)),
                local_path: PathBuf::from(format!(
                    "{}_captions.m3u8",
                    strip(&t.local_path.to_string_lossy())
                )),
            }
        };
        SubtitleTrack {
            prefix: format!("{}_captions", prefix.to_string_lossy()),
            playlist: named(main),
            live: live.map(named),
            target_s,
            epoch,
            spans: Vec::new(),
            segments: Vec::new(),
            pending: 0,
        }
    }

    /// The URI of the subtitles playlist (the live one with `live`) from `dir`.
    pub fn uri_from(&self, dir: &Path, live: bool) -> String {
        let p = match (&self.live, live) {
            (Some(l), true) => &l.local_path,
            _ => &self.playlist.local_path,
        };
        relative_uri(dir, p)
    }

    /// A media segment spanning `span` closed.
    pub fn segment_closed(&mut self, span: Range<Duration>) {
        let path = PathBuf::from(format!("{}_{:05}.vtt", self.prefix, self.spans.len()));
        self.segments.push(playlist::Segment {
            uri: relative_uri(
                self.playlist.local_path.parent().unwrap_or(Path::new("")),
                &path,
            ),
            duration: span.end.saturating_sub(span.start),
            program_date_time: self.epoch + span.start,
        });
        self.spans.push((path, span));
        self.pending += 1;
    }

    /// Whether segments wait to be written.
    pub fn pending(&self) -> bool {
        self.pending > 0
    }

    /// Writes the pending segments (every one with `all`) with `cues` (`mpegts`: the
    /// MPEG-TS time of media time 0), queued for upload; returns the subtitles playlists
    /// (closed with `ended`) for the HLS output to publish with its own.
    pub fn write(
        &mut self,
        cues: &[Cue],
        (all, ended): (bool, bool),
        mpegts: u64,
        uploads: Option<&UploadQueue>,
    ) -> std::io::Result<Vec<(PathBuf, String)>> {
        let from = if all {
            0
        } else {
            self.spans.len() - self.pending
        };
        for (path, span) in &self.spans[from..] {
            let text = webvtt::segment(cues, span.clone(), mpegts);
            atomic_write(path, text.as_bytes())?;
            if let Some(q) = uploads {
                q.file(path);
            }
        }
        self.pending = 0;
        let mut lists = vec![(
            self.playlist.local_path.clone(),
            playlist::event(self.target_s, &self.segments, ended),
        )];
        if let Some(live) = &self.live {
            lists.push((
                live.local_path.clone(),
                playlist::live(self.target_s, &self.segments, ended),
            ));
        }
        Ok(lists)
    }

    /// Its playlist and segments, as `(playlist local path, segment local paths)`.
    pub fn files(&self) -> (String, Vec<String>) {
        (
            self.playlist.local_path.display().to_string(),
            self.spans
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One TS packet starting a PES with `pts`.
    fn pes_packet(pts: u64, adaptation: bool) -> Vec<u8> {
        let mut p = vec![0x47, 0x41, 0x00, if adaptation { 0x30 } else { 0x10 }];
        if adaptation {
            p.extend([7, 0x50, 0, 0, 0, 0, 0, 0]);
        }
        p.extend([0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5]);
        p.extend([
            0x21 | ((pts >> 29) & 0x0e) as u8,
            (pts >> 22) as u8,
            0x01 | ((pts >> 14) & 0xfe) as u8,
            (pts >> 7) as u8,
            0x01 | ((pts << 1) & 0xfe) as u8,
        ]);
        p.resize(TS_PACKET, 0xff);
        p
    }

    #[test]
    fn the_first_pts_is_read_past_other_packets() {
        let mut ts = vec![0x47, 0x00, 0x00, 0x10];
        ts.resize(TS_PACKET, 0xff); // a continuation packet
        ts.extend(pes_packet(324_000_000, true));
        ts.extend(pes_packet(5, false));
        assert_eq!(first_pts(&ts), Some(324_000_000));
        assert_eq!(
            first_pts(&pes_packet((1 << 33) - 1, false)),
            Some((1 << 33) - 1)
        );
        assert_eq!(first_pts(&[0u8; 400]), None);
    }

    #[test]
    fn segments_follow_the_media_and_are_rewritten_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let main = FileTarget {
            filename: "h/index.m3u8".into(),
            local_path: dir.path().join("h/index.m3u8"),
        };
        let epoch = Utc::now();
        let mut t = SubtitleTrack::new(&dir.path().join("h/seg"), &main, None, 2, epoch);
        let ts = dir.path().join("seg_00000.ts");
        std::fs::write(&ts, pes_packet(324_180_000, false)).unwrap();
        let mpegts = mpegts_of(&ts, Duration::from_secs(2)).unwrap();
        assert_eq!(mpegts, 324_000_000);
        t.segment_closed(Duration::ZERO..Duration::from_secs(2));
        let cue = |start: u64, text: &str| Cue {
            start: Duration::from_millis(start),
            end: Duration::from_millis(start + 1000),
            identity: "a".into(),
            name: "A".into(),
            text: text.into(),
            is_final: true,
        };
        t.write(&[cue(500, "early")], (false, false), mpegts, None)
            .unwrap();
        let seg0 = dir.path().join("h/seg_captions_00000.vtt");
        let text = std::fs::read_to_string(&seg0).unwrap();
        assert!(
            text.contains("MPEGTS:324000000,") && text.contains("early"),
            "{text}"
        );
        assert!(!t.pending());
        t.segment_closed(Duration::from_secs(2)..Duration::from_secs(4));
        let cues = [cue(500, "early"), cue(2500, "late")];
        let lists = t.write(&cues, (true, true), mpegts, None).unwrap();
        assert_eq!(lists[0].0, dir.path().join("h/index_captions.m3u8"));
        let list = &lists[0].1;
        assert!(
            list.contains("seg_captions_00001.vtt\n#EXT-X-ENDLIST"),
            "{list}"
        );
        assert_eq!(t.files().1.len(), 2);
        let last = std::fs::read_to_string(dir.path().join("h/seg_captions_00001.vtt")).unwrap();
        assert!(last.contains("late") && !last.contains("early"), "{last}");
    }
}
