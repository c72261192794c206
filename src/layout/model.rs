//! A compiled layout: what a template file means once checked (themes, tile styles,
//! rules and their regions). Built by [`super::template`], read by [`super::eval`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use super::{Color, CountRange, Fit, Image};

/// Most cells one region lays out in either direction.
pub const MAX_GRID: u32 = 16;

/// Colours (and optional image) of one theme.
#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    /// Canvas background.
    pub background: Color,
    /// Drawn over the background, covering the canvas (cropped to fit).
    pub background_image: Option<Arc<Image>>,
    /// Cell colour behind pictures (bars of `contain`) and of empty cells.
    pub tile: Color,
    /// Tile borders.
    pub border: Color,
    /// The active speaker's outline.
    pub highlight: Color,
    /// Name label text.
    pub label: Color,
    /// The box behind name labels.
    pub label_background: Color,
    /// Placeholder colours for participants without a picture (chosen by identity).
    pub placeholder: Vec<Color>,
    /// Initials on placeholders, and the "+N" of overflow tiles.
    pub placeholder_text: Color,
    /// Burned-in caption text.
    pub caption: Color,
    /// The box behind each caption line.
    pub caption_background: Color,
}

/// How tiles look; lengths are fractions of the canvas's shorter side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TileStyle {
    /// Contain or cover.
    pub fit: Fit,
    /// Corner radius.
    pub radius: f32,
    /// Border width (0: none).
    pub border: f32,
    /// Active-speaker outline width (0: none).
    pub highlight: f32,
    /// Whether name labels are drawn.
    pub labels: bool,
}

/// Who a region shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Show {
    /// The active speaker (the first participant until someone speaks).
    Speaker,
    /// The screen share, if there is one.
    ScreenShare,
    /// Everyone not placed by another region, in join order.
    Others,
    /// The screen share (if any) then every participant, in join order.
    Everyone,
    /// These identities, in this order, when present.
    Pinned(Vec<String>),
}

/// How a region arranges several tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrange {
    /// Rows and columns (given, or chosen for the biggest 16:9 tiles).
    Grid,
    /// One row of 16:9 cells, centred.
    Row,
    /// One column of 16:9 cells, centred.
    Column,
}

/// What happens when a region has more people than room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// The last cell becomes a "+N" tile.
    Count,
    /// The extra people are not shown.
    Hide,
}

/// One region of a rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    /// x, y, width, height in fractions of the canvas inside its padding.
    pub area: [f32; 4],
    /// Who goes here.
    pub show: Show,
    /// Most tiles (including a "+N" tile).
    pub max: Option<usize>,
    /// How tiles are arranged.
    pub arrange: Arrange,
    /// Fixed columns and rows for `grid`.
    pub columns: Option<u32>,
    /// Fixed rows for `grid`.
    pub rows: Option<u32>,
    /// Past capacity.
    pub overflow: Overflow,
    /// Drawing order: higher is on top.
    pub z: i32,
    /// Tile looks.
    pub style: TileStyle,
    /// Byte span of the region's table and of its `area`, for warnings.
    pub(crate) spans: (Range<usize>, Range<usize>),
}

/// One rule: when it applies and its regions.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Participant counts.
    pub participants: CountRange,
    /// `Some(true)`: only with a screen share; `Some(false)`: only without.
    pub screen_share: Option<bool>,
    /// Regions, as written.
    pub regions: Vec<Region>,
    /// Byte span of the rule's table.
    pub(crate) span: Range<usize>,
}

impl Rule {
    /// Whether this rule applies to `n` participants with or without a screen share.
    pub fn applies(&self, n: usize, share: bool) -> bool {
        self.participants.contains(n) && self.screen_share.is_none_or(|s| s == share)
    }
}

/// A compiled layout template.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// The layout's name.
    pub name: String,
    /// Free text for authors.
    pub description: String,
    /// `dark` (always) and maybe `light`.
    pub themes: BTreeMap<String, Theme>,
    /// Around the canvas, fraction of the shorter side.
    pub padding: f32,
    /// Between cells of a region, fraction of the shorter side.
    pub gap: f32,
    /// How long tiles take to move to a new place.
    pub transition: Duration,
    /// First match wins.
    pub rules: Vec<Rule>,
    /// Where burned-in captions go.
    pub captions: super::CaptionStyle,
}
