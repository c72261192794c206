//! The file output: encoded video and audio into a fragmented MP4 on local disk.
//! Fragments (1 s) make a killed recording still playable up to its last fragment; at a
//! clean end the muxer rewrites the header with the full duration.

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::encode::{EncodeError, make};
use crate::output::FileTarget;

/// Fragment length of the MP4, in milliseconds.
pub const FRAGMENT_MS: u32 = 1000;

/// The elements of one MP4 file branch, added to `pipeline`.
pub struct Mp4Branch {
    /// Muxer; request pads `video_%u` and `audio_%u`.
    pub mux: gst::Element,
}

impl Mp4Branch {
    /// Builds `mp4mux ! filesink` for `target`.
    pub fn new(pipeline: &gst::Pipeline, target: &FileTarget) -> Result<Mp4Branch, EncodeError> {
        let mux = make("mp4mux")?;
        mux.set_property("fragment-duration", FRAGMENT_MS);
        let sink = make("filesink")?;
        sink.set_property("location", target.local_path.to_string_lossy().as_ref());
        sink.set_property("sync", false);
        pipeline.add_many([&mux, &sink]).expect("fresh elements");
        mux.link(&sink).expect("mp4mux links to filesink");
        Ok(Mp4Branch { mux })
    }

    /// Links a tee's new branch (through a queue) to the muxer's `video_%u`/`audio_%u` pad.
    pub fn attach(
        &self,
        pipeline: &gst::Pipeline,
        tee: &gst::Element,
        pad_template: &str,
    ) -> Result<(), EncodeError> {
        let queue = make("queue")?;
        pipeline.add(&queue).expect("fresh queue");
        tee.link(&queue).expect("tee links to queue");
        let sink = self
            .mux
            .request_pad_simple(pad_template)
            .ok_or(EncodeError::MissingElement("mp4mux pad"))?;
        queue
            .static_pad("src")
            .expect("queue has src")
            .link(&sink)
            .expect("queue links to mux");
        Ok(())
    }
}
