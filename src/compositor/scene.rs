//! A layout evaluated for the current pictures → the layers the compositor draws.

use super::{Layer, LayerContent};
use crate::layout::{Rect, ResolvedLayout};
use crate::source::VideoFrame;

/// Aspect assumed for a participant with no picture yet.
const DEFAULT_ASPECT: f32 = 16.0 / 9.0;

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

/// For each participant (join order) its current picture, if any → cell backgrounds
/// (where the picture does not cover the cell) and pictures, in draw order. Participant
/// `i` uses texture slot `i`.
pub fn layers<'a>(
    layout: &ResolvedLayout,
    frames: &[Option<&'a VideoFrame>],
    width: u32,
    height: u32,
) -> Vec<Layer<'a>> {
    let aspects: Vec<f32> = frames
        .iter()
        .map(|f| f.map_or(DEFAULT_ASPECT, |f| f.aspect()))
        .collect();
    let tiles = layout.layout.tiles(&aspects, width, height);
    let mut layers = Vec::with_capacity(tiles.len() * 2);
    let cell_color = LayerContent::Solid(layout.theme.tile);
    for tile in &tiles {
        match frames[tile.participant] {
            Some(frame) => {
                layers.extend(bars(tile.cell, tile.dst).map(|dst| Layer {
                    dst,
                    content: cell_color,
                }));
                layers.push(Layer {
                    dst: tile.dst,
                    content: LayerContent::Picture {
                        slot: tile.participant,
                        frame,
                        src: tile.src,
                    },
                });
            }
            None => layers.push(Layer {
                dst: tile.cell,
                content: cell_color,
            }),
        }
    }
    layers
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
        assert_eq!(
            b,
            vec![
                Rect {
                    x: 10.0,
                    y: 20.0,
                    w: 20.0,
                    h: 50.0
                },
                Rect {
                    x: 90.0,
                    y: 20.0,
                    w: 20.0,
                    h: 50.0
                }
            ]
        );
        let area: f32 = b.iter().map(|r| r.w * r.h).sum::<f32>() + inner.w * inner.h;
        assert_eq!(area, cell.w * cell.h);
        assert_eq!(bars(cell, cell).count(), 0);
    }
}
