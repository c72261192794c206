//! Each participant's own audio (`"isolated_audio": true`), from the same decode as the
//! mix: while recording, every participant heard gets an AAC encoder of their own (mono,
//! from their first sound; silence while they are away) writing ADTS beside the outputs; at the end each track gets silence in front of its first frame (so it spans
//! the recording) and the MP4 outputs are remuxed with them as extra audio tracks after
//! the mix, named by identity (`udta/name`; language `und`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::adts;
use super::moov::{self, MoovError};
use crate::audio::to_s16;
use crate::encode::{EncodeError, Encoded, aac_encoder, make};
use crate::request::AudioCodecKind;
use crate::source::AUDIO_RATE;

/// Speakers who get a track of their own at most (the first heard); each is an encoder.
pub const MAX_TRACKS: usize = 32;
/// How long finishing a track's encoder or a remux may take.
const FINISH_TIMEOUT: Duration = Duration::from_secs(120);

/// Why isolated tracks failed.
#[derive(Debug, thiserror::Error)]
pub enum IsolatedError {
    /// An element is missing or would not link.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A pipeline failed.
    #[error("{what}: {reason}")]
    Pipeline {
        /// Which pipeline.
        what: String,
        /// GStreamer's message.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The remuxed file's tracks could not be named or its chapters written.
    #[error("editing the moov of {path}: {source}")]
    Names {
        /// The file.
        path: String,
        /// Why.
        source: MoovError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IsolatedError + '_ {
    move |source| IsolatedError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One participant's encoder.
struct Recorder {
    identity: String,
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    path: PathBuf,
    first_sample: u64,
    /// The sample after the last one handed over (pushed or pending).
    next_sample: u64,
    /// S16LE samples not yet pushed, from `pushed` on: handed to the encoder in blocks of
    /// [`PUSH_SAMPLES`] (fewer wake-ups of its thread than one per frame).
    pending: Vec<u8>,
    pushed: u64,
}

/// Samples handed to a track's encoder at once (100 ms).
const PUSH_SAMPLES: usize = 4800;

/// A finished track: whose, and its ADTS file from time 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsolatedTrack {
    /// The participant's identity (the track's name).
    pub identity: String,
    /// AAC (ADTS) from the recording's start.
    pub path: PathBuf,
}

/// The encoder chain after raw mono S16LE: convert, AAC, ADTS. VisualOn's encoder where
/// it is installed: a third of FFmpeg's CPU for a voice (one per participant adds up).
fn aac_adts_chain(bitrate_bps: i32) -> Result<Vec<gst::Element>, EncodeError> {
    let factory = match gst::ElementFactory::find("voaacenc") {
        Some(_) => "voaacenc",
        None => aac_encoder().ok_or(EncodeError::MissingElement("voaacenc"))?,
    };
    let enc = make(factory)?;
    enc.set_property("bitrate", bitrate_bps);
    let adts = make("capsfilter")?;
    adts.set_property(
        "caps",
        gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4)
            .field("stream-format", "adts")
            .build(),
    );
    Ok(vec![make("audioconvert")?, enc, make("aacparse")?, adts])
}

fn mono_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("rate", AUDIO_RATE as i32)
        .field("channels", 1)
        .field("layout", "interleaved")
        .build()
}

/// Waits for end-of-stream on `pipeline` (or its error), then stops it.
fn wait_eos(pipeline: &gst::Pipeline, what: &str) -> Result<(), IsolatedError> {
    let bus = pipeline.bus().expect("pipelines have a bus");
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(FINISH_TIMEOUT.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(e)) => Err(IsolatedError::Pipeline {
            what: what.to_owned(),
            reason: e.error().to_string(),
        }),
        _ => Err(IsolatedError::Pipeline {
            what: what.to_owned(),
            reason: "timed out".into(),
        }),
    }
}

/// Every participant's encoder while recording.
pub struct IsolatedAudio {
    dir: PathBuf,
    bitrate_bps: i32,
    recorders: Vec<Recorder>,
    /// [`MAX_TRACKS`] was reached (logged once).
    full: bool,
}

impl IsolatedAudio {
    /// Tracks written in `dir` (made now) at `bitrate_kbps` each.
    pub fn new(dir: PathBuf, bitrate_kbps: u32) -> Result<IsolatedAudio, IsolatedError> {
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(IsolatedAudio {
            dir,
            bitrate_bps: (bitrate_kbps.clamp(32, 256) * 1000) as i32,
            recorders: Vec::new(),
            full: false,
        })
    }

    fn start(&mut self, identity: &str, first: u64) -> Result<usize, IsolatedError> {
        let path = self.dir.join(format!("track-{}.aac", self.recorders.len()));
        let pipeline = gst::Pipeline::new();
        let src = gst_app::AppSrc::builder()
            .caps(&mono_caps())
            .format(gst::Format::Time)
            .build();
        let sink = make("filesink")?;
        sink.set_property("location", path.to_string_lossy().as_ref());
        sink.set_property("sync", false);
        let mut chain: Vec<gst::Element> = vec![src.clone().upcast()];
        chain.extend(aac_adts_chain(self.bitrate_bps)?);
        chain.push(sink);
        pipeline.add_many(&chain).expect("fresh elements");
        gst::Element::link_many(&chain).map_err(|_| EncodeError::MissingElement("aac chain"))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| IsolatedError::Pipeline {
                what: format!("{identity}'s track"),
                reason: e.to_string(),
            })?;
        tracing::info!(%identity, from_s = first as f64 / AUDIO_RATE as f64, "isolated track started");
        self.recorders.push(Recorder {
            identity: identity.to_owned(),
            pipeline,
            src,
            path,
            first_sample: first,
            next_sample: first,
            pending: Vec::with_capacity(PUSH_SAMPLES * 2),
            pushed: first,
        });
        Ok(self.recorders.len() - 1)
    }

    /// Participant `identity`'s samples (mono) from sample `first`: their track starts
    /// with their first sound (a participant never heard gets none); a gap since their
    /// last block is filled with silence.
    pub fn push(
        &mut self,
        identity: &str,
        first: u64,
        samples: &[f32],
    ) -> Result<(), IsolatedError> {
        let i = match self.recorders.iter().position(|r| r.identity == identity) {
            Some(i) => i,
            None if samples.iter().all(|s| *s == 0.0) => return Ok(()),
            None if self.recorders.len() >= MAX_TRACKS => {
                if !self.full {
                    tracing::warn!(%identity, MAX_TRACKS, "more speakers than isolated tracks: later ones get none");
                    self.full = true;
                }
                return Ok(());
            }
            None => self.start(identity, first)?,
        };
        let r = &mut self.recorders[i];
        if first > r.next_sample {
            let gap = vec![0.0; (first - r.next_sample) as usize];
            push_samples(r, &gap)?;
        }
        if first + samples.len() as u64 > r.next_sample {
            let skip = r.next_sample.saturating_sub(first) as usize;
            push_samples(r, &samples[skip..])?;
        }
        Ok(())
    }

    /// Ends every encoder and puts silence in front of each late track; returns the
    /// tracks in the order the participants were first heard.
    pub fn finish(self) -> Result<Vec<IsolatedTrack>, IsolatedError> {
        let silent = silent_frame(self.bitrate_bps)?;
        let mut out = Vec::new();
        for mut r in self.recorders {
            flush(&mut r)?;
            let _ = r.src.end_of_stream();
            wait_eos(&r.pipeline, &format!("{}'s track", r.identity))?;
            let stream = std::fs::read(&r.path).map_err(io(&r.path))?;
            let padded = adts::pad_front(&silent, adts::padding_frames(r.first_sample), &stream);
            std::fs::write(&r.path, padded).map_err(io(&r.path))?;
            out.push(IsolatedTrack {
                identity: r.identity,
                path: r.path,
            });
        }
        Ok(out)
    }
}

fn push_samples(r: &mut Recorder, samples: &[f32]) -> Result<(), IsolatedError> {
    for s in samples {
        r.pending.extend_from_slice(&to_s16(*s).to_le_bytes());
    }
    r.next_sample += samples.len() as u64;
    if r.pending.len() >= PUSH_SAMPLES * 2 {
        flush(r)?;
    }
    Ok(())
}

/// Hands the pending samples to the encoder.
fn flush(r: &mut Recorder) -> Result<(), IsolatedError> {
    if r.pending.is_empty() {
        return Ok(());
    }
    let n = (r.pending.len() / 2) as u64;
    let bytes = std::mem::replace(&mut r.pending, Vec::with_capacity(PUSH_SAMPLES * 2));
    let rate = AUDIO_RATE as u64;
    let mut buffer = gst::Buffer::from_mut_slice(bytes);
    {
        let b = buffer.get_mut().expect("fresh buffer");
        b.set_pts(gst::ClockTime::from_nseconds(
            r.pushed * 1_000_000_000 / rate,
        ));
        b.set_duration(gst::ClockTime::from_nseconds(n * 1_000_000_000 / rate));
    }
    r.pushed += n;
    r.src
        .push_buffer(buffer)
        .map(|_| ())
        .map_err(|e| IsolatedError::Pipeline {
            what: format!("{}'s track", r.identity),
            reason: e.to_string(),
        })
}

/// One ADTS frame of digital silence from the tracks' encoder (a frame past its start,
/// so the encoder has settled).
fn silent_frame(bitrate_bps: i32) -> Result<Vec<u8>, IsolatedError> {
    let pipeline = gst::Pipeline::new();
    let src = make("audiotestsrc")?;
    src.set_property_from_str("wave", "silence");
    src.set_property("samplesperbuffer", adts::FRAME_SAMPLES as i32);
    src.set_property("num-buffers", 12);
    let caps = make("capsfilter")?;
    caps.set_property("caps", mono_caps());
    let sink = gst_app::AppSink::builder().sync(false).build();
    let mut chain = vec![src, caps];
    chain.extend(aac_adts_chain(bitrate_bps)?);
    chain.push(sink.clone().upcast());
    pipeline.add_many(&chain).expect("fresh elements");
    gst::Element::link_many(&chain).map_err(|_| EncodeError::MissingElement("aac chain"))?;
    let fail = |reason: String| IsolatedError::Pipeline {
        what: "silence".into(),
        reason,
    };
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| fail(e.to_string()))?;
    let mut frames = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        if let Some(b) = sample.buffer().and_then(|b| b.map_readable().ok()) {
            frames.push(b.as_slice().to_vec());
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    frames
        .get(6)
        .or(frames.last())
        .filter(|f| adts::frames(f).len() == 1)
        .cloned()
        .ok_or_else(|| fail("the encoder gave no ADTS frame".into()))
}

/// What the main MP4 holds, to demux it.
#[derive(Clone, Copy, Debug)]
pub struct MainStreams {
    /// It has H.264 video.
    pub video: bool,
    /// Its audio (the mix), if any.
    pub audio: Option<AudioCodecKind>,
}

/// Rewrites `mp4` with `tracks` added after its own (video, then the mix) and
/// `chapters` (start, title): remuxed, not re-encoded, into a new file (not fragmented)
/// that replaces it; with tracks, the mix is named `mix` and each added track by its
/// identity.
pub fn remux_mp4(
    mp4: &Path,
    main: MainStreams,
    tracks: &[IsolatedTrack],
    chapters: &[(Duration, String)],
) -> Result<(), IsolatedError> {
    let tmp = mp4.with_extension("mp4.remux");
    let pipeline = gst::Pipeline::new();
    let filesrc = make("filesrc")?;
    filesrc.set_property("location", mp4.to_string_lossy().as_ref());
    let demux = make("qtdemux")?;
    let mux = make("mp4mux")?;
    let sink = make("filesink")?;
    sink.set_property("location", tmp.to_string_lossy().as_ref());
    pipeline
        .add_many([&filesrc, &demux, &mux, &sink])
        .expect("fresh elements");
    filesrc.link(&demux).expect("filesrc links to qtdemux");
    mux.link(&sink).expect("mp4mux links to filesink");
    // The muxer's pads are asked for in track order: video, the mix, the participants.
    let mut wanted: Vec<(&str, gst::Pad, Encoded)> = Vec::new();
    if main.video {
        let pad = mux
            .request_pad_simple("video_%u")
            .ok_or(EncodeError::MissingElement("mp4mux video pad"))?;
        wanted.push(("video", pad, Encoded::H264));
    }
    if let Some(codec) = main.audio {
        let pad = mux
            .request_pad_simple("audio_%u")
            .ok_or(EncodeError::MissingElement("mp4mux audio pad"))?;
        wanted.push(("audio", pad, Encoded::Audio(codec)));
    }
    for t in tracks {
        let src = make("filesrc")?;
        src.set_property("location", t.path.to_string_lossy().as_ref());
        let parse = make("aacparse")?;
        let queue = make("queue")?;
        pipeline
            .add_many([&src, &parse, &queue])
            .expect("fresh elements");
        gst::Element::link_many([&src, &parse, &queue]).expect("filesrc ! aacparse ! queue");
        let pad = mux
            .request_pad_simple("audio_%u")
            .ok_or(EncodeError::MissingElement("mp4mux audio pad"))?;
        queue
            .static_pad("src")
            .expect("src pad")
            .link(&pad)
            .map_err(|_| EncodeError::MissingElement("compatible mp4mux pad"))?;
    }
    let weak = pipeline.downgrade();
    let wanted = std::sync::Mutex::new(wanted);
    demux.connect_pad_added(move |_, pad| {
        let (Some(pipeline), name) = (weak.upgrade(), pad.name()) else {
            return;
        };
        let mut wanted = wanted.lock().unwrap_or_else(|e| e.into_inner());
        let Some(k) = wanted
            .iter()
            .position(|(kind, _, _)| name.starts_with(kind))
        else {
            return;
        };
        let (_, mux_pad, encoded) = wanted.remove(k);
        let Ok(Some(parse)) = encoded.branch_parser() else {
            return;
        };
        let Ok(queue) = make("queue") else { return };
        let _ = pipeline.add_many([&queue, &parse]);
        let _ = queue.link(&parse);
        let _ = parse.static_pad("src").map(|p| p.link(&mux_pad));
        let _ = queue.sync_state_with_parent();
        let _ = parse.sync_state_with_parent();
        let _ = pad.link(&queue.static_pad("sink").expect("sink pad"));
    });
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| IsolatedError::Pipeline {
            what: "remux".into(),
            reason: e.to_string(),
        })?;
    if let Err(e) = wait_eos(&pipeline, "remux") {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let mut names: Vec<Option<&str>> = Vec::new();
    if !tracks.is_empty() {
        if main.video {
            names.push(None);
        }
        if main.audio.is_some() {
            names.push(Some("mix"));
        }
        names.extend(tracks.iter().map(|t| Some(t.identity.as_str())));
    }
    if let Err(e) = edit_in_file(&tmp, &names, chapters) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, mp4).map_err(io(mp4))
}

/// Names the tracks of the MP4 at `path` and adds its chapters, reading and rewriting
/// only its `moov` and the metadata after it.
fn edit_in_file(
    path: &Path,
    names: &[Option<&str>],
    chapters: &[(Duration, String)],
) -> Result<(), IsolatedError> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io(path))?;
    let len = f.metadata().map_err(io(path))?.len();
    let mut at = 0u64;
    let mut moov = None;
    while at + 8 <= len {
        let mut head = [0u8; 16];
        f.seek(SeekFrom::Start(at)).map_err(io(path))?;
        let n = f.read(&mut head).map_err(io(path))?;
        let size = match u32::from_be_bytes(head[..4].try_into().expect("4")) {
            1 if n >= 16 => u64::from_be_bytes(head[8..16].try_into().expect("8")),
            0 => len - at,
            s => s as u64,
        };
        if &head[4..8] == b"moov" {
            moov = Some(at);
        }
        if size < 8 {
            break;
        }
        at += size;
    }
    let names_error = |source| IsolatedError::Names {
        path: path.display().to_string(),
        source,
    };
    let start = moov.ok_or(names_error(MoovError::Malformed("no moov box")))?;
    let mut bytes = Vec::new();
    f.seek(SeekFrom::Start(start)).map_err(io(path))?;
    f.read_to_end(&mut bytes).map_err(io(path))?;
    moov::edit(&mut bytes, names, chapters).map_err(names_error)?;
    f.set_len(start).map_err(io(path))?;
    f.seek(SeekFrom::Start(start)).map_err(io(path))?;
    f.write_all(&bytes).map_err(io(path))?;
    f.sync_data().map_err(io(path))
}
