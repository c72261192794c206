//! GStreamer decoders for received tracks: encoded frames in (timestamped on the session
//! clock), raw pictures (I420) or mono 48 kHz samples out. The video decoder is the one the
//! process's probe chose for the codec ([`crate::source::decoders`]): NVDEC or VA-API where
//! the machine has one that starts, software otherwise.

use std::str::FromStr;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use crate::source::decoders::{self, VideoCodec};
use crate::source::{AUDIO_RATE, PixelFormat, VideoFrame};

/// Why a decoder could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The codec has no decoder here.
    #[error("no decoder for {0}")]
    Unsupported(String),
    /// The GStreamer pipeline could not be built or started.
    #[error("decoder pipeline: {0}")]
    Pipeline(String),
}

/// A received codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// VP8.
    Vp8,
    /// VP9.
    Vp9,
    /// H.264 (Annex B access units).
    H264,
    /// AV1 (sized OBUs, one temporal unit per frame).
    Av1,
    /// Opus.
    Opus,
}

impl Codec {
    /// From a received payload type's codec.
    pub fn from_str0m(c: str0m::format::Codec) -> Option<Codec> {
        use str0m::format::Codec as C;
        Some(match c {
            C::Vp8 => Codec::Vp8,
            C::Vp9 => Codec::Vp9,
            C::H264 => Codec::H264,
            C::Av1 => Codec::Av1,
            C::Opus => Codec::Opus,
            _ => return None,
        })
    }

    /// The video codec, for the decoder probe; `None` for audio.
    pub fn video(self) -> Option<VideoCodec> {
        Some(match self {
            Codec::Vp8 => VideoCodec::Vp8,
            Codec::Vp9 => VideoCodec::Vp9,
            Codec::H264 => VideoCodec::H264,
            Codec::Av1 => VideoCodec::Av1,
            Codec::Opus => return None,
        })
    }

    fn caps(self) -> &'static str {
        match self {
            Codec::Vp8 => "video/x-vp8",
            Codec::Vp9 => "video/x-vp9",
            Codec::H264 => "video/x-h264,stream-format=byte-stream,alignment=au",
            Codec::Av1 => "video/x-av1,stream-format=obu-stream,alignment=tu",
            Codec::Opus => "audio/x-opus,channel-mapping-family=0,rate=48000,channels=2",
        }
    }
}

/// A running decoder; frames pushed in come out through the callback given at creation.
pub struct Decoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    codec: Codec,
    error_logged: bool,
}

fn launch(
    description: &str,
    codec: Codec,
) -> Result<(gst::Pipeline, gst_app::AppSrc, gst_app::AppSink), DecodeError> {
    let pipeline = gst::parse::launch(description)
        .map_err(|e| DecodeError::Pipeline(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| DecodeError::Pipeline("not a pipeline".into()))?;
    let by_name = |n: &str| {
        pipeline
            .by_name(n)
            .ok_or_else(|| DecodeError::Pipeline(format!("no element {n}")))
    };
    let src = by_name("src")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| DecodeError::Pipeline("src is not an appsrc".into()))?;
    let sink = by_name("sink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| DecodeError::Pipeline("sink is not an appsink".into()))?;
    let caps =
        gst::Caps::from_str(codec.caps()).map_err(|e| DecodeError::Pipeline(e.to_string()))?;
    src.set_caps(Some(&caps));
    src.set_format(gst::Format::Time);
    src.set_is_live(true);
    src.set_property("max-bytes", 16u64 << 20);
    Ok((pipeline, src, sink))
}

impl Decoder {
    /// A video decoder delivering I420 pictures (even sizes) to `on_picture`.
    pub fn video(
        codec: Codec,
        on_picture: impl Fn(VideoFrame) + Send + Sync + 'static,
    ) -> Result<Decoder, DecodeError> {
        let video = codec
            .video()
            .ok_or_else(|| DecodeError::Unsupported("opus as video".into()))?;
        let decode = decoders::decode_fragment(video)
            .ok_or_else(|| DecodeError::Unsupported(video.to_string()))?;
        let (pipeline, src, sink) = launch(
            &format!(
                "appsrc name=src ! {decode} ! videoconvert ! video/x-raw,format=I420 ! \
                 appsink name=sink sync=false max-buffers=4 drop=false"
            ),
            codec,
        )?;
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(frame) = picture_of(&sample) {
                        on_picture(frame);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        Decoder::start(pipeline, src, codec)
    }

    /// An Opus decoder delivering mono samples at 48 kHz, with the session-clock sample
    /// index of the first, to `on_samples`.
    pub fn audio(
        on_samples: impl Fn(u64, &[f32]) + Send + Sync + 'static,
    ) -> Result<Decoder, DecodeError> {
        let (pipeline, src, sink) = launch(
            &format!(
                "appsrc name=src ! opusdec plc=true ! audioconvert ! audioresample ! \
                 audio/x-raw,format=F32LE,rate={AUDIO_RATE},channels=1,layout=interleaved ! \
                 appsink name=sink sync=false"
            ),
            Codec::Opus,
        )?;
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(buffer) = sample.buffer()
                        && let Some(pts) = buffer.pts()
                        && let Ok(map) = buffer.map_readable()
                    {
                        let samples: &[f32] =
                            bytemuck::try_cast_slice(map.as_slice()).unwrap_or(&[]);
                        let at = pts.nseconds() as u128 * AUDIO_RATE as u128 / 1_000_000_000;
                        on_samples(at as u64, samples);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        Decoder::start(pipeline, src, Codec::Opus)
    }

    fn start(
        pipeline: gst::Pipeline,
        src: gst_app::AppSrc,
        codec: Codec,
    ) -> Result<Decoder, DecodeError> {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| DecodeError::Pipeline(format!("{codec:?} decoder: {e}")))?;
        Ok(Decoder {
            pipeline,
            src,
            codec,
            error_logged: false,
        })
    }

    /// Queues one encoded frame presented at `pts` (session clock). `discont` marks the
    /// first frame after a loss.
    pub fn push(&mut self, data: &[u8], pts: Duration, keyframe: bool, discont: bool) {
        let mut bytes = Vec::with_capacity(data.len() + 2);
        if self.codec == Codec::Av1 {
            bytes.extend([0x12, 0x00]); // temporal delimiter
        }
        bytes.extend_from_slice(data);
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        {
            let b = buffer.get_mut().expect("a new buffer is writable");
            b.set_pts(gst::ClockTime::from_nseconds(pts.as_nanos() as u64));
            if !keyframe && self.codec != Codec::Opus {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            if discont {
                b.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        let _ = self.src.push_buffer(buffer);
        if !self.error_logged
            && let Some(bus) = self.pipeline.bus()
            && let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error])
            && let gst::MessageView::Error(e) = msg.view()
        {
            tracing::warn!(codec = ?self.codec, error = %e.error(), "decoder error");
            self.error_logged = true;
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A decoded sample as a packed I420 picture (odd sizes cropped to even).
pub(crate) fn picture_of(sample: &gst::Sample) -> Option<VideoFrame> {
    let buffer = sample.buffer()?;
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).ok()?;
    let (w, h) = (info.width() & !1, info.height() & !1);
    if w == 0 || h == 0 {
        return None;
    }
    let mut data = Vec::with_capacity(VideoFrame::len_for(w, h));
    for (plane, (pw, ph)) in [(0, (w, h)), (1, (w / 2, h / 2)), (2, (w / 2, h / 2))] {
        let stride = info.stride()[plane] as usize;
        let src = frame.plane_data(plane as u32).ok()?;
        for row in 0..ph as usize {
            data.extend_from_slice(&src[row * stride..row * stride + pw as usize]);
        }
    }
    Some(VideoFrame {
        format: PixelFormat::I420,
        width: w,
        height: h,
        data,
        pts: Duration::from_nanos(buffer.pts().map_or(0, |t| t.nseconds())),
        seq: VideoFrame::next_seq(),
    })
}
