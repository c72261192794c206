//! The device's batched submissions (every room's frame of a tick in one submission) on
//! whatever adapter this machine has (lavapipe in CI): rooms on their own threads, batched,
//! receive every frame in order with the same bytes as the same room submitting alone,
//! and a room that stops reading its frames does not hold the others back.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use tessera::compositor::{GpuCompositor, GpuContext, Layer, LayerContent, RING_SIZE};
use tessera::layout::{Color, Rect};
use tessera::source::{PixelFormat, VideoFrame};

use crate::compositor::gpu;

const W: u32 = 96;
const H: u32 = 54;
const FRAMES: u64 = 40;

/// Room `room`'s picture at frame `k`: different in every frame and every room.
fn picture(room: u64, k: u64) -> VideoFrame {
    let (pw, ph) = (48, 28);
    let mut f = VideoFrame::solid(PixelFormat::I420, pw, ph, [16, 128, 128]);
    let mut x = (room + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (k + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    for b in f.data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = 16 + (x % 220) as u8;
    }
    f.seq = VideoFrame::next_seq();
    f
}

/// Renders `FRAMES` frames of `room`, reading each back after sending the next (as the
/// egress does), and returns their bytes in order.
fn run_room(comp: &mut GpuCompositor, room: u64, start: Option<&Barrier>) -> Vec<Vec<u8>> {
    if let Some(b) = start {
        b.wait();
    }
    let mut out = Vec::new();
    let mut expect = 0u64;
    let mut receive = |comp: &mut GpuCompositor, out: &mut Vec<Vec<u8>>| {
        let f = comp.receive_frame(true).unwrap().expect("a frame");
        assert_eq!(f.pts, Duration::from_millis(expect), "room {room} in order");
        expect += 1;
        out.push(f.data);
    };
    for k in 0..FRAMES {
        if !comp.can_send() {
            receive(comp, &mut out);
        }
        let pic = picture(room, k);
        let layers = [
            Layer {
                dst: Rect {
                    x: 0.0,
                    y: 0.0,
                    w: W as f32,
                    h: H as f32,
                },
                content: LayerContent::Solid(Color([0.1 * room as f32, 0.3, 0.5, 1.0])),
                shape: None,
            },
            Layer {
                dst: Rect {
                    x: 4.0,
                    y: 6.0,
                    w: 60.0,
                    h: 40.0,
                },
                content: LayerContent::Picture {
                    slot: 0,
                    frame: &pic,
                    src: Rect::UNIT,
                },
                shape: None,
            },
        ];
        comp.send_frame(
            Color([0.0, 0.0, 0.0, 1.0]),
            &layers,
            Duration::from_millis(k),
        )
        .unwrap();
    }
    while comp.in_flight() > 0 {
        receive(comp, &mut out);
    }
    out
}

/// Rooms `0..rooms`, each on its own thread with its own batched compositor, started
/// together; their frames' bytes, per room.
fn batched_rooms(gpu: &Arc<GpuContext>, rooms: u64) -> Vec<Vec<Vec<u8>>> {
    let start = Barrier::new(rooms as usize);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..rooms)
            .map(|r| {
                let (gpu, start) = (gpu.clone(), &start);
                s.spawn(move || {
                    let mut comp = GpuCompositor::new(gpu, W, H).unwrap();
                    comp.set_batched(true);
                    assert!(comp.batched());
                    run_room(&mut comp, r, Some(start))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn batched_rooms_receive_every_frame_with_the_same_bytes_as_alone() {
    let gpu = gpu();
    let rooms = 4u64;
    let alone: Vec<_> = (0..rooms)
        .map(|r| {
            let mut comp = GpuCompositor::new(gpu.clone(), W, H).unwrap();
            comp.set_batched(false);
            run_room(&mut comp, r, None)
        })
        .collect();
    let before = gpu.batch_counts();
    let batched = batched_rooms(&gpu, rooms);
    for r in 0..rooms as usize {
        assert_eq!(batched[r].len(), FRAMES as usize);
        for (k, (a, b)) in alone[r].iter().zip(&batched[r]).enumerate() {
            assert!(
                a == b,
                "room {r} frame {k}: batched bytes differ from alone"
            );
        }
    }
    // Frames were combined: fewer submissions than frames (other tests of this binary
    // may add their own batched frames meanwhile, each in at most one submission).
    let (after_batches, after_frames) = gpu.batch_counts();
    let (batches, frames) = (after_batches - before.0, after_frames - before.1);
    assert!(frames >= rooms * FRAMES, "{frames} frames");
    assert!(
        batches < frames,
        "{batches} submissions for {frames} frames"
    );
    // The rooms really differ from each other (the comparison above means something).
    assert!(alone[0][5] != alone[1][5]);
}

#[test]
fn a_room_that_stops_reading_does_not_hold_the_others_back() {
    let gpu = gpu();
    // A room that fills its readback ring and then neither reads nor sends.
    let mut stuck = GpuCompositor::new(gpu.clone(), W, H).unwrap();
    stuck.set_batched(true);
    for k in 0..RING_SIZE as u64 {
        stuck
            .send_frame(Color([1.0, 0.0, 0.0, 1.0]), &[], Duration::from_millis(k))
            .unwrap();
    }
    assert!(!stuck.can_send());
    let done: Vec<_> = batched_rooms(&gpu, 3).iter().map(Vec::len).collect();
    assert_eq!(done, vec![FRAMES as usize; 3]);
    // The stopped room's frames were kept: it reads them when it comes back.
    for k in 0..RING_SIZE as u64 {
        let f = stuck.receive_frame(true).unwrap().expect("its frame");
        assert_eq!(f.pts, Duration::from_millis(k));
    }
}
