//! Frame time of each compositor, for 1..25 tiles at 720p and 1080p: the GPU one
//! (upload, YUV→RGBA, composite, RGBA→NV12, readback) and the CPU one (into NV12), with
//! a new picture from every participant every frame (as a live room at the output
//! rate). Frames are pipelined through the readback ring as in an egress, so the figure
//! is the steady-state cost per frame (throughput), not one frame's latency.
//!
//! Builds without GStreamer: `cargo bench --no-default-features --bench compositor`.
//! Sources are 640x360 I420 up to 4 tiles and 320x180 beyond, as a simulcast subscriber
//! picks smaller layers for smaller tiles. Also: what burned-in captions add to a frame.
// criterion_group! makes an undocumented public function.
#![allow(missing_docs)]

mod common;

use std::time::Duration;

use common::frame;
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use tessera::compositor::{Backend, BackendChoice, Compositor};
use tessera::layout::{LayoutLibrary, ResolvedLayout};
use tessera::source::RoomSource;
use tessera::source::synthetic::SyntheticRoom;

/// Both backends: the GPU one on the best adapter (lavapipe here), and the CPU one.
fn backends() -> Vec<Backend> {
    vec![
        Backend::open(BackendChoice::Gpu).expect("a GPU adapter"),
        Backend::Cpu,
    ]
}

/// A group of 10 samples over 3 s (1 s warm-up): every group here times whole frames.
fn short_group(c: &mut Criterion, name: String) -> BenchmarkGroup<'_, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group
}

fn drain(comp: &mut Compositor) {
    while comp.receive_frame_from(0, true).unwrap().is_some() {}
}

fn composite(c: &mut Criterion) {
    let layout = LayoutLibrary::builtin().resolve("grid").unwrap();
    for backend in backends() {
        let mut group = short_group(c, format!("composite+nv12 [{}]", backend.describe()));
        for (name, w, h) in [("720p", 1280u32, 720u32), ("1080p", 1920, 1080)] {
            for tiles in [1usize, 4, 9, 16, 25] {
                let (room, mut frames) = common::room(tiles);
                let mut comp = backend.compositor(w, h).unwrap();
                group.throughput(Throughput::Elements(1));
                group.bench_with_input(BenchmarkId::new(name, tiles), &tiles, |b, _| {
                    b.iter(|| frame(&mut comp, &layout, &room, &mut frames, None, &[]));
                });
                drain(&mut comp);
            }
        }
        group.finish();
    }
}

/// Each built-in layout at 9 participants, 720p, labels on, active speaker 3 and a
/// camera off (participant 5), a new picture every frame.
fn layouts(c: &mut Criterion) {
    for backend in backends() {
        layouts_on(c, &backend);
    }
}

fn layouts_on(c: &mut Criterion, backend: &Backend) {
    let lib = LayoutLibrary::builtin();
    let mut group = short_group(
        c,
        format!("layouts 9p 720p labels [{}]", backend.describe()),
    );
    let (w, h) = (1280u32, 720u32);
    let mut room = SyntheticRoom::new(9, 320, 180).without_camera(4);
    room.advance_video(Duration::ZERO);
    let mut frames: Vec<_> = (0..9).map(|i| room.video(i).cloned()).collect();
    // Baseline in the same run: the grid without labels, corners or highlight (plain
    // opaque rectangles, as before the template language).
    let plain_text = include_str!("../layouts/grid.toml")
        .replace("labels = true", "labels = false")
        .replace("radius = 0.008", "radius = 0")
        .replace("highlight = 0.004", "highlight = 0");
    let (plain, _) = tessera::layout::Layout::compile("plain", &plain_text, None).unwrap();
    let plain = ResolvedLayout::with_theme("grid-plain", std::sync::Arc::new(plain), "dark")
        .expect("the grid has a dark theme");
    let layouts = std::iter::once(("grid-plain", plain)).chain(
        ["grid", "speaker", "single-speaker", "presentation", "pip"]
            .into_iter()
            .map(|name| (name, lib.resolve(name).unwrap())),
    );
    for (name, layout) in layouts {
        let mut comp = backend.compositor(w, h).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| frame(&mut comp, &layout, &room, &mut frames, Some(2), &[]));
        });
        drain(&mut comp);
    }
    group.finish();
}

/// Burned-in captions: the grid of 4 at 720p without captions (the baseline, in the same
/// run) and with two caption lines of two speakers, as a conversation egress draws them.
fn captions(c: &mut Criterion) {
    let layout = LayoutLibrary::builtin().resolve("grid").unwrap();
    let lines = [
        (
            "Alice",
            "so the numbers for the third quarter are in, and they look good",
        ),
        (
            "Bob",
            "great, can you share the slide with the regional breakdown?",
        ),
    ]
    .map(|(who, text)| (who.to_owned(), text.to_owned()));
    for backend in backends() {
        let mut group = short_group(c, format!("captions 4p 720p [{}]", backend.describe()));
        for (name, captions) in [("none", &lines[..0]), ("two lines", &lines[..])] {
            let (room, mut frames) = common::room(4);
            let mut comp = backend.compositor(1280, 720).unwrap();
            group.bench_function(name, |b| {
                b.iter(|| frame(&mut comp, &layout, &room, &mut frames, None, captions));
            });
            drain(&mut comp);
        }
        group.finish();
    }
}

criterion_group!(benches, composite, layouts, captions);
criterion_main!(benches);
