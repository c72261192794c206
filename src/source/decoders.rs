//! Which video decoder each codec gets: the GPU's (NVDEC, then VA-API) where the machine
//! has one that starts, software otherwise, chosen per codec and logged with the reason
//! each better one was skipped. The choice is pure ([`choose`]); the probe that asks
//! GStreamer is [`probe_video_decoders`], done once per process ([`shared_video_decoder`]).

use std::fmt;

use crate::encode;

/// A video codec a participant or a clip may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264.
    H264,
    /// VP8.
    Vp8,
    /// VP9.
    Vp9,
    /// AV1.
    Av1,
}

impl VideoCodec {
    /// Every codec, in the order `tessera probe` lists them.
    pub const ALL: [VideoCodec; 4] = [
        VideoCodec::H264,
        VideoCodec::Vp8,
        VideoCodec::Vp9,
        VideoCodec::Av1,
    ];

    /// The parser a decoder wants in front of it (whole frames, the stream's caps), if any.
    pub fn parser(self) -> Option<&'static str> {
        match self {
            VideoCodec::H264 => Some("h264parse"),
            VideoCodec::Vp8 => None,
            VideoCodec::Vp9 => Some("vp9parse"),
            VideoCodec::Av1 => Some("av1parse"),
        }
    }

    /// The decoders to try, best first.
    pub fn candidates(self) -> &'static [(&'static str, DecoderKind)] {
        use DecoderKind::{Nvdec, Software, Vaapi};
        match self {
            VideoCodec::H264 => &[
                ("nvh264dec", Nvdec),
                ("vah264dec", Vaapi),
                ("avdec_h264", Software),
                ("openh264dec", Software),
            ],
            VideoCodec::Vp8 => &[
                ("nvvp8dec", Nvdec),
                ("vavp8dec", Vaapi),
                ("vp8dec", Software),
                ("avdec_vp8", Software),
            ],
            VideoCodec::Vp9 => &[
                ("nvvp9dec", Nvdec),
                ("vavp9dec", Vaapi),
                ("vp9dec", Software),
                ("avdec_vp9", Software),
            ],
            VideoCodec::Av1 => &[
                ("nvav1dec", Nvdec),
                ("vaav1dec", Vaapi),
                ("dav1ddec", Software),
                ("av1dec", Software),
                ("avdec_av1", Software),
            ],
        }
    }
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VideoCodec::H264 => "H.264",
            VideoCodec::Vp8 => "VP8",
            VideoCodec::Vp9 => "VP9",
            VideoCodec::Av1 => "AV1",
        })
    }
}

/// Where a decoder runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecoderKind {
    /// NVIDIA's NVDEC (GStreamer's nvcodec plugin; needs the driver's libnvcuvid).
    Nvdec,
    /// VA-API (Intel/AMD).
    Vaapi,
    /// On the CPU.
    Software,
}

impl DecoderKind {
    /// Whether the decoder is the GPU's.
    pub fn is_hardware(self) -> bool {
        self != DecoderKind::Software
    }
}

/// The decoder chosen for one codec, and why each better one was not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecoderChoice {
    /// The codec.
    pub codec: VideoCodec,
    /// The element factory chosen and where it runs; `None` when no candidate is usable.
    pub chosen: Option<(&'static str, DecoderKind)>,
    /// `(factory, reason)` for each candidate skipped before it.
    pub skipped: Vec<(&'static str, String)>,
}

impl DecoderChoice {
    /// The chosen element factory, if any.
    pub fn factory(&self) -> Option<&'static str> {
        self.chosen.map(|(f, _)| f)
    }

    /// The element and where it runs: `nvh264dec (Nvdec)`, or `none`.
    pub fn element(&self) -> String {
        match self.chosen {
            Some((f, k)) => format!("{f} ({k:?})"),
            None => "none".to_owned(),
        }
    }

    /// One line: `H.264: nvh264dec (Nvdec)` or `AV1: none`.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.codec, self.element())
    }
}

/// Chooses `codec`'s decoder: the first candidate `usable` accepts (`Err` is why not),
/// skipping hardware ones unless `hardware` is allowed.
pub fn choose(
    codec: VideoCodec,
    hardware: bool,
    mut usable: impl FnMut(&'static str) -> Result<(), String>,
) -> DecoderChoice {
    let mut skipped = Vec::new();
    for &(factory, kind) in codec.candidates() {
        if kind.is_hardware() && !hardware {
            skipped.push((factory, "TESSERA_HW_DECODE=0".to_owned()));
            continue;
        }
        match usable(factory) {
            Ok(()) => {
                return DecoderChoice {
                    codec,
                    chosen: Some((factory, kind)),
                    skipped,
                };
            }
            Err(why) => skipped.push((factory, why)),
        }
    }
    DecoderChoice {
        codec,
        chosen: None,
        skipped,
    }
}

/// Probes every codec's decoder now (GStreamer must be initialised).
pub fn probe_video_decoders() -> Vec<DecoderChoice> {
    // `TESSERA_HW_DECODE=0` turns hardware decoders off, for a comparison or a
    // misbehaving driver.
    let hardware = !crate::switch::env_is_off("TESSERA_HW_DECODE");
    VideoCodec::ALL
        .into_iter()
        .map(|codec| {
            let choice = choose(codec, hardware, encode::usable_element);
            tracing::info!(
                codec = %codec,
                decoder = %choice.element(),
                skipped = ?choice.skipped,
                "video decoder chosen"
            );
            choice
        })
        .collect()
}

/// The decoder for `codec`, from a probe done once per process (every egress of a worker
/// shares it; a hardware decoder that starts once is taken for all).
pub fn shared_video_decoder(codec: VideoCodec) -> DecoderChoice {
    static PROBED: std::sync::OnceLock<Vec<DecoderChoice>> = std::sync::OnceLock::new();
    PROBED
        .get_or_init(probe_video_decoders)
        .iter()
        .find(|c| c.codec == codec)
        .cloned()
        .expect("every codec is probed")
}

/// The pipeline fragment that decodes `codec` (`parser ! decoder`), from the shared probe;
/// `None` when no decoder is usable.
pub fn decode_fragment(codec: VideoCodec) -> Option<String> {
    let factory = shared_video_decoder(codec).factory()?;
    Some(match codec.parser() {
        Some(parser) => format!("{parser} ! {factory}"),
        None => factory.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gpu_decoder_is_taken_when_it_starts() {
        let c = choose(VideoCodec::H264, true, |_| Ok(()));
        assert_eq!(c.chosen, Some(("nvh264dec", DecoderKind::Nvdec)));
        assert!(c.skipped.is_empty());
    }

    #[test]
    fn software_is_the_fallback_and_each_skip_says_why() {
        let c = choose(VideoCodec::Vp9, true, |f| {
            if f.starts_with("nv") || f.starts_with("va") {
                Err(format!("{f} absent"))
            } else {
                Ok(())
            }
        });
        assert_eq!(c.chosen, Some(("vp9dec", DecoderKind::Software)));
        assert_eq!(
            c.skipped,
            vec![
                ("nvvp9dec", "nvvp9dec absent".to_owned()),
                ("vavp9dec", "vavp9dec absent".to_owned())
            ]
        );
        assert_eq!(c.summary(), "VP9: vp9dec (Software)");
    }

    #[test]
    fn hardware_can_be_turned_off() {
        let mut asked = Vec::new();
        let c = choose(VideoCodec::Av1, false, |f| {
            asked.push(f);
            Ok(())
        });
        assert_eq!(c.factory(), Some("dav1ddec"));
        assert_eq!(
            asked,
            vec!["dav1ddec"],
            "hardware decoders are not even opened"
        );
        assert!(
            c.skipped
                .iter()
                .all(|(_, why)| why == "TESSERA_HW_DECODE=0")
        );
    }

    #[test]
    fn no_usable_decoder_is_a_choice_of_none() {
        let c = choose(VideoCodec::Vp8, true, |_| Err("missing".into()));
        assert_eq!(c.chosen, None);
        assert_eq!(c.skipped.len(), VideoCodec::Vp8.candidates().len());
        assert_eq!(c.summary(), "VP8: none");
    }
}
