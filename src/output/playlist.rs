//! HLS playlists as text: the event playlist (every segment, closed with ENDLIST), the live
//! playlist (a rolling window) and the master playlist of an adaptive ladder. Pure: the
//! HLS output writes them.

use std::fmt::Write;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// Segments the live playlist keeps.
pub const LIVE_WINDOW: usize = 5;

/// One finished segment.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// URI relative to the playlist.
    pub uri: String,
    /// Its media duration.
    pub duration: Duration,
    /// Wall-clock time of its first frame.
    pub program_date_time: DateTime<Utc>,
}

/// A URI line for `path` (a relative file path, as on disk): every byte but unreserved
/// characters and `/` percent-encoded, so that no name (a room name, an identity, a
/// prefix) can end the line and inject a tag, and a player fetches the file that exists.
pub fn uri_line(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn header(out: &mut String, target_s: u32, segments: &[Segment], sequence: usize) {
    let longest = segments
        .iter()
        .map(|s| s.duration.as_secs_f64().round() as u32)
        .max()
        .unwrap_or(0);
    out.push_str("#EXTM3U\n#EXT-X-VERSION:3\n");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", target_s.max(longest));
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{sequence}");
}

fn body(out: &mut String, segments: &[Segment]) {
    for s in segments {
        let _ = writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            s.program_date_time
                .to_rfc3339_opts(SecondsFormat::Millis, true)
        );
        let _ = writeln!(out, "#EXTINF:{:.3},", s.duration.as_secs_f64());
        out.push_str(&uri_line(&s.uri));
        out.push('\n');
    }
}

/// The event playlist: every segment so far; `ended` adds `#EXT-X-ENDLIST`.
pub fn event(target_s: u32, segments: &[Segment], ended: bool) -> String {
    let mut out = String::new();
    header(&mut out, target_s, segments, 0);
    out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n");
    body(&mut out, segments);
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// The live playlist: the last [`LIVE_WINDOW`] segments, numbered from the first kept.
pub fn live(target_s: u32, segments: &[Segment], ended: bool) -> String {
    let first = segments.len().saturating_sub(LIVE_WINDOW);
    let window = &segments[first..];
    let mut out = String::new();
    header(&mut out, target_s, window, first);
    body(&mut out, window);
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// One rendition of a master playlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendition {
    /// URI of its media playlist, relative to the master.
    pub uri: String,
    /// Peak bits per second (video + audio, with muxing overhead).
    pub bandwidth: u64,
    /// Frame size.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// RFC 6381 codecs, e.g. `avc1.4d401f,mp4a.40.2`.
    pub codecs: String,
}

/// What a master playlist offers besides its streams.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MasterExtras {
    /// The URI of a subtitles rendition every stream names.
    pub subtitles: Option<String>,
    /// Alternative audio every stream names: `(name, URI)`; `None` is the audio inside
    /// the streams themselves (the mix), listed first and the default.
    pub audio: Vec<(String, Option<String>)>,
}

/// The subtitles group's id in a master playlist.
pub const SUBTITLES_GROUP: &str = "captions";
/// The audio group's id in a master playlist.
pub const AUDIO_GROUP: &str = "voices";

/// A NAME attribute's value: no quotes or line breaks.
fn attribute(s: &str) -> String {
    s.chars()
        .map(|c| if c == '"' || c.is_control() { '_' } else { c })
        .collect()
}

/// The master playlist of an adaptive ladder (or of one rendition with subtitles or
/// alternative audio), highest bandwidth first. A rendition without a picture (width 0)
/// has no `RESOLUTION`.
pub fn master(renditions: &[Rendition], extras: &MasterExtras) -> String {
    let mut sorted = renditions.to_vec();
    sorted.sort_by_key(|r| std::cmp::Reverse(r.bandwidth));
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    if let Some(uri) = &extras.subtitles {
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{}\",NAME=\"Captions\",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI=\"{}\"",
            SUBTITLES_GROUP,
            uri_line(uri)
        );
    }
    for (name, uri) in &extras.audio {
        let _ = write!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"{}\",LANGUAGE=\"und\",",
            attribute(name)
        );
        match uri {
            None => out.push_str("DEFAULT=YES,AUTOSELECT=YES\n"),
            Some(u) => {
                let _ = writeln!(out, "DEFAULT=NO,AUTOSELECT=NO,URI=\"{}\"", uri_line(u));
            }
        }
    }
    for r in sorted {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", r.bandwidth);
        if r.width > 0 {
            let _ = write!(out, ",RESOLUTION={}x{}", r.width, r.height);
        }
        let _ = write!(out, ",CODECS=\"{}\"", r.codecs);
        if !extras.audio.is_empty() {
            let _ = write!(out, ",AUDIO=\"{AUDIO_GROUP}\"");
        }
        if extras.subtitles.is_some() {
            let _ = write!(out, ",SUBTITLES=\"{}\"", SUBTITLES_GROUP);
        }
        out.push('\n');
        out.push_str(&uri_line(&r.uri));
        out.push('\n');
    }
    out
}

/// The RFC 6381 name of H.264 at `profile_idc` (66 baseline, 77 main, 100 high) for a
/// frame size and rate, with the smallest level that holds it.
pub fn avc1_codec(profile_idc: u8, width: u32, height: u32, fps: u32) -> String {
    let mbs = width.div_ceil(16) as u64 * height.div_ceil(16) as u64;
    let mbps = mbs * fps as u64;
    // (level_idc, max macroblocks per frame, max macroblocks per second), H.264 table A-1.
    const LEVELS: [(u8, u64, u64); 9] = [
        (30, 1620, 40_500),
        (31, 3600, 108_000),
        (32, 5120, 216_000),
        (40, 8192, 245_760),
        (42, 8704, 522_240),
        (50, 22_080, 589_824),
        (51, 36_864, 983_040),
        (52, 36_864, 2_073_600),
        (62, 139_264, 16_711_680),
    ];
    let level = LEVELS
        .iter()
        .find(|(_, f, s)| mbs <= *f && mbps <= *s)
        .map_or(62, |l| l.0);
    // Constraint flags as x264 writes them: constrained baseline sets set0 and set1,
    // main sets set1, high none.
    let constraints = match profile_idc {
        66 => 0xc0,
        77 => 0x40,
        _ => 0x00,
    };
    format!("avc1.{profile_idc:02x}{constraints:02x}{level:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn segs(n: usize) -> Vec<Segment> {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        (0..n)
            .map(|i| Segment {
                uri: format!("s_{i:05}.ts"),
                duration: Duration::from_millis(2000),
                program_date_time: t0 + Duration::from_secs(2 * i as u64),
            })
            .collect()
    }

    #[test]
    fn event_playlist_lists_all_and_ends() {
        let text = event(2, &segs(3), true);
        assert!(text.starts_with("#EXTM3U\n"));
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"));
        assert_eq!(text.matches("#EXTINF:2.000,").count(), 3);
        assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-01-02T03:04:09.000Z\n#EXTINF"));
        assert!(text.ends_with("s_00002.ts\n#EXT-X-ENDLIST\n"));
        assert!(!event(2, &segs(3), false).contains("ENDLIST"));
    }

    #[test]
    fn names_cannot_inject_tags() {
        let mut s = segs(1);
        s[0].uri =
            "room\n#EXT-X-ENDLIST\n#EXT-X-KEY:METHOD=AES-128,URI=\"http://x\"/50% a.ts".into();
        let text = event(2, &s, false);
        // One URI line, one tag of each kind the playlist writes, nothing else.
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.last().copied(),
            Some(
                "room%0A%23EXT-X-ENDLIST%0A%23EXT-X-KEY%3AMETHOD%3DAES-128%2CURI%3D%22http%3A//x%22/50%25%20a.ts"
            )
        );
        assert!(
            !text.contains("ENDLIST\n") && !text.contains("\n#EXT-X-KEY"),
            "{text}"
        );
        let m = master(
            &[Rendition {
                uri: "p\r\n#EXT-X-ENDLIST.m3u8".into(),
                bandwidth: 1,
                width: 2,
                height: 2,
                codecs: "avc1.4d401e".into(),
            }],
            &MasterExtras::default(),
        );
        assert_eq!(m.lines().count(), 4, "{m}");
        assert!(m.ends_with("p%0D%0A%23EXT-X-ENDLIST.m3u8\n"), "{m}");
        // Ordinary names are unchanged.
        assert_eq!(uri_line("rec/my-room_1.ts"), "rec/my-room_1.ts");
    }

    #[test]
    fn live_playlist_keeps_a_window() {
        let text = live(2, &segs(8), false);
        assert_eq!(text.matches("#EXTINF").count(), LIVE_WINDOW);
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:3\n"));
        assert!(!text.contains("s_00002.ts"));
    }

    #[test]
    fn master_sorted_and_codecs() {
        assert_eq!(avc1_codec(77, 1280, 720, 30), "avc1.4d401f");
        assert_eq!(avc1_codec(100, 1920, 1080, 30), "avc1.640028");
        let m = master(
            &[
                Rendition {
                    uri: "p_360p.m3u8".into(),
                    bandwidth: 900_000,
                    width: 640,
                    height: 360,
                    codecs: "avc1.4d401e".into(),
                },
                Rendition {
                    uri: "p_720p.m3u8".into(),
                    bandwidth: 3_300_000,
                    width: 1280,
                    height: 720,
                    codecs: "avc1.4d401f".into(),
                },
            ],
            &MasterExtras::default(),
        );
        let first = m.find("720p").unwrap();
        assert!(first < m.find("360p").unwrap());
        assert!(m.contains("RESOLUTION=1280x720"));
    }

    #[test]
    fn alternative_audio_is_a_group_with_the_mix_as_default() {
        let m = master(
            &[Rendition {
                uri: "v.m3u8".into(),
                bandwidth: 1,
                width: 2,
                height: 2,
                codecs: "avc1.4d401e,mp4a.40.2".into(),
            }],
            &MasterExtras {
                subtitles: None,
                audio: vec![
                    ("mix".into(), None),
                    ("a\"li\nce".into(), Some("v_audio_1.m3u8".into())),
                ],
            },
        );
        assert!(m.contains("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"voices\",NAME=\"mix\",LANGUAGE=\"und\",DEFAULT=YES,AUTOSELECT=YES\n"), "{m}");
        assert!(m.contains("NAME=\"a_li_ce\",LANGUAGE=\"und\",DEFAULT=NO,AUTOSELECT=NO,URI=\"v_audio_1.m3u8\"\n"), "{m}");
        assert!(
            m.contains("CODECS=\"avc1.4d401e,mp4a.40.2\",AUDIO=\"voices\"\nv.m3u8\n"),
            "{m}"
        );
    }

    #[test]
    fn a_master_with_subtitles_names_them_from_every_stream() {
        let m = master(
            &[Rendition {
                uri: "a.m3u8".into(),
                bandwidth: 200_000,
                width: 0,
                height: 0,
                codecs: "mp4a.40.2".into(),
            }],
            &MasterExtras {
                subtitles: Some("a_captions.m3u8".into()),
                audio: Vec::new(),
            },
        );
        assert_eq!(
            m,
            "#EXTM3U\n#EXT-X-VERSION:3\n\
             #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"captions\",NAME=\"Captions\",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI=\"a_captions.m3u8\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=200000,CODECS=\"mp4a.40.2\",SUBTITLES=\"captions\"\na.m3u8\n"
        );
    }
}
