//! Rectangles, fitting a picture into a cell, and arranging cells in a region.

use super::Fit;

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

/// The aspect cells are shaped for when a region arranges them in a row or column, and
/// the one a grid maximises: a camera's.
pub const CELL_ASPECT: f32 = 16.0 / 9.0;

/// Columns and rows that give `n` cells of `area` the biggest 16:9 picture; ties go to more
/// columns on a landscape area, more rows on a portrait one.
pub fn auto_grid(n: usize, area: Rect, gap: f32, max_side: u32) -> (u32, u32) {
    let mut best = (1u32, n.max(1) as u32, f32::MIN);
    let landscape = area.w >= area.h;
    for c in 1..=(n.max(1) as u32).min(max_side) {
        let r = (n as u32).div_ceil(c).max(1);
        if r > max_side {
            continue;
        }
        let cw = (area.w - gap * (c - 1) as f32) / c as f32;
        let ch = (area.h - gap * (r - 1) as f32) / r as f32;
        let scale = (cw / CELL_ASPECT).min(ch);
        let better = scale > best.2 + 0.01 || ((scale - best.2).abs() <= 0.01 && landscape);
        if better {
            best = (c, r, scale);
        }
    }
    (best.0, best.1)
}

/// `n` cells in `columns` x `rows` filling `area`, row by row; a partial last row and
/// the whole block are centred. Positions are whole pixels.
pub fn grid_cells(n: usize, area: Rect, columns: u32, rows: u32, gap: f32) -> Vec<Rect> {
    if n == 0 {
        return Vec::new();
    }
    let n = n.min((columns * rows) as usize);
    let cols_used = (columns as usize).min(n);
    let rows_used = n.div_ceil(cols_used);
    let cell_w = ((area.w - gap * (cols_used as f32 - 1.0)) / cols_used as f32).floor();
    let cell_h = ((area.h - gap * (rows_used as f32 - 1.0)) / rows_used as f32).floor();
    let block_h = rows_used as f32 * cell_h + (rows_used as f32 - 1.0) * gap;
    let top = area.y + ((area.h - block_h) / 2.0).round();
    (0..n)
        .map(|i| {
            let (row, col) = (i / cols_used, i % cols_used);
            let in_row = (n - row * cols_used).min(cols_used);
            let row_w = in_row as f32 * cell_w + (in_row as f32 - 1.0) * gap;
            let left = area.x + ((area.w - row_w) / 2.0).round();
            Rect {
                x: left + col as f32 * (cell_w + gap),
                y: top + row as f32 * (cell_h + gap),
                w: cell_w,
                h: cell_h,
            }
        })
        .collect()
}

/// `n` 16:9 cells side by side (`row`) or stacked, as big as `area` allows, centred.
pub fn line_cells(n: usize, area: Rect, gap: f32, row: bool) -> Vec<Rect> {
    if n == 0 {
        return Vec::new();
    }
    let k = n as f32;
    let (w, h) = if row {
        let w = ((area.w - gap * (k - 1.0)) / k).min(area.h * CELL_ASPECT);
        (w.floor(), (w / CELL_ASPECT).min(area.h).floor())
    } else {
        let h = ((area.h - gap * (k - 1.0)) / k).min(area.w / CELL_ASPECT);
        ((h * CELL_ASPECT).min(area.w).floor(), h.floor())
    };
    let (total_w, total_h) = if row {
        (k * w + (k - 1.0) * gap, h)
    } else {
        (w, k * h + (k - 1.0) * gap)
    };
    let x0 = area.x + ((area.w - total_w) / 2.0).round();
    let y0 = area.y + ((area.h - total_h) / 2.0).round();
    (0..n)
        .map(|i| {
            let step = i as f32;
            Rect {
                x: if row { x0 + step * (w + gap) } else { x0 },
                y: if row { y0 } else { y0 + step * (h + gap) },
                w,
                h,
            }
        })
        .collect()
}

/// Whether two rectangles share some area.
pub fn overlaps(a: &Rect, b: &Rect) -> bool {
    a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

#[cfg(test)]
mod tests {
    use super::*;

    const HD: Rect = Rect {
        x: 0.0,
        y: 0.0,
        w: 1280.0,
        h: 720.0,
    };

    #[test]
    fn auto_grid_matches_livekit_like_grids() {
        let g = |n| auto_grid(n, HD, 0.0, 16);
        assert_eq!(g(1), (1, 1));
        assert_eq!(g(2), (2, 1));
        assert_eq!(g(3), (2, 2));
        assert_eq!(g(4), (2, 2));
        assert_eq!(g(6), (3, 2));
        assert_eq!(g(9), (3, 3));
        assert_eq!(g(16), (4, 4));
        assert_eq!(g(25), (5, 5));
        let portrait = Rect {
            w: 720.0,
            h: 1280.0,
            ..HD
        };
        assert_eq!(auto_grid(2, portrait, 0.0, 16), (1, 2));
    }

    #[test]
    fn grid_cells_are_disjoint_inside_and_centred() {
        for n in [1, 3, 7, 25] {
            let (c, r) = auto_grid(n, HD, 6.0, 16);
            let cells = grid_cells(n, HD, c, r, 6.0);
            assert_eq!(cells.len(), n);
            for (i, a) in cells.iter().enumerate() {
                assert!(a.x >= 0.0 && a.y >= 0.0 && a.x + a.w <= 1280.0 && a.y + a.h <= 720.0);
                assert!(cells[i + 1..].iter().all(|b| !overlaps(a, b)), "{n}: {a:?}");
            }
        }
        let cells = grid_cells(3, HD, 2, 2, 0.0);
        assert_eq!(cells[2].center().0, 640.0);
    }

    #[test]
    fn a_row_keeps_cells_16_by_9_and_centred() {
        let strip = Rect {
            x: 0.0,
            y: 540.0,
            w: 1280.0,
            h: 180.0,
        };
        let cells = line_cells(2, strip, 10.0, true);
        assert_eq!(cells[0].w, 320.0);
        assert_eq!(cells[0].h, 180.0);
        assert_eq!(cells[0].x, 1280.0 / 2.0 - 325.0);
        let col = line_cells(
            8,
            Rect {
                w: 320.0,
                h: 720.0,
                ..HD
            },
            0.0,
            false,
        );
        assert_eq!(col[0].h, 90.0);
        assert_eq!(col[7].y + col[7].h, 720.0);
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
