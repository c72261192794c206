//! Layout template files (`layouts/*.toml`): parsing with line/column errors, themes,
//! and the library that resolves LiveKit layout names (`grid`, `grid-light`, ...).
//! Knows nothing of the GPU; [`geometry`] turns a layout into tiles.

pub mod geometry;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

pub use geometry::{Rect, Tile};

/// Layouts compiled into the binary, so it runs from any directory.
const BUILTIN: [(&str, &str); 1] = [("grid", include_str!("../../layouts/grid.toml"))];

/// The layout used when a request leaves `layout` empty.
pub const DEFAULT_LAYOUT: &str = "grid";

/// Why a layout cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// No layout file has this name.
    #[error("unknown layout {name:?} (available: {available})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names that exist, comma separated.
        available: String,
    },
    /// The file is not valid TOML or does not fit the template format.
    #[error("{file}: {message}")]
    Parse {
        /// File name (or built-in name).
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file parsed but a value is unusable.
    #[error("{file}: {field}: {reason}")]
    Invalid {
        /// File name.
        file: String,
        /// Field path in the file.
        field: String,
        /// Why.
        reason: String,
    },
    /// A layout directory could not be read.
    #[error("reading layouts from {dir}: {source}")]
    Io {
        /// The directory.
        dir: String,
        /// The IO error.
        source: std::io::Error,
    },
}

/// An sRGB colour with alpha, components in 0..=1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Color(pub [f32; 4]);

impl Color {
    /// Parses `#rrggbb` or `#rrggbbaa`.
    pub fn parse(s: &str) -> Option<Color> {
        let hex = s.strip_prefix('#')?;
        if !(hex.len() == 6 || hex.len() == 8) || !hex.is_ascii() {
            return None;
        }
        let byte = |i: usize| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .ok()
                .map(|b| b as f32 / 255.0)
        };
        let a = if hex.len() == 8 { byte(6)? } else { 1.0 };
        Some(Color([byte(0)?, byte(2)?, byte(4)?, a]))
    }
}

/// How a picture fills its cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// The whole picture is visible; bars where aspects differ.
    Contain,
    /// The cell is filled; the picture is cropped.
    Cover,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    background: String,
    tile: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    participants: String,
    columns: u32,
    rows: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    padding: f32,
    gap: f32,
    fit: Fit,
    rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutFile {
    name: String,
    #[serde(default)]
    description: String,
    theme: BTreeMap<String, ThemeFile>,
    grid: GridFile,
}

/// Colours of one theme (`dark` or `light`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Theme {
    /// Canvas background.
    pub background: Color,
    /// Cell background behind each picture.
    pub tile: Color,
}

/// A participant-count range, inclusive; `max` is `None` for "N+".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountRange {
    /// Smallest count.
    pub min: usize,
    /// Largest count, if bounded.
    pub max: Option<usize>,
}

impl CountRange {
    /// Parses `"3"`, `"3-4"` or `"10+"`.
    pub fn parse(s: &str) -> Option<CountRange> {
        let s = s.trim();
        if let Some(min) = s.strip_suffix('+') {
            return Some(CountRange {
                min: min.trim().parse().ok()?,
                max: None,
            });
        }
        if let Some((a, b)) = s.split_once('-') {
            let (min, max) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            return (min <= max).then_some(CountRange {
                min,
                max: Some(max),
            });
        }
        let n = s.parse().ok()?;
        Some(CountRange {
            min: n,
            max: Some(n),
        })
    }

    /// Whether `n` is inside.
    pub fn contains(&self, n: usize) -> bool {
        n >= self.min && self.max.is_none_or(|m| n <= m)
    }
}

/// One grid rule: for counts in `participants`, `columns` x `rows` cells.
#[derive(Clone, Debug, PartialEq)]
pub struct GridRule {
    /// Counts the rule applies to.
    pub participants: CountRange,
    /// Columns (landscape).
    pub columns: u32,
    /// Rows (landscape).
    pub rows: u32,
}

/// A parsed grid layout.
#[derive(Clone, Debug, PartialEq)]
pub struct GridLayout {
    /// The layout's name.
    pub name: String,
    /// Free text for authors.
    pub description: String,
    /// Themes by name.
    pub themes: BTreeMap<String, Theme>,
    /// Padding around the grid, as a fraction of the shorter side.
    pub padding: f32,
    /// Gap between cells, as a fraction of the shorter side.
    pub gap: f32,
    /// How pictures fill cells.
    pub fit: Fit,
    /// Rules, first match wins.
    pub rules: Vec<GridRule>,
}

impl GridLayout {
    /// Parses a layout file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<GridLayout, LayoutError> {
        let raw: LayoutFile = toml::from_str(text).map_err(|e| LayoutError::Parse {
            file: file.into(),
            message: e.to_string(),
        })?;
        let invalid = |field: String, reason: String| LayoutError::Invalid {
            file: file.into(),
            field,
            reason,
        };
        let mut themes = BTreeMap::new();
        for (name, t) in &raw.theme {
            let color = |field: &str, v: &str| {
                Color::parse(v).ok_or_else(|| {
                    invalid(
                        format!("theme.{name}.{field}"),
                        format!("{v:?} is not #rrggbb"),
                    )
                })
            };
            themes.insert(
                name.clone(),
                Theme {
                    background: color("background", &t.background)?,
                    tile: color("tile", &t.tile)?,
                },
            );
        }
        if !themes.contains_key("dark") {
            return Err(invalid(
                "theme.dark".into(),
                "a dark theme is required (the default)".into(),
            ));
        }
        for (field, v) in [
            ("grid.padding", raw.grid.padding),
            ("grid.gap", raw.grid.gap),
        ] {
            if !(0.0..0.25).contains(&v) {
                return Err(invalid(
                    field.into(),
                    format!("must be in [0, 0.25), got {v}"),
                ));
            }
        }
        let mut rules = Vec::new();
        for (i, r) in raw.grid.rules.iter().enumerate() {
            let participants = CountRange::parse(&r.participants).ok_or_else(|| {
                invalid(
                    format!("grid.rules[{i}].participants"),
                    format!("{:?} is not N, N-M or N+", r.participants),
                )
            })?;
            if r.columns == 0 || r.rows == 0 || r.columns > 16 || r.rows > 16 {
                return Err(invalid(
                    format!("grid.rules[{i}]"),
                    "columns and rows must be 1..=16".into(),
                ));
            }
            rules.push(GridRule {
                participants,
                columns: r.columns,
                rows: r.rows,
            });
        }
        if rules.is_empty() {
            return Err(invalid(
                "grid.rules".into(),
                "at least one rule is required".into(),
            ));
        }
        Ok(GridLayout {
            name: raw.name,
            description: raw.description,
            themes,
            padding: raw.grid.padding,
            gap: raw.grid.gap,
            fit: raw.grid.fit,
            rules,
        })
    }
}

/// A layout with its theme chosen, ready to evaluate.
#[derive(Clone, Debug)]
pub struct ResolvedLayout {
    /// The name as requested (e.g. `grid-light`).
    pub requested: String,
    /// The layout.
    pub layout: Arc<GridLayout>,
    /// The chosen theme.
    pub theme: Theme,
}

/// All layouts known to this process, by name.
#[derive(Clone, Debug)]
pub struct LayoutLibrary {
    layouts: BTreeMap<String, Arc<GridLayout>>,
}

impl LayoutLibrary {
    /// The layouts compiled into the binary.
    pub fn builtin() -> LayoutLibrary {
        let layouts = BUILTIN
            .iter()
            .map(|(name, text)| {
                let l = GridLayout::parse(&format!("layouts/{name}.toml"), text)
                    .expect("built-in layouts parse");
                (name.to_string(), Arc::new(l))
            })
            .collect();
        LayoutLibrary { layouts }
    }

    /// The built-ins, overridden and extended by every `*.toml` in `dir`.
    pub fn with_dir(dir: &Path) -> Result<LayoutLibrary, LayoutError> {
        let mut lib = LayoutLibrary::builtin();
        let io = |source| LayoutError::Io {
            dir: dir.display().to_string(),
            source,
        };
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).map_err(io)?;
                let layout = GridLayout::parse(&path.display().to_string(), &text)?;
                let stem = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                lib.layouts.insert(stem, Arc::new(layout));
            }
        }
        Ok(lib)
    }

    /// Names of the known layouts.
    pub fn names(&self) -> Vec<&str> {
        self.layouts.keys().map(String::as_str).collect()
    }

    /// Resolves a LiveKit layout name: `NAME`, `NAME-dark` or `NAME-light` (plain names
    /// are dark, as LiveKit's); empty means [`DEFAULT_LAYOUT`].
    pub fn resolve(&self, requested: &str) -> Result<ResolvedLayout, LayoutError> {
        let name = if requested.is_empty() {
            DEFAULT_LAYOUT
        } else {
            requested
        };
        let (base, theme) = match name.rsplit_once('-') {
            Some((b, t @ ("dark" | "light"))) if self.layouts.contains_key(b) => (b, t),
            _ => (name, "dark"),
        };
        let unknown = || LayoutError::Unknown {
            name: requested.to_owned(),
            available: self.names().join(", "),
        };
        let layout = self.layouts.get(base).ok_or_else(unknown)?;
        let theme = *layout.themes.get(theme).ok_or_else(unknown)?;
        Ok(ResolvedLayout {
            requested: requested.to_owned(),
            layout: layout.clone(),
            theme,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_grid_resolves_with_themes() {
        let lib = LayoutLibrary::builtin();
        let dark = lib.resolve("grid").unwrap();
        let light = lib.resolve("grid-light").unwrap();
        assert_eq!(dark.theme, lib.resolve("grid-dark").unwrap().theme);
        assert_ne!(dark.theme, light.theme);
        assert_eq!(lib.resolve("").unwrap().layout.name, "grid");
        let err = lib.resolve("speaker-ish").unwrap_err().to_string();
        assert!(err.contains("speaker-ish") && err.contains("grid"), "{err}");
    }

    #[test]
    fn count_ranges() {
        assert!(CountRange::parse("3-4").unwrap().contains(4));
        assert!(!CountRange::parse("3-4").unwrap().contains(5));
        assert!(CountRange::parse("17+").unwrap().contains(1000));
        assert_eq!(CountRange::parse("4-3"), None);
        assert_eq!(CountRange::parse("x"), None);
    }

    #[test]
    fn parse_errors_have_line_and_column() {
        let err = GridLayout::parse("bad.toml", "name = \"x\"\n[grid\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.toml") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn bad_colour_names_the_field() {
        let text = include_str!("../../layouts/grid.toml").replace("#0e0e12", "blue");
        let err = GridLayout::parse("g.toml", &text).unwrap_err().to_string();
        assert!(err.contains("theme.dark.background"), "{err}");
    }

    #[test]
    fn colours() {
        assert_eq!(Color::parse("#ff0000"), Some(Color([1.0, 0.0, 0.0, 1.0])));
        assert_eq!(Color::parse("ff0000"), None);
    }
}
