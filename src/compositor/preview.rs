//! Layout previews: a layout rendered by the real compositor with synthetic participants
//! (named, coloured, some without cameras, maybe a screen share), read back as the
//! encoder would get it (NV12) and turned into RGB. Used by `tessera layout preview`,
//! the reference-image tests and the pictures in `docs/layouts.md`.

use std::path::Path;
use std::time::Duration;

use super::backend::{Backend, Compositor};
use super::error::CompositorError;
use super::scene::{self, Pictures};
use crate::layout::{Member, ResolvedLayout};
use crate::source::RoomSource;
use crate::source::synthetic::SyntheticRoom;

/// Names given to preview participants, in join order (then "Guest N").
const NAMES: [&str; 12] = [
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Katherine Johnson",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Claude Shannon",
    "Margaret Hamilton",
    "Donald Knuth",
    "Frances Allen",
    "Ken Thompson",
    "Radia Perlman",
];

/// What to preview.
#[derive(Clone, Debug, PartialEq)]
pub struct PreviewSpec {
    /// Participants in the room.
    pub participants: usize,
    /// Whether someone (the first participant) shares a screen.
    pub screen_share: bool,
    /// The active speaker (0-based); `None` until someone speaks.
    pub speaker: Option<usize>,
    /// Participants (0-based) whose camera is off.
    pub no_camera: Vec<usize>,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Captions burned in: (participant, text), oldest first.
    pub captions: Vec<(usize, String)>,
}

/// An 8-bit RGB picture.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Rows of R, G, B bytes.
    pub rgb: Vec<u8>,
}

impl RgbImage {
    /// The R, G, B bytes at (x, y).
    pub fn at(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Encodes as PNG.
    pub fn png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().expect("PNG header to memory");
        writer
            .write_image_data(&self.rgb)
            .expect("PNG data to memory");
        writer.finish().expect("PNG end to memory");
        out
    }

    /// Writes a PNG file atomically (a viewer never sees half a file).
    pub fn write_png(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("png.part");
        std::fs::write(&tmp, self.png())?;
        std::fs::rename(&tmp, path)
    }

    /// Reads an 8-bit RGB or RGBA PNG.
    pub fn read_png(path: &Path) -> Result<RgbImage, String> {
        let image = crate::layout::Image::load_png(path)?;
        let rgb = image
            .rgba
            .chunks(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        Ok(RgbImage {
            width: image.width,
            height: image.height,
            rgb,
        })
    }
}

/// The synthetic room of a preview: pictures at `width/4` (a typical simulcast layer for a
/// tile), frozen at 0.7 s so the moving square is somewhere visible.
fn preview_room(spec: &PreviewSpec) -> SyntheticRoom {
    let pw = (spec.width / 4).max(64) & !1;
    let ph = (pw * 9 / 16).max(36) & !1;
    let mut room = SyntheticRoom::new(spec.participants, pw, ph);
    if spec.screen_share && spec.participants > 0 {
        room = room.with_screen_share(0);
    }
    for &i in &spec.no_camera {
        room = room.without_camera(i);
    }
    room.advance_video(Duration::from_millis(700));
    room
}

/// The preview's participants with real-looking names.
fn preview_members(
    room: &SyntheticRoom,
    cameras: &[Option<&crate::source::VideoFrame>],
) -> Vec<Member> {
    let mut members = scene::members(&room.participants(), cameras);
    for (i, m) in members.iter_mut().enumerate() {
        m.name = NAMES
            .get(i)
            .map_or_else(|| format!("Guest {}", i + 1), |n| n.to_string());
    }
    members
}

/// Renders `layout` for `spec` with `compositor` (which must be `spec.width` x
/// `spec.height`): the frame an egress would encode.
pub fn render_with(
    compositor: &mut Compositor,
    layout: &ResolvedLayout,
    spec: &PreviewSpec,
) -> Result<RgbImage, CompositorError> {
    let room = preview_room(spec);
    let cameras: Vec<_> = (0..spec.participants).map(|i| room.video(i)).collect();
    let members = preview_members(&room, &cameras);
    let pictures = Pictures {
        cameras: &cameras,
        screen_share: room.screen_share(),
    };
    let mut scene = scene::still(
        layout,
        &members,
        spec.speaker,
        &pictures,
        spec.width,
        spec.height,
    );
    let captions: Vec<(String, String)> = spec
        .captions
        .iter()
        .map(|(k, text)| {
            let name = members.get(*k).map_or_else(String::new, |m| m.name.clone());
            (name, text.clone())
        })
        .collect();
    let look = super::captions::CaptionLook::of(layout);
    super::captions::add_captions(&mut scene, &look, (spec.width, spec.height), &captions);
    compositor.send_frames(layout.theme.background, &[(0, &scene)], Duration::ZERO)?;
    let frame = compositor
        .receive_frame_from(0, true)?
        .expect("a frame was just sent");
    Ok(RgbImage {
        width: frame.width,
        height: frame.height,
        rgb: frame.to_rgb(),
    })
}

/// Renders `layout` for `spec` on a new compositor of `backend`.
pub fn render(
    backend: &Backend,
    layout: &ResolvedLayout,
    spec: &PreviewSpec,
) -> Result<RgbImage, CompositorError> {
    let mut compositor = backend.compositor(spec.width, spec.height)?;
    render_with(&mut compositor, layout, spec)
}
