//! The baseline in the same run: the same room shape done by a plain GStreamer CPU
//! pipeline per room (each participant's clip decoded, scaled to the size and placed at
//! the position tessera's layout gives its picture, blended by `compositor`, tones on `audiomixer`, `x264enc` + AAC into fragmented MP4, paced to the
//! clock by the file sink), measured like tessera's steps.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use livekit_protocol::EncodingOptionsPreset;

use super::probe;
use super::ramp::Policy;
use super::run::{Shape, StepReport, WARMUP};
use crate::compositor::{LayerContent, scene};
use crate::layout::LayoutLibrary;
use crate::request::encoding;
use crate::source::RoomSource;
use crate::source::synthetic::SyntheticRoom;
use crate::source::synthetic::participant_tone_hz;

/// Where tessera's layout draws each participant's picture in a frame of `width` x
/// `height` (x, y, w, h; sizes even), so the baseline scales and places its pictures the
/// same way: the same pixels to scale and blend, without the corners and labels. `None`
/// when the layout draws fewer pictures than there are participants.
pub fn tiles(shape: &Shape, width: u32, height: u32) -> Option<Vec<(i32, i32, u32, u32)>> {
    let layout = LayoutLibrary::builtin().resolve(&shape.layout).ok()?;
    let n = shape.participants.max(1);
    let mut room = SyntheticRoom::new(n, shape.input_width & !1, shape.input_height & !1);
    room.advance_video(Duration::ZERO);
    let cameras: Vec<_> = (0..n).map(|i| room.video(i)).collect();
    let members = scene::members(&room.participants(), &cameras);
    let pictures = scene::Pictures {
        cameras: &cameras,
        screen_share: None,
    };
    let frame = scene::still(&layout, &members, None, &pictures, width, height);
    let tiles: Vec<_> = frame
        .layers
        .iter()
        .filter(|l| matches!(l.content, LayerContent::Picture { .. }))
        .map(|l| {
            let d = l.dst;
            let even = |v: f32| ((v / 2.0).round() as u32 * 2).max(2);
            (d.x.round() as i32, d.y.round() as i32, even(d.w), even(d.h))
        })
        .collect();
    (tiles.len() == n).then_some(tiles)
}

/// The pipeline description of one baseline room.
pub fn description(shape: &Shape, clip: &Path, out: &Path) -> Result<String, String> {
    let preset = EncodingOptionsPreset::from_str_name(&shape.preset)
        .ok_or_else(|| format!("unknown preset {}", shape.preset))?;
    let p = encoding::from_preset(preset).map_err(|e| e.to_string())?;
    let n = shape.participants.max(1);
    // tessera's tile geometry; a plain grid if the layout has no picture per participant.
    let tiles = tiles(shape, p.width, p.height).unwrap_or_else(|| {
        let cols = (n as f64).sqrt().ceil() as u32;
        let rows = (n as u32).div_ceil(cols);
        let (cw, ch) = ((p.width / cols) & !1, (p.height / rows) & !1);
        (0..n as u32)
            .map(|i| (((i % cols) * cw) as i32, ((i / cols) * ch) as i32, cw, ch))
            .collect()
    });
    let mut pads = String::new();
    let mut inputs = String::new();
    // The same decoders as tessera's (the process's probe), so the two differ only in
    // how they composite and encode.
    let (demux, decode) = (
        shape.codec.demuxer(),
        shape.codec.decode_fragment().map_err(|e| e.to_string())?,
    );
    for (i, &(x, y, cw, ch)) in tiles.iter().enumerate() {
        pads.push_str(&format!(
            " sink_{i}::xpos={x} sink_{i}::ypos={y} sink_{i}::width={cw} sink_{i}::height={ch}"
        ));
        inputs.push_str(&format!(
            " filesrc location=\"{}\" ! {demux} ! {decode} ! videoconvert ! videoscale ! \
             video/x-raw,format=I420,width={cw},height={ch} ! queue ! mix.sink_{i} \
             audiotestsrc freq={} volume=0.2 ! audio/x-raw,rate=48000,channels=1 ! amix.",
            clip.display(),
            participant_tone_hz(i)
        ));
    }
    Ok(format!(
        "compositor name=mix background=black{pads} ! \
         video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 ! queue ! \
         x264enc speed-preset=veryfast bitrate={kbps} bframes=0 ! video/x-h264,profile=main ! \
         h264parse ! mp4mux name=mux fragment-duration=1000 ! \
         filesink name=sink sync=true location=\"{out}\" \
         audiomixer name=amix ! audioconvert ! audioresample ! \
         audio/x-raw,rate={hz},channels=2 ! {aac} bitrate={abps} ! aacparse ! queue ! mux.{inputs}",
        w = p.width,
        h = p.height,
        fps = p.framerate,
        kbps = p.video_bitrate_kbps,
        hz = p.audio_frequency,
        abps = p.audio_bitrate_kbps * 1000,
        out = out.display(),
        aac = crate::encode::aac_encoder().ok_or("no AAC encoder (avenc_aac or voaacenc)")?,
    ))
}

fn position(p: &gst::Pipeline) -> Duration {
    Duration::from_nanos(
        p.query_position::<gst::ClockTime>()
            .map_or(0, |t| t.nseconds()),
    )
}

/// Runs `rooms` baseline pipelines for `seconds` after [`WARMUP`].
pub fn run_step(
    shape: &Shape,
    rooms: u32,
    seconds: f64,
    clip: &Path,
    dir: &Path,
    policy: &Policy,
) -> StepReport {
    let rss_before = probe::rss_mib();
    let mut failures = Vec::new();
    let step_dir = dir.join(format!("gst-step{rooms}"));
    let _ = std::fs::create_dir_all(&step_dir);
    let pipelines: Vec<gst::Pipeline> = (0..rooms)
        .filter_map(|n| {
            let built = description(shape, clip, &step_dir.join(format!("room{n}.mp4")))
                .and_then(|d| gst::parse::launch(&d).map_err(|e| e.to_string()))
                .and_then(|e| {
                    e.downcast::<gst::Pipeline>()
                        .map_err(|_| "not a pipeline".to_string())
                });
            match built {
                Ok(p) => Some(p),
                Err(e) => {
                    failures.push(format!("room {n}: {e}"));
                    None
                }
            }
        })
        .collect();
    for p in &pipelines {
        if let Err(e) = p.set_state(gst::State::Playing) {
            failures.push(e.to_string());
        }
    }
    std::thread::sleep(WARMUP);
    let (t0, cpu0) = (Instant::now(), probe::process_cpu());
    let pos0: Vec<_> = pipelines.iter().map(position).collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let wall = t0.elapsed().as_secs_f64();
    let cpu = probe::process_cpu() - cpu0;
    let realtime_min = pipelines
        .iter()
        .zip(&pos0)
        .map(|(p, a)| position(p).saturating_sub(*a).as_secs_f64() / wall)
        .fold(f64::INFINITY, f64::min);
    let rss_after = probe::rss_mib();
    for p in &pipelines {
        if let Some(bus) = p.bus()
            && let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error])
            && let gst::MessageView::Error(e) = msg.view()
        {
            failures.push(e.error().to_string());
        }
        let _ = p.set_state(gst::State::Null);
    }
    StepReport {
        rooms,
        seconds: wall,
        holds: false,
        // The pipeline has no per-frame deadline of its own: real time decides.
        miss_rate: 0.0,
        realtime_min: if realtime_min.is_finite() {
            realtime_min
        } else {
            0.0
        },
        cpu_cores: cpu / wall,
        cpu_cores_per_room: cpu / wall / rooms.max(1) as f64,
        cpu_cores_by_class: BTreeMap::from([("gstreamer".to_string(), cpu / wall)]),
        rss_mib_per_room: (rss_after - rss_before).max(0.0) / rooms.max(1) as f64,
        stage_ms_per_frame: BTreeMap::new(),
        gpu_ms_per_frame: None,
        frames_per_submission: None,
        failures,
    }
    .judged(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_pipeline_parses() {
        gst::init().unwrap();
        let shape = super::super::run::test_shape(4, &["file"]);
        let d = description(
            &shape,
            Path::new("/nonexistent.mp4"),
            Path::new("/tmp/x.mp4"),
        )
        .unwrap();
        // The grid's fourth picture, as tessera draws it: 622x350 at (647, 363).
        assert!(
            d.contains("sink_3::xpos=647 sink_3::ypos=363 sink_3::width=622 sink_3::height=350"),
            "{d}"
        );
        gst::parse::launch(&d).expect("a valid GStreamer pipeline");
    }
}
