//! CPU time per frame of the compositor, split by kind of layer: the figure that matters on
//! a software adapter such as lavapipe, where the GPU's work is done by the CPU.
//!
//! `cargo run --release --no-default-features --example compositor_cpu [TILES] [WIDTH HEIGHT]`
//! Prints wall and CPU milliseconds per frame (process CPU, all threads) for: an empty
//! canvas, only the cell backgrounds, only the pictures, and the full scene, with a new
//! picture from every participant every frame.

use std::time::{Duration, Instant};

use tessera::compositor::{GpuCompositor, GpuContext, Layer, LayerContent, scene};
use tessera::layout::LayoutLibrary;
use tessera::source::synthetic::SyntheticRoom;
use tessera::source::{RoomSource, VideoFrame};

const FRAMES: u32 = 90;

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks: f64 =
        fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0
}

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let tiles = *args.first().unwrap_or(&4) as usize;
    let (w, h) = (*args.get(1).unwrap_or(&1280), *args.get(2).unwrap_or(&720));
    let gpu = GpuContext::new().expect("a GPU adapter");
    let layout = LayoutLibrary::builtin().resolve("grid").unwrap();
    let mut room = SyntheticRoom::new(tiles, 640, 360);
    room.advance_video(Duration::ZERO);
    let mut frames: Vec<VideoFrame> = (0..tiles).map(|i| room.video(i).unwrap().clone()).collect();
    let mut comp = GpuCompositor::new(gpu.clone(), w, h).unwrap();
    println!("{} tiles at {w}x{h} on {}", tiles, gpu.info.name);
    type Filter = fn(&Layer<'_>) -> bool;
    let cases: [(&str, Filter); 4] = [
        ("empty", |_| false),
        ("cell backgrounds", |l| {
            matches!(l.content, LayerContent::Solid(_))
        }),
        ("pictures", |l| {
            matches!(l.content, LayerContent::Picture { .. })
        }),
        ("full scene", |_| true),
    ];
    for (name, keep) in cases {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        for _ in 0..FRAMES {
            for f in &mut frames {
                f.seq = VideoFrame::next_seq();
            }
            let shown: Vec<_> = frames.iter().map(Some).collect();
            let members = scene::members(&room.participants(), &shown);
            let pictures = scene::Pictures {
                cameras: &shown,
                screen_share: None,
            };
            let layers: Vec<_> = scene::still(&layout, &members, None, &pictures, w, h)
                .layers
                .into_iter()
                .filter(keep)
                .collect();
            if !comp.can_send() {
                comp.receive_frame(true).unwrap();
            }
            comp.send_frame(layout.theme.background, &layers, Duration::ZERO)
                .unwrap();
        }
        while comp.receive_frame(true).unwrap().is_some() {}
        let per = |x: f64| x * 1000.0 / FRAMES as f64;
        println!(
            "{name:>17}: {:6.2} ms wall, {:6.2} ms CPU per frame",
            per(t0.elapsed().as_secs_f64()),
            per(cpu_seconds() - c0)
        );
    }
}
