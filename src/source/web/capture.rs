//! The page's pictures and sound: X11 capture of the egress's own display (`ximagesrc`,
//! MIT-SHM) at the output frame rate, converted to I420, and the monitor of its own
//! PulseAudio sink (`pulsesrc`), as 48 kHz stereo f32. Each picture and each block of
//! samples is stamped on arrival with the time since the source opened (the session
//! clock the source maps the egress clock onto).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::source::AUDIO_RATE;
use crate::source::livekit::media::{AudioRing, PictureQueue};

/// Re-anchor the sample count on the arrival clock when they drift this far apart (a
/// stall of the sound server).
const MAX_AUDIO_SKEW: Duration = Duration::from_millis(100);

/// What the capture has received so far.
#[derive(Default)]
pub struct Captured {
    /// Pictures by arrival time.
    pub pictures: PictureQueue,
    /// Pictures received in all.
    pub picture_count: u64,
    /// Left and right channels, by sample index on the session clock.
    pub sound: [AudioRing; 2],
    /// The session sample index the next block continues at.
    next_sample: Option<u64>,
}

/// A running capture.
pub struct Capture {
    pipeline: gst::Pipeline,
    /// Shared with the app sink callbacks.
    pub captured: Arc<Mutex<Captured>>,
}

/// Where to capture from.
pub struct CaptureSpec<'a> {
    /// X display (`:N`) to capture, if video is recorded.
    pub display: Option<&'a str>,
    /// Its size and the output frame rate.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// PulseAudio server (`unix:PATH`) and sink whose monitor to record, if audio is.
    pub pulse: Option<(&'a str, &'a str)>,
}

impl Capture {
    /// Builds and starts the pipeline; `origin` is the session clock's zero.
    pub fn start(spec: &CaptureSpec<'_>, origin: Instant) -> Result<Capture, String> {
        let mut parts = Vec::new();
        if let Some(display) = spec.display {
            parts.push(format!(
                "ximagesrc display-name={display} use-damage=false show-pointer=false \
                 ! video/x-raw,framerate={fps}/1 ! videoconvert \
                 ! video/x-raw,format=I420,width={w},height={h} \
                 ! appsink name=video max-buffers=2 drop=true sync=false",
                fps = spec.fps,
                w = spec.width,
                h = spec.height,
            ));
        }
        if let Some((server, sink)) = spec.pulse {
            parts.push(format!(
                "pulsesrc server={server} device={sink}.monitor do-timestamp=true \
                 latency-time=10000 buffer-time=100000 ! audioconvert ! audioresample \
                 ! audio/x-raw,format=F32LE,rate={AUDIO_RATE},channels=2,layout=interleaved \
                 ! appsink name=audio sync=false"
            ));
        }
        let description = parts.join(" ");
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| format!("capture pipeline: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "capture pipeline: not a pipeline".to_owned())?;
        let captured = Arc::new(Mutex::new(Captured::default()));
        let store = captured.clone();
        on_samples(&pipeline, "video", move |sample| {
            if let Some(mut frame) = crate::source::livekit::decode::picture_of(sample) {
                frame.pts = origin.elapsed();
                let mut c = store.lock().expect("capture lock");
                c.pictures.push(frame);
                c.picture_count += 1;
            }
        });
        let store = captured.clone();
        on_samples(&pipeline, "audio", move |sample| {
            let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok()) else {
                return;
            };
            let arrived = origin.elapsed();
            let mut c = store.lock().expect("capture lock");
            c.add_sound(map.as_slice(), arrived);
        });
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| match first_error(&pipeline) {
                Some(e) => format!("capture: {e}"),
                None => "capture: the pipeline does not start".to_owned(),
            })?;
        Ok(Capture { pipeline, captured })
    }

    /// The first error the capture reported, if any.
    pub fn error(&self) -> Option<String> {
        first_error(&self.pipeline)
    }
}

/// Calls `f` with every sample of the app sink `name`, if the pipeline has one.
fn on_samples(
    pipeline: &gst::Pipeline,
    name: &str,
    mut f: impl FnMut(&gst::Sample) + Send + 'static,
) {
    let Some(sink) = pipeline.by_name(name) else {
        return;
    };
    let sink = sink.downcast::<gst_app::AppSink>().expect("an appsink");
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                f(&sample);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

fn first_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(e.error().to_string());
        }
    }
    None
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Captured {
    /// Interleaved stereo f32 `bytes` that had all arrived `arrived` after the origin:
    /// continues the sample count, or re-anchors it on the arrival time when the two
    /// disagree by more than [`MAX_AUDIO_SKEW`] (the first block, a stall).
    fn add_sound(&mut self, bytes: &[u8], arrived: Duration) {
        let frames = bytes.len() / 8;
        if frames == 0 {
            return;
        }
        let rate = AUDIO_RATE as u64;
        let end_by_clock = (arrived.as_nanos() as u64).saturating_mul(rate) / 1_000_000_000;
        let by_clock = end_by_clock.saturating_sub(frames as u64);
        let skew = MAX_AUDIO_SKEW.as_millis() as u64 * rate / 1000;
        let at = match self.next_sample {
            Some(n) if n.abs_diff(by_clock) <= skew => n,
            _ => by_clock,
        };
        let mut left = Vec::with_capacity(frames);
        let mut right = Vec::with_capacity(frames);
        for f in bytes.chunks_exact(8) {
            left.push(f32::from_le_bytes([f[0], f[1], f[2], f[3]]));
            right.push(f32::from_le_bytes([f[4], f[5], f[6], f[7]]));
        }
        self.sound[0].write(at, &left);
        self.sound[1].write(at, &right);
        self.next_sample = Some(at + frames as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(frames: usize, l: f32, r: f32) -> Vec<u8> {
        let mut v = Vec::new();
        for _ in 0..frames {
            v.extend(l.to_le_bytes());
            v.extend(r.to_le_bytes());
        }
        v
    }

    #[test]
    fn sound_is_placed_by_arrival_then_counted() {
        let mut c = Captured::default();
        // 480 frames (10 ms) that had all arrived 1 s in: samples 47520..48000.
        c.add_sound(&block(480, 0.5, -0.5), Duration::from_secs(1));
        // The next block arrives a little late: it still continues the count.
        c.add_sound(&block(480, 0.25, 0.0), Duration::from_millis(1030));
        let mut l = vec![0.0; 960];
        let mut r = vec![0.0; 960];
        c.sound[0].mix_into(47_520, &mut l);
        c.sound[1].mix_into(47_520, &mut r);
        assert!(l[..480].iter().all(|s| *s == 0.5) && l[480..].iter().all(|s| *s == 0.25));
        assert!(r[..480].iter().all(|s| *s == -0.5) && r[480..].iter().all(|s| *s == 0.0));
    }

    #[test]
    fn a_stall_reanchors_on_the_clock() {
        let mut c = Captured::default();
        c.add_sound(&block(480, 1.0, 1.0), Duration::from_secs(1));
        // 500 ms with no sound, then a block: placed where it arrived, not at 48000.
        c.add_sound(&block(480, 0.5, 0.5), Duration::from_millis(1500));
        let mut l = vec![0.0; 480];
        c.sound[0].mix_into(72_000 - 480, &mut l);
        assert!(l.iter().all(|s| *s == 0.5), "{:?}", &l[..4]);
    }
}
