//! The single encode: encoder probe (hardware first, x264 last) and encoding options →
//! GStreamer elements. Knows nothing of where the bytes go.

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::request::outputs::VideoEncode;
use crate::request::{AudioCodecKind, EncodingParams, H264Profile};

/// Why the encoders could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// No H.264 encoder is usable on this machine.
    #[error("no H.264 encoder available (tried: {0})")]
    NoVideoEncoder(String),
    /// A GStreamer element is missing (a plugin package is not installed).
    #[error("GStreamer element {0:?} is missing: install the GStreamer plugins (scripts/setup.sh)")]
    MissingElement(&'static str),
}

/// Kinds of H.264 encoder, in probe order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoEncoderKind {
    /// NVIDIA NVENC (`nvautogpuh264enc` or `nvh264enc`).
    Nvenc,
    /// VA-API (`vah264enc`), Intel/AMD.
    Vaapi,
    /// x264 in software.
    X264,
}

/// The probe's answer: which factory to use, and why each better one was skipped.
#[derive(Clone, Debug)]
pub struct VideoEncoderChoice {
    /// Element factory name.
    pub factory: &'static str,
    /// Its kind.
    pub kind: VideoEncoderKind,
    /// `(factory, reason)` for each candidate skipped before it.
    pub skipped: Vec<(&'static str, String)>,
}

/// Candidates in the order the probe tries them.
const CANDIDATES: [(&str, VideoEncoderKind); 4] = [
    ("nvautogpuh264enc", VideoEncoderKind::Nvenc),
    ("nvh264enc", VideoEncoderKind::Nvenc),
    ("vah264enc", VideoEncoderKind::Vaapi),
    ("x264enc", VideoEncoderKind::X264),
];

/// Creates an element, naming the factory when its plugin is missing.
pub fn make(factory: &'static str) -> Result<gst::Element, EncodeError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| EncodeError::MissingElement(factory))
}

/// Whether GStreamer can use `factory` here, or why not: registered (nvcodec and va
/// register their elements only where a driver and device answer), creatable, and able to
/// reach READY (which opens the device). The encoder and decoder probes share it.
pub fn usable_element(factory: &str) -> Result<(), String> {
    if gst::ElementFactory::find(factory).is_none() {
        return Err("not registered (no plugin, driver or device)".to_owned());
    }
    let element = gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| format!("cannot be created: {e}"))?;
    let ready = element.set_state(gst::State::Ready);
    let _ = element.set_state(gst::State::Null);
    ready
        .map(|_| ())
        .map_err(|e| format!("does not start: {e}"))
}

/// The probe's answer, probed once per process (and again if `TESSERA_VIDEO_ENCODER`
/// changes): every egress of a worker shares it. A failed probe is not kept.
pub fn shared_video_encoder() -> Result<VideoEncoderChoice, EncodeError> {
    static PROBED: std::sync::Mutex<Option<(Option<String>, VideoEncoderChoice)>> =
        std::sync::Mutex::new(None);
    let forced = std::env::var("TESSERA_VIDEO_ENCODER").ok();
    let mut cached = PROBED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((f, choice)) = cached.as_ref()
        && *f == forced
    {
        return Ok(choice.clone());
    }
    let choice = probe_video_encoder()?;
    *cached = Some((forced, choice.clone()));
    Ok(choice)
}

/// Finds the best H.264 encoder: NVENC, then VA-API, then x264. A hardware element counts
/// only if it is registered (GStreamer registers them only with a driver and device) and
/// reaches READY. `TESSERA_VIDEO_ENCODER` forces one factory.
pub fn probe_video_encoder() -> Result<VideoEncoderChoice, EncodeError> {
    let forced = std::env::var("TESSERA_VIDEO_ENCODER")
        .ok()
        .filter(|s| !s.is_empty());
    let mut skipped = Vec::new();
    for (factory, kind) in CANDIDATES {
        if let Some(f) = &forced
            && f != factory
        {
            skipped.push((factory, format!("TESSERA_VIDEO_ENCODER={f}")));
            continue;
        }
        if let Err(why) = usable_element(factory) {
            skipped.push((factory, why));
            continue;
        }
        tracing::info!(
            encoder = factory,
            ?kind,
            skipped = ?skipped,
            "video encoder chosen"
        );
        return Ok(VideoEncoderChoice {
            factory,
            kind,
            skipped,
        });
    }
    let tried = skipped
        .iter()
        .map(|(f, why)| format!("{f}: {why}"))
        .collect::<Vec<_>>()
        .join("; ");
    Err(EncodeError::NoVideoEncoder(tried))
}

fn set_if(element: &gst::Element, name: &str, value: impl Into<gst::glib::Value>) {
    if element.has_property(name) {
        element.set_property(name, value);
    }
}

/// An H.264 encode of `size`, with key frames at most `gop` frames apart: the encoder, the
/// caps that pin its profile, and a parser that repeats SPS/PPS before every key frame (so
/// a stream or segment that starts late decodes). In link order. `low_latency` (live
/// streams) gives up x264's look-ahead, about 1.5 s of delay, for a little quality.
pub fn h264_chain(
    choice: &VideoEncoderChoice,
    params: &EncodingParams,
    size: &VideoEncode,
    gop: Option<u32>,
    low_latency: bool,
) -> Result<Vec<gst::Element>, EncodeError> {
    let enc = make(choice.factory)?;
    match choice.kind {
        VideoEncoderKind::X264 => {
            enc.set_property("bitrate", size.bitrate_kbps);
            enc.set_property_from_str("speed-preset", "veryfast");
            if low_latency {
                enc.set_property_from_str("tune", "zerolatency");
            }
            // No B-frames: the fragmented MP4 has no edit list, so reordering delay would
            // start video two frames after audio. (Baseline has none anyway.)
            enc.set_property("bframes", 0u32);
            if let Some(g) = gop {
                enc.set_property("key-int-max", g);
            }
        }
        VideoEncoderKind::Nvenc => {
            set_if(&enc, "bitrate", size.bitrate_kbps);
            if let Some(g) = gop {
                set_if(&enc, "gop-size", g as i32);
            }
        }
        VideoEncoderKind::Vaapi => {
            set_if(&enc, "bitrate", size.bitrate_kbps);
            if let Some(g) = gop {
                set_if(&enc, "key-int-max", g);
            }
        }
    }
    let profile = match params.profile {
        H264Profile::Baseline => "constrained-baseline",
        other => other.caps_name(),
    };
    let caps = gst::Caps::builder("video/x-h264")
        .field("profile", profile)
        .build();
    let filter = make("capsfilter")?;
    filter.set_property("caps", &caps);
    let parse = make("h264parse")?;
    parse.set_property("config-interval", -1i32);
    Ok(vec![enc, filter, parse])
}

/// A VP8 encode (WebM files) tuned for real time, with key frames at most `gop` apart.
/// libvpx takes planar I420, so the NV12 frames are repacked first (a copy of the chroma).
pub fn vp8_chain(size: &VideoEncode, gop: Option<u32>) -> Result<Vec<gst::Element>, EncodeError> {
    let convert = make("videoconvert")?;
    let enc = make("vp8enc")?;
    enc.set_property("target-bitrate", (size.bitrate_kbps * 1000) as i32);
    enc.set_property("deadline", 1i64);
    enc.set_property("cpu-used", 8i32);
    enc.set_property_from_str("end-usage", "cbr");
    enc.set_property("threads", 2i32);
    if let Some(g) = gop {
        enc.set_property("keyframe-max-dist", g as i32);
    }
    Ok(vec![convert, enc])
}

/// The AAC encoder: FFmpeg's (`avenc_aac`, gst-libav) where it is installed, else
/// VisualOn's (`voaacenc`, what the GPU-node bundle carries: gst-libav's libraries alone
/// would be 59 MiB of it compressed). `None` when neither is.
pub fn aac_encoder() -> Option<&'static str> {
    ["avenc_aac", "voaacenc"]
        .into_iter()
        .find(|f| gst::ElementFactory::find(f).is_some())
}

/// The audio chain of one codec after the raw mix: convert, resample to the codec's rate,
/// encode, parse. Returned in link order.
pub fn audio_chain(
    codec: AudioCodecKind,
    params: &EncodingParams,
) -> Result<Vec<gst::Element>, EncodeError> {
    let convert = make("audioconvert")?;
    let resample = make("audioresample")?;
    let rate = make("capsfilter")?;
    let hz = match codec {
        AudioCodecKind::Opus => 48_000,
        AudioCodecKind::Aac | AudioCodecKind::Mp3 => params.audio_frequency,
    };
    rate.set_property(
        "caps",
        gst::Caps::builder("audio/x-raw")
            .field("rate", hz as i32)
            .field("channels", 2)
            .build(),
    );
    let bps = (params.audio_bitrate_kbps * 1000) as i32;
    let (enc, parse) = match codec {
        AudioCodecKind::Aac => {
            let factory = aac_encoder().ok_or(EncodeError::MissingElement("avenc_aac"))?;
            let enc = make(factory)?;
            enc.set_property("bitrate", bps);
            if factory == "avenc_aac" {
                // gst-libav turns ffmpeg's "auto" M/S decision into "always": forced M/S
                // coding bleeds a voice mixed to one channel (dual-channel mixing, audio
                // routes) into the other at about -15 dB. Off, ffmpeg still codes each
                // band as it sees fit.
                enc.set_property("aac-ms", false);
            }
            (enc, make("aacparse")?)
        }
        AudioCodecKind::Opus => {
            let enc = make("opusenc")?;
            enc.set_property("bitrate", bps.clamp(4000, 650_000));
            (enc, make("opusparse")?)
        }
        AudioCodecKind::Mp3 => {
            let enc = make("lamemp3enc")?;
            enc.set_property_from_str("target", "bitrate");
            enc.set_property("cbr", true);
            enc.set_property("bitrate", params.audio_bitrate_kbps.clamp(8, 320) as i32);
            (enc, make("mpegaudioparse")?)
        }
    };
    Ok(vec![convert, resample, rate, enc, parse])
}

/// An encoded stream leaving the single encode, as outputs see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoded {
    /// H.264 video.
    H264,
    /// VP8 video.
    Vp8,
    /// Audio of one codec.
    Audio(AudioCodecKind),
}

impl Encoded {
    /// Whether it is a video stream.
    pub fn is_video(self) -> bool {
        matches!(self, Encoded::H264 | Encoded::Vp8)
    }

    /// The parser that re-frames the stream for one branch (each muxer wants its own
    /// stream format: AVC vs byte-stream H.264, raw vs ADTS AAC), if the codec has one.
    pub fn branch_parser(self) -> Result<Option<gst::Element>, EncodeError> {
        Ok(match self {
            Encoded::H264 => Some(make("h264parse")?),
            Encoded::Vp8 => None,
            Encoded::Audio(AudioCodecKind::Aac) => Some(make("aacparse")?),
            Encoded::Audio(AudioCodecKind::Opus) => Some(make("opusparse")?),
            Encoded::Audio(AudioCodecKind::Mp3) => Some(make("mpegaudioparse")?),
        })
    }
}
