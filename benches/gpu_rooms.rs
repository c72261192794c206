//! Rooms per GPU: K rooms composited at the same time on the process's one device, each
//! on its own thread as in the service, each drawing its grid (every participant's picture
//! new every frame: upload + YUV→RGBA + composite + NV12 + readback through the ring).
//!
//! Two measurements per shape (4 tiles from 640x360, 9 tiles from 320x180, 720p output):
//! - **paced**: every room at 30 fps against its own clock; the ramp of `tessera bench`
//!   (double until a step fails, then bisect) finds the most rooms that hold real time (at
//!   most 2% of frames start more than a frame late, every room keeps 97% of 30 fps);
//! - **unpaced**: K rooms as fast as they go, for the device's throughput in frames/s,
//!   once with each room submitting alone and once with the device's batched submissions
//!   (every active room's frame in one submission), in the same run, with their ratio.
//!
//! - **copy loop**: K threads only uploading each frame's pictures and reading back a 720p
//!   NV12 frame, no drawing: the device's physical bound for the two above.
//!
//! The compositor only: no decode, no encode, no GStreamer, so it runs on the lent GPU
//! machines (`scripts/gpu-bench.sh`). Arguments: `--seconds S` per step (default 4),
//! `--max-rooms N` (default 256), `--tiles 4,9`.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tessera::bench::probe;
use tessera::bench::ramp::{Outcome, Policy, Ramp};
use tessera::compositor::{Compositor, GpuCompositor, GpuContext};
use tessera::layout::{LayoutLibrary, ResolvedLayout};

const FPS: f64 = 30.0;
const WARMUP_FRAMES: usize = 10;

/// What one step of K rooms measured.
struct Step {
    rooms: u32,
    /// Frames composited by all rooms.
    frames: u64,
    /// Frames that started more than one frame late (paced only).
    late: u64,
    /// The slowest room's frames per second.
    slowest_fps: f64,
    wall: Duration,
    /// Process CPU seconds over the step.
    cpu_s: f64,
    /// Mean GPU time of a frame over the rooms (timestamp queries), if the device has them.
    gpu_ms: Option<f64>,
    /// Whether the rooms' frames went out in the device's batched submissions.
    batched: bool,
    /// Frames per submission (batched only).
    per_submission: Option<f64>,
}

impl Step {
    fn fps(&self) -> f64 {
        self.frames as f64 / self.wall.as_secs_f64()
    }

    fn outcome(&self) -> Outcome {
        Outcome {
            rooms: self.rooms,
            miss_rate: self.late as f64 / self.frames.max(1) as f64,
            realtime: self.slowest_fps / FPS,
        }
    }

    fn line(&self, paced: bool, held: Option<bool>) -> String {
        let gpu = self.gpu_ms.map_or("n/a".into(), |g| format!("{g:.3} ms"));
        let busy = self
            .gpu_ms
            .map_or("n/a".into(), |g| format!("{:.0}%", g * self.fps() / 10.0));
        let submit = match (self.batched, self.per_submission) {
            (true, Some(n)) => format!("batched, {n:.1} frames/submission"),
            _ => "alone".to_owned(),
        };
        format!(
            "{:>4} rooms {} {submit}: {:>8.1} frames/s, slowest room {:>6.1} fps, late {:>5.2}%, \
             CPU {:>5.2} cores ({:.3}/room), GPU {gpu}/frame, GPU passes busy {busy}{}",
            self.rooms,
            if paced { "paced" } else { "unpaced" },
            self.fps(),
            self.slowest_fps,
            100.0 * self.late as f64 / self.frames.max(1) as f64,
            self.cpu_s / self.wall.as_secs_f64(),
            self.cpu_s / self.wall.as_secs_f64() / self.rooms as f64,
            match held {
                Some(true) => " -> holds",
                Some(false) => " -> does not hold",
                None => "",
            }
        )
    }
}

/// How one step runs.
#[derive(Clone, Copy)]
struct Mode {
    /// At 30 fps each, or flat out.
    paced: bool,
    /// Frames in the device's batched submissions, or each room submitting alone.
    batched: bool,
}

/// Runs `rooms` rooms of `tiles` for `seconds`, paced at 30 fps or flat out.
fn step(
    gpu: &Arc<GpuContext>,
    layout: &ResolvedLayout,
    tiles: usize,
    rooms: u32,
    seconds: f64,
    mode: Mode,
) -> Step {
    let Mode { paced, batched } = mode;
    let barrier = Arc::new(Barrier::new(rooms as usize + 1));
    let period = Duration::from_secs_f64(1.0 / FPS);
    let length = Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..rooms)
        .map(|i| {
            let (gpu, layout, barrier) = (gpu.clone(), layout.clone(), barrier.clone());
            std::thread::Builder::new()
                .name(format!("room-{i}"))
                .spawn(move || {
                    let (room, mut frames) = common::room(tiles);
                    let mut gpu_comp = GpuCompositor::new(gpu, 1280, 720).expect("a compositor");
                    gpu_comp.set_batched(batched);
                    let mut comp = Compositor::Gpu(Box::new(gpu_comp));
                    for _ in 0..WARMUP_FRAMES {
                        common::frame(&mut comp, &layout, &room, &mut frames, None, &[]);
                    }
                    barrier.wait();
                    let start = Instant::now();
                    let (mut n, mut late) = (0u64, 0u64);
                    loop {
                        let now = Instant::now();
                        if now - start >= length {
                            break;
                        }
                        if paced {
                            let due = start + period * n as u32;
                            if now < due {
                                std::thread::sleep(due - now);
                            } else if now - due > period {
                                late += 1;
                            }
                        }
                        common::frame(&mut comp, &layout, &room, &mut frames, None, &[]);
                        n += 1;
                    }
                    let wall = start.elapsed();
                    while comp
                        .receive_frame_from(0, true)
                        .expect("readback")
                        .is_some()
                    {}
                    (
                        n,
                        late,
                        n as f64 / wall.as_secs_f64(),
                        comp.gpu_time_per_frame(),
                    )
                })
                .expect("a room thread")
        })
        .collect();
    barrier.wait();
    let (cpu0, t0) = (probe::process_cpu(), Instant::now());
    let counts0 = gpu.batch_counts();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("a room thread ended cleanly"))
        .collect();
    // The rooms stop together at `seconds`; the join adds their last readbacks.
    let wall = t0.elapsed().min(length).max(Duration::from_millis(1));
    let cpu_s = probe::process_cpu() - cpu0;
    let counts = gpu.batch_counts();
    let (submissions, batched_frames) = (counts.0 - counts0.0, counts.1 - counts0.1);
    let gpu: Vec<f64> = results
        .iter()
        .filter_map(|r| r.3.map(|d| d.as_secs_f64() * 1e3))
        .collect();
    Step {
        rooms,
        frames: results.iter().map(|r| r.0).sum(),
        late: results.iter().map(|r| r.1).sum(),
        slowest_fps: results.iter().map(|r| r.2).fold(f64::INFINITY, f64::min),
        wall,
        cpu_s,
        gpu_ms: (!gpu.is_empty()).then(|| gpu.iter().sum::<f64>() / gpu.len() as f64),
        batched,
        per_submission: (submissions > 0).then(|| batched_frames as f64 / submissions as f64),
    }
}

/// The device's physical bound for `tiles` at 720p: K threads each uploading a frame's
/// worth of pictures (the tiles' I420 bytes) and reading back a 720p NV12 frame, with no
/// drawing at all, flat out for `seconds`. Returns frames per second over all threads.
fn copy_loop(gpu: &Arc<GpuContext>, tiles: usize, rooms: u32, seconds: f64) -> f64 {
    let (sw, sh) = common::source_size(tiles);
    let up_len = (tiles as u64 * (sw * sh * 3 / 2) as u64).next_multiple_of(4);
    let down_len = (1280 * 720 * 3 / 2) as u64;
    let length = Duration::from_secs_f64(seconds);
    let barrier = Arc::new(Barrier::new(rooms as usize));
    let handles: Vec<_> = (0..rooms)
        .map(|_| {
            let (gpu, barrier) = (gpu.clone(), barrier.clone());
            std::thread::spawn(move || {
                let buffer = |len, usage, label| {
                    gpu.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(label),
                        size: len,
                        usage,
                        mapped_at_creation: false,
                    })
                };
                use wgpu::BufferUsages as U;
                let upload = buffer(up_len, U::COPY_DST | U::STORAGE, "upload");
                let frame = buffer(down_len, U::COPY_SRC | U::STORAGE, "frame");
                let readback = buffer(down_len, U::COPY_DST | U::MAP_READ, "readback");
                let pictures = vec![128u8; up_len as usize];
                barrier.wait();
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < length {
                    gpu.queue.write_buffer(&upload, 0, &pictures);
                    let mut encoder = gpu.device.create_command_encoder(&Default::default());
                    encoder.copy_buffer_to_buffer(&frame, 0, &readback, 0, down_len);
                    let submission = gpu.queue.submit([encoder.finish()]);
                    readback.map_async(wgpu::MapMode::Read, .., |_| {});
                    gpu.device
                        .poll(wgpu::PollType::Wait {
                            submission_index: Some(submission),
                            timeout: None,
                        })
                        .expect("poll");
                    let bytes = readback.get_mapped_range(..).expect("mapped").to_vec();
                    std::hint::black_box(bytes);
                    readback.unmap();
                    n += 1;
                }
                n as f64 / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("a copy thread"))
        .sum()
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; a filter argument is not used.
    let seconds: f64 = arg(&args, "--seconds", 4.0);
    let max_rooms: u32 = arg(&args, "--max-rooms", 256);
    let tiles_arg: String = arg(&args, "--tiles", "4,9".to_string());
    let gpu = GpuContext::new().expect("a GPU adapter");
    println!(
        "adapter: {} ({:?}, {:?}, driver {}), timestamps: {}; CPU: {} x {}",
        gpu.info.name,
        gpu.info.device_type,
        gpu.info.backend,
        gpu.info.driver_info,
        gpu.timestamps,
        probe::cores(),
        probe::cpu_model()
    );
    let layout = LayoutLibrary::builtin().resolve("grid").expect("the grid");
    for tiles in tiles_arg
        .split(',')
        .filter_map(|t| t.trim().parse::<usize>().ok())
    {
        let (sw, sh) = common::source_size(tiles);
        println!("== {tiles} tiles from {sw}x{sh}, 1280x720 grid, {seconds} s per step");
        // The copies alone: the bound no compositing can beat.
        for k in [1u32, 4, 16].into_iter().filter(|&k| k <= max_rooms) {
            let fps = copy_loop(&gpu, tiles, k, seconds);
            println!(
                "{k:>4} rooms copy loop (upload {tiles} pictures, read back 720p NV12): \
                 {fps:>8.1} frames/s"
            );
        }
        // Throughput with and without the batched submissions, interleaved in one run.
        for k in [1u32, 4, 16, 64].into_iter().filter(|&k| k <= max_rooms) {
            let mut fps = [0.0; 2];
            for (i, batched) in [false, true].into_iter().enumerate() {
                let mode = Mode {
                    paced: false,
                    batched,
                };
                let s = step(&gpu, &layout, tiles, k, seconds, mode);
                println!("{}", s.line(false, None));
                fps[i] = s.fps();
            }
            println!(
                "  {k} rooms: batched/alone = {:.2}x frames/s",
                fps[1] / fps[0].max(1e-9)
            );
        }
        let policy = Policy {
            max_rooms,
            ..Policy::default()
        };
        let mut ramp = Ramp::new(policy);
        let mut at_best: Option<Step> = None;
        while let Some(k) = ramp.next_rooms() {
            let mode = Mode {
                paced: true,
                batched: gpu.batching(),
            };
            let s = step(&gpu, &layout, tiles, k, seconds, mode);
            let held = policy.holds(&s.outcome());
            println!("{}", s.line(true, Some(held)));
            ramp.record(&s.outcome());
            if held && at_best.as_ref().is_none_or(|b| b.rooms < k) {
                at_best = Some(s);
            }
        }
        let best = ramp.max_sustained();
        match at_best {
            Some(s) => println!(
                "RESULT {tiles} tiles 720p: {best} rooms hold 30 fps on {} \
                 ({:.3} CPU cores/room, GPU {}/frame)",
                gpu.info.name,
                s.cpu_s / s.wall.as_secs_f64() / s.rooms as f64,
                s.gpu_ms.map_or("n/a".into(), |g| format!("{g:.3} ms"))
            ),
            None => println!("RESULT {tiles} tiles 720p: not even one room holds 30 fps"),
        }
    }
}
