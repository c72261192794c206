//! Evaluating a layout: who is in the room (and who speaks, and whether a screen is
//! shared) and the canvas size → which tile goes where. Pure and allocation-light: it
//! runs every frame.

use super::geometry::{self, Rect};
use super::model::{Arrange, Layout, MAX_GRID, Overflow, Region, Rule, Show, TileStyle};

/// One participant as the layout sees them.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// Identity (pinning, placeholder colour, animation).
    pub identity: String,
    /// Display name (labels, initials); the identity when empty.
    pub name: String,
    /// The camera picture's width / height; `None` when the camera is off or missing.
    pub aspect: Option<f32>,
}

impl Member {
    /// The name to show.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.identity
        } else {
            &self.name
        }
    }

    /// Up to two initials, upper case ("Ada Lovelace" → "AL").
    pub fn initials(&self) -> String {
        self.display_name()
            .split(|c: char| c.is_whitespace() || c == '-' || c == '_' || c == '.')
            .filter_map(|w| w.chars().next())
            .filter(|c| c.is_alphanumeric())
            .take(2)
            .flat_map(char::to_uppercase)
            .collect()
    }
}

/// The room at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Roster<'a> {
    /// Participants in join order.
    pub members: &'a [Member],
    /// The screen share: its owner (index into `members`) and aspect.
    pub screen_share: Option<(usize, f32)>,
    /// The active speaker (index into `members`).
    pub speaker: Option<usize>,
}

/// What a tile shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// A participant's camera (or their placeholder), by index.
    Camera(usize),
    /// The screen share of this participant.
    ScreenShare(usize),
    /// "+N": this many more people than room.
    More(usize),
}

/// One tile of the evaluated layout, in canvas pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    /// What it shows.
    pub content: Content,
    /// The cell.
    pub cell: Rect,
    /// Drawing order (higher on top).
    pub z: i32,
    /// Looks.
    pub style: TileStyle,
    /// Whether this is the active speaker's camera.
    pub speaking: bool,
    /// Which region of the rule placed it.
    pub region: usize,
}

impl Placement {
    /// A key that follows the same tile across evaluations (for animation).
    pub fn key(&self, roster: &Roster<'_>) -> String {
        let id = |i: usize| roster.members.get(i).map_or("", |m| m.identity.as_str());
        match self.content {
            Content::Camera(i) => format!("camera:{}", id(i)),
            Content::ScreenShare(i) => format!("share:{}", id(i)),
            Content::More(_) => format!("more:{}", self.region),
        }
    }
}

/// Regions are filled in this order whatever the file order, so pinned people and the
/// speaker are taken before "others" sweeps up the rest.
fn priority(show: &Show) -> u8 {
    match show {
        Show::Pinned(_) => 0,
        Show::ScreenShare => 1,
        Show::Speaker => 2,
        Show::Others | Show::Everyone => 3,
    }
}

impl Layout {
    /// The rule for `n` participants with or without a screen share: the first that
    /// applies, or the last rule when none does.
    pub fn rule_for(&self, n: usize, share: bool) -> &Rule {
        self.rules
            .iter()
            .find(|r| r.applies(n, share))
            .unwrap_or_else(|| self.rules.last().expect("a layout has rules"))
    }

    /// The tiles for `roster` on a `width` x `height` canvas, in drawing order (by z,
    /// then region order).
    pub fn place(&self, roster: &Roster<'_>, width: u32, height: u32) -> Vec<Placement> {
        let n = roster.members.len();
        let share = roster.screen_share.filter(|(owner, _)| *owner < n);
        if n == 0 {
            return Vec::new();
        }
        let rule = self.rule_for(n, share.is_some());
        let (w, h) = (width as f32, height as f32);
        let short = w.min(h);
        let pad = (self.padding * short).round();
        let gap = (self.gap * short).round();
        let inner = Rect {
            x: pad,
            y: pad,
            w: w - 2.0 * pad,
            h: h - 2.0 * pad,
        };
        let mut placed = vec![false; n];
        let mut order: Vec<usize> = (0..rule.regions.len()).collect();
        order.sort_by_key(|&i| priority(&rule.regions[i].show));
        let mut out = Vec::new();
        for ri in order {
            let region = &rule.regions[ri];
            let mut items = select(region, roster, share, &mut placed);
            let cap = capacity(region);
            if items.len() > cap {
                match region.overflow {
                    Overflow::Count if cap >= 2 => {
                        let more = items.len() - (cap - 1);
                        items.truncate(cap - 1);
                        items.push(Content::More(more));
                    }
                    _ => items.truncate(cap),
                }
            }
            let [ax, ay, aw, ah] = region.area;
            let area = Rect {
                x: (inner.x + ax * inner.w).round(),
                y: (inner.y + ay * inner.h).round(),
                w: (aw * inner.w).round(),
                h: (ah * inner.h).round(),
            };
            for (content, cell) in items.iter().zip(cells(region, items.len(), area, gap)) {
                out.push(Placement {
                    content: *content,
                    cell,
                    z: region.z,
                    style: region.style,
                    speaking: matches!(content, Content::Camera(i) if roster.speaker == Some(*i)),
                    region: ri,
                });
            }
        }
        out.sort_by_key(|p| (p.z, p.region));
        out
    }
}

/// Most tiles a region holds.
fn capacity(region: &Region) -> usize {
    let grid = match (region.arrange, region.columns, region.rows) {
        (Arrange::Grid, Some(c), Some(r)) => (c * r) as usize,
        _ => (MAX_GRID * MAX_GRID) as usize,
    };
    region.max.unwrap_or(usize::MAX).min(grid)
}

/// Who region `region` shows, marking them placed.
fn select(
    region: &Region,
    roster: &Roster<'_>,
    share: Option<(usize, f32)>,
    placed: &mut [bool],
) -> Vec<Content> {
    let n = placed.len();
    let mut items = Vec::new();
    let take = |i: usize, placed: &mut [bool], items: &mut Vec<Content>| {
        placed[i] = true;
        items.push(Content::Camera(i));
    };
    match &region.show {
        Show::Pinned(ids) => {
            for id in ids {
                if let Some(i) = roster.members.iter().position(|m| &m.identity == id)
                    && !placed[i]
                {
                    take(i, placed, &mut items);
                }
            }
        }
        Show::ScreenShare => items.extend(share.map(|(owner, _)| Content::ScreenShare(owner))),
        Show::Speaker => {
            let who = roster
                .speaker
                .filter(|&s| s < n && !placed[s])
                .or_else(|| (0..n).find(|&i| !placed[i]));
            if let Some(i) = who {
                take(i, placed, &mut items);
            }
        }
        Show::Others => {
            for i in 0..n {
                if !placed[i] {
                    take(i, placed, &mut items);
                }
            }
        }
        Show::Everyone => {
            items.extend(share.map(|(owner, _)| Content::ScreenShare(owner)));
            for i in 0..n {
                take(i, placed, &mut items);
            }
        }
    }
    items
}

/// The cells of a region holding `k` tiles.
fn cells(region: &Region, k: usize, area: Rect, gap: f32) -> Vec<Rect> {
    match region.arrange {
        Arrange::Row => geometry::line_cells(k, area, gap, true),
        Arrange::Column => geometry::line_cells(k, area, gap, false),
        Arrange::Grid => {
            let (c, r) = match (region.columns, region.rows) {
                (Some(c), Some(r)) => (c, r),
                (Some(c), None) => (c, (k as u32).div_ceil(c).max(1)),
                (None, Some(r)) => ((k as u32).div_ceil(r).max(1), r),
                (None, None) => geometry::auto_grid(k, area, gap, MAX_GRID),
            };
            geometry::grid_cells(k, area, c, r, gap)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::LayoutLibrary;

    fn members(n: usize) -> Vec<Member> {
        (0..n)
            .map(|i| Member {
                identity: format!("p{i}"),
                name: format!("Person {i}"),
                aspect: Some(16.0 / 9.0),
            })
            .collect()
    }

    fn place(
        layout: &str,
        n: usize,
        share: Option<usize>,
        speaker: Option<usize>,
    ) -> Vec<Placement> {
        let lib = LayoutLibrary::builtin();
        let m = members(n);
        let roster = Roster {
            members: &m,
            screen_share: share.map(|o| (o, 16.0 / 9.0)),
            speaker,
        };
        lib.resolve(layout)
            .unwrap()
            .layout
            .place(&roster, 1280, 720)
    }

    fn biggest(p: &[Placement]) -> Placement {
        *p.iter()
            .max_by(|a, b| (a.cell.w * a.cell.h).total_cmp(&(b.cell.w * b.cell.h)))
            .unwrap()
    }

    #[test]
    fn grid_shows_everyone_then_plus_n() {
        for n in [1, 2, 4, 9, 25] {
            assert_eq!(place("grid", n, None, None).len(), n);
        }
        let p = place("grid", 30, None, None);
        assert_eq!(p.len(), 25);
        assert_eq!(p[24].content, Content::More(6));
    }

    #[test]
    fn speaker_puts_the_speaker_in_the_main_area() {
        let p = place("speaker", 4, None, Some(2));
        assert_eq!(biggest(&p).content, Content::Camera(2));
        assert!(biggest(&p).speaking);
        assert_eq!(p.len(), 4);
        // Nobody has spoken: the first participant.
        assert_eq!(
            biggest(&place("speaker", 4, None, None)).content,
            Content::Camera(0)
        );
    }

    #[test]
    fn a_screen_share_takes_the_main_area() {
        for layout in ["speaker", "single-speaker", "presentation", "pip"] {
            let p = place(layout, 3, Some(1), Some(2));
            assert_eq!(biggest(&p).content, Content::ScreenShare(1), "{layout}");
        }
        assert_eq!(place("single-speaker", 3, Some(1), Some(2)).len(), 1);
        assert_eq!(
            place("single-speaker", 3, None, Some(2))[0].content,
            Content::Camera(2)
        );
    }

    #[test]
    fn pip_draws_the_inset_on_top() {
        let p = place("pip", 2, None, Some(1));
        let top = p.last().unwrap();
        assert!(top.z > p[0].z);
        assert_eq!(p[0].content, Content::Camera(1));
        assert_eq!(top.content, Content::Camera(0));
        assert!(top.cell.w < 400.0);
    }

    #[test]
    fn pinned_identities_win_over_the_speaker() {
        let text = r##"
[theme.dark]
background = "#000000"
tile = "#111111"
[[rule]]
[[rule.region]]
area = [0, 0, 0.5, 1]
show = "pinned"
identities = ["p3"]
[[rule.region]]
area = [0.5, 0, 0.5, 1]
show = "others"
max = 2
"##;
        let (layout, _) = Layout::compile("t.toml", text, None).unwrap();
        let m = members(5);
        let roster = Roster {
            members: &m,
            screen_share: None,
            speaker: Some(3),
        };
        let p = layout.place(&roster, 1280, 720);
        assert_eq!(p[0].content, Content::Camera(3));
        assert_eq!(p[1].content, Content::Camera(0));
        assert_eq!(p[2].content, Content::More(3));
    }

    #[test]
    fn initials() {
        let m = |name: &str| Member {
            identity: "id".into(),
            name: name.into(),
            aspect: None,
        };
        assert_eq!(m("ada lovelace").initials(), "AL");
        assert_eq!(m("Zoë").initials(), "Z");
        assert_eq!(m("").initials(), "I");
        assert_eq!(m("  ").initials(), "");
    }
}
