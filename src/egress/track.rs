//! Track egress: one track written as received, without transcoding (Opus → OGG,
//! H.264 → MP4, VP8/VP9/AV1 → WebM), its timestamps rebuilt from RTP time; or its audio
//! sent as PCM over a WebSocket ([`super::websocket`]).

use std::str::FromStr;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use livekit_protocol::{EgressInfo, EgressStatus};

use super::end::ending;
use super::error::EgressError;
use super::options::RunOptions;
use super::report::{conclude, failed, file_written, set_status, starting_info};
use super::uploads;
use crate::info::now_ns;
use crate::output::manifest::{Manifest, ManifestFile};
use crate::output::{FileTarget, claim, file_target};
use crate::request::naming::NameContext;
use crate::request::outputs::{FileKind, FilePlan, OutputsPlan};
use crate::request::{TrackOutput, TrackPlan};
use crate::source::RoomSource;
use crate::source::livekit::Published;
use crate::source::livekit::tap::{Codec, EncodedFrame, TapReceiver, Tapped};

/// How long to wait for the muxer to finish after end-of-stream.
const EOS_TIMEOUT: Duration = Duration::from_secs(10);

/// The container a codec is written in, as LiveKit's track egress does.
pub fn container_of(codec: Codec) -> FileKind {
    match codec {
        Codec::H264 => FileKind::Mp4,
        Codec::Vp8 | Codec::Vp9 | Codec::Av1 => FileKind::Webm,
        Codec::Opus => FileKind::Ogg,
    }
}

/// A codec from a track's MIME type (`video/H264`, `audio/opus`…).
pub fn codec_of_mime(mime: &str) -> Option<Codec> {
    Some(match mime.to_ascii_lowercase().as_str() {
        "video/h264" => Codec::H264,
        "video/vp8" => Codec::Vp8,
        "video/vp9" => Codec::Vp9,
        "video/av1" => Codec::Av1,
        "audio/opus" | "audio/red" => Codec::Opus,
        _ => return None,
    })
}

/// `{track_type}` and `{track_source}` as LiveKit spells them (`audio`, `microphone`).
pub fn type_and_source(p: &Published) -> (String, String) {
    let ty = p.kind.as_str_name().to_ascii_lowercase();
    let source = p.source.as_str_name().to_ascii_lowercase();
    (ty, source)
}

/// The egress's info at the start.
pub fn initial_track_info(egress_id: &str, plan: &TrackPlan, room_id: &str) -> EgressInfo {
    starting_info(egress_id, &plan.room_name, &plan.request, room_id)
}

/// The width and height of a VP8 key frame (its uncompressed header), which WebM's
/// track header needs before the first frame is written.
pub fn vp8_size(frame: &[u8]) -> Option<(u32, u32)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((w as u32, h as u32))
}

/// The muxing pipeline of one codec: `appsrc ! parser ! muxer ! filesink`.
fn build(
    codec: Codec,
    first: &EncodedFrame,
    path: &std::path::Path,
) -> Result<(gst::Pipeline, gst_app::AppSrc), EgressError> {
    let (caps, chain) = match codec {
        Codec::H264 => (
            "video/x-h264,stream-format=byte-stream,alignment=au".to_owned(),
            // Fragmented, as every MP4 tessera writes: a killed recording still plays.
            "h264parse ! mp4mux fragment-duration=1000 name=mux",
        ),
        Codec::Vp8 => {
            let Some((w, h)) = vp8_size(&first.data) else {
                return Err(EgressError::Pipeline(
                    "the first VP8 key frame has no readable size".into(),
                ));
            };
            (
                format!("video/x-vp8,width={w},height={h},framerate=0/1"),
                "webmmux name=mux",
            )
        }
        Codec::Vp9 => ("video/x-vp9".to_owned(), "vp9parse ! webmmux name=mux"),
        Codec::Av1 => (
            "video/x-av1,stream-format=obu-stream,alignment=tu".to_owned(),
            "av1parse ! webmmux name=mux",
        ),
        Codec::Opus => {
            // The TOC's stereo bit: WebRTC Opus is mono unless the publisher sent stereo.
            let channels = if first.data.first().is_some_and(|toc| toc & 0x04 != 0) {
                2
            } else {
                1
            };
            (
                format!("audio/x-opus,channel-mapping-family=0,channels={channels},rate=48000"),
                "opusparse ! oggmux name=mux",
            )
        }
    };
    let launch = format!(
        "appsrc name=src is-live=true format=time ! {chain} ! filesink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&launch)
        .map_err(|e| EgressError::Pipeline(format!("{codec:?} muxer: {e}")))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| EgressError::Pipeline("not a pipeline".into()))?;
    let sink = pipeline.by_name("sink").expect("named in the launch line");
    sink.set_property("location", path.display().to_string());
    let src = pipeline
        .by_name("src")
        .expect("named in the launch line")
        .downcast::<gst_app::AppSrc>()
        .expect("an appsrc");
    let caps = gst::Caps::from_str(&caps)
        .map_err(|e| EgressError::Pipeline(format!("{codec:?} caps {caps:?}: {e}")))?;
    src.set_caps(Some(&caps));
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| EgressError::Pipeline(format!("{codec:?} muxer: {e}")))?;
    Ok((pipeline, src))
}

/// Rebuilds presentation times from RTP time: the first frame is 0, every later one its
/// RTP distance from it, so loss and pauses keep their real length.
#[derive(Debug, Default)]
pub struct RtpTimeline {
    first: Option<u64>,
    last: Duration,
}

impl RtpTimeline {
    /// The presentation time of a frame (never before the previous one).
    pub fn pts(&mut self, rtp: u64, rate: u32) -> Duration {
        let first = *self.first.get_or_insert(rtp);
        let ticks = rtp.saturating_sub(first);
        let t = Duration::from_nanos((ticks as u128 * 1_000_000_000 / rate.max(1) as u128) as u64);
        self.last = t.max(self.last);
        self.last
    }

    /// The last presentation time.
    pub fn last(&self) -> Duration {
        self.last
    }
}

/// Runs a track egress to a file: waits for the track's frames on `rx` and muxes them as
/// they are until `opts` stop it or the track goes; returns the final `EgressInfo`.
pub fn run_file(
    egress_id: &str,
    plan: &TrackPlan,
    track: &Published,
    room: &dyn RoomSource,
    rx: &TapReceiver,
    opts: &RunOptions,
) -> EgressInfo {
    let room_id = room.room_id();
    let mut info = initial_track_info(egress_id, plan, &room_id);
    let TrackOutput::File {
        filepath_template,
        manifest,
        storage,
    } = &plan.output
    else {
        return failed(info, EgressError::Pipeline("not a file output".into()));
    };
    let Some(codec) = codec_of_mime(&track.mime_type) else {
        return failed(
            info,
            EgressError::Source(format!(
                "track {} has codec {:?}, which cannot be recorded",
                plan.track_id, track.mime_type
            )),
        );
    };
    let kind = container_of(codec);
    let (track_type, track_source) = type_and_source(track);
    let ctx = NameContext {
        room_name: &plan.room_name,
        room_id: &room_id,
        time: chrono::Utc::now(),
        publisher_identity: &track.identity,
        track_id: &plan.track_id,
        track_type: &track_type,
        track_source: &track_source,
    };
    let outputs = OutputsPlan {
        files: vec![FilePlan {
            filepath_template: filepath_template.clone(),
            field: "file.filepath".into(),
            kind,
            video: track.kind == livekit_protocol::TrackType::Video,
            audio: None,
            storage: storage.clone(),
        }],
        manifest: *manifest,
        ..Default::default()
    };
    let staging = claim::staging_dir(&opts.out_dir, egress_id);
    let mut ups = match uploads::Uploads::start(&outputs, &opts.storage, &opts.out_dir, &staging) {
        Ok(u) => u,
        Err(e) => return failed(info, e),
    };
    let queue = ups.files[0].clone();
    let field = "file.filepath";
    let output_error = |reason: String| EgressError::Output {
        field: field.into(),
        reason,
    };
    let root = ups.root(queue.as_ref()).to_owned();
    let target = match file_target(&root, filepath_template, kind.extension(), &ctx) {
        Ok(t) => t,
        Err(e) => return failed(info, output_error(e.to_string())),
    };
    if let Some(dir) = target.local_path.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        return failed(info, output_error(format!("{}: {e}", dir.display())));
    }
    if let Err(e) = ups.claim_file(queue.as_ref(), &target.local_path, field) {
        return failed(info, e);
    }
    tracing::info!(
        track = %plan.track_id,
        ?codec,
        file = %target.filename,
        encoder = "none (track egress: frames written as received)",
        "recording the track"
    );
    let result = mux(codec, &target, room, rx, opts, &mut info);
    let ended = now_ns();
    let (written, error) = match result {
        Ok(d) => (d, None),
        Err((d, e)) => (d, Some(e)),
    };
    file_written(&mut info, &target, ups.files[0].as_ref(), written, ended);
    let mut stored = ups.finish();
    let info = conclude(info, Some(&mut stored), error, ended);
    if *manifest {
        let m = Manifest {
            files: info
                .file_results
                .iter()
                .map(|f| ManifestFile {
                    filename: f.filename.clone(),
                    location: f.location.clone(),
                })
                .collect(),
            ..Manifest::of(&info)
        };
        match m.write(&opts.out_dir) {
            Ok(path) => stored.upload_manifest(&path),
            Err(e) => tracing::warn!(error = %e, "cannot write the manifest"),
        }
    }
    info
}

/// Receives frames and pushes them into the muxer; returns the media time written.
fn mux(
    codec: Codec,
    target: &FileTarget,
    room: &dyn RoomSource,
    rx: &TapReceiver,
    opts: &RunOptions,
    info: &mut EgressInfo,
) -> Result<Duration, (Duration, EgressError)> {
    let mut timeline = RtpTimeline::default();
    let mut pipeline: Option<(gst::Pipeline, gst_app::AppSrc)> = None;
    let mut error = None;
    let started = Instant::now();
    let mut frames = 0u64;
    loop {
        let media = if pipeline.is_some() {
            started.elapsed()
        } else {
            Duration::ZERO
        };
        if let Some(end) = ending(room, &opts.stop, opts.bounds(), media, info) {
            error = end.err();
            break;
        }
        let frame = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Tapped::Frame(f)) => f,
            Ok(_) => continue,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if frame.codec != codec {
            tracing::warn!(expected = ?codec, got = ?frame.codec, "the track changed codec; frame skipped");
            continue;
        }
        if pipeline.is_none() {
            if !frame.keyframe {
                continue;
            }
            match build(codec, &frame, &target.local_path) {
                Ok(p) => pipeline = Some(p),
                Err(e) => return Err((Duration::ZERO, e)),
            }
            info.started_at = now_ns();
            set_status(info, EgressStatus::EgressActive, &opts.status);
        }
        let (p, src) = pipeline.as_ref().expect("built above");
        let pts = timeline.pts(frame.rtp, frame.clock_rate);
        let mut buffer = gst::Buffer::from_mut_slice(frame.data);
        {
            let b = buffer.get_mut().expect("a new buffer is writable");
            b.set_pts(gst::ClockTime::from_nseconds(pts.as_nanos() as u64));
            b.set_dts(gst::ClockTime::from_nseconds(pts.as_nanos() as u64));
            if !frame.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            if frame.discont {
                b.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        if src.push_buffer(buffer).is_err() {
            error = Some(
                pipeline_error(p)
                    .unwrap_or_else(|| EgressError::Pipeline("the muxer stopped".into())),
            );
            break;
        }
        frames += 1;
        if let Some(e) = pipeline_error(p) {
            error = Some(e);
            break;
        }
    }
    set_status(info, EgressStatus::EgressEnding, &opts.status);
    let written = timeline.last();
    tracing::info!(
        frames,
        media_s = written.as_secs_f64(),
        "track egress finished"
    );
    if let Some((p, src)) = pipeline {
        let _ = src.end_of_stream();
        if let Some(bus) = p.bus() {
            match bus.timed_pop_filtered(
                gst::ClockTime::from_nseconds(EOS_TIMEOUT.as_nanos() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            ) {
                Some(msg) => {
                    if let gst::MessageView::Error(e) = msg.view() {
                        error.get_or_insert(EgressError::Pipeline(e.error().to_string()));
                    }
                }
                None => {
                    error.get_or_insert(EgressError::Pipeline(
                        "timed out finishing the file".into(),
                    ));
                }
            }
        }
        let _ = p.set_state(gst::State::Null);
    } else if error.is_none() {
        tracing::warn!("no frame of the track arrived; nothing was recorded");
    }
    match error {
        None => Ok(written),
        Some(e) => Err((written, e)),
    }
}

fn pipeline_error(p: &gst::Pipeline) -> Option<EgressError> {
    let msg = p.bus()?.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(EgressError::Pipeline(format!(
            "{}: {}",
            msg.src().map(|s| s.name().to_string()).unwrap_or_default(),
            e.error()
        ))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_time_keeps_gaps_and_wraps_into_the_extended_counter() {
        let mut t = RtpTimeline::default();
        assert_eq!(t.pts(90_000, 90_000), Duration::ZERO);
        assert_eq!(t.pts(93_000, 90_000), Duration::from_nanos(33_333_333));
        // A 2 s pause (muted camera) stays 2 s long.
        assert_eq!(
            t.pts(93_000 + 180_000, 90_000),
            Duration::from_nanos(2_033_333_333)
        );
        // Never backwards (a late frame keeps the last time).
        assert_eq!(t.pts(91_000, 90_000), Duration::from_nanos(2_033_333_333));
        let mut a = RtpTimeline::default();
        a.pts((1 << 32) - 960, 48_000);
        assert_eq!(a.pts((1 << 32) + 960, 48_000), Duration::from_millis(40));
    }

    #[test]
    fn containers_follow_the_codec() {
        assert_eq!(
            container_of(codec_of_mime("video/H264").unwrap()),
            FileKind::Mp4
        );
        assert_eq!(
            container_of(codec_of_mime("video/VP8").unwrap()),
            FileKind::Webm
        );
        assert_eq!(
            container_of(codec_of_mime("audio/opus").unwrap()),
            FileKind::Ogg
        );
        assert!(codec_of_mime("video/h265").is_none());
    }

    #[test]
    fn vp8_key_frames_carry_their_size() {
        let mut f = vec![0u8; 16];
        f[0] = 0x10; // key frame (bit 0 clear), show_frame
        f[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        f[6..8].copy_from_slice(&640u16.to_le_bytes());
        f[8..10].copy_from_slice(&360u16.to_le_bytes());
        assert_eq!(vp8_size(&f), Some((640, 360)));
        f[0] = 0x11; // an inter frame has no size
        assert_eq!(vp8_size(&f), None);
    }
}
