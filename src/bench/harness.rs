//! The harness proper: ramps GStreamer-fed egresses, runs the baseline, writes the reports.

use std::path::{Path, PathBuf};

use super::ramp::{Outcome, Policy, Ramp};
use super::report::{LivekitModel, Machine, Ramped, Report};
use super::run::{Shape, StepReport, WARMUP};
use super::{baseline, probe};
use crate::compositor::{Backend, BackendChoice, GpuError};
use crate::encode;
use crate::source::clip::{ClipCodec, ClipError, make_clip};

/// Why the harness could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The input clip could not be made.
    #[error("input clip: {0}")]
    Clip(#[from] ClipError),
    /// No GPU adapter (not even a software one).
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// The shape is unusable.
    #[error("{0}")]
    Shape(String),
    /// Writing the report failed.
    #[error("writing {0}: {1}")]
    Io(String, std::io::Error),
}

/// How to run the harness.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The room shape.
    pub shape: Shape,
    /// Measured seconds per step.
    pub step_seconds: f64,
    /// When a step holds, and the most rooms to try.
    pub policy: Policy,
    /// Also ramp the GStreamer CPU baseline.
    pub baseline: bool,
    /// Where the report and the steps' recordings go.
    pub out_dir: PathBuf,
    /// Where input clips are cached.
    pub clip_dir: PathBuf,
    /// Which compositor the rooms use.
    pub compositor: BackendChoice,
}

fn clip_path(dir: &Path, shape: &Shape, seconds: u32) -> PathBuf {
    let ext = match shape.codec {
        ClipCodec::H264 => "mp4",
        ClipCodec::Vp8 => "webm",
    };
    dir.join(format!(
        "ball-{}x{}-{}s.{ext}",
        shape.input_width, shape.input_height, seconds
    ))
}

fn ramp(
    policy: Policy,
    progress: &mut dyn FnMut(&str),
    who: &str,
    mut step: impl FnMut(u32) -> StepReport,
) -> Ramped {
    let mut r = Ramp::new(policy);
    let mut steps = Vec::new();
    while let Some(k) = r.next_rooms() {
        progress(&format!("{who}: {k} room(s)..."));
        let s = step(k);
        progress(&format!(
            "{who}: {k} room(s): {} (missed {:.1}%, slowest {:.3}x real time, {:.2} cores, {:.2}/room{})",
            if s.holds { "holds" } else { "does not hold" },
            s.miss_rate * 100.0,
            s.realtime_min,
            s.cpu_cores,
            s.cpu_cores_per_room,
            if s.failures.is_empty() {
                String::new()
            } else {
                format!(", failures: {}", s.failures.join("; "))
            }
        ));
        // A step with failed rooms never holds, whatever its timings.
        let outcome = if s.holds {
            s.outcome()
        } else {
            Outcome {
                miss_rate: 1.0,
                ..s.outcome()
            }
        };
        r.record(&outcome);
        steps.push(s);
    }
    Ramped {
        max_rooms: r.max_sustained(),
        steps,
    }
}

/// Runs the harness; `progress` gets a line per step as it goes.
pub fn run(opts: &BenchOptions, progress: &mut dyn FnMut(&str)) -> Result<Report, BenchError> {
    let mut shape = opts.shape.clone();
    if shape.participants == 0 || shape.participants > 64 {
        return Err(BenchError::Shape(format!(
            "--participants: must be 1 to 64, got {}",
            shape.participants
        )));
    }
    // The room's request must plan (layout and preset names), before any clip is made.
    let (req, raw) = crate::request::parse_room_composite(&shape.request_json(0))
        .map_err(|e| BenchError::Shape(e.to_string()))?;
    crate::request::plan_room_composite(
        req,
        &crate::request::Extensions::read(&raw),
        &crate::layout::LayoutLibrary::builtin(),
    )
    .map_err(|e| BenchError::Shape(format!("the room's request: {e}")))?;
    let clip_seconds = (WARMUP.as_secs_f64() + opts.step_seconds + 3.0).ceil() as u32;
    let clip = clip_path(&opts.clip_dir, &shape, clip_seconds);
    // About 0.1 bit per pixel at 30 fps, as a camera sends.
    let kbps = (shape.input_width * shape.input_height * 3 / 1000).max(100);
    progress(&format!("input clip {}", clip.display()));
    make_clip(
        &clip,
        shape.codec,
        shape.input_width,
        shape.input_height,
        kbps,
        clip_seconds,
    )?;
    let backend = open_backend(opts.compositor)?;
    let encoder = encode::probe_video_encoder()
        .map(|c| c.factory.to_owned())
        .unwrap_or_else(|e| e.to_string());
    let decoder = crate::source::decoders::shared_video_decoder(shape.codec.video());
    let machine = Machine {
        cpu: probe::cpu_model(),
        cores: probe::cores(),
        gpu: backend.describe(),
        encoder,
        decoder: decoder.element(),
    };
    std::fs::create_dir_all(&opts.out_dir)
        .map_err(|e| BenchError::Io(opts.out_dir.display().to_string(), e))?;
    // `rtmp` outputs stream to a local nginx-rtmp for the whole run.
    let _rtmp = if shape.outputs.iter().any(|o| o == "rtmp") {
        let sink = super::rtmp::RtmpSink::start(&opts.out_dir.join("rtmp-sink"))
            .map_err(BenchError::Shape)?;
        progress(&format!("RTMP sink {}", sink.url()));
        shape.rtmp_url = Some(sink.url());
        Some(sink)
    } else {
        None
    };
    let shape = &shape;
    let steps_dir = opts.out_dir.join("steps");
    let frame_ms = 1000.0 / 30.0;

    let tessera = ramp(opts.policy, progress, "tessera", |k| {
        let s = super::run::run_step(
            shape,
            k,
            opts.step_seconds,
            &clip,
            &backend,
            &steps_dir,
            &opts.policy,
        );
        let _ = std::fs::remove_dir_all(&steps_dir);
        s
    });
    let gstreamer = opts.baseline.then(|| {
        ramp(opts.policy, progress, "gstreamer", |k| {
            let s =
                baseline::run_step(shape, k, opts.step_seconds, &clip, &steps_dir, &opts.policy);
            let _ = std::fs::remove_dir_all(&steps_dir);
            s
        })
    });
    let gpu_ms_per_frame = tessera
        .at_max()
        .or(tessera.steps.first())
        .and_then(|s| s.gpu_ms_per_frame);
    let bottleneck = Some(match tessera.first_failure() {
        Some(s) => s.bottleneck(frame_ms),
        None => format!("none reached (capped at {} rooms)", opts.policy.max_rooms),
    });
    let report = Report {
        version: env!("CARGO_PKG_VERSION").into(),
        measured_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        livekit_model: LivekitModel::for_cores(machine.cores),
        machine,
        shape: shape.clone(),
        policy: opts.policy,
        step_seconds: opts.step_seconds,
        tessera,
        gstreamer,
        bottleneck,
        gpu_ms_per_frame,
        notes: notes(shape, gpu_ms_per_frame.is_some()),
    };
    write_report(&report, &opts.out_dir)?;
    Ok(report)
}

/// Opens the compositor on a thread named `gpu-init`: the driver's worker threads (a
/// software rasteriser's especially) inherit the name, so their CPU is counted as GPU.
/// A GPU's pipelines are compiled once here, before anything is measured.
fn open_backend(choice: BackendChoice) -> Result<Backend, BenchError> {
    let backend = std::thread::Builder::new()
        .name("gpu-init".into())
        .spawn(move || {
            let backend = Backend::open(choice)?;
            if let Backend::Gpu(_) = &backend {
                drop(backend.compositor(64, 64));
            }
            Ok::<_, GpuError>(backend)
        })
        .expect("spawn gpu-init")
        .join()
        .expect("gpu-init does not panic")?;
    Ok(backend)
}

/// What the report's figures mean, where a reader could take them for more.
fn notes(shape: &Shape, gpu_timed: bool) -> Vec<String> {
    let gpu = if gpu_timed {
        "GPU time per frame is the span from the first to the last pass of a frame \
         (timestamp queries on one frame in 15), wall time on the GPU's clock: on a \
         software adapter it includes waiting for CPU threads shared with the rest."
    } else {
        "GPU time per frame: the adapter has no timestamp queries; on a software \
         adapter the GPU's work is the gpu_software CPU class."
    };
    let baseline = shape.outputs.iter().any(|o| o != "file").then_some(
        "The GStreamer baseline writes the MP4 file only: with HLS, image or RTMP \
         outputs tessera's rooms do more than the baseline's.",
    );
    std::iter::once(gpu)
        .chain(baseline)
        .map(str::to_owned)
        .collect()
}

/// Writes `report.json`, `report.md`, `report.svg` and `cost-profile.json` into `dir`.
pub fn write_report(report: &Report, dir: &Path) -> Result<(), BenchError> {
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| BenchError::Io(path.display().to_string(), e))
    };
    write(
        "report.json",
        serde_json::to_vec_pretty(report).expect("report serialises"),
    )?;
    write("report.md", report.markdown().into_bytes())?;
    write("report.svg", report.svg().into_bytes())?;
    write(
        "cost-profile.json",
        serde_json::to_vec_pretty(&report.cost_profile()).expect("profile serialises"),
    )
}

/// Reads a report written by [`write_report`].
pub fn read_report(path: &Path) -> Result<Report, BenchError> {
    let bytes = std::fs::read(path).map_err(|e| BenchError::Io(path.display().to_string(), e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        BenchError::Shape(format!(
            "{}: not a tessera bench report: {e}",
            path.display()
        ))
    })
}
