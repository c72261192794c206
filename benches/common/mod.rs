//! What the GPU benchmarks share: drawing one frame as an egress does.

use std::hint::black_box;
use std::time::Duration;

use tessera::compositor::{CaptionLook, Compositor, add_captions, scene};
use tessera::layout::ResolvedLayout;
use tessera::source::synthetic::SyntheticRoom;
use tessera::source::{RoomSource, VideoFrame};

/// One frame as an egress draws it: every picture is new (uploaded and converted again),
/// the layout is evaluated and drawn, and a finished frame is read back when the ring is
/// full. `captions` (speaker, text) are burned in as the egress does.
pub fn frame(
    comp: &mut Compositor,
    layout: &ResolvedLayout,
    room: &SyntheticRoom,
    frames: &mut [Option<VideoFrame>],
    speaker: Option<usize>,
    captions: &[(String, String)],
) {
    for f in frames.iter_mut().flatten() {
        f.seq = VideoFrame::next_seq();
    }
    let shown: Vec<_> = frames.iter().map(Option::as_ref).collect();
    let members = scene::members(&room.participants(), &shown);
    let pictures = scene::Pictures {
        cameras: &shown,
        screen_share: None,
    };
    let (w, h) = comp.target_size(0).unwrap();
    let mut scene = scene::still(layout, &members, speaker, &pictures, w, h);
    add_captions(&mut scene, &CaptionLook::of(layout), (w, h), captions);
    if !comp.can_send_to(0) {
        black_box(comp.receive_frame_from(0, true).unwrap());
    }
    comp.send_frames(layout.theme.background, &[(0, &scene)], Duration::ZERO)
        .unwrap();
}

/// The source size a simulcast subscriber would pick for `tiles` tiles at 720p: 640x360
/// up to 4 tiles, 320x180 beyond.
pub fn source_size(tiles: usize) -> (u32, u32) {
    if tiles <= 4 { (640, 360) } else { (320, 180) }
}

/// A synthetic room of `tiles` participants and one picture of each.
pub fn room(tiles: usize) -> (SyntheticRoom, Vec<Option<VideoFrame>>) {
    let (sw, sh) = source_size(tiles);
    let mut room = SyntheticRoom::new(tiles, sw, sh);
    room.advance_video(Duration::ZERO);
    let frames = (0..tiles).map(|i| room.video(i).cloned()).collect();
    (room, frames)
}
