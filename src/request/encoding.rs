//! Encoding parameters: LiveKit presets and `advanced` options, with LiveKit's defaults.

use livekit_protocol::{AudioCodec, EncodingOptions, EncodingOptionsPreset, VideoCodec};

use super::RequestError;
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

/// Applies `advanced` options. `extensions` tells an explicit zero (an error) from an
/// absent field (the default): proto3 cannot tell them apart.
pub fn from_advanced(
    adv: &EncodingOptions,
    extensions: &Extensions,
) -> Result<EncodingParams, RequestError> {
    let mut p = base();
    let explicit_zero = |name: &str| extensions.explicit_zero(name);

    for (name, value, max) in [
        ("width", adv.width, MAX_DIMENSION),
        ("height", adv.height, MAX_DIMENSION),
    ] {
        let field = format!("advanced.{name}");
        if value < 0 || explicit_zero(name) {
            return Err(RequestError::invalid(
                &field,
                format!("must be a positive even number, got {value}"),
            ));
        }
        if value % 2 != 0 {
            return Err(RequestError::invalid(
                &field,
                format!("must be even (4:2:0 video), got {value}"),
            ));
        }
        if value as u32 > max {
            return Err(RequestError::invalid(
                &field,
                format!("must be at most {max}, got {value}"),
            ));
        }
    }
    if adv.width != 0 {
        p.width = adv.width as u32;
    }
    if adv.height != 0 {
        p.height = adv.height as u32;
    }
    if adv.width != 0 && adv.width < 16 || adv.height != 0 && adv.height < 16 {
        let field = if adv.width != 0 && adv.width < 16 {
            "advanced.width"
        } else {
            "advanced.height"
        };
        return Err(RequestError::invalid(field, "must be at least 16"));
    }

    if adv.framerate < 0 || explicit_zero("framerate") || adv.framerate as u32 > MAX_FRAMERATE {
        return Err(RequestError::invalid(
            "advanced.framerate",
            format!(
                "must be between 1 and {MAX_FRAMERATE}, got {}",
                adv.framerate
            ),
        ));
    }
    if adv.framerate != 0 {
        p.framerate = adv.framerate as u32;
    }

    if adv.video_bitrate < 0 || explicit_zero("video_bitrate") {
        return Err(RequestError::invalid(
            "advanced.video_bitrate",
            format!(
                "must be a positive number of kbit/s, got {}",
                adv.video_bitrate
            ),
        ));
    }
    if adv.video_bitrate > 100_000 {
        return Err(RequestError::invalid(
            "advanced.video_bitrate",
            "must be at most 100000 kbit/s",
        ));
    }
    if adv.video_bitrate != 0 {
        p.video_bitrate_kbps = adv.video_bitrate as u32;
    }

    if adv.audio_bitrate < 0 || adv.audio_bitrate > 512 {
        return Err(RequestError::invalid(
            "advanced.audio_bitrate",
            format!(
                "must be between 1 and 512 kbit/s, got {}",
                adv.audio_bitrate
            ),
        ));
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

    if adv.audio_frequency < 0 || explicit_zero("audio_frequency") {
        return Err(RequestError::invalid(
            "advanced.audio_frequency",
            format!(
                "must be a positive sample rate in Hz, got {}",
                adv.audio_frequency
            ),
        ));
    }
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
