//! One step of the ramp: K egresses of one shape at once, in this process, paced to the
//! wall clock, measured over a window after a warm-up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use livekit_protocol::EgressStatus;
use serde::{Deserialize, Serialize};

use super::probe;
use super::ramp::{Outcome, Policy};
use crate::compositor::Backend;
use crate::egress::stats::{EgressStats, Stage};
use crate::egress::{self, RunOptions, StatusSink, Stop};
use crate::layout::LayoutLibrary;
use crate::request;
use crate::source::clip::{ClipCodec, ClipRoom};

/// Warm-up before the measured window (encoders and decoders settle).
pub const WARMUP: Duration = Duration::from_millis(1500);

/// What one room looks like.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Participants per room, each decoding its own copy of the input clip.
    pub participants: usize,
    /// Input clip width.
    pub input_width: u32,
    /// Input clip height.
    pub input_height: u32,
    /// Input clip codec.
    pub codec: ClipCodec,
    /// Layout name.
    pub layout: String,
    /// LiveKit encoding preset of the output.
    pub preset: String,
    /// Outputs per room: any of `file`, `hls`, `images`, `rtmp`.
    pub outputs: Vec<String>,
    /// Where `rtmp` outputs publish (the harness's local sink), not part of the shape.
    #[serde(skip)]
    pub rtmp_url: Option<String>,
}

impl Shape {
    /// A stable name for the shape (cost profiles are keyed by it).
    pub fn key(&self) -> String {
        format!(
            "{}p-{}x{}-{}-{}-{}-{}",
            self.participants,
            self.input_width,
            self.input_height,
            self.codec.name(),
            self.layout,
            self.preset,
            self.outputs.join("+")
        )
    }

    /// The egress request of room `n`.
    pub fn request_json(&self, n: u32) -> String {
        let mut outputs = Vec::new();
        for o in &self.outputs {
            match o.as_str() {
                "file" => outputs.push(format!(
                    r#""file_outputs": [{{"filepath": "room{n}/rec.mp4", "disable_manifest": true}}]"#
                )),
                "hls" => outputs.push(format!(
                    r#""segment_outputs": [{{"filename_prefix": "room{n}/hls/s", "playlist_name": "p.m3u8", "disable_manifest": true}}]"#
                )),
                "images" => outputs.push(format!(
                    r#""image_outputs": [{{"capture_interval": 5, "width": 640, "height": 360, "filename_prefix": "room{n}/img/i", "disable_manifest": true}}]"#
                )),
                "rtmp" => outputs.push(format!(
                    r#""stream_outputs": [{{"protocol": "RTMP", "urls": ["{}/bench-{n}"]}}]"#,
                    self.rtmp_url
                        .as_deref()
                        .unwrap_or("rtmp://127.0.0.1:1935/live")
                )),
                _ => {}
            }
        }
        format!(
            r#"{{"room_name": "bench-{n}", "layout": "{}", "preset": "{}", {}}}"#,
            self.layout,
            self.preset,
            outputs.join(", ")
        )
    }
}

/// What one step measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Concurrent rooms.
    pub rooms: u32,
    /// Length of the measured window.
    pub seconds: f64,
    /// Whether real time held (the ramp's policy).
    pub holds: bool,
    /// Share of composited frames (all rooms) that started more than a frame late.
    pub miss_rate: f64,
    /// The slowest room's media-seconds per wall-second.
    pub realtime_min: f64,
    /// Cores used by the whole process.
    pub cpu_cores: f64,
    /// Cores per room.
    pub cpu_cores_per_room: f64,
    /// Cores by what the threads do: decode, frame_loop (upload, composite submission,
    /// readback), gpu_software (lavapipe's shader threads), encode, mux_and_other.
    pub cpu_cores_by_class: BTreeMap<String, f64>,
    /// Resident memory added per room.
    pub rss_mib_per_room: f64,
    /// Frame-loop wall time per composited frame, by stage, averaged over rooms.
    pub stage_ms_per_frame: BTreeMap<String, f64>,
    /// GPU time per composited frame (timestamp queries, mean over rooms), when the
    /// adapter can measure it.
    #[serde(default)]
    pub gpu_ms_per_frame: Option<f64>,
    /// Composited frames per GPU submission over the step (the device's batched
    /// submissions); `None` on the CPU compositor or with batching off.
    #[serde(default)]
    pub frames_per_submission: Option<f64>,
    /// Rooms that did not end COMPLETE, and why.
    pub failures: Vec<String>,
}

impl StepReport {
    /// Sets `holds` from the policy (a step with failed rooms never holds).
    pub fn judged(mut self, policy: &Policy) -> StepReport {
        self.holds = self.failures.is_empty() && policy.holds(&self.outcome());
        self
    }

    /// The part the ramp decides on.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            rooms: self.rooms,
            miss_rate: self.miss_rate,
            realtime: self.realtime_min,
        }
    }

    /// The stage that limits: the thread class using the most cores, or the encoder when
    /// the frame loop spends over a quarter of each frame waiting to hand frames to it.
    pub fn bottleneck(&self, frame_ms: f64) -> String {
        if self
            .stage_ms_per_frame
            .get(Stage::Push.name())
            .is_some_and(|&ms| ms > frame_ms / 4.0)
        {
            return "encode (the frame loop waits for the encoder)".into();
        }
        self.cpu_cores_by_class
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, _)| k.clone())
            .unwrap_or_default()
    }
}

struct Snapshot {
    at: Instant,
    cpu: f64,
    classes: BTreeMap<&'static str, f64>,
    rooms: Vec<(u64, u64, Duration, [Duration; 5])>,
}

fn snapshot(stats: &[Arc<EgressStats>]) -> Snapshot {
    Snapshot {
        at: Instant::now(),
        cpu: probe::process_cpu(),
        classes: probe::cpu_by_class(),
        rooms: stats
            .iter()
            .map(|s| {
                (
                    s.ticks(),
                    s.late(),
                    s.media(),
                    Stage::ALL.map(|st| s.stage(st)),
                )
            })
            .collect(),
    }
}

/// Runs `rooms` egresses of `shape` for `seconds` (after [`WARMUP`]) on `backend`, decoding
/// `clip`, writing under `dir`.
pub fn run_step(
    shape: &Shape,
    rooms: u32,
    seconds: f64,
    clip: &Path,
    backend: &Backend,
    dir: &Path,
    policy: &Policy,
) -> StepReport {
    let rss_before = probe::rss_mib();
    let stats: Vec<Arc<EgressStats>> = (0..rooms).map(|_| Arc::default()).collect();
    let total = WARMUP + Duration::from_secs_f64(seconds) + Duration::from_millis(500);
    let handles: Vec<_> = (0..rooms)
        .map(|n| {
            let (shape, clip, backend) = (shape.clone(), clip.to_owned(), backend.clone());
            let out_dir: PathBuf = dir.join(format!("step{rooms}"));
            let stats = stats[n as usize].clone();
            std::thread::Builder::new()
                .name(format!("egress-{n}"))
                .spawn(move || run_room(n, &shape, &clip, backend, out_dir, stats, total))
                .expect("spawn egress thread")
        })
        .collect();
    let batches = || match backend {
        Backend::Gpu(gpu) => Some(gpu.batch_counts()),
        Backend::Cpu => None,
    };
    std::thread::sleep(WARMUP);
    let a = snapshot(&stats);
    let batches_a = batches();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let b = snapshot(&stats);
    let frames_per_submission = batches_a
        .zip(batches())
        .and_then(|((s0, f0), (s1, f1))| (s1 > s0).then(|| (f1 - f0) as f64 / (s1 - s0) as f64));
    let rss_after = probe::rss_mib();
    let failures: Vec<String> = handles
        .into_iter()
        .enumerate()
        .filter_map(|(n, h)| match h.join() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("room {n}: {e}")),
            Err(_) => Some(format!("room {n}: panicked")),
        })
        .collect();
    let gpu: Vec<f64> = stats
        .iter()
        .filter_map(|s| s.gpu_time())
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();

    let wall = (b.at - a.at).as_secs_f64();
    let (mut ticks, mut late) = (0u64, 0u64);
    let mut realtime_min = f64::INFINITY;
    let mut stage_sum = [0.0f64; 5];
    for (ra, rb) in a.rooms.iter().zip(&b.rooms) {
        ticks += rb.0 - ra.0;
        late += rb.1 - ra.1;
        realtime_min = realtime_min.min((rb.2 - ra.2).as_secs_f64() / wall);
        for (i, s) in stage_sum.iter_mut().enumerate() {
            *s += (rb.3[i] - ra.3[i]).as_secs_f64();
        }
    }
    let per_frame = |s: f64| {
        if ticks == 0 {
            0.0
        } else {
            s * 1000.0 / ticks as f64
        }
    };
    let cpu_cores = (b.cpu - a.cpu) / wall;
    StepReport {
        rooms,
        seconds: wall,
        holds: false,
        miss_rate: if ticks == 0 {
            1.0
        } else {
            late as f64 / ticks as f64
        },
        realtime_min: if realtime_min.is_finite() {
            realtime_min
        } else {
            0.0
        },
        cpu_cores,
        cpu_cores_per_room: cpu_cores / rooms.max(1) as f64,
        cpu_cores_by_class: b
            .classes
            .iter()
            .map(|(k, v)| {
                let before = a.classes.get(k).copied().unwrap_or(0.0);
                (k.to_string(), ((v - before) / wall).max(0.0))
            })
            .collect(),
        rss_mib_per_room: (rss_after - rss_before).max(0.0) / rooms.max(1) as f64,
        stage_ms_per_frame: Stage::ALL
            .iter()
            .zip(stage_sum)
            .map(|(st, s)| (st.name().to_owned(), per_frame(s)))
            .collect(),
        gpu_ms_per_frame: (!gpu.is_empty()).then(|| gpu.iter().sum::<f64>() / gpu.len() as f64),
        frames_per_submission,
        failures,
    }
    .judged(policy)
}

/// One room of a step: egress `n` of `shape` decoding `clip`, for `total` media time;
/// `Err` names why the room failed (a stream that failed fails it too).
fn run_room(
    n: u32,
    shape: &Shape,
    clip: &Path,
    backend: Backend,
    out_dir: PathBuf,
    stats: Arc<EgressStats>,
    total: Duration,
) -> Result<(), String> {
    let mut room =
        ClipRoom::new(shape.participants, clip, shape.codec).map_err(|e| e.to_string())?;
    let (req, raw) =
        request::parse_room_composite(&shape.request_json(n)).map_err(|e| e.to_string())?;
    let extensions = request::Extensions::read(&raw);
    let plan = request::plan_room_composite(req, &extensions, &LayoutLibrary::builtin())
        .map_err(|e| e.to_string())?;
    let opts = RunOptions {
        out_dir,
        duration: Some(total),
        stop: Stop::new(),
        realtime: true,
        control: None,
        stats: Some(stats),
        storage: Default::default(),
        limit: None,
        status: StatusSink::none(),
    };
    let id = format!("EG_bench{n}");
    let info = egress::run(&id, &plan, &mut room, Some(backend), &opts);
    let failed = livekit_protocol::stream_info::Status::Failed as i32;
    if let Some(s) = info.stream_results.iter().find(|s| s.status == failed) {
        return Err(format!("stream {}: {}", s.url, s.error));
    }
    if info.status == EgressStatus::EgressComplete as i32 {
        Ok(())
    } else {
        Err(info.error)
    }
}

/// A shape for tests: 640x360 H.264 inputs, grid, 720p30.
#[cfg(test)]
pub(crate) fn test_shape(participants: usize, outputs: &[&str]) -> Shape {
    Shape {
        participants,
        input_width: 640,
        input_height: 360,
        codec: ClipCodec::H264,
        layout: "grid".into(),
        preset: "H264_720P_30".into(),
        outputs: outputs.iter().map(|o| o.to_string()).collect(),
        rtmp_url: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_requests_parse() {
        let shape = test_shape(4, &["file", "hls", "images"]);
        let (req, raw) = request::parse_room_composite(&shape.request_json(3)).unwrap();
        let plan = request::plan_room_composite(
            req,
            &request::Extensions::read(&raw),
            &LayoutLibrary::builtin(),
        )
        .unwrap();
        assert_eq!(plan.outputs.files.len(), 1);
        assert_eq!(plan.outputs.segments.len(), 1);
        assert_eq!(plan.outputs.images.len(), 1);
        assert!(!plan.outputs.manifest);
        assert_eq!(
            shape.key(),
            "4p-640x360-h264-grid-H264_720P_30-file+hls+images"
        );
    }
}
