//! The single encode: encoder probe (hardware first, x264 last) and encoding options →
//! GStreamer elements. Knows nothing of where the bytes go.

use gstreamer as gst;
use gstreamer::prelude::*;

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
        if gst::ElementFactory::find(factory).is_none() {
            skipped.push((
                factory,
                "not registered (no plugin, driver or device)".into(),
            ));
            continue;
        }
        let element = match gst::ElementFactory::make(factory).build() {
            Ok(e) => e,
            Err(e) => {
                skipped.push((factory, format!("cannot be created: {e}")));
                continue;
            }
        };
        let ready = element.set_state(gst::State::Ready);
        let _ = element.set_state(gst::State::Null);
        if let Err(e) = ready {
            skipped.push((factory, format!("does not start: {e}")));
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

/// Key-frame distance in frames, if the options set one.
fn gop_frames(p: &EncodingParams) -> Option<u32> {
    p.key_frame_interval_s
        .map(|s| ((s * p.framerate as f64).round() as u32).max(1))
}

fn set_if(element: &gst::Element, name: &str, value: impl Into<gst::glib::Value>) {
    if element.has_property(name) {
        element.set_property(name, value);
    }
}

/// The video encoder and the caps that pin its profile, configured from `params`.
pub fn video_encoder(
    choice: &VideoEncoderChoice,
    params: &EncodingParams,
) -> Result<(gst::Element, gst::Element), EncodeError> {
    let enc = make(choice.factory)?;
    match choice.kind {
        VideoEncoderKind::X264 => {
            enc.set_property("bitrate", params.video_bitrate_kbps);
            enc.set_property_from_str("speed-preset", "veryfast");
            // No B-frames: the fragmented MP4 has no edit list, so reordering delay would
            // start video two frames after audio. (Baseline has none anyway.)
            enc.set_property("bframes", 0u32);
            if let Some(g) = gop_frames(params) {
                enc.set_property("key-int-max", g);
            }
        }
        VideoEncoderKind::Nvenc => {
            set_if(&enc, "bitrate", params.video_bitrate_kbps);
            if let Some(g) = gop_frames(params) {
                set_if(&enc, "gop-size", g as i32);
            }
        }
        VideoEncoderKind::Vaapi => {
            set_if(&enc, "bitrate", params.video_bitrate_kbps);
            if let Some(g) = gop_frames(params) {
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
    Ok((enc, filter))
}

/// The audio chain after the raw mix: convert, resample to the requested rate, encode,
/// parse. Returned in link order.
pub fn audio_chain(params: &EncodingParams) -> Result<Vec<gst::Element>, EncodeError> {
    let convert = make("audioconvert")?;
    let resample = make("audioresample")?;
    let rate = make("capsfilter")?;
    rate.set_property(
        "caps",
        gst::Caps::builder("audio/x-raw")
            .field("rate", params.audio_frequency as i32)
            .field("channels", 2)
            .build(),
    );
    let bps = (params.audio_bitrate_kbps * 1000) as i32;
    let (enc, parse) = match params.audio_codec {
        AudioCodecKind::Aac => {
            let enc = make("avenc_aac")?;
            enc.set_property("bitrate", bps);
            (enc, make("aacparse")?)
        }
        AudioCodecKind::Opus => {
            let enc = make("opusenc")?;
            enc.set_property("bitrate", bps.clamp(4000, 650_000));
            (enc, make("opusparse")?)
        }
    };
    Ok(vec![convert, resample, rate, enc, parse])
}
