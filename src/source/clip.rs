//! A room of decoded clips: each participant is its own decoder (H.264 or VP8) looping a
//! pre-encoded clip, so a benchmark pays real decode cost. Audio (a tone per participant)
//! comes from the synthetic room, which also names the participants.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::decoders::{self, VideoCodec};
use super::synthetic::SyntheticRoom;
use super::{ParticipantInfo, PixelFormat, RoomSource, VideoFrame};

/// How long `advance_video` waits for a decoder before reusing the last picture.
const DECODE_WAIT: Duration = Duration::from_millis(50);

/// Why a clip room cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The clip file is missing.
    #[error("clip {0} does not exist")]
    Missing(PathBuf),
    /// The decoder pipeline could not be built or started.
    #[error("decoding {path}: {reason}")]
    Decoder {
        /// The clip.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No decoder for the clip's codec is installed or usable here.
    #[error("no {0} decoder is usable here (see `tessera probe`)")]
    NoDecoder(VideoCodec),
}

/// The codec of a clip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipCodec {
    /// H.264 in MP4.
    H264,
    /// VP8 in WebM.
    Vp8,
}

impl ClipCodec {
    /// Its name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ClipCodec::H264 => "h264",
            ClipCodec::Vp8 => "vp8",
        }
    }

    /// The video codec inside, for the decoder probe.
    pub fn video(self) -> VideoCodec {
        match self {
            ClipCodec::H264 => VideoCodec::H264,
            ClipCodec::Vp8 => VideoCodec::Vp8,
        }
    }

    /// The demuxer of its container.
    pub fn demuxer(self) -> &'static str {
        match self {
            ClipCodec::H264 => "qtdemux",
            ClipCodec::Vp8 => "matroskademux",
        }
    }

    /// `parser ! decoder` for its video, from the process's decoder probe.
    pub fn decode_fragment(self) -> Result<String, ClipError> {
        decoders::decode_fragment(self.video()).ok_or(ClipError::NoDecoder(self.video()))
    }
}

struct Decoder {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    /// The next decoded picture, not yet due.
    pending: Option<VideoFrame>,
    current: Option<VideoFrame>,
    /// Media time added to the clip's own times (grows by the clip's length per loop).
    loop_offset: Duration,
    /// Time of the last picture decoded in this loop.
    last_pts: Duration,
    frame: Duration,
}

impl Decoder {
    fn new(path: &Path, codec: ClipCodec, index: usize) -> Result<Decoder, ClipError> {
        let err = |reason: String| ClipError::Decoder {
            path: path.to_owned(),
            reason,
        };
        let (demux, decode) = (codec.demuxer(), codec.decode_fragment()?);
        // The decoder's threads are named after its queue ("dec-…"), so a harness can
        // attribute their CPU.
        let description = format!(
            "filesrc location=\"{}\" ! {demux} ! queue name=dec-{index} ! {decode} ! \
             videoconvert ! video/x-raw,format=I420 ! \
             appsink name=sink sync=false max-buffers=3 drop=false",
            path.display()
        );
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| err(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| err("not a pipeline".into()))?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| err("no app sink".into()))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| err(e.to_string()))?;
        Ok(Decoder {
            pipeline,
            sink,
            pending: None,
            current: None,
            loop_offset: Duration::ZERO,
            last_pts: Duration::ZERO,
            frame: Duration::from_millis(33),
        })
    }

    /// The next decoded picture, looping at the end of the clip.
    fn pull(&mut self) -> Option<VideoFrame> {
        for _ in 0..2 {
            let timeout = gst::ClockTime::from_nseconds(DECODE_WAIT.as_nanos() as u64);
            if let Some(sample) = self.sink.try_pull_sample(timeout) {
                return self.frame_of(&sample);
            }
            if !self.sink.is_eos() {
                return None;
            }
            // End of the clip: start again, later on the media timeline.
            self.loop_offset += self.last_pts + self.frame;
            let _ = self.pipeline.seek_simple(
                gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT,
                gst::ClockTime::ZERO,
            );
        }
        None
    }

    fn frame_of(&mut self, sample: &gst::Sample) -> Option<VideoFrame> {
        let buffer = sample.buffer()?;
        let caps = sample.caps()?;
        let s = caps.structure(0)?;
        let (width, height) = (s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?);
        if let Ok(rate) = s.get::<gst::Fraction>("framerate")
            && rate.numer() > 0
        {
            self.frame =
                Duration::from_nanos(1_000_000_000 * rate.denom() as u64 / rate.numer() as u64);
        }
        let pts = Duration::from_nanos(buffer.pts().map_or(0, |t| t.nseconds()));
        self.last_pts = pts;
        let map = buffer.map_readable().ok()?;
        let len = VideoFrame::len_for(width as u32, height as u32);
        Some(VideoFrame {
            format: PixelFormat::I420,
            width: width as u32,
            height: height as u32,
            data: map.as_slice()[..len.min(map.len())].to_vec(),
            pts: self.loop_offset + pts,
            seq: VideoFrame::next_seq(),
        })
    }

    fn advance(&mut self, at: Duration) {
        loop {
            if self.pending.is_none() {
                self.pending = self.pull();
            }
            match &self.pending {
                Some(f) if f.pts <= at => self.current = self.pending.take(),
                _ => break,
            }
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// N participants, each decoding its own copy of a clip.
pub struct ClipRoom {
    synthetic: SyntheticRoom,
    decoders: Vec<Decoder>,
}

impl ClipRoom {
    /// A room of `n` decoders of `clip`.
    pub fn new(n: usize, clip: &Path, codec: ClipCodec) -> Result<ClipRoom, ClipError> {
        if !clip.exists() {
            return Err(ClipError::Missing(clip.to_owned()));
        }
        let decoders = (0..n)
            .map(|i| Decoder::new(clip, codec, i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClipRoom {
            synthetic: SyntheticRoom::new(n, 16, 16),
            decoders,
        })
    }
}

impl RoomSource for ClipRoom {
    fn room_id(&self) -> String {
        format!("RM_clips{}", self.decoders.len())
    }

    fn participants(&self) -> Vec<ParticipantInfo> {
        self.synthetic.participants()
    }

    fn advance_video(&mut self, at: Duration) {
        for d in &mut self.decoders {
            d.advance(at);
        }
    }

    fn video(&self, index: usize) -> Option<&VideoFrame> {
        self.decoders.get(index)?.current.as_ref()
    }

    fn mix_audio_into(&mut self, index: usize, first_sample: u64, out: &mut [f32]) {
        self.synthetic.mix_audio_into(index, first_sample, out);
    }
}

/// Encodes a test clip once (moving ball on a coloured pattern, `seconds` long, 30 fps)
/// at `width` x `height` and `kbps`, unless `path` exists.
pub fn make_clip(
    path: &Path,
    codec: ClipCodec,
    width: u32,
    height: u32,
    kbps: u32,
    seconds: u32,
) -> Result<(), ClipError> {
    if path.exists() {
        return Ok(());
    }
    let err = |reason: String| ClipError::Decoder {
        path: path.to_owned(),
        reason,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let tmp = path.with_extension("part");
    let encode = match codec {
        ClipCodec::H264 => format!(
            "x264enc bitrate={kbps} speed-preset=veryfast key-int-max=60 bframes=0 ! \
             video/x-h264,profile=main ! h264parse ! mp4mux"
        ),
        ClipCodec::Vp8 => format!(
            "vp8enc target-bitrate={} deadline=1 keyframe-max-dist=60 ! webmmux",
            kbps * 1000
        ),
    };
    let description = format!(
        "videotestsrc pattern=ball background-color=0xff3060a0 num-buffers={} ! \
         video/x-raw,format=I420,width={width},height={height},framerate=30/1 ! {encode} ! \
         filesink location=\"{}\"",
        seconds * 30,
        tmp.display()
    );
    let pipeline = gst::parse::launch(&description).map_err(|e| err(e.to_string()))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| err(e.to_string()))?;
    let bus = pipeline.bus().expect("pipelines have a bus");
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(300),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let result = match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(e)) => Err(err(e.error().to_string())),
        _ => Err(err("timed out".into())),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}
