//! From the room to what the compositor draws: the layout is evaluated for who is there
//! (and who speaks, and whether a screen is shared), tiles are animated to their places,
//! and each tile becomes layers (cell, picture or placeholder, border, highlight) and
//! texts (name label, initials, "+N").

use std::time::Duration;

use super::layers::{Layer, LayerContent, Scene, Shape};
use super::text::{Anchor, Text, TextBox};
use crate::layout::animate::Animator;
use crate::layout::geometry::fit;
use crate::layout::{Color, Content, Member, Placement, Rect, ResolvedLayout, Roster, Theme};
use crate::source::VideoFrame;

/// The parts of `cell` not covered by `inner` (which a fit centres inside it): the bars
/// left and right, or above and below. Drawing only these, not the whole cell under the
/// picture, saves a full-cell fill per tile.
fn bars(cell: Rect, inner: Rect) -> impl Iterator<Item = Rect> {
    let left = Rect {
        x: cell.x,
        y: cell.y,
        w: inner.x - cell.x,
        h: cell.h,
    };
    let right = Rect {
        x: inner.x + inner.w,
        y: cell.y,
        w: cell.x + cell.w - (inner.x + inner.w),
        h: cell.h,
    };
    let top = Rect {
        x: inner.x,
        y: cell.y,
        w: inner.w,
        h: inner.y - cell.y,
    };
    let bottom = Rect {
        x: inner.x,
        y: inner.y + inner.h,
        w: inner.w,
        h: cell.y + cell.h - (inner.y + inner.h),
    };
    [left, right, top, bottom]
        .into_iter()
        .filter(|r| r.w > 0.0 && r.h > 0.0)
}

/// The pictures of the room at one frame.
#[derive(Clone, Copy, Debug)]
pub struct Pictures<'a> {
    /// Each participant's camera picture (join order); `None` when off.
    pub cameras: &'a [Option<&'a VideoFrame>],
    /// The screen share and its owner.
    pub screen_share: Option<(usize, &'a VideoFrame)>,
}

impl Pictures<'_> {
    /// Texture slot of the screen share (participants use slots `0..n`).
    fn share_slot(&self) -> usize {
        self.cameras.len()
    }
}

/// A stable colour from `palette` for `identity` (FNV-1a hash).
fn placeholder_color(palette: &[Color], identity: &str) -> Color {
    let h = identity.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    palette[(h % palette.len() as u64) as usize]
}

/// Draws one tile into `scene`: its layers, and its texts (which [`compose`] places
/// after every tile of the same z level).
fn tile<'a>(
    scene: &mut Scene<'a>,
    p: &Placement,
    theme: &Theme,
    members: &[Member],
    pictures: &Pictures<'a>,
    short: f32,
) {
    let cell = p.cell;
    if cell.w < 2.0 || cell.h < 2.0 {
        return;
    }
    let radius = (p.style.radius * short).round();
    let highlight = p.speaking && p.style.highlight > 0.0;
    let (border, border_color) = if highlight {
        (
            (p.style.highlight * short).round().max(1.0),
            theme.highlight,
        )
    } else {
        ((p.style.border * short).round(), theme.border)
    };
    let shape = (radius > 0.0 || border > 0.0).then_some(Shape {
        rect: cell,
        radius,
        border,
        border_color,
    });
    let solid = |color: Color| Layer {
        dst: cell,
        content: LayerContent::Solid(color),
        shape,
    };
    let picture = match p.content {
        Content::Camera(i) => pictures.cameras.get(i).copied().flatten().map(|f| (i, f)),
        Content::ScreenShare(owner) => pictures
            .screen_share
            .filter(|(o, _)| *o == owner)
            .map(|(_, f)| (pictures.share_slot(), f)),
        Content::More(_) => None,
    };
    let centre = |scene: &mut Scene<'a>, text: String, size: f32, color: Color| {
        let (x, y) = cell.center();
        scene.texts.push(Text {
            text,
            size,
            color,
            anchor: Anchor::Center(x, y),
            clip: cell,
            background: None,
            after: 0, // set by `compose`: the end of the tile's z level
        });
    };
    match (p.content, picture) {
        (_, Some((slot, frame))) => {
            let (dst, src) = fit(cell, frame.aspect(), p.style.fit);
            // Only the bars the picture leaves, cut to the tile's shape.
            scene.layers.extend(bars(cell, dst).map(|b| Layer {
                dst: b,
                content: LayerContent::Solid(theme.tile),
                shape,
            }));
            scene.layers.push(Layer {
                dst,
                content: LayerContent::Picture { slot, frame, src },
                shape,
            });
        }
        (Content::Camera(i), None) => {
            let Some(m) = members.get(i) else { return };
            scene
                .layers
                .push(solid(placeholder_color(&theme.placeholder, &m.identity)));
            let size = (cell.h * 0.3).min(cell.w * 0.22).round();
            centre(scene, m.initials(), size, theme.placeholder_text);
        }
        (Content::More(n), _) => {
            scene.layers.push(solid(theme.tile));
            let size = (cell.h * 0.28).min(cell.w * 0.2).round();
            centre(scene, format!("+{n}"), size, theme.placeholder_text);
        }
        (Content::ScreenShare(_), None) => scene.layers.push(solid(theme.tile)),
    }
    let name = match p.content {
        Content::Camera(i) => members.get(i).map(|m| m.display_name().to_owned()),
        Content::ScreenShare(o) => members
            .get(o)
            .map(|m| format!("{} (screen)", m.display_name())),
        Content::More(_) => None,
    };
    if let Some(name) = name.filter(|_| p.style.labels) {
        let size = (short * 0.026).clamp(10.0, 28.0).min(cell.h * 0.14).round();
        if size >= 7.0 {
            let pad = (size * 0.4).round();
            let margin = (radius * 0.3).max(pad).round();
            scene.texts.push(Text {
                text: name,
                size,
                color: theme.label,
                anchor: Anchor::BottomLeft(
                    cell.x + margin + pad,
                    cell.y + cell.h - margin - pad / 2.0,
                ),
                clip: cell,
                background: Some(TextBox {
                    color: theme.label_background,
                    padding: pad,
                    radius: (size * 0.3).round(),
                }),
                after: 0, // set by `compose`: the end of the tile's z level
            });
        }
    }
}

/// Turns evaluated placements into a scene for a `width` x `height` canvas.
pub fn compose<'a>(
    theme: &'a Theme,
    members: &[Member],
    placements: &[Placement],
    pictures: &Pictures<'a>,
    width: u32,
    height: u32,
) -> Scene<'a> {
    let mut scene = Scene::default();
    let short = width.min(height) as f32;
    if let Some(image) = theme.background_image.as_deref() {
        let canvas = Rect {
            x: 0.0,
            y: 0.0,
            w: width as f32,
            h: height as f32,
        };
        let aspect = image.width as f32 / image.height as f32;
        let (dst, src) = fit(canvas, aspect, crate::layout::Fit::Cover);
        scene
            .layers
            .push(Layer::new(dst, LayerContent::Image { image, src }));
    }
    // Texts are drawn after all tiles of their z level (tiles of one level do not
    // overlap): one text group per level instead of one per tile, which saves pipeline
    // switches, and a higher level still covers a lower level's labels.
    let mut level_texts = 0;
    for (k, p) in placements.iter().enumerate() {
        tile(&mut scene, p, theme, members, pictures, short);
        if placements.get(k + 1).is_none_or(|next| next.z != p.z) {
            let end = scene.layers.len();
            for t in &mut scene.texts[level_texts..] {
                t.after = end;
            }
            level_texts = scene.texts.len();
        }
    }
    scene
}

/// The members of a room for the layout, from participant infos and pictures.
pub fn members(
    participants: &[crate::source::ParticipantInfo],
    cameras: &[Option<&VideoFrame>],
) -> Vec<Member> {
    participants
        .iter()
        .enumerate()
        .map(|(i, p)| Member {
            identity: p.identity.clone(),
            name: p.name.clone(),
            aspect: cameras.get(i).copied().flatten().map(VideoFrame::aspect),
        })
        .collect()
}

/// Directs one egress's pictures: evaluates its layout each frame for each output size
/// and animates tiles between layouts.
#[derive(Debug, Default)]
pub struct Director {
    /// One animator per output target (cells differ per size).
    animators: Vec<Animator>,
}

impl Director {
    /// A director with nothing on screen.
    pub fn new() -> Director {
        Director::default()
    }

    /// Where the tiles of target `target` (`width` x `height`) are at media time `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn place(
        &mut self,
        target: usize,
        layout: &ResolvedLayout,
        members: &[Member],
        speaker: Option<usize>,
        pictures: &Pictures<'_>,
        width: u32,
        height: u32,
        now: Duration,
    ) -> Vec<Placement> {
        let roster = roster(members, speaker, pictures);
        let mut placements = layout.layout.place(&roster, width, height);
        if self.animators.len() <= target {
            self.animators.resize_with(target + 1, Animator::new);
        }
        self.animators[target].animate(now, layout.layout.transition, &roster, &mut placements);
        placements
    }
}

fn roster<'m>(
    members: &'m [Member],
    speaker: Option<usize>,
    pictures: &Pictures<'_>,
) -> Roster<'m> {
    Roster {
        members,
        screen_share: pictures.screen_share.map(|(o, f)| (o, f.aspect())),
        speaker,
    }
}

/// The scene of a layout with tiles in their final places (no animation): previews,
/// reference images, single frames.
pub fn still<'a>(
    layout: &'a ResolvedLayout,
    members: &[Member],
    speaker: Option<usize>,
    pictures: &Pictures<'a>,
    width: u32,
    height: u32,
) -> Scene<'a> {
    let placements = layout
        .layout
        .place(&roster(members, speaker, pictures), width, height);
    compose(&layout.theme, members, &placements, pictures, width, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_cover_exactly_the_uncovered_cell() {
        let cell = Rect {
            x: 10.0,
            y: 20.0,
            w: 100.0,
            h: 50.0,
        };
        let inner = Rect {
            x: 30.0,
            y: 20.0,
            w: 60.0,
            h: 50.0,
        };
        let b: Vec<_> = bars(cell, inner).collect();
        assert_eq!(b.len(), 2);
        let area: f32 = b.iter().map(|r| r.w * r.h).sum::<f32>() + inner.w * inner.h;
        assert_eq!(area, cell.w * cell.h);
        assert_eq!(bars(cell, cell).count(), 0);
    }

    #[test]
    fn placeholder_colours_are_stable_per_identity() {
        let palette = [Color([1.0, 0.0, 0.0, 1.0]), Color([0.0, 1.0, 0.0, 1.0])];
        assert_eq!(
            placeholder_color(&palette, "alice"),
            placeholder_color(&palette, "alice")
        );
        let spread: std::collections::HashSet<_> = (0..20)
            .map(|i| placeholder_color(&palette, &format!("p{i}")).0[0] as u8)
            .collect();
        assert_eq!(spread.len(), 2);
    }
}
