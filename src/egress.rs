//! One egress: room source → compositor + mixer → one GStreamer encode → outputs, on one
//! clock, with its `EgressInfo` kept as LiveKit reports it
//! (STARTING → ACTIVE → ENDING → COMPLETE / FAILED).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use livekit_protocol::{EgressInfo, EgressSourceType, EgressStatus, FileInfo, egress_info};

use crate::audio::Mixer;
use crate::compositor::{Compositor, CompositorError, GpuContext, Nv12Frame, scene};
use crate::encode::{self, EncodeError, VideoEncoderChoice};
use crate::output::{FileTarget, file::Mp4Branch, file_target};
use crate::request::EgressPlan;
use crate::request::naming::NameContext;
use crate::source::{AUDIO_RATE, RoomSource};

/// How long to wait for the muxer to finish after end-of-stream.
const EOS_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong in a running egress (reported in `EgressInfo.error`).
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The GPU compositor failed.
    #[error("compositor: {0}")]
    Compositor(#[from] CompositorError),
    /// Building the encode failed.
    #[error("encoder: {0}")]
    Encode(#[from] EncodeError),
    /// GStreamer reported an error.
    #[error("pipeline: {0}")]
    Pipeline(String),
    /// The output file could not be named or created.
    #[error("{field}: {reason}")]
    Output {
        /// Request field.
        field: String,
        /// Why.
        reason: String,
    },
}

/// How to run an egress.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Directory local files are written under.
    pub out_dir: PathBuf,
    /// Stop after this much media time.
    pub duration: Option<Duration>,
    /// Set to stop gracefully (StopEgress, SIGINT, SIGTERM).
    pub stop: Arc<AtomicBool>,
    /// Pace to the wall clock (a live room); off renders as fast as possible.
    pub realtime: bool,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The egress's info at the start, before anything runs.
pub fn initial_info(egress_id: &str, plan: &EgressPlan, room_id: &str) -> EgressInfo {
    EgressInfo {
        egress_id: egress_id.to_owned(),
        room_id: room_id.to_owned(),
        room_name: plan.room_name.clone(),
        source_type: EgressSourceType::Sdk as i32,
        status: EgressStatus::EgressStarting as i32,
        request: Some(egress_info::Request::RoomComposite(plan.request.clone())),
        updated_at: now_ns(),
        ..Default::default()
    }
}

fn set_status(info: &mut EgressInfo, status: EgressStatus) {
    info.status = status as i32;
    info.updated_at = now_ns();
    tracing::info!(egress_id = %info.egress_id, status = status.as_str_name(), "egress status");
}

/// The running media graph of one egress.
struct Graph {
    pipeline: gst::Pipeline,
    video: Option<gst_app::AppSrc>,
    audio: Option<gst_app::AppSrc>,
}

fn link_chain(pipeline: &gst::Pipeline, chain: &[&gst::Element]) -> Result<(), EgressError> {
    pipeline
        .add_many(chain.iter().copied())
        .map_err(|e| EgressError::Pipeline(e.to_string()))?;
    gst::Element::link_many(chain.iter().copied())
        .map_err(|e| EgressError::Pipeline(format!("linking: {e}")))
}

fn build_graph(
    plan: &EgressPlan,
    encoder: Option<&VideoEncoderChoice>,
    target: &FileTarget,
) -> Result<Graph, EgressError> {
    let p = &plan.encoding;
    let pipeline = gst::Pipeline::with_name("egress");
    let file = Mp4Branch::new(&pipeline, target)?;
    let mut graph = Graph {
        pipeline: pipeline.clone(),
        video: None,
        audio: None,
    };

    if let Some(choice) = encoder {
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", "NV12")
            .field("width", p.width as i32)
            .field("height", p.height as i32)
            .field("framerate", gst::Fraction::new(p.framerate as i32, 1))
            .field("colorimetry", "bt709")
            .field("interlace-mode", "progressive")
            .build();
        let frame_bytes = (p.width.next_multiple_of(4) * p.height * 3 / 2) as u64;
        let src = gst_app::AppSrc::builder()
            .name("video")
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(false)
            .block(true)
            .max_bytes(frame_bytes * 4)
            .build();
        let queue = encode::make("queue")?;
        let (enc, profile) = encode::video_encoder(choice, p)?;
        let parse = encode::make("h264parse")?;
        let tee = encode::make("tee")?;
        link_chain(
            &pipeline,
            &[src.upcast_ref(), &queue, &enc, &profile, &parse, &tee],
        )?;
        file.attach(&pipeline, &tee, "video_%u")?;
        graph.video = Some(src);
    }
    if plan.tracks.audio {
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
        let chain = encode::audio_chain(p)?;
        let tee = encode::make("tee")?;
        let mut all: Vec<&gst::Element> = vec![src.upcast_ref()];
        all.extend(chain.iter());
        all.push(&tee);
        link_chain(&pipeline, &all)?;
        file.attach(&pipeline, &tee, "audio_%u")?;
        graph.audio = Some(src);
    }
    Ok(graph)
}

fn push(
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

/// Returns the first error GStreamer has posted, if any.
fn bus_error(bus: &gst::Bus) -> Option<String> {
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Warning]) {
        match msg.view() {
            gst::MessageView::Error(e) => {
                let from = msg
                    .src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default();
                return Some(format!(
                    "{from}: {} ({})",
                    e.error(),
                    e.debug().unwrap_or_default()
                ));
            }
            gst::MessageView::Warning(w) => {
                tracing::warn!(warning = %w.error(), "pipeline warning")
            }
            _ => {}
        }
    }
    None
}

/// Runs the egress until `opts.duration`, a stop request, or an error; returns the final
/// `EgressInfo` (COMPLETE, or FAILED with `error`). Everything recorded up to a failure is
/// finalised and reported.
pub fn run(
    egress_id: &str,
    plan: &EgressPlan,
    room: &mut dyn RoomSource,
    gpu: Option<Arc<GpuContext>>,
    opts: &RunOptions,
) -> EgressInfo {
    let room_id = room.room_id();
    let mut info = initial_info(egress_id, plan, &room_id);
    let started = now_ns();
    let ctx = NameContext {
        room_name: &plan.room_name,
        room_id: &room_id,
        time: chrono::Utc::now(),
    };
    let output_error = |reason: String| EgressError::Output {
        field: plan.file.field.clone(),
        reason,
    };
    let target = match file_target(
        &opts.out_dir,
        &plan.file.filepath_template,
        plan.file.extension,
        &ctx,
    ) {
        Ok(t) => t,
        Err(e) => return failed(info, output_error(e.to_string())),
    };
    if let Some(dir) = target.local_path.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        return failed(info, output_error(format!("{}: {e}", dir.display())));
    }
    let mut file_info = FileInfo {
        filename: target.filename.clone(),
        location: target.local_path.display().to_string(),
        ..Default::default()
    };

    let result = record(plan, room, gpu, opts, &target, &mut info);
    file_info.started_at = started;
    file_info.ended_at = now_ns();
    let (written, error) = match result {
        Ok(d) => (d, None),
        Err((d, e)) => (d, Some(e)),
    };
    file_info.duration = written.as_nanos() as i64;
    file_info.size = std::fs::metadata(&target.local_path).map_or(0, |m| m.len() as i64);
    if file_info.size > 0 {
        // The deprecated single-file `file` result too, as LiveKit still fills it for
        // clients that predate `file_results`.
        #[allow(deprecated)]
        {
            info.result = Some(egress_info::Result::File(file_info.clone()));
        }
        info.file_results.push(file_info);
    }
    info.started_at = started;
    info.ended_at = now_ns();
    match error {
        None => {
            set_status(&mut info, EgressStatus::EgressComplete);
            info
        }
        Some(e) => failed(info, e),
    }
}

fn failed(mut info: EgressInfo, e: EgressError) -> EgressInfo {
    tracing::error!(egress_id = %info.egress_id, error = %e, "egress failed");
    info.error = e.to_string();
    if info.ended_at == 0 {
        info.ended_at = now_ns();
    }
    set_status(&mut info, EgressStatus::EgressFailed);
    info
}

/// Builds and runs the graph; returns the media duration written.
fn record(
    plan: &EgressPlan,
    room: &mut dyn RoomSource,
    gpu: Option<Arc<GpuContext>>,
    opts: &RunOptions,
    target: &FileTarget,
    info: &mut EgressInfo,
) -> Result<Duration, (Duration, EgressError)> {
    let p = &plan.encoding;
    let at_start = |e: EgressError| (Duration::ZERO, e);
    let mut compositor = match (&gpu, plan.tracks.video) {
        (Some(gpu), true) => {
            Some(Compositor::new(gpu.clone(), p.width, p.height).map_err(|e| at_start(e.into()))?)
        }
        _ => None,
    };
    let encoder = match compositor {
        Some(_) => Some(encode::probe_video_encoder().map_err(|e| at_start(e.into()))?),
        None => None,
    };
    let graph = build_graph(plan, encoder.as_ref(), target).map_err(at_start)?;
    let bus = graph.pipeline.bus().expect("pipelines have a bus");
    graph.pipeline.set_state(gst::State::Playing).map_err(|_| {
        at_start(EgressError::Pipeline(
            bus_error(&bus).unwrap_or_else(|| "cannot start".into()),
        ))
    })?;
    set_status(info, EgressStatus::EgressActive);

    let fps = p.framerate as u64;
    let frame_duration = Duration::from_nanos(1_000_000_000 / fps);
    let pts_of = |k: u64| Duration::from_nanos(k * 1_000_000_000 / fps);
    let mut mixer = Mixer::new();
    let mut lag_warned = false;
    let clock = Instant::now();
    let mut error = None;
    let layout = &plan.layout;

    let mut tick: u64 = 0;
    loop {
        let t = pts_of(tick);
        if opts.stop.load(Ordering::Relaxed) || opts.duration.is_some_and(|d| t >= d) {
            break;
        }
        if opts.realtime {
            let elapsed = clock.elapsed();
            if t > elapsed {
                std::thread::sleep(t - elapsed);
            } else if elapsed - t > Duration::from_secs(1) && !lag_warned {
                tracing::warn!(
                    behind_ms = (elapsed - t).as_millis() as u64,
                    "egress is falling behind real time"
                );
                lag_warned = true;
            }
        }
        let participants = room.participants().len();
        let step = (|| -> Result<(), EgressError> {
            if let (Some(comp), Some(src)) = (compositor.as_mut(), graph.video.as_ref()) {
                // Pictures first (their borrow of the room ends before audio is mixed).
                room.advance_video(t);
                let frames: Vec<_> = (0..participants).map(|i| room.video(i)).collect();
                let layers = scene::layers(layout, &frames, p.width, p.height);
                if !comp.can_send() {
                    let done = comp.receive_frame(true)?.expect("a full ring has a frame");
                    push_video(src, done, frame_duration)?;
                }
                comp.send_frame(layout.theme.background, &layers, t)?;
                while let Some(done) = comp.receive_frame(false)? {
                    push_video(src, done, frame_duration)?;
                }
            }
            if let Some(src) = graph.audio.as_ref() {
                let from = mixer.position();
                let until = (tick + 1) * AUDIO_RATE as u64 / fps;
                let bytes = mixer.mix_until(room, participants, until);
                if !bytes.is_empty() {
                    let pts = Duration::from_nanos(from * 1_000_000_000 / AUDIO_RATE as u64);
                    let dur =
                        Duration::from_nanos((until - from) * 1_000_000_000 / AUDIO_RATE as u64);
                    push(src, bytes, pts, dur)?;
                }
            }
            Ok(())
        })();
        if let Err(e) =
            step.and_then(|_| bus_error(&bus).map_or(Ok(()), |m| Err(EgressError::Pipeline(m))))
        {
            error = Some(e);
            break;
        }
        tick += 1;
        if tick.is_multiple_of(fps * 10) {
            tracing::info!(media_s = tick / fps, "recording");
        }
    }

    // Ending: drain the GPU ring, close the streams, let the muxer finish the file.
    set_status(info, EgressStatus::EgressEnding);
    if let (Some(comp), Some(src)) = (compositor.as_mut(), graph.video.as_ref()) {
        while comp.in_flight() > 0 {
            match comp.receive_frame(true) {
                Ok(Some(done)) => {
                    if let Err(e) = push_video(src, done, frame_duration) {
                        error.get_or_insert(e);
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    error.get_or_insert(e.into());
                    break;
                }
            }
        }
    }
    for src in [&graph.video, &graph.audio].into_iter().flatten() {
        let _ = src.end_of_stream();
    }
    let deadline = Instant::now() + EOS_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            error.get_or_insert(EgressError::Pipeline("timed out finishing the file".into()));
            break;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                error.get_or_insert(EgressError::Pipeline(e.error().to_string()));
                break;
            }
            _ => {}
        }
    }
    let _ = graph.pipeline.set_state(gst::State::Null);
    // Every tick completed sent one frame (and its audio).
    let written = pts_of(tick);
    tracing::info!(
        frames = tick,
        media_s = written.as_secs_f64(),
        "egress finished"
    );
    match error {
        None => Ok(written),
        Some(e) => Err((written, e)),
    }
}

fn push_video(
    src: &gst_app::AppSrc,
    frame: Nv12Frame,
    duration: Duration,
) -> Result<(), EgressError> {
    push(src, frame.data, frame.pts, duration)
}
