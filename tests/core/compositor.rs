//! The GPU compositor on whatever adapter this machine has (lavapipe in CI): colour
//! conversion against reference values, YUV uploads in both formats, the readback ring's
//! order, one device serving many compositors, and many threads polling it at once.
//! (Layouts' reference images are in `layout_golden.rs`.)

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tessera::color::rgb_to_yuv709;
use tessera::compositor::{
    CompositorError, GpuCompositor, GpuContext, Layer, LayerContent, Nv12Frame, RING_SIZE,
};
use tessera::layout::{Color, Rect};
use tessera::source::{PixelFormat, VideoFrame};

pub(crate) fn gpu() -> Arc<GpuContext> {
    static GPU: OnceLock<Arc<GpuContext>> = OnceLock::new();
    GPU.get_or_init(|| GpuContext::new().expect("a GPU adapter (lavapipe in CI)"))
        .clone()
}

fn render(comp: &mut GpuCompositor, background: Color, layers: &[Layer<'_>]) -> Nv12Frame {
    comp.send_frame(background, layers, Duration::ZERO).unwrap();
    comp.receive_frame(true).unwrap().expect("a frame")
}

fn rgb(c: [u8; 3]) -> Color {
    Color([
        c[0] as f32 / 255.0,
        c[1] as f32 / 255.0,
        c[2] as f32 / 255.0,
        1.0,
    ])
}

fn close(got: [u8; 3], want: [u8; 3], tol: i32) -> bool {
    (0..3).all(|c| (got[c] as i32 - want[c] as i32).abs() <= tol)
}

#[test]
fn solid_colours_convert_to_bt709_limited_nv12() {
    let colours = [
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [255, 255, 255],
        [0, 0, 0],
        [128, 128, 128],
        [200, 120, 40],
    ];
    let mut comp = GpuCompositor::new(gpu(), 64 * colours.len() as u32, 64).unwrap();
    let layers: Vec<Layer> = colours
        .iter()
        .enumerate()
        .map(|(i, c)| Layer {
            dst: Rect {
                x: 64.0 * i as f32,
                y: 0.0,
                w: 64.0,
                h: 64.0,
            },
            content: LayerContent::Solid(rgb(*c)),
            shape: None,
        })
        .collect();
    let frame = render(&mut comp, Color([0.0, 0.0, 0.0, 1.0]), &layers);
    for (i, c) in colours.iter().enumerate() {
        let got = frame.yuv_at(64 * i as u32 + 32, 32);
        // ±1: the shader rounds in float, the reference in f32 too, but on other hardware.
        assert!(
            close(got, rgb_to_yuv709(*c), 1),
            "{c:?}: got {got:?}, want {:?}",
            rgb_to_yuv709(*c)
        );
    }
    // The canonical values, independent of our reference implementation.
    assert!(close(frame.yuv_at(32, 32), [63, 102, 240], 1));
    assert!(close(frame.yuv_at(64 * 3 + 32, 32), [235, 128, 128], 1));
    assert!(close(frame.yuv_at(64 * 4 + 32, 32), [16, 128, 128], 1));
}

#[test]
fn i420_and_nv12_pictures_survive_the_round_trip() {
    let mut comp = GpuCompositor::new(gpu(), 128, 72).unwrap();
    for format in [PixelFormat::I420, PixelFormat::Nv12] {
        // In-gamut colours (a Y'CbCr triple outside the RGB cube would be clipped).
        for yuv in [
            [200, 30, 90],
            [30, 200, 120],
            [90, 90, 220],
            [180, 180, 180],
        ]
        .map(rgb_to_yuv709)
        {
            // 66x38: an odd number of chroma columns and rows exercises the tails.
            for (pw, ph) in [(64, 36), (66, 38)] {
                let pic = VideoFrame::solid(format, pw, ph, yuv);
                let layers = [Layer {
                    dst: Rect {
                        x: 0.0,
                        y: 0.0,
                        w: 128.0,
                        h: 72.0,
                    },
                    content: LayerContent::Picture {
                        slot: 0,
                        frame: &pic,
                        src: Rect::UNIT,
                    },
                    shape: None,
                }];
                let frame = render(&mut comp, Color([0.0, 0.0, 0.0, 1.0]), &layers);
                // Through 8-bit RGB and back: within 2 levels, in the middle and at the edges.
                for (x, y) in [(64, 36), (126, 70), (0, 0)] {
                    let got = frame.yuv_at(x, y);
                    assert!(
                        close(got, yuv, 2),
                        "{format:?} {pw}x{ph} {yuv:?} at ({x},{y}) -> {got:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn odd_stride_widths_pad_rows_like_gstreamer() {
    // 130 is even but not a multiple of 4: rows are 132 bytes, as GStreamer's NV12.
    let mut comp = GpuCompositor::new(gpu(), 130, 20).unwrap();
    let frame = render(&mut comp, rgb([0, 0, 255]), &[]);
    assert_eq!(frame.stride, 132);
    assert_eq!(frame.data.len(), 132 * 20 * 3 / 2);
    assert!(close(frame.yuv_at(129, 19), [32, 240, 118], 1));
}

#[test]
fn the_ring_keeps_order_and_refuses_overrun() {
    let mut comp = GpuCompositor::new(gpu(), 64, 32).unwrap();
    for k in 0..RING_SIZE as u64 {
        comp.send_frame(rgb([k as u8 * 60, 0, 0]), &[], Duration::from_millis(k))
            .unwrap();
    }
    assert!(matches!(
        comp.send_frame(rgb([0, 0, 0]), &[], Duration::ZERO),
        Err(CompositorError::RingFull)
    ));
    for k in 0..RING_SIZE as u64 {
        let f = comp.receive_frame(true).unwrap().unwrap();
        assert_eq!(f.pts, Duration::from_millis(k));
        assert!(close(
            f.yuv_at(1, 1),
            rgb_to_yuv709([k as u8 * 60, 0, 0]),
            1
        ));
    }
    assert!(comp.receive_frame(true).unwrap().is_none());
}

#[test]
fn one_device_serves_many_compositors() {
    let gpu = gpu();
    let mut a = GpuCompositor::new(gpu.clone(), 64, 32).unwrap();
    let mut b = GpuCompositor::new(gpu, 96, 48).unwrap();
    for round in 0..3u8 {
        a.send_frame(rgb([round * 50, 200, 0]), &[], Duration::ZERO)
            .unwrap();
        b.send_frame(rgb([0, round * 50, 200]), &[], Duration::ZERO)
            .unwrap();
        let fa = a.receive_frame(true).unwrap().unwrap();
        let fb = b.receive_frame(true).unwrap().unwrap();
        assert!(close(
            fa.yuv_at(10, 10),
            rgb_to_yuv709([round * 50, 200, 0]),
            1
        ));
        assert!(close(
            fb.yuv_at(90, 40),
            rgb_to_yuv709([0, round * 50, 200]),
            1
        ));
    }
}

/// Egresses of one process share the device and poll it from their own threads; a map
/// callback can then run on another thread's poll. Every thread still receives every
/// frame of its own, in order (found on an H200 at about 100 concurrent rooms).
#[test]
fn threads_sharing_the_device_receive_every_frame() {
    let gpu = gpu();
    // A neighbour whose map callbacks are slow: when its poll collects the compositors'
    // callbacks too, they run only after its own.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let neighbour = {
        let (gpu, stop) = (gpu.clone(), stop.clone());
        std::thread::spawn(move || {
            let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("neighbour"),
                size: 256,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                gpu.queue.submit([]);
                buffer.map_async(wgpu::MapMode::Read, .., |_| {
                    std::thread::sleep(Duration::from_millis(15))
                });
                gpu.device
                    .poll(wgpu::PollType::wait_indefinitely())
                    .unwrap();
                buffer.unmap();
            }
        })
    };
    let threads: Vec<_> = (0..12u8)
        .map(|t| {
            let gpu = gpu.clone();
            std::thread::spawn(move || {
                let mut comp = GpuCompositor::new(gpu, 32, 16).unwrap();
                let colour = [t * 20, 255 - t * 20, 90];
                let mut next = 0u64;
                for k in 0..150u64 {
                    if !comp.can_send() {
                        let f = comp.receive_frame(true).unwrap().expect("a frame");
                        assert_eq!(f.pts, Duration::from_millis(next));
                        assert!(close(f.yuv_at(3, 3), rgb_to_yuv709(colour), 1));
                        next += 1;
                    }
                    comp.send_frame(rgb(colour), &[], Duration::from_millis(k))
                        .unwrap();
                }
                while let Some(f) = comp.receive_frame(true).unwrap() {
                    assert_eq!(f.pts, Duration::from_millis(next));
                    next += 1;
                }
                next
            })
        })
        .collect();
    let received: Vec<_> = threads.into_iter().map(|t| t.join()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    neighbour.join().unwrap();
    for r in received {
        assert_eq!(r.expect("no thread failed"), 150);
    }
}

#[test]
fn bad_sizes_are_refused() {
    assert!(matches!(
        GpuCompositor::new(gpu(), 641, 360),
        Err(CompositorError::BadSize(..))
    ));
    assert!(matches!(
        GpuCompositor::new(gpu(), 0, 360),
        Err(CompositorError::BadSize(..))
    ));
}

#[test]
fn sampled_frames_are_timed_on_the_gpu() {
    let gpu = gpu();
    let mut comp = GpuCompositor::new(gpu.clone(), 320, 180).unwrap();
    let layers = [Layer {
        dst: Rect {
            x: 0.0,
            y: 0.0,
            w: 160.0,
            h: 90.0,
        },
        content: LayerContent::Solid(rgb([200, 30, 30])),
        shape: None,
    }];
    for k in 0..60u64 {
        if !comp.can_send() {
            comp.receive_frame(true).unwrap();
        }
        comp.send_frame(rgb([0, 0, 0]), &layers, Duration::from_millis(k))
            .unwrap();
    }
    while comp.receive_frame(true).unwrap().is_some() {}
    // One more frame collects the last timing that was read back.
    comp.send_frame(rgb([0, 0, 0]), &layers, Duration::ZERO)
        .unwrap();
    comp.receive_frame(true).unwrap();
    match (gpu.timestamps, comp.gpu_time_per_frame()) {
        (true, Some(t)) => assert!(t > Duration::ZERO && t < Duration::from_secs(1), "{t:?}"),
        (true, None) => panic!("the device has timestamps but no frame was timed"),
        (false, t) => assert_eq!(t, None),
    }
}
