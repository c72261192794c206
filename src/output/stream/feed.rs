//! The feed from the encode to the streams: two app sinks whose callbacks hand each
//! encoded buffer to every running stream's app sources, rebased to that stream's clock
//! and starting on a key frame (with the audio from that key frame on).

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::encode::{EncodeError, make};

/// A timestamp of `sample` as running time (encoders may offset their timestamps, e.g.
/// x264 by 1000 hours, and say so in the segment).
fn running(sample: &gst::Sample, t: Option<gst::ClockTime>) -> Option<gst::ClockTime> {
    let t = t?;
    match sample.segment() {
        Some(seg) => seg
            .downcast_ref::<gst::ClockTime>()
            .and_then(|s| s.to_running_time(t)),
        None => Some(t),
    }
}

/// The running time of a sample's buffer.
fn sample_time(sample: &gst::Sample) -> Option<gst::ClockTime> {
    running(sample, sample.buffer().and_then(|b| b.pts()))
}

/// A running stream's feed: its app sources and its time base.
pub(super) struct Sender {
    pub(super) id: u64,
    pub(super) video: Option<gst_app::AppSrc>,
    pub(super) audio: Option<gst_app::AppSrc>,
    /// `(media time of the key frame the stream started on, the stream pipeline's
    /// running time then)`: times are rebased so the stream runs on its own clock (an SRT
    /// sender stamps packets with it, and a receiver drops packets that look late).
    pub(super) offset: Mutex<Option<(gst::ClockTime, gst::ClockTime)>>,
    /// Media time of the last audio pushed (a replayed sample is not pushed twice).
    pub(super) audio_until: Mutex<Option<gst::ClockTime>>,
    pub(super) pipeline: gst::Pipeline,
}

impl Sender {
    fn push(
        &self,
        src: &gst_app::AppSrc,
        sample: &gst::Sample,
        (first, base): (gst::ClockTime, gst::ClockTime),
    ) {
        let Some(buffer) = sample.buffer() else {
            return;
        };
        let Some(pts) = running(sample, buffer.pts()) else {
            return;
        };
        let Some(rebased) = pts.checked_sub(first).map(|t| t + base) else {
            return;
        };
        if let Some(caps) = sample.caps()
            && src.caps().as_ref().map(|c| c.as_ref()) != Some(caps)
        {
            src.set_caps(Some(&caps.to_owned()));
        }
        let mut b = buffer.copy();
        {
            let b = b.get_mut().expect("copied buffer is writable");
            b.set_pts(rebased);
            b.set_dts(
                running(sample, buffer.dts())
                    .and_then(|d| d.checked_sub(first))
                    .map(|t| t + base),
            );
        }
        // A failed stream's source refuses buffers; its bus reports why.
        let _ = src.push_buffer(b);
    }

    /// Starts on a key frame; then replays the encoded audio from that key frame on
    /// (audio leaves its encoder ahead of video, by the video encoder's latency).
    fn video(&self, sample: &gst::Sample, feed: &Feed) {
        let Some(src) = &self.video else { return };
        let Some(buffer) = sample.buffer() else {
            return;
        };
        let mut offset = self.offset.lock().expect("offset lock");
        if offset.is_none() {
            if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                return;
            }
            let recent = feed.recent_audio.lock().expect("audio lock");
            if let Some(audio) = &self.audio {
                // A muxer needs every stream's caps before it starts.
                let Some(caps) = recent.back().and_then(|s| s.caps_owned()) else {
                    return;
                };
                audio.set_caps(Some(&caps));
            }
            let Some((pts, now)) = self.time_base(sample) else {
                return;
            };
            *offset = Some((pts, now));
            tracing::info!(
                stream = self.id,
                media_s = pts.seconds_f64(),
                stream_s = now.seconds_f64(),
                "stream starts on a key frame"
            );
            let at = (pts, now);
            self.push(src, sample, at);
            if let Some(audio) = &self.audio {
                for s in recent.iter() {
                    self.push_audio(audio, s, at);
                }
            }
            return;
        }
        let at = offset.expect("set above");
        drop(offset);
        self.push(src, sample, at);
    }

    /// The time base a stream starting on `sample` gets: the sample's running time and
    /// the stream pipeline's running time now.
    fn time_base(&self, sample: &gst::Sample) -> Option<(gst::ClockTime, gst::ClockTime)> {
        let pts = sample_time(sample)?;
        let now = self
            .pipeline
            .current_running_time()
            .unwrap_or(gst::ClockTime::ZERO);
        Some((pts, now))
    }

    fn audio(&self, sample: &gst::Sample) {
        let Some(src) = &self.audio else { return };
        let mut offset = self.offset.lock().expect("offset lock");
        if offset.is_none() {
            if self.video.is_some() {
                return; // wait for the video key frame
            }
            *offset = self.time_base(sample);
        }
        let Some(at) = *offset else { return };
        self.push_audio(src, sample, at);
    }

    fn push_audio(
        &self,
        src: &gst_app::AppSrc,
        sample: &gst::Sample,
        at: (gst::ClockTime, gst::ClockTime),
    ) {
        let pts = sample_time(sample);
        let mut until = self.audio_until.lock().expect("audio lock");
        if pts.is_none() || (until.is_some() && pts <= *until) {
            return;
        }
        *until = pts;
        self.push(src, sample, at);
    }
}

/// The senders the app-sink callbacks feed.
#[derive(Default)]
pub(super) struct Feed {
    pub(super) senders: Mutex<Vec<Arc<Sender>>>,
    /// The last [`AUDIO_HISTORY`] of encoded audio, for streams that start on a later
    /// video key frame.
    recent_audio: Mutex<std::collections::VecDeque<gst::Sample>>,
}

/// Encoded audio kept for joining streams (more than any video encoder's latency).
const AUDIO_HISTORY: gst::ClockTime = gst::ClockTime::from_seconds(5);

impl Feed {
    fn each(&self, f: impl Fn(&Sender)) {
        let senders = self.senders.lock().expect("feed lock").clone();
        for s in &senders {
            f(s);
        }
    }
}

pub(super) fn app_sink(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    feed: Arc<Feed>,
    video: bool,
) -> Result<gst::Pad, EncodeError> {
    let queue = make("queue")?;
    queue.set_property_from_str("leaky", "downstream");
    queue.set_property("max-size-time", 2_000_000_000u64);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-buffers", 0u32);
    let sink = gst_app::AppSink::builder()
        .name(if video {
            "stream-video"
        } else {
            "stream-audio"
        })
        .sync(false)
        .async_(false)
        .callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if video {
                        feed.each(|f| f.video(&sample, &feed));
                    } else {
                        {
                            let mut recent = feed.recent_audio.lock().expect("audio lock");
                            recent.push_back(sample.clone());
                            let newest = sample_time(&sample);
                            while let (Some(new), Some(old)) =
                                (newest, recent.front().and_then(sample_time))
                                && new.saturating_sub(old) > AUDIO_HISTORY
                            {
                                recent.pop_front();
                            }
                        }
                        feed.each(|f| f.audio(&sample));
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        )
        .build();
    pipeline
        .add_many([&queue, sink.upcast_ref()])
        .expect("fresh elements");
    gst::Element::link_many([tee, &queue, sink.upcast_ref()])
        .expect("tee links to the stream app sink");
    Ok(sink.static_pad("sink").expect("app sink pad"))
}
