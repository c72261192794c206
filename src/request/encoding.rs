//! Encoding parameters: LiveKit presets and `advanced` options, with LiveKit's defaults.

use livekit_protocol::{AudioCodec, EncodingOptions, EncodingOptionsPreset, VideoCodec};

use super::error::RequestError;
use super::extensions::Extensions;

/// H.264 profile of the single video encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H264Profile {
    /// Constrained baseline: no B-frames, no CABAC.
    Baseline,
    /// Main profile (LiveKit's default).
    Main,
    /// High profile.
    High,
}

impl H264Profile {
    /// The profile name as GStreamer caps and ffprobe spell it (lower case).
    pub fn caps_name(self) -> &'static str {
        match self {
            H264Profile::Baseline => "constrained-baseline",
            H264Profile::Main => "main",
            H264Profile::High => "high",
        }
    }
}

/// An audio codec (an egress encodes audio once per codec its outputs need).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioCodecKind {
    /// AAC-LC (default for MP4 files, HLS and streams).
    Aac,
    /// Opus (always 48 kHz; OGG and WebM).
    Opus,
    /// MP3 (MP3 files).
    Mp3,
}

/// The video codec of the main encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodecKind {
    /// H.264 (every output but WebM).
    H264,
    /// VP8 (WebM files).
    Vp8,
}

/// Everything the encoders need, after presets, `advanced` and defaults are applied.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodingParams {
    /// Output width in pixels (even).
    pub width: u32,
    /// Output height in pixels (even).
    pub height: u32,
    /// Output frame rate in frames per second.
    pub framerate: u32,
    /// Target video bitrate in kbit/s.
    pub video_bitrate_kbps: u32,
    /// Seconds between key frames; `None` leaves it to the encoder (LiveKit's file default).
    pub key_frame_interval_s: Option<f64>,
    /// H.264 profile.
    pub profile: H264Profile,
    /// Video codec asked for (VP8 only for WebM).
    pub video_codec: VideoCodecKind,
    /// Whether the request named the video codec.
    pub video_codec_explicit: bool,
    /// Audio codec of MP4 files (other containers have a fixed codec).
    pub audio_codec: AudioCodecKind,
    /// Whether the request named the audio codec (then every output must carry it).
    pub audio_codec_explicit: bool,
    /// Audio bitrate in kbit/s.
    pub audio_bitrate_kbps: u32,
    /// Audio sample rate in Hz.
    pub audio_frequency: u32,
}

/// LiveKit's base defaults (the `EncodingOptions` comments): 1920x1080, 30 fps, 4500 kbps,
/// 128 kbps audio at 44.1 kHz, H.264 main.
fn base() -> EncodingParams {
    EncodingParams {
        width: 1920,
        height: 1080,
        framerate: 30,
        video_bitrate_kbps: 4500,
        key_frame_interval_s: None,
        profile: H264Profile::Main,
        video_codec: VideoCodecKind::H264,
        video_codec_explicit: false,
        audio_codec: AudioCodecKind::Aac,
        audio_codec_explicit: false,
        audio_bitrate_kbps: 128,
        audio_frequency: 44_100,
    }
}

/// Largest accepted output dimension (both axes).
pub const MAX_DIMENSION: u32 = 4096;
/// Checks the size of an extra output picture (an HLS rendition, a thumbnail): even and
/// between 16 and [`MAX_DIMENSION`].
pub fn check_output_dimension(field: &str, v: i64) -> Result<u32, RequestError> {
    if v % 2 != 0 || !(16..=MAX_DIMENSION as i64).contains(&v) {
        return Err(RequestError::invalid(
            field,
            format!("must be even and between 16 and {MAX_DIMENSION}, got {v}"),
        ));
    }
    Ok(v as u32)
}

/// Largest accepted frame rate.
pub const MAX_FRAMERATE: u32 = 60;
/// Sample rates AAC accepts here.
const AAC_RATES: [u32; 9] = [
    8000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
];

/// Applies a preset as LiveKit's egress does (on top of the base defaults).
pub fn from_preset(preset: EncodingOptionsPreset) -> Result<EncodingParams, RequestError> {
    use EncodingOptionsPreset as P;
    let mut p = base();
    let (w, h, fps, kbps) = match preset {
        P::H264720p30 => (1280, 720, 30, 3000),
        P::H264720p60 => (1280, 720, 60, 4500),
        P::H2641080p30 => (1920, 1080, 30, 4500),
        P::H2641080p60 => (1920, 1080, 60, 6000),
        P::PortraitH264720p30 => (720, 1280, 30, 3000),
        P::PortraitH264720p60 => (720, 1280, 60, 4500),
        P::PortraitH2641080p30 => (1080, 1920, 30, 4500),
        P::PortraitH2641080p60 => (1080, 1920, 60, 6000),
        P::Passthrough => {
            return Err(RequestError::invalid(
                "preset",
                "PASSTHROUGH is only valid for a single track (MediaSource), not a room composite",
            ));
        }
    };
    p.width = w;
    p.height = h;
    p.framerate = fps;
    p.video_bitrate_kbps = kbps;
    Ok(p)
}

/// The default when a request has neither `preset` nor `advanced`: H264_720P_30.
pub fn default_params() -> EncodingParams {
    from_preset(EncodingOptionsPreset::H264720p30).expect("720p30 is a valid preset")
}

/// One video encode (all H.264 but for a WebM-only egress).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoEncode {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Bitrate in kbit/s.
    pub bitrate_kbps: u32,
}

/// One integer `advanced` field's rule: 0 means "the default" (unless written as 0), a
/// value must lie in `min..=max` (and be even where `even`); the messages are the error
/// texts, with `{v}` the value and `{max}` the bound.
struct Bound {
    name: &'static str,
    value: i64,
    /// Whether a 0 written in the JSON is refused (proto3 cannot tell it from "unset").
    explicit_zero_refused: bool,
    min: i64,
    max: i64,
    even: bool,
    too_low: &'static str,
    too_high: &'static str,
}

/// The range checks of `advanced`, in the order they are reported.
fn advanced_bounds(adv: &EncodingOptions) -> [Bound; 6] {
    let dimension = |name, value: i32| Bound {
        name,
        value: value.into(),
        explicit_zero_refused: true,
        min: 16,
        max: MAX_DIMENSION.into(),
        even: true,
        too_low: "must be a positive even number, got {v}",
        too_high: "must be at most {max}, got {v}",
    };
    let positive = |name, value: i32, max: i64, too_low, too_high| Bound {
        name,
        value: value.into(),
        explicit_zero_refused: true,
        min: 1,
        max,
        even: false,
        too_low,
        too_high,
    };
    let framerate = "must be between 1 and {max}, got {v}";
    let audio_bitrate = "must be between 1 and {max} kbit/s, got {v}";
    [
        dimension("width", adv.width),
        dimension("height", adv.height),
        positive(
            "framerate",
            adv.framerate,
            MAX_FRAMERATE.into(),
            framerate,
            framerate,
        ),
        positive(
            "video_bitrate",
            adv.video_bitrate,
            100_000,
            "must be a positive number of kbit/s, got {v}",
            "must be at most {max} kbit/s",
        ),
        Bound {
            explicit_zero_refused: false,
            ..positive(
                "audio_bitrate",
                adv.audio_bitrate,
                512,
                audio_bitrate,
                audio_bitrate,
            )
        },
        positive(
            "audio_frequency",
            adv.audio_frequency,
            i64::MAX,
            "must be a positive sample rate in Hz, got {v}",
            "",
        ),
    ]
}

impl Bound {
    /// The field's error, if its value breaks the rule.
    fn check(&self, extensions: &Extensions) -> Result<(), RequestError> {
        let field = format!("advanced.{}", self.name);
        let say = |text: &str| {
            let text = text
                .replace("{v}", &self.value.to_string())
                .replace("{max}", &self.max.to_string());
            Err(RequestError::invalid(&field, text))
        };
        let zero_refused = self.explicit_zero_refused && extensions.explicit_zero(self.name);
        if self.value < 0 || (self.value == 0 && zero_refused) {
            return say(self.too_low);
        }
        if self.even && self.value % 2 != 0 {
            return say("must be even (4:2:0 video), got {v}");
        }
        if self.value > self.max {
            return say(self.too_high);
        }
        if self.value != 0 && self.value < self.min {
            return say(&format!("must be at least {}", self.min));
        }
        Ok(())
    }
}

/// Applies `advanced` options. `extensions` tells an explicit zero (an error) from an
/// absent field (the default): proto3 cannot tell them apart.
pub fn from_advanced(
    adv: &EncodingOptions,
    extensions: &Extensions,
) -> Result<EncodingParams, RequestError> {
    let mut p = base();
    for bound in advanced_bounds(adv) {
        bound.check(extensions)?;
    }
    if adv.width != 0 {
        p.width = adv.width as u32;
    }
    if adv.height != 0 {
        p.height = adv.height as u32;
    }
    if adv.framerate != 0 {
        p.framerate = adv.framerate as u32;
    }
    if adv.video_bitrate != 0 {
        p.video_bitrate_kbps = adv.video_bitrate as u32;
    }
    if adv.audio_bitrate != 0 {
        p.audio_bitrate_kbps = adv.audio_bitrate as u32;
    }

    if !adv.key_frame_interval.is_finite() || adv.key_frame_interval < 0.0 {
        return Err(RequestError::invalid(
            "advanced.key_frame_interval",
            format!(
                "must be a positive number of seconds, got {}",
                adv.key_frame_interval
            ),
        ));
    }
    if adv.key_frame_interval > 0.0 {
        p.key_frame_interval_s = Some(adv.key_frame_interval);
    }

    p.profile = match VideoCodec::try_from(adv.video_codec) {
        Ok(VideoCodec::DefaultVc | VideoCodec::H264Main) => H264Profile::Main,
        Ok(VideoCodec::H264Baseline) => H264Profile::Baseline,
        Ok(VideoCodec::H264High) => H264Profile::High,
        Ok(VideoCodec::Vp8) => {
            p.video_codec = VideoCodecKind::Vp8;
            H264Profile::Main
        }
        Err(_) => {
            return Err(RequestError::invalid(
                "advanced.video_codec",
                format!("unknown video codec {}", adv.video_codec),
            ));
        }
    };

    p.video_codec_explicit = adv.video_codec != VideoCodec::DefaultVc as i32;
    p.audio_codec_explicit = adv.audio_codec != AudioCodec::DefaultAc as i32;
    p.audio_codec = match AudioCodec::try_from(adv.audio_codec) {
        Ok(AudioCodec::DefaultAc | AudioCodec::Aac) => AudioCodecKind::Aac,
        Ok(AudioCodec::Opus) => AudioCodecKind::Opus,
        Ok(AudioCodec::AcMp3) => AudioCodecKind::Mp3,
        Err(_) => {
            return Err(RequestError::invalid(
                "advanced.audio_codec",
                format!("unknown audio codec {}", adv.audio_codec),
            ));
        }
    };

    match p.audio_codec {
        AudioCodecKind::Opus => {
            if adv.audio_frequency != 0 && adv.audio_frequency != 48_000 {
                return Err(RequestError::invalid(
                    "advanced.audio_frequency",
                    format!("OPUS is encoded at 48000 Hz, got {}", adv.audio_frequency),
                ));
            }
            p.audio_frequency = 48_000;
        }
        AudioCodecKind::Aac | AudioCodecKind::Mp3 => {
            if adv.audio_frequency != 0 {
                let f = adv.audio_frequency as u32;
                if !AAC_RATES.contains(&f) {
                    return Err(RequestError::invalid(
                        "advanced.audio_frequency",
                        format!(
                            "{:?} sample rate must be one of {AAC_RATES:?}, got {f}",
                            p.audio_codec
                        ),
                    ));
                }
                p.audio_frequency = f;
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_output_sizes_are_even_and_bounded() {
        assert_eq!(check_output_dimension("x", 640).unwrap(), 640);
        for bad in [0, 14, 641, -2, MAX_DIMENSION as i64 + 2] {
            let e = check_output_dimension("image_outputs[0].width", bad).unwrap_err();
            assert_eq!(e.field(), Some("image_outputs[0].width"), "{bad}");
        }
    }

    #[test]
    fn default_is_720p30_3000kbps_aac() {
        let p = default_params();
        assert_eq!(
            (p.width, p.height, p.framerate, p.video_bitrate_kbps),
            (1280, 720, 30, 3000)
        );
        assert_eq!(p.audio_codec, AudioCodecKind::Aac);
        assert_eq!(p.profile, H264Profile::Main);
    }

    #[test]
    fn presets_match_livekit() {
        use EncodingOptionsPreset as P;
        let cases = [
            (P::H264720p60, (1280, 720, 60, 4500)),
            (P::H2641080p30, (1920, 1080, 30, 4500)),
            (P::H2641080p60, (1920, 1080, 60, 6000)),
            (P::PortraitH264720p30, (720, 1280, 30, 3000)),
            (P::PortraitH2641080p60, (1080, 1920, 60, 6000)),
        ];
        for (preset, want) in cases {
            let p = from_preset(preset).unwrap();
            assert_eq!(
                (p.width, p.height, p.framerate, p.video_bitrate_kbps),
                want,
                "{preset:?}"
            );
        }
        assert!(from_preset(P::Passthrough).is_err());
    }

    #[test]
    fn advanced_fills_zero_fields_with_base_defaults() {
        let adv = EncodingOptions {
            width: 640,
            height: 360,
            ..Default::default()
        };
        let p = from_advanced(&adv, &Extensions::default()).unwrap();
        assert_eq!(
            (p.width, p.height, p.framerate, p.video_bitrate_kbps),
            (640, 360, 30, 4500)
        );
        assert_eq!(p.audio_frequency, 44_100);
    }

    #[test]
    fn advanced_rejects_bad_values_naming_the_field() {
        let cases: [(EncodingOptions, &str); 5] = [
            (
                EncodingOptions {
                    width: 641,
                    ..Default::default()
                },
                "advanced.width",
            ),
            (
                EncodingOptions {
                    height: -2,
                    ..Default::default()
                },
                "advanced.height",
            ),
            (
                EncodingOptions {
                    video_bitrate: -5,
                    ..Default::default()
                },
                "advanced.video_bitrate",
            ),
            (
                EncodingOptions {
                    framerate: 240,
                    ..Default::default()
                },
                "advanced.framerate",
            ),
            (
                EncodingOptions {
                    audio_codec: AudioCodec::Opus as i32,
                    audio_frequency: 44_100,
                    ..Default::default()
                },
                "advanced.audio_frequency",
            ),
        ];
        for (adv, field) in cases {
            let err = from_advanced(&adv, &Extensions::default()).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
    }

    #[test]
    fn explicit_zero_width_is_an_error() {
        let ext = Extensions::read(&serde_json::json!({"advanced": {"width": 0}}));
        let err = from_advanced(&EncodingOptions::default(), &ext).unwrap_err();
        assert_eq!(err.field(), Some("advanced.width"));
    }

    #[test]
    fn opus_defaults_to_48k() {
        let adv = EncodingOptions {
            audio_codec: AudioCodec::Opus as i32,
            ..Default::default()
        };
        let p = from_advanced(&adv, &Extensions::default()).unwrap();
        assert_eq!(
            (p.audio_codec, p.audio_frequency),
            (AudioCodecKind::Opus, 48_000)
        );
    }
}
