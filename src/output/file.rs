//! File outputs: the encoded streams muxed into MP4, OGG, WebM or MP3 on local disk.
//! MP4 is fragmented (1 s) and written unbuffered: a killed recording still plays up to
//! its last fragment, and at a clean end the muxer rewrites the header with the full
//! duration.

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::encode::{EncodeError, Encoded, make};
use crate::output::FileTarget;
use crate::request::FileKind;

/// Fragment length of the MP4, in milliseconds.
pub const FRAGMENT_MS: u32 = 1000;

/// Links `tee` to `sink_pad` through a new queue and the stream's branch parser.
pub fn attach(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    encoded: Encoded,
    sink_pad: &gst::Pad,
) -> Result<(), EncodeError> {
    let queue = make("queue")?;
    // Room for a few seconds: a branch that briefly stalls (a disk flush, a segment
    // rename) never holds back the encoder.
    queue.set_property("max-size-time", 5_000_000_000u64);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-buffers", 0u32);
    let mut chain = vec![queue];
    chain.extend(encoded.branch_parser()?);
    pipeline.add_many(&chain).expect("fresh elements");
    gst::Element::link_many(&chain).expect("queue links to parser");
    tee.link(&chain[0]).expect("tee links to queue");
    chain
        .last()
        .expect("queue")
        .static_pad("src")
        .expect("src pad")
        .link(sink_pad)
        .map_err(|_| EncodeError::MissingElement("compatible muxer pad"))?;
    Ok(())
}

/// One file output's muxer (or, for MP3, its sink), added to `pipeline`.
pub struct FileBranch {
    kind: FileKind,
    /// Muxer, or the file sink itself for MP3.
    head: gst::Element,
}

impl FileBranch {
    /// Builds `mux ! filesink` for `target`.
    pub fn new(
        pipeline: &gst::Pipeline,
        kind: FileKind,
        target: &FileTarget,
    ) -> Result<FileBranch, EncodeError> {
        let sink = make("filesink")?;
        sink.set_property("location", target.local_path.to_string_lossy().as_ref());
        sink.set_property("sync", false);
        sink.set_property("async", false);
        // Write each muxed fragment at once: stdio's 64 KiB buffer would otherwise hold
        // seconds of a low-bitrate recording that a crash would lose.
        sink.set_property_from_str("buffer-mode", "unbuffered");
        let mux = match kind {
            FileKind::Mp4 => {
                let m = make("mp4mux")?;
                m.set_property("fragment-duration", FRAGMENT_MS);
                Some(m)
            }
            FileKind::Ogg => Some(make("oggmux")?),
            FileKind::Webm => Some(make("webmmux")?),
            FileKind::Mp3 => None,
        };
        let head = match mux {
            Some(mux) => {
                pipeline.add_many([&mux, &sink]).expect("fresh elements");
                mux.link(&sink).expect("muxer links to filesink");
                mux
            }
            None => {
                pipeline.add(&sink).expect("fresh element");
                sink
            }
        };
        Ok(FileBranch { kind, head })
    }

    /// Links a tee of the encode (through a queue and parser) into the file.
    pub fn attach(
        &self,
        pipeline: &gst::Pipeline,
        tee: &gst::Element,
        encoded: Encoded,
    ) -> Result<(), EncodeError> {
        let pad = match self.kind {
            FileKind::Mp3 => self.head.static_pad("sink"),
            _ => self.head.request_pad_simple(if encoded.is_video() {
                "video_%u"
            } else {
                "audio_%u"
            }),
        }
        .ok_or(EncodeError::MissingElement("muxer pad"))?;
        attach(pipeline, tee, encoded, &pad)
    }
}
