//! Layout evaluation: participant count and canvas size → tiles in pixels.

use super::{Fit, GridLayout};

/// An axis-aligned rectangle (pixels for cells and destinations, 0..1 for source crops).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl Rect {
    /// The full unit square (a whole source picture).
    pub const UNIT: Rect = Rect {
        x: 0.0,
        y: 0.0,
        w: 1.0,
        h: 1.0,
    };

    /// The centre point.
    pub fn center(&self) -> (f32, f32) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }

    /// Whether the point is inside (left/top edges inclusive).
    pub fn contains(&self, x: f32, y: f32) -> bool {
        x >= self.x && y >= self.y && x < self.x + self.w && y < self.y + self.h
    }
}

/// Where one participant goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tile {
    /// Index of the participant (join order).
    pub participant: usize,
    /// The cell, in canvas pixels.
    pub cell: Rect,
    /// Where the picture is drawn, in canvas pixels (inside `cell`).
    pub dst: Rect,
    /// Which part of the source picture is drawn, in 0..1 units.
    pub src: Rect,
}

/// Places a picture of aspect `src_aspect` (w/h) into `cell`.
pub fn fit(cell: Rect, src_aspect: f32, mode: Fit) -> (Rect, Rect) {
    let cell_aspect = cell.w / cell.h;
    match mode {
        Fit::Contain => {
            let (w, h) = if src_aspect > cell_aspect {
                (cell.w, (cell.w / src_aspect).round())
            } else {
                ((cell.h * src_aspect).round(), cell.h)
            };
            let dst = Rect {
                x: cell.x + ((cell.w - w) / 2.0).round(),
                y: cell.y + ((cell.h - h) / 2.0).round(),
                w,
                h,
            };
            (dst, Rect::UNIT)
        }
        Fit::Cover => {
            let src = if src_aspect > cell_aspect {
                let frac = cell_aspect / src_aspect;
                Rect {
                    x: (1.0 - frac) / 2.0,
                    y: 0.0,
                    w: frac,
                    h: 1.0,
                }
            } else {
                let frac = src_aspect / cell_aspect;
                Rect {
                    x: 0.0,
                    y: (1.0 - frac) / 2.0,
                    w: 1.0,
                    h: frac,
                }
            };
            (cell, src)
        }
    }
}

impl GridLayout {
    /// Columns and rows for `n` participants; swapped on a portrait canvas.
    pub fn grid_for(&self, n: usize, portrait: bool) -> (u32, u32) {
        let rule = self
            .rules
            .iter()
            .find(|r| r.participants.contains(n))
            .or(self.rules.last());
        let (c, r) = rule.map_or((1, 1), |r| (r.columns, r.rows));
        if portrait { (r, c) } else { (c, r) }
    }

    /// The tiles for participants with the given source aspects (w/h), in join order, on a
    /// `width` x `height` canvas. Participants past the grid's capacity are not shown.
    pub fn tiles(&self, aspects: &[f32], width: u32, height: u32) -> Vec<Tile> {
        let n = aspects.len();
        if n == 0 {
            return Vec::new();
        }
        let (w, h) = (width as f32, height as f32);
        let (cols, rows) = self.grid_for(n, height > width);
        let visible = n.min((cols * rows) as usize);
        let cols_used = (cols as usize).min(visible);
        let rows_used = visible.div_ceil(cols as usize);
        let short = w.min(h);
        let (pad, gap) = ((self.padding * short).round(), (self.gap * short).round());
        let cell_w = ((w - 2.0 * pad - gap * (cols_used as f32 - 1.0)) / cols_used as f32).floor();
        let cell_h = ((h - 2.0 * pad - gap * (rows_used as f32 - 1.0)) / rows_used as f32).floor();
        // Centre the whole block (rounding leaves a few pixels), and each partial row.
        let block_h = rows_used as f32 * cell_h + (rows_used as f32 - 1.0) * gap;
        let top = ((h - block_h) / 2.0).round();
        let mut tiles = Vec::with_capacity(visible);
        for (i, aspect) in aspects.iter().take(visible).enumerate() {
            let (row, col) = (i / cols_used, i % cols_used);
            let in_row = (visible - row * cols_used).min(cols_used);
            let row_w = in_row as f32 * cell_w + (in_row as f32 - 1.0) * gap;
            let left = ((w - row_w) / 2.0).round();
            let cell = Rect {
                x: left + col as f32 * (cell_w + gap),
                y: top + row as f32 * (cell_h + gap),
                w: cell_w,
                h: cell_h,
            };
            let (dst, src) = fit(cell, *aspect, self.fit);
            tiles.push(Tile {
                participant: i,
                cell,
                dst,
                src,
            });
        }
        tiles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::LayoutLibrary;

    fn grid() -> std::sync::Arc<GridLayout> {
        LayoutLibrary::builtin().resolve("grid").unwrap().layout
    }

    fn assert_disjoint_and_inside(tiles: &[Tile], w: f32, h: f32) {
        for (i, a) in tiles.iter().enumerate() {
            assert!(
                a.cell.x >= 0.0
                    && a.cell.y >= 0.0
                    && a.cell.x + a.cell.w <= w
                    && a.cell.y + a.cell.h <= h,
                "{a:?}"
            );
            for b in &tiles[i + 1..] {
                let overlap = a.cell.x < b.cell.x + b.cell.w
                    && b.cell.x < a.cell.x + a.cell.w
                    && a.cell.y < b.cell.y + b.cell.h
                    && b.cell.y < a.cell.y + a.cell.h;
                assert!(!overlap, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn counts_map_to_livekit_like_grids() {
        let g = grid();
        assert_eq!(g.grid_for(1, false), (1, 1));
        assert_eq!(g.grid_for(2, false), (2, 1));
        assert_eq!(g.grid_for(4, false), (2, 2));
        assert_eq!(g.grid_for(9, false), (3, 3));
        assert_eq!(g.grid_for(2, true), (1, 2));
        assert_eq!(g.grid_for(40, false), (5, 5));
    }

    #[test]
    fn four_at_720p_is_two_by_two() {
        let tiles = grid().tiles(&[16.0 / 9.0; 4], 1280, 720);
        assert_eq!(tiles.len(), 4);
        assert_disjoint_and_inside(&tiles, 1280.0, 720.0);
        // Row-major, join order.
        assert!(tiles[0].cell.x < tiles[1].cell.x && tiles[0].cell.y == tiles[1].cell.y);
        assert!(tiles[2].cell.y > tiles[0].cell.y);
        // padding 0.01*720 = 7, gap 0.008*720 = 6: (1280 - 14 - 6) / 2 = 630.
        assert_eq!(tiles[0].cell.w, 630.0);
        assert_eq!(tiles[0].cell.h, (720.0_f32 - 14.0 - 6.0) / 2.0);
    }

    #[test]
    fn partial_last_row_is_centred() {
        let tiles = grid().tiles(&[16.0 / 9.0; 3], 1280, 720);
        let (cx, _) = tiles[2].cell.center();
        assert!((cx - 640.0).abs() <= 1.0, "{cx}");
    }

    #[test]
    fn nine_and_twenty_five_fit() {
        for n in [9, 25, 30] {
            let tiles = grid().tiles(&vec![16.0 / 9.0; n], 1920, 1080);
            assert_eq!(tiles.len(), n.min(25));
            assert_disjoint_and_inside(&tiles, 1920.0, 1080.0);
        }
    }

    #[test]
    fn contain_letterboxes_and_cover_crops() {
        let cell = Rect {
            x: 0.0,
            y: 0.0,
            w: 400.0,
            h: 400.0,
        };
        let (dst, src) = fit(cell, 2.0, Fit::Contain);
        assert_eq!(
            dst,
            Rect {
                x: 0.0,
                y: 100.0,
                w: 400.0,
                h: 200.0
            }
        );
        assert_eq!(src, Rect::UNIT);
        let (dst, src) = fit(cell, 2.0, Fit::Cover);
        assert_eq!(dst, cell);
        assert_eq!(
            src,
            Rect {
                x: 0.25,
                y: 0.0,
                w: 0.5,
                h: 1.0
            }
        );
    }
}
