//! Participants' isolated tracks as HLS alternative audio: each track cut into
//! packed-audio segments (ADTS behind an ID3 timestamp, RFC 8216 §3.4) on the media
//! segments' boundaries and clock, with event (and live) playlists of their own that the
//! master lists in an `EXT-X-MEDIA TYPE=AUDIO` group beside the mix. Written when the
//! recording ends (the tracks are finished then).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::isolated::IsolatedTrack;
use super::{FileTarget, adts, atomic_write, playlist, relative_uri};
use crate::source::AUDIO_RATE;
use crate::storage::UploadQueue;

/// One participant's rendition.
pub struct AudioRendition {
    /// Its name in the master (the identity).
    pub name: String,
    /// Its event playlist.
    pub playlist: PathBuf,
    /// Its live playlist, beside the live master.
    pub live: Option<PathBuf>,
    /// Its segments.
    pub segments: Vec<PathBuf>,
}

/// `{playlist}_audio_{k}.m3u8` beside `t`.
fn beside(t: &FileTarget, k: usize) -> PathBuf {
    let p = t.local_path.to_string_lossy();
    PathBuf::from(format!(
        "{}_audio_{k}.m3u8",
        p.strip_suffix(".m3u8").unwrap_or(&p)
    ))
}

/// Where a rendition's files go and how they are timed.
pub struct Layout<'a> {
    /// The media segments' path prefix.
    pub prefix: &'a Path,
    /// The main (master) playlist.
    pub main: &'a FileTarget,
    /// The live master, if any.
    pub live: Option<&'a FileTarget>,
    /// Each media segment's start and length (media time).
    pub spans: &'a [(Duration, Duration)],
    /// MPEG-TS time of media time 0.
    pub mpegts: u64,
    /// Target segment length, seconds.
    pub target_s: u32,
    /// Wall time of media time 0.
    pub epoch: DateTime<Utc>,
}

/// Writes track `k`'s segments (queued for upload with `uploads`); returns the rendition
/// and its playlists (closed) for the HLS output to publish with its own.
pub fn write(
    layout: &Layout<'_>,
    k: usize,
    track: &IsolatedTrack,
    uploads: Option<&UploadQueue>,
) -> std::io::Result<(AudioRendition, Vec<(PathBuf, String)>)> {
    let stream = std::fs::read(&track.path)?;
    let rate = AUDIO_RATE as u64;
    let cuts: Vec<u64> = layout
        .spans
        .iter()
        .map(|(start, _)| start.as_nanos() as u64 * rate / 1_000_000_000)
        .collect();
    let segments = adts::packed_segments(&stream, AUDIO_RATE, &cuts, layout.mpegts);
    let playlist_path = beside(layout.main, k);
    let dir = playlist_path.parent().unwrap_or(Path::new(""));
    let mut listed = Vec::new();
    let mut files = Vec::new();
    for (i, (bytes, (start, len))) in segments.iter().zip(layout.spans).enumerate() {
        let path = PathBuf::from(format!(
            "{}_audio_{k}_{i:05}.aac",
            layout.prefix.to_string_lossy()
        ));
        atomic_write(&path, bytes)?;
        if let Some(q) = uploads {
            q.file(&path);
        }
        files.push(path.clone());
        listed.push(playlist::Segment {
            uri: relative_uri(dir, &path),
            duration: *len,
            program_date_time: layout.epoch + *start,
        });
    }
    let mut lists = vec![(
        playlist_path.clone(),
        playlist::event(layout.target_s, &listed, true),
    )];
    let live = layout.live.map(|l| {
        let path = beside(l, k);
        let live_dir = path.parent().unwrap_or(Path::new(""));
        let from_live: Vec<_> = listed
            .iter()
            .map(|s| playlist::Segment {
                uri: relative_uri(live_dir, &dir.join(&s.uri)),
                ..s.clone()
            })
            .collect();
        lists.push((
            path.clone(),
            playlist::live(layout.target_s, &from_live, true),
        ));
        path
    });
    let rendition = AudioRendition {
        name: track.identity.clone(),
        playlist: playlist_path,
        live,
        segments: files,
    };
    Ok((rendition, lists))
}
