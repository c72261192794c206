//! The HLS output: for each variant, `splitmuxsink` cuts MPEG-TS segments at key frames
//! every `segment_duration`; each segment is written under a `.part` name and renamed when
//! closed, then the playlists are rewritten atomically. A reader (or a killed egress)
//! never sees half a segment or half a playlist: the event playlist always lists every
//! complete segment, and gets `#EXT-X-ENDLIST` at a clean end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gstreamer as gst;
use gstreamer::prelude::*;
use livekit_protocol::SegmentsInfo;

use crate::captions::Cue;
use crate::encode::{EncodeError, Encoded, make};
use crate::output::hls_audio::{self, AudioRendition};
use crate::output::isolated::IsolatedTrack;
use crate::output::subtitles::{self, SubtitleTrack};
use crate::output::{
    FileTarget, atomic_write, file, file_target, playlist, prefix_target, relative_uri,
};
use crate::request::naming::{self, NameContext};
use crate::request::outputs::{SegmentsPlan, Suffix, VideoEncode};
use crate::request::{EncodingParams, H264Profile};
use crate::storage::UploadQueue;

/// Why the HLS output failed.
#[derive(Debug, thiserror::Error)]
pub enum HlsError {
    /// A name could not be resolved inside the output directory.
    #[error("{field}: {reason}")]
    Naming {
        /// Request field.
        field: String,
        /// Why.
        reason: String,
    },
    /// A GStreamer element is missing.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Writing a segment or playlist failed.
    #[error("{field}: writing {path}: {source}")]
    Io {
        /// Request field.
        field: String,
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// How a variant names its segments (shared with the muxer's naming callback).
struct Naming {
    /// Local path prefix, e.g. `out/room-time_720p`.
    prefix: String,
    suffix: Suffix,
    /// Wall-clock time of media time zero.
    epoch: DateTime<Utc>,
}

impl Naming {
    fn segment_path(&self, index: u32, pts: Option<gst::ClockTime>) -> String {
        match self.suffix {
            Suffix::Index | Suffix::NoneOverwrite => format!("{}_{index:05}.ts", self.prefix),
            Suffix::Timestamp => {
                let at = self.epoch + Duration::from_nanos(pts.map_or(0, |t| t.nseconds()));
                format!("{}_{}.ts", self.prefix, naming::format_utc(at))
            }
        }
    }
}

struct Variant {
    sink: gst::Element,
    playlist: FileTarget,
    live: Option<FileTarget>,
    segments: Vec<playlist::Segment>,
    /// Running time at which each open segment (by `.part` location) began.
    opened: HashMap<String, Duration>,
    bytes: u64,
}

/// One HLS output (one or several variants).
pub struct HlsOutput {
    field: String,
    target_s: u32,
    epoch: DateTime<Utc>,
    variants: Vec<Variant>,
    info: SegmentsInfo,
    /// Master playlists of a ladder (written once, at the start).
    masters: Vec<PathBuf>,
    /// Where complete segments and each playlist version are queued for upload.
    uploads: Option<UploadQueue>,
    /// The captions' subtitles rendition, when the egress writes captions.
    subtitles: Option<SubtitleTrack>,
    /// The master playlists' targets and streams, when there are masters.
    masters_of: Option<Masters>,
    /// Participants' alternative audio (added at the end).
    audio: Vec<AudioRendition>,
    /// The media segments' path prefix.
    prefix: PathBuf,
    /// MPEG-TS time of media time 0, once the first segment is read.
    mpegts: Option<u64>,
    /// Participants' isolated tracks will be added (`add_isolated_audio`).
    isolated_audio: bool,
}

/// What the master playlists list.
struct Masters {
    main: FileTarget,
    live: Option<FileTarget>,
    renditions: Vec<playlist::Rendition>,
}

fn naming_error(field: &str, e: impl ToString) -> HlsError {
    HlsError::Naming {
        field: field.to_owned(),
        reason: e.to_string(),
    }
}

fn io_error(field: &str, path: &Path, source: std::io::Error) -> HlsError {
    HlsError::Io {
        field: field.to_owned(),
        path: path.display().to_string(),
        source,
    }
}

fn with_suffix(t: &FileTarget, suffix: &str, ext: &str) -> FileTarget {
    let strip = |s: &str| s.strip_suffix(ext).unwrap_or(s).to_owned();
    FileTarget {
        filename: format!("{}{suffix}{ext}", strip(&t.filename)),
        local_path: PathBuf::from(format!(
            "{}{suffix}{ext}",
            strip(&t.local_path.to_string_lossy())
        )),
    }
}

/// Resolves the playlist name; a bare name goes beside the segments, as LiveKit does.
fn playlist_target(
    out_dir: &Path,
    template: &str,
    prefix: &FileTarget,
    ctx: &NameContext<'_>,
) -> Result<FileTarget, naming::NamingError> {
    let template = if template.is_empty() {
        format!("{}.m3u8", prefix.filename)
    } else if !template.contains('/') {
        match Path::new(&prefix.filename).parent() {
            Some(dir) if !dir.as_os_str().is_empty() => {
                format!("{}/{template}", dir.to_string_lossy())
            }
            _ => template.to_owned(),
        }
    } else {
        template.to_owned()
    };
    file_target(out_dir, &template, ".m3u8", ctx)
}

/// The main playlist an output writes (resolved in `out_dir` as [`HlsOutput::new`] does).
pub fn main_playlist(
    out_dir: &Path,
    plan: &SegmentsPlan,
    ctx: &NameContext<'_>,
) -> Result<FileTarget, naming::NamingError> {
    let prefix = prefix_target(out_dir, &plan.prefix_template, ".ts", ctx)?;
    playlist_target(out_dir, &plan.playlist_template, &prefix, ctx)
}

/// A variant's `splitmuxsink`: MPEG-TS segments of `segment_s` seconds, named by
/// `naming`, written as `.part` until closed (see [`HlsOutput::on_message`]).
fn segment_sink(naming: Arc<Naming>, segment_s: u32) -> Result<gst::Element, HlsError> {
    let sink = make("splitmuxsink")?;
    sink.set_property("muxer-factory", "mpegtsmux");
    sink.set_property("max-size-time", segment_s as u64 * 1_000_000_000);
    sink.set_property("send-keyframe-requests", true);
    sink.connect("format-location-full", false, move |args| {
        let index = args[1].get::<u32>().unwrap_or(0);
        let pts = args[2]
            .get::<gst::Sample>()
            .ok()
            .and_then(|s| s.buffer().and_then(|b| b.pts()));
        Some(format!("{}.part", naming.segment_path(index, pts)).to_value())
    });
    Ok(sink)
}

/// A ladder variant's line in the master playlist.
/// A rendition without a picture (audio only, with subtitles).
fn audio_rendition(uri: String, params: &EncodingParams) -> playlist::Rendition {
    playlist::Rendition {
        uri,
        bandwidth: params.audio_bitrate_kbps as u64 * 1000 * 6 / 5,
        width: 0,
        height: 0,
        codecs: "mp4a.40.2".into(),
    }
}

fn rendition(
    uri: String,
    e: VideoEncode,
    params: &EncodingParams,
    with_audio: bool,
) -> playlist::Rendition {
    let profile_idc = match params.profile {
        H264Profile::Baseline => 66,
        H264Profile::Main => 77,
        H264Profile::High => 100,
    };
    let audio_bps = if with_audio {
        params.audio_bitrate_kbps as u64 * 1000
    } else {
        0
    };
    playlist::Rendition {
        uri,
        // Peak: the encoder's target plus 20% for rate-control swings and MPEG-TS
        // overhead.
        bandwidth: (e.bitrate_kbps as u64 * 1000 + audio_bps) * 6 / 5,
        width: e.width,
        height: e.height,
        codecs: format!(
            "{}{}",
            playlist::avc1_codec(profile_idc, e.width, e.height, params.framerate),
            if with_audio { ",mp4a.40.2" } else { "" }
        ),
    }
}

impl HlsOutput {
    /// Builds the output's muxers in `pipeline`, fed from the video tees (`video_tees[i]`
    /// carries encode `i`) and the AAC tee.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pipeline: &gst::Pipeline,
        plan: &SegmentsPlan,
        out_dir: &Path,
        ctx: &NameContext<'_>,
        video_tees: &[gst::Element],
        encodes: &[VideoEncode],
        aac_tee: Option<&gst::Element>,
        params: &EncodingParams,
        epoch: DateTime<Utc>,
    ) -> Result<HlsOutput, HlsError> {
        let field = plan.field.clone();
        let prefix = prefix_target(out_dir, &plan.prefix_template, ".ts", ctx)
            .map_err(|e| naming_error(&format!("{field}.filename_prefix"), e))?;
        let main_playlist = playlist_target(out_dir, &plan.playlist_template, &prefix, ctx)
            .map_err(|e| naming_error(&format!("{field}.playlist_name"), e))?;
        let main_live = match &plan.live_playlist_template {
            None => None,
            Some(t) => Some(
                playlist_target(out_dir, t, &prefix, ctx)
                    .map_err(|e| naming_error(&format!("{field}.live_playlist_name"), e))?,
            ),
        };
        let io = |path: &Path, source| io_error(&field, path, source);
        if let Some(dir) = prefix.local_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }

        // One variant per video encode; none (audio only) still makes one.
        let variant_specs: Vec<(Option<usize>, String)> = if plan.variants.is_empty() {
            vec![(None, String::new())]
        } else {
            plan.variants
                .iter()
                .map(|v| (Some(v.encode), v.name.clone()))
                .collect()
        };
        let ladder = plan.is_ladder();
        // Subtitles and alternative audio need a master playlist: one rendition gets one too.
        let master = ladder || plan.subtitles || plan.isolated_audio;
        let mut variants = Vec::new();
        let mut renditions = Vec::new();
        for (encode, name) in &variant_specs {
            let tag = match (ladder, master) {
                (true, _) => format!("_{name}"),
                (false, true) => "_media".to_owned(),
                (false, false) => String::new(),
            };
            let (playlist, live) = if master {
                (
                    with_suffix(&main_playlist, &tag, ".m3u8"),
                    main_live.as_ref().map(|l| with_suffix(l, &tag, ".m3u8")),
                )
            } else {
                (main_playlist.clone(), main_live.clone())
            };
            let naming = Arc::new(Naming {
                prefix: format!("{}{tag}", prefix.local_path.to_string_lossy()),
                suffix: plan.suffix,
                epoch,
            });
            let sink = segment_sink(naming, plan.segment_duration_s)?;
            pipeline.add(&sink).expect("fresh splitmuxsink");
            if let Some(i) = encode {
                let pad = sink
                    .request_pad_simple("video")
                    .ok_or(EncodeError::MissingElement("splitmuxsink video pad"))?;
                file::attach(pipeline, &video_tees[*i], Encoded::H264, &pad)?;
            }
            let dir = main_playlist.local_path.parent().unwrap_or(Path::new(""));
            let uri = relative_uri(dir, &playlist.local_path);
            match encode {
                Some(i) => renditions.push(rendition(uri, encodes[*i], params, aac_tee.is_some())),
                None => renditions.push(audio_rendition(uri, params)),
            }
            if let Some(tee) = aac_tee {
                let pad = sink
                    .request_pad_simple("audio_%u")
                    .ok_or(EncodeError::MissingElement("splitmuxsink audio pad"))?;
                file::attach(
                    pipeline,
                    tee,
                    Encoded::Audio(crate::request::AudioCodecKind::Aac),
                    &pad,
                )?;
            }
            variants.push(Variant {
                sink,
                playlist,
                live,
                segments: Vec::new(),
                opened: HashMap::new(),
                bytes: 0,
            });
        }
        let mut out = HlsOutput {
            field: field.clone(),
            target_s: plan.segment_duration_s,
            epoch,
            info: SegmentsInfo {
                playlist_name: main_playlist.filename.clone(),
                playlist_location: main_playlist.local_path.display().to_string(),
                live_playlist_name: main_live
                    .as_ref()
                    .map(|l| l.filename.clone())
                    .unwrap_or_default(),
                live_playlist_location: main_live
                    .as_ref()
                    .map(|l| l.local_path.display().to_string())
                    .unwrap_or_default(),
                ..Default::default()
            },
            variants,
            masters: Vec::new(),
            uploads: None,
            subtitles: plan.subtitles.then(|| {
                SubtitleTrack::new(
                    &prefix.local_path,
                    &main_playlist,
                    main_live.as_ref(),
                    plan.segment_duration_s,
                    epoch,
                )
            }),
            masters_of: master.then(|| Masters {
                main: main_playlist.clone(),
                live: main_live.clone(),
                renditions,
            }),
            audio: Vec::new(),
            prefix: prefix.local_path.clone(),
            mpegts: None,
            isolated_audio: plan.isolated_audio,
        };
        out.write_playlists(false)?;
        out.write_masters(false)?;
        Ok(out)
    }

    /// The master playlists (a ladder's, or one rendition's with subtitles or alternative
    /// audio): the main one and, with a live playlist, a live master pointing at each
    /// variant's live playlist. Rewritten (`again`) when alternative audio is added.
    fn write_masters(&mut self, again: bool) -> Result<(), HlsError> {
        let Some(m) = &self.masters_of else {
            return Ok(());
        };
        let extras = |dir: &Path, live: bool| playlist::MasterExtras {
            subtitles: self.subtitles.as_ref().map(|t| t.uri_from(dir, live)),
            audio: if self.audio.is_empty() {
                Vec::new()
            } else {
                std::iter::once(("mix".to_owned(), None))
                    .chain(self.audio.iter().map(|a| {
                        let list = match (live, &a.live) {
                            (true, Some(l)) => l,
                            _ => &a.playlist,
                        };
                        (a.name.clone(), Some(relative_uri(dir, list)))
                    }))
                    .collect()
            },
        };
        let main_dir = m.main.local_path.parent().unwrap_or(Path::new(""));
        let mut written = vec![(
            m.main.local_path.clone(),
            playlist::master(&m.renditions, &extras(main_dir, false)),
        )];
        if let Some(live) = &m.live {
            let dir = live.local_path.parent().unwrap_or(Path::new(""));
            let live_renditions: Vec<_> = m
                .renditions
                .iter()
                .zip(&self.variants)
                .map(|(r, v)| playlist::Rendition {
                    uri: relative_uri(dir, &v.live.as_ref().expect("masters live").local_path),
                    ..r.clone()
                })
                .collect();
            written.push((
                live.local_path.clone(),
                playlist::master(&live_renditions, &extras(dir, true)),
            ));
        }
        for (path, text) in written {
            // The first time, before uploads are set: `set_uploads` queues them.
            self.publish(&path, text, true)?;
            if !again {
                self.masters.push(path);
            }
        }
        Ok(())
    }

    /// Writes a playlist atomically and, with uploads, queues this version of it (the
    /// final one with `last`): every playlist of the output goes through here.
    fn publish(&self, path: &Path, text: String, last: bool) -> Result<(), HlsError> {
        atomic_write(path, text.as_bytes()).map_err(|e| self.io_error(path, e))?;
        if let Some(q) = &self.uploads {
            q.snapshot(path, text.into_bytes(), last);
        }
        Ok(())
    }

    /// Adds each participant's isolated track as alternative audio (packed-audio
    /// segments on the media segments' boundaries) and lists them in the masters.
    pub fn add_isolated_audio(&mut self, tracks: &[IsolatedTrack]) -> Result<(), HlsError> {
        let Some(m) = &self.masters_of else {
            return Ok(());
        };
        let spans: Vec<(Duration, Duration)> = self.variants[0]
            .segments
            .iter()
            .map(|s| {
                let start = (s.program_date_time - self.epoch)
                    .to_std()
                    .unwrap_or_default();
                (start, s.duration)
            })
            .collect();
        let layout = hls_audio::Layout {
            prefix: &self.prefix,
            main: &m.main,
            live: m.live.as_ref(),
            spans: &spans,
            mpegts: self.mpegts.unwrap_or(0),
            target_s: self.target_s,
            epoch: self.epoch,
        };
        let mut added = Vec::new();
        let mut lists = Vec::new();
        for (k, t) in tracks.iter().enumerate() {
            let (r, l) = hls_audio::write(&layout, k + 1, t, self.uploads.as_ref())
                .map_err(|e| self.io_error(&t.path, e))?;
            added.push(r);
            lists.extend(l);
        }
        for (path, text) in lists {
            self.publish(&path, text, true)?;
        }
        self.audio = added;
        self.write_masters(true)
    }

    fn io_error(&self, path: &Path, source: std::io::Error) -> HlsError {
        io_error(&self.field, path, source)
    }

    /// Queues, from now on, every complete segment and every playlist version for upload
    /// (segments before the playlist that names them); the ladder's master playlists, already
    /// written, go first.
    pub fn set_uploads(&mut self, queue: UploadQueue) {
        for m in &self.masters {
            match std::fs::read(m) {
                Ok(bytes) => queue.snapshot(m, bytes, true),
                Err(e) => {
                    tracing::warn!(file = %m.display(), error = %e, "master playlist unreadable")
                }
            }
        }
        self.uploads = Some(queue);
    }

    fn write_playlists(&self, ended: bool) -> Result<(), HlsError> {
        let write = |path: &Path, text: String| self.publish(path, text, ended);
        for v in &self.variants {
            if !ended && v.segments.is_empty() && v.playlist.local_path.exists() {
                continue;
            }
            write(
                &v.playlist.local_path,
                playlist::event(self.target_s, &v.segments, ended),
            )?;
            if let Some(live) = &v.live {
                write(
                    &live.local_path,
                    playlist::live(self.target_s, &v.segments, ended),
                )?;
            }
        }
        Ok(())
    }

    /// Handles a bus message if it is one of this output's segment events; returns whether
    /// it was.
    pub fn on_message(&mut self, msg: &gst::Message) -> Result<bool, HlsError> {
        let gst::MessageView::Element(el) = msg.view() else {
            return Ok(false);
        };
        let Some(src) = msg.src() else {
            return Ok(false);
        };
        let Some(vi) = self
            .variants
            .iter()
            .position(|v| v.sink.upcast_ref::<gst::Object>() == src)
        else {
            return Ok(false);
        };
        let Some(s) = el.structure() else {
            return Ok(false);
        };
        let location = s.get::<String>("location").unwrap_or_default();
        let running = Duration::from_nanos(
            s.get::<gst::ClockTime>("running-time")
                .map(|t| t.nseconds())
                .unwrap_or(0),
        );
        match s.name().as_str() {
            "splitmuxsink-fragment-opened" => {
                self.variants[vi].opened.insert(location, running);
            }
            "splitmuxsink-fragment-closed" => {
                let start = self.variants[vi]
                    .opened
                    .remove(&location)
                    .unwrap_or(running);
                let done = location
                    .strip_suffix(".part")
                    .unwrap_or(&location)
                    .to_owned();
                std::fs::rename(&location, &done)
                    .map_err(|e| self.io_error(Path::new(&location), e))?;
                if vi == 0 {
                    // Only subtitles and alternative audio need the segments' clock.
                    if self.mpegts.is_none() && (self.subtitles.is_some() || self.isolated_audio) {
                        self.mpegts = subtitles::mpegts_of(Path::new(&done), start);
                    }
                    if let Some(t) = self.subtitles.as_mut() {
                        t.segment_closed(start..running);
                    }
                }
                if let Some(q) = &self.uploads {
                    q.file(Path::new(&done));
                }
                let size = std::fs::metadata(&done).map_or(0, |m| m.len());
                let epoch = self.epoch;
                let v = &mut self.variants[vi];
                v.bytes += size;
                v.segments.push(playlist::Segment {
                    uri: relative_uri(
                        v.playlist.local_path.parent().unwrap_or(Path::new("")),
                        Path::new(&done),
                    ),
                    duration: running.saturating_sub(start),
                    program_date_time: epoch + start,
                });
                tracing::debug!(output = %self.field, segment = %done, "segment closed");
                self.write_playlists(false)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Closes the playlists (ENDLIST) after end-of-stream; returns the output's result.
    /// `written` is the media duration recorded: the segmenter times the last segment to
    /// its last frame's start, so that segment is extended by the missing frame.
    pub fn finish(&mut self, ended_at: i64, written: Duration) -> Result<SegmentsInfo, HlsError> {
        for v in &mut self.variants {
            if let Some(last) = v.segments.last_mut() {
                let start = last.program_date_time - self.epoch;
                let start = start.to_std().unwrap_or_default();
                let full = written.saturating_sub(start);
                if full > last.duration && full - last.duration < Duration::from_millis(100) {
                    last.duration = full;
                }
            }
        }
        self.write_playlists(true)?;
        let first = &self.variants[0];
        self.info.segment_count = first.segments.len() as i64;
        self.info.duration = first
            .segments
            .iter()
            .map(|s| s.duration.as_nanos() as i64)
            .sum();
        self.info.size = self.variants.iter().map(|v| v.bytes as i64).sum();
        self.info.ended_at = ended_at;
        Ok(self.info.clone())
    }

    /// Whether subtitle segments wait for their cues ([`HlsOutput::write_captions`]).
    pub fn captions_pending(&self) -> bool {
        self.subtitles.as_ref().is_some_and(SubtitleTrack::pending)
    }

    /// Writes the subtitle segments waiting (every one with `all`, at the end: then the
    /// subtitles playlists are closed) with `cues`.
    pub fn write_captions(&mut self, cues: &[Cue], all: bool) -> Result<(), HlsError> {
        let Some(t) = self.subtitles.as_mut() else {
            return Ok(());
        };
        let playlist = t.files().0;
        let mpegts = self.mpegts.unwrap_or(0);
        let lists = t
            .write(cues, (all, all), mpegts, self.uploads.as_ref())
            .map_err(|e| io_error(&self.field, Path::new(&playlist), e))?;
        for (path, text) in lists {
            self.publish(&path, text, all)?;
        }
        Ok(())
    }

    /// Sets when the output started (egress ACTIVE).
    pub fn set_started(&mut self, at: i64) {
        self.info.started_at = at;
    }

    /// Every segment written so far, as `(playlist local path, segment local paths)` (the
    /// subtitles' last).
    pub fn files(&self) -> Vec<(String, Vec<String>)> {
        let subtitles = self.subtitles.as_ref().map(SubtitleTrack::files);
        let audio = self.audio.iter().map(|a| {
            let segments = a.segments.iter().map(|p| p.display().to_string()).collect();
            (a.playlist.display().to_string(), segments)
        });
        self.variants
            .iter()
            .map(|v| {
                let dir = v.playlist.local_path.parent().unwrap_or(Path::new(""));
                (
                    v.playlist.local_path.display().to_string(),
                    v.segments
                        .iter()
                        .map(|s| dir.join(&s.uri).display().to_string())
                        .collect(),
                )
            })
            .chain(subtitles)
            .chain(audio)
            .collect()
    }
}
