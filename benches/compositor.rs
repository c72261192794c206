//! Frame time of the GPU path: upload + YUV→RGBA + composite + RGBA→NV12 + readback, for
//! 1..25 tiles at 720p and 1080p, with a new picture from every participant every frame
//! (as a live room at the output rate). Frames are pipelined through the readback ring as
//! in an egress, so the figure is the steady-state cost per frame (throughput), not one
//! frame's latency.
//!
//! Builds without GStreamer: `cargo bench --no-default-features --bench compositor`.
//! Sources are 640x360 I420 up to 4 tiles and 320x180 beyond, as a simulcast subscriber
//! picks smaller layers for smaller tiles.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tessera::compositor::{Compositor, GpuContext, scene};
use tessera::layout::LayoutLibrary;
use tessera::source::synthetic::SyntheticRoom;
use tessera::source::{RoomSource, VideoFrame};

/// The room's members as the layout sees them (names are drawn: the grid has labels on).
fn plain_members(room: &SyntheticRoom) -> Vec<tessera::layout::Member> {
    let frames: Vec<_> = (0..room.participants().len())
        .map(|i| room.video(i))
        .collect();
    scene::members(&room.participants(), &frames)
}

fn composite(c: &mut Criterion) {
    let gpu = GpuContext::new().expect("a GPU adapter");
    let layout = LayoutLibrary::builtin().resolve("grid").unwrap();
    let mut group = c.benchmark_group(format!("composite+nv12+readback [{}]", gpu.info.name));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, w, h) in [("720p", 1280u32, 720u32), ("1080p", 1920, 1080)] {
        for tiles in [1usize, 4, 9, 16, 25] {
            let (sw, sh) = if tiles <= 4 { (640, 360) } else { (320, 180) };
            let mut room = SyntheticRoom::new(tiles, sw, sh);
            room.advance_video(Duration::ZERO);
            let mut frames: Vec<VideoFrame> =
                (0..tiles).map(|i| room.video(i).unwrap().clone()).collect();
            let mut comp = Compositor::new(gpu.clone(), w, h).unwrap();
            let members = plain_members(&room);
            group.throughput(Throughput::Elements(1));
            group.bench_with_input(BenchmarkId::new(name, tiles), &tiles, |b, _| {
                b.iter(|| {
                    // Every picture is new: uploaded and converted again.
                    for f in &mut frames {
                        f.seq = VideoFrame::next_seq();
                    }
                    let shown: Vec<_> = frames.iter().map(Some).collect();
                    let pictures = scene::Pictures {
                        cameras: &shown,
                        screen_share: None,
                    };
                    let scene = scene::still(&layout, &members, None, &pictures, w, h);
                    if !comp.can_send() {
                        black_box(comp.receive_frame(true).unwrap());
                    }
                    comp.send_frames(layout.theme.background, &[(0, &scene)], Duration::ZERO)
                        .unwrap();
                });
            });
            while comp.receive_frame(true).unwrap().is_some() {}
        }
    }
    group.finish();
}

/// Each built-in layout at 9 participants, 720p, labels on, active speaker 3 and a
/// camera off (participant 5), a new picture every frame.
fn layouts(c: &mut Criterion) {
    let gpu = GpuContext::new().expect("a GPU adapter");
    let lib = LayoutLibrary::builtin();
    let mut group = c.benchmark_group(format!("layouts 9p 720p labels [{}]", gpu.info.name));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let (w, h) = (1280u32, 720u32);
    let mut room = SyntheticRoom::new(9, 320, 180).without_camera(4);
    room.advance_video(Duration::ZERO);
    let mut frames: Vec<Option<VideoFrame>> = (0..9).map(|i| room.video(i).cloned()).collect();
    for name in ["grid", "speaker", "single-speaker", "presentation", "pip"] {
        let layout = lib.resolve(name).unwrap();
        let mut comp = Compositor::new(gpu.clone(), w, h).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                for f in frames.iter_mut().flatten() {
                    f.seq = VideoFrame::next_seq();
                }
                let shown: Vec<_> = frames.iter().map(Option::as_ref).collect();
                let members = scene::members(&room.participants(), &shown);
                let pictures = scene::Pictures {
                    cameras: &shown,
                    screen_share: None,
                };
                let scene = scene::still(&layout, &members, Some(2), &pictures, w, h);
                if !comp.can_send() {
                    black_box(comp.receive_frame(true).unwrap());
                }
                comp.send_frames(layout.theme.background, &[(0, &scene)], Duration::ZERO)
                    .unwrap();
            });
        });
        while comp.receive_frame(true).unwrap().is_some() {}
    }
    group.finish();
}

criterion_group!(benches, composite, layouts);
criterion_main!(benches);
