//! The media graph of one egress: app sources for the composited video (one per encode)
//! and the mixed audio, each encode once, tees, and every output's branch.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::error::EgressError;
use crate::encode::{self, Encoded, VideoEncoderChoice};
use crate::output::FileTarget;
use crate::output::file::FileBranch;
use crate::output::hls::HlsOutput;
use crate::output::stream::Streams;
use crate::request::naming::NameContext;
use crate::request::outputs::uses_vp8;
use crate::request::{AudioCodecKind, EgressPlan};
use crate::source::AUDIO_RATE;

/// The running media graph of one egress.
pub(super) struct Graph {
    pub pipeline: gst::Pipeline,
    /// One per video encode (`plan.outputs.video`).
    pub video: Vec<gst_app::AppSrc>,
    pub audio: Option<gst_app::AppSrc>,
    pub hls: Vec<HlsOutput>,
    pub streams: Streams,
}

fn link_chain(pipeline: &gst::Pipeline, chain: &[&gst::Element]) -> Result<(), EgressError> {
    pipeline
        .add_many(chain.iter().copied())
        .map_err(|e| EgressError::Pipeline(e.to_string()))?;
    gst::Element::link_many(chain.iter().copied())
        .map_err(|e| EgressError::Pipeline(format!("linking: {e}")))
}

fn tee() -> Result<gst::Element, EgressError> {
    let t = encode::make("tee")?;
    t.set_property("allow-not-linked", true);
    Ok(t)
}

/// Key-frame distance in frames: the request's, else half the shortest HLS segment
/// (segments cut on key frames, and the segmenter closes a segment once it has the next
/// whole GOP: a shorter GOP means a segment reaches the playlist, and survives a crash,
/// sooner), else 2 s when streaming (a joining viewer waits at most that).
fn gop_frames(plan: &EgressPlan) -> Option<u32> {
    let p = &plan.encoding;
    let seconds = p.key_frame_interval_s.or_else(|| {
        let shortest = plan
            .outputs
            .segments
            .iter()
            .map(|s| s.segment_duration_s)
            .min();
        match shortest {
            Some(s) => Some(s as f64 / 2.0),
            None if plan.outputs.has_stream_output => Some(2.0),
            None => None,
        }
    })?;
    Some(((seconds * p.framerate as f64).round() as u32).max(1))
}

/// Builds every encode and output branch. `files` are the resolved file targets, in
/// `plan.outputs.files` order.
pub(super) fn build(
    plan: &EgressPlan,
    encoder: Option<&VideoEncoderChoice>,
    files: &[FileTarget],
    segment_roots: &[PathBuf],
    ctx: &NameContext<'_>,
    epoch: DateTime<Utc>,
) -> Result<Graph, EgressError> {
    let (p, o) = (&plan.encoding, &plan.outputs);
    let pipeline = gst::Pipeline::with_name("egress");
    let vp8 = uses_vp8(o);
    let (video, video_tees) = match encoder {
        Some(choice) => video_encodes(&pipeline, plan, choice)?,
        None => (Vec::new(), Vec::new()),
    };
    let video_kind = if vp8 { Encoded::Vp8 } else { Encoded::H264 };
    let (audio, audio_tees) = audio_encodes(&pipeline, plan)?;
    let audio_tee =
        |codec: AudioCodecKind| audio_tees.iter().find(|(c, _)| *c == codec).map(|(_, t)| t);

    for (f, target) in o.files.iter().zip(files) {
        let branch = FileBranch::new(&pipeline, f.kind, target)?;
        if f.video
            && let Some(tee) = video_tees.first()
        {
            branch.attach(&pipeline, tee, video_kind)?;
        }
        if let Some(codec) = f.audio
            && let Some(tee) = audio_tee(codec)
        {
            branch.attach(&pipeline, tee, Encoded::Audio(codec))?;
        }
    }
    let aac = audio_tee(AudioCodecKind::Aac);
    let mut hls = Vec::new();
    for (s, root) in o.segments.iter().zip(segment_roots) {
        let audio = if s.audio { aac } else { None };
        let h = HlsOutput::new(
            &pipeline,
            s,
            root,
            ctx,
            &video_tees,
            &o.video,
            audio,
            p,
            epoch,
        )
        .map_err(|e| EgressError::Output {
            field: s.field.clone(),
            reason: e.to_string(),
        })?;
        hls.push(h);
    }
    let stream_video = if vp8 { None } else { video_tees.first() };
    let streams = Streams::new(&pipeline, o.has_stream_output, stream_video, aac)?;
    Ok(Graph {
        pipeline,
        video,
        audio,
        hls,
        streams,
    })
}

/// One encode per video size: `appsrc ! queue ! encoder ! tee`; returns the app sources
/// and the tees the outputs attach to, in `plan.outputs.video` order.
fn video_encodes(
    pipeline: &gst::Pipeline,
    plan: &EgressPlan,
    choice: &VideoEncoderChoice,
) -> Result<(Vec<gst_app::AppSrc>, Vec<gst::Element>), EgressError> {
    let (p, o) = (&plan.encoding, &plan.outputs);
    let gop = gop_frames(plan);
    let vp8 = uses_vp8(o);
    let mut srcs = Vec::new();
    let mut tees = Vec::new();
    for (i, size) in o.video.iter().enumerate() {
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", "NV12")
            .field("width", size.width as i32)
            .field("height", size.height as i32)
            .field("framerate", gst::Fraction::new(p.framerate as i32, 1))
            .field("colorimetry", "bt709")
            .field("interlace-mode", "progressive")
            .build();
        let frame_bytes = (size.width.next_multiple_of(4) * size.height * 3 / 2) as u64;
        let src = gst_app::AppSrc::builder()
            .name(format!("video{i}"))
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(false)
            .block(true)
            .max_bytes(frame_bytes * 4)
            .build();
        let queue = encode::make("queue")?;
        // Encoder threads inherit this queue's thread name ("enc-v0:src"): a harness
        // attributes their CPU by it.
        queue.set_property("name", format!("enc-v{i}"));
        yield_to_the_clock(&queue);
        let chain = if vp8 {
            encode::vp8_chain(size, gop)?
        } else {
            encode::h264_chain(choice, p, size, gop, o.has_stream_output)?
        };
        let tee = tee()?;
        let mut all: Vec<&gst::Element> = vec![src.upcast_ref(), &queue];
        all.extend(chain.iter());
        all.push(&tee);
        link_chain(pipeline, &all)?;
        srcs.push(src);
        tees.push(tee);
    }
    Ok((srcs, tees))
}

/// The mixed audio's source and one encode per audio codec the outputs need
/// (`appsrc ! tee`, then per codec `queue ! encoder ! tee`).
fn audio_encodes(pipeline: &gst::Pipeline, plan: &EgressPlan) -> Result<AudioEncodes, EgressError> {
    let o = &plan.outputs;
    if o.audio.is_empty() {
        return Ok((None, Vec::new()));
    }
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("layout", "interleaved")
        .field("rate", AUDIO_RATE as i32)
        .field("channels", 2)
        .build();
    let src = gst_app::AppSrc::builder()
        .name("audio")
        .caps(&caps)
        .format(gst::Format::Time)
        .is_live(false)
        .block(true)
        .max_bytes(AUDIO_RATE as u64 * 4)
        .build();
    let raw_tee = tee()?;
    link_chain(pipeline, &[src.upcast_ref(), &raw_tee])?;
    let mut tees = Vec::new();
    for (n, &codec) in o.audio.iter().enumerate() {
        let queue = encode::make("queue")?;
        queue.set_property("name", format!("enc-a{n}"));
        let chain = encode::audio_chain(codec, &plan.encoding)?;
        let out_tee = tee()?;
        let mut all: Vec<&gst::Element> = vec![&queue];
        all.extend(chain.iter());
        all.push(&out_tee);
        link_chain(pipeline, &all)?;
        raw_tee
            .link(&queue)
            .map_err(|e| EgressError::Pipeline(format!("linking audio: {e}")))?;
        tees.push((codec, out_tee));
    }
    Ok((Some(src), tees))
}

/// The audio source (if any) and each codec's encoded tee.
type AudioEncodes = (Option<gst_app::AppSrc>, Vec<(AudioCodecKind, gst::Element)>);

/// Pushes one buffer into an app source.
pub(super) fn push(
    src: &gst_app::AppSrc,
    data: Vec<u8>,
    pts: Duration,
    duration: Duration,
) -> Result<(), EgressError> {
    let mut buffer = gst::Buffer::from_mut_slice(data);
    {
        let b = buffer.get_mut().expect("fresh buffer is writable");
        b.set_pts(gst::ClockTime::from_nseconds(pts.as_nanos() as u64));
        b.set_duration(gst::ClockTime::from_nseconds(duration.as_nanos() as u64));
    }
    src.push_buffer(buffer)
        .map(|_| ())
        .map_err(|e| EgressError::Pipeline(format!("{}: {e:?}", src.name())))
}

/// The text of a GStreamer error message, naming the element.
pub(super) fn error_text(msg: &gst::Message, e: &gst::message::Error) -> String {
    let from = msg
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_default();
    format!("{from}: {} ({})", e.error(), e.debug().unwrap_or_default())
}

/// How much lower than the frame loop a video encoder's threads run (nice levels).
const ENCODER_NICENESS: i32 = 5;

/// Lowers the scheduling priority of the thread that `queue` starts (the encoder's
/// streaming thread) before the encoder sees its caps, so the threads the encoder then
/// makes (x264's pool) inherit it. The frame loop is the clocked part of an egress and
/// the encoder is buffered behind it (the app source's and this queue's frames): when a
/// node is loaded, a tick should not wait behind encoding threads, which catch up from
/// their queue; an encoder that cannot keep up still fills the queue and holds the loop
/// back, which the loop's lateness shows. Lowering needs no privilege.
fn yield_to_the_clock(queue: &gst::Element) {
    let Some(pad) = queue.static_pad("src") else {
        return;
    };
    pad.add_probe(
        gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::BUFFER,
        |_, _| {
            // SAFETY: setpriority only reads its arguments; `PRIO_PROCESS` with id 0 is
            // the calling thread on Linux (threads are tasks), this streaming thread.
            let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, ENCODER_NICENESS) };
            if r != 0 {
                tracing::debug!("could not lower the encoder thread's priority");
            }
            gst::PadProbeReturn::Remove
        },
    );
}

/// How long to wait for the muxers to finish after end-of-stream.
const EOS_TIMEOUT: Duration = Duration::from_secs(30);

/// Handles one message of the main bus: segment events go to their HLS output, errors
/// end the egress, warnings are logged.
fn on_message(msg: &gst::Message, graph: &mut Graph) -> Result<(), EgressError> {
    match msg.view() {
        gst::MessageView::Error(e) => Err(EgressError::Pipeline(error_text(msg, e))),
        gst::MessageView::Warning(w) => {
            tracing::warn!(warning = %w.error(), "pipeline warning");
            Ok(())
        }
        gst::MessageView::Element(_) => {
            for h in &mut graph.hls {
                match h.on_message(msg) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        return Err(EgressError::Output {
                            field: "segment_outputs".into(),
                            reason: e.to_string(),
                        });
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Handles the main bus until end-of-stream (every muxer finished), an error, or
/// [`EOS_TIMEOUT`].
pub(super) fn wait_for_eos(bus: &gst::Bus, graph: &mut Graph) -> Result<(), EgressError> {
    let deadline = Instant::now() + EOS_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            return Err(EgressError::Pipeline(
                "timed out finishing the outputs".into(),
            ));
        };
        if let gst::MessageView::Eos(_) = msg.view() {
            return Ok(());
        }
        on_message(&msg, graph)?;
    }
}

/// Handles every message waiting on the main bus.
pub(super) fn drain_bus(bus: &gst::Bus, graph: &mut Graph) -> Result<(), EgressError> {
    while let Some(msg) = bus.pop() {
        on_message(&msg, graph)?;
    }
    Ok(())
}
