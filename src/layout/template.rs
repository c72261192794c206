//! The template file format (TOML) and its compiler: text → [`Layout`], with every error
//! and warning placed at its line and column (see `docs/layouts.md`).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::captions::{CaptionStyle, FONT_SIZES, MAX_LINES};
use super::diag::{Diagnostic, Severity};
use super::model::{Arrange, Layout, MAX_GRID, Overflow, Region, Rule, Show, Theme, TileStyle};
use super::{Color, CountRange, Fit, Image};

// ---- The file as written -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    theme: Spanned<BTreeMap<String, Spanned<ThemeDoc>>>,
    #[serde(default)]
    style: StyleDoc,
    rule: Spanned<Vec<Spanned<RuleDoc>>>,
    captions: Option<CaptionsDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptionsDoc {
    area: Option<Spanned<Vec<f64>>>,
    lines: Option<Spanned<i64>>,
    font_size: Option<Spanned<f64>>,
    speaker: Option<bool>,
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeDoc {
    background: Spanned<String>,
    background_image: Option<Spanned<String>>,
    tile: Spanned<String>,
    border: Option<Spanned<String>>,
    highlight: Option<Spanned<String>>,
    label: Option<Spanned<String>>,
    label_background: Option<Spanned<String>>,
    placeholder: Option<Spanned<Vec<Spanned<String>>>>,
    placeholder_text: Option<Spanned<String>>,
    caption: Option<Spanned<String>>,
    caption_background: Option<Spanned<String>>,
}

/// Tile style fields, in `[style]` (defaults) and each region (overrides). Written out in
/// both tables: serde's `flatten` would lose the spans and the unknown-field check.
struct TileStyleDoc<'a> {
    fit: &'a Option<Spanned<String>>,
    radius: &'a Option<Spanned<f64>>,
    border: &'a Option<Spanned<f64>>,
    highlight: &'a Option<Spanned<f64>>,
    labels: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleDoc {
    padding: Option<Spanned<f64>>,
    gap: Option<Spanned<f64>>,
    transition: Option<Spanned<f64>>,
    fit: Option<Spanned<String>>,
    radius: Option<Spanned<f64>>,
    border: Option<Spanned<f64>>,
    highlight: Option<Spanned<f64>>,
    labels: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WhenDoc {
    participants: Option<Spanned<String>>,
    screen_share: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    #[serde(default)]
    when: WhenDoc,
    region: Spanned<Vec<Spanned<RegionDoc>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionDoc {
    area: Spanned<Vec<f64>>,
    show: Spanned<String>,
    identities: Option<Spanned<Vec<String>>>,
    max: Option<Spanned<i64>>,
    arrange: Option<Spanned<String>>,
    columns: Option<Spanned<i64>>,
    rows: Option<Spanned<i64>>,
    overflow: Option<Spanned<String>>,
    #[serde(default)]
    z: i32,
    fit: Option<Spanned<String>>,
    radius: Option<Spanned<f64>>,
    border: Option<Spanned<f64>>,
    highlight: Option<Spanned<f64>>,
    labels: Option<bool>,
}

// ---- Compiling -------------------------------------------------------------------------

const COLOUR_HINT: &str = "write colours as \"#rrggbb\" or \"#rrggbbaa\" (aa = opacity)";

struct Compiler<'a> {
    file: &'a str,
    text: &'a str,
    dir: Option<&'a Path>,
    warnings: Vec<Diagnostic>,
}

impl Compiler<'_> {
    fn error(&self, span: Range<usize>, message: String, hint: &str) -> Diagnostic {
        let hint = (!hint.is_empty()).then(|| hint.to_owned());
        Diagnostic::at(Severity::Error, self.file, self.text, span, message, hint)
    }

    fn warn(&mut self, span: Range<usize>, message: String, hint: &str) {
        let hint = (!hint.is_empty()).then(|| hint.to_owned());
        let d = Diagnostic::at(Severity::Warning, self.file, self.text, span, message, hint);
        self.warnings.push(d);
    }

    fn colour(&self, field: &str, v: &Spanned<String>) -> Result<Color, Diagnostic> {
        Color::parse(v.get_ref()).ok_or_else(|| {
            self.error(
                v.span(),
                format!("{field}: {:?} is not a colour", v.get_ref()),
                COLOUR_HINT,
            )
        })
    }

    fn number(
        &self,
        field: &str,
        v: &Option<Spanned<f64>>,
        range: Range<f64>,
        default: f32,
    ) -> Result<f32, Diagnostic> {
        let Some(v) = v else { return Ok(default) };
        let x = *v.get_ref();
        if !(x >= range.start && x < range.end) {
            return Err(self.error(
                v.span(),
                format!(
                    "{field} must be at least {} and below {}, got {x}",
                    range.start, range.end
                ),
                "lengths are fractions of the output's shorter side (0.01 = 1%)",
            ));
        }
        Ok(x as f32)
    }

    fn choice<T: Copy>(
        &self,
        field: &str,
        v: &Option<Spanned<String>>,
        options: &[(&str, T)],
        default: T,
    ) -> Result<T, Diagnostic> {
        let Some(v) = v else { return Ok(default) };
        options
            .iter()
            .find(|(name, _)| name == v.get_ref())
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<_> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                self.error(
                    v.span(),
                    format!("{field}: unknown value {:?}", v.get_ref()),
                    &format!("one of {}", names.join(", ")),
                )
            })
    }

    fn count(
        &self,
        field: &str,
        v: &Option<Spanned<i64>>,
        max: i64,
    ) -> Result<Option<u32>, Diagnostic> {
        let Some(v) = v else { return Ok(None) };
        let n = *v.get_ref();
        if !(1..=max).contains(&n) {
            return Err(self.error(v.span(), format!("{field} must be 1 to {max}, got {n}"), ""));
        }
        Ok(Some(n as u32))
    }

    fn tile_style(&self, doc: TileStyleDoc<'_>, base: TileStyle) -> Result<TileStyle, Diagnostic> {
        Ok(TileStyle {
            fit: self.choice(
                "fit",
                doc.fit,
                &[("contain", Fit::Contain), ("cover", Fit::Cover)],
                base.fit,
            )?,
            radius: self.number("radius", doc.radius, 0.0..0.5, base.radius)?,
            border: self.number("border", doc.border, 0.0..0.1, base.border)?,
            highlight: self.number("highlight", doc.highlight, 0.0..0.1, base.highlight)?,
            labels: doc.labels.unwrap_or(base.labels),
        })
    }

    fn theme(&self, name: &str, doc: &ThemeDoc) -> Result<Theme, Diagnostic> {
        let f = |field: &str| format!("theme.{name}.{field}");
        let opt = |field: &str, v: &Option<Spanned<String>>, default: Color| match v {
            Some(v) => self.colour(&f(field), v),
            None => Ok(default),
        };
        let background = self.colour(&f("background"), &doc.background)?;
        let tile = self.colour(&f("tile"), &doc.tile)?;
        let placeholder = match &doc.placeholder {
            None => DEFAULT_PLACEHOLDERS
                .iter()
                .map(|c| Color::parse(c).expect("valid"))
                .collect(),
            Some(list) if list.get_ref().is_empty() => {
                return Err(self.error(
                    list.span(),
                    format!("{} needs at least one colour", f("placeholder")),
                    COLOUR_HINT,
                ));
            }
            Some(list) => list
                .get_ref()
                .iter()
                .map(|c| self.colour(&f("placeholder"), c))
                .collect::<Result<_, _>>()?,
        };
        let background_image = match &doc.background_image {
            None => None,
            Some(p) => Some(Arc::new(self.image(&f("background_image"), p)?)),
        };
        Ok(Theme {
            background,
            background_image,
            tile,
            border: opt("border", &doc.border, tile)?,
            highlight: opt("highlight", &doc.highlight, Color([0.31, 0.61, 1.0, 1.0]))?,
            label: opt("label", &doc.label, Color([1.0; 4]))?,
            label_background: opt(
                "label_background",
                &doc.label_background,
                Color([0.0, 0.0, 0.0, 0.6]),
            )?,
            placeholder,
            placeholder_text: opt("placeholder_text", &doc.placeholder_text, Color([1.0; 4]))?,
            caption: opt("caption", &doc.caption, Color([1.0; 4]))?,
            caption_background: opt(
                "caption_background",
                &doc.caption_background,
                Color([0.0, 0.0, 0.0, 0.7]),
            )?,
        })
    }

    /// Loads a PNG named relative to the layout file.
    fn image(&self, field: &str, v: &Spanned<String>) -> Result<Image, Diagnostic> {
        let Some(dir) = self.dir else {
            return Err(self.error(
                v.span(),
                format!("{field}: built-in layouts cannot name image files"),
                "copy the layout into a --layouts directory and put the image beside it",
            ));
        };
        let path = dir.join(v.get_ref());
        Image::load_png(&path).map_err(|e| {
            self.error(
                v.span(),
                format!("{field}: {}: {e}", path.display()),
                "give a PNG file's path relative to the layout file",
            )
        })
    }

    fn region(&mut self, doc: &Spanned<RegionDoc>, style: TileStyle) -> Result<Region, Diagnostic> {
        let r = doc.get_ref();
        let area_span = r.area.span();
        let a = r.area.get_ref();
        if a.len() != 4 {
            return Err(self.error(
                area_span,
                format!("area needs 4 numbers, got {}", a.len()),
                "area = [x, y, width, height], fractions of the canvas: [0, 0, 1, 1] is all of it",
            ));
        }
        if !(a[2] > 0.0 && a[3] > 0.0) || a.iter().any(|v| !v.is_finite()) {
            return Err(self.error(
                area_span,
                "area width and height must be above 0".into(),
                "area = [x, y, width, height], fractions of the canvas: [0, 0, 1, 1] is all of it",
            ));
        }
        let area = [a[0] as f32, a[1] as f32, a[2] as f32, a[3] as f32];
        if area[0] < 0.0
            || area[1] < 0.0
            || area[0] + area[2] > 1.0001
            || area[1] + area[3] > 1.0001
        {
            self.warn(
                area_span.clone(),
                "region falls off the canvas".into(),
                "x + width and y + height should stay within 0..1",
            );
        }
        let show_names =
            "one of \"speaker\", \"screen_share\", \"others\", \"everyone\", \"pinned\"";
        let show = match r.show.get_ref().as_str() {
            "speaker" => Show::Speaker,
            "screen_share" => Show::ScreenShare,
            "others" => Show::Others,
            "everyone" => Show::Everyone,
            "pinned" => match &r.identities {
                Some(ids) if !ids.get_ref().is_empty() => Show::Pinned(ids.get_ref().clone()),
                _ => {
                    return Err(self.error(
                        r.show.span(),
                        "show = \"pinned\" needs identities".into(),
                        "add identities = [\"alice\", \"bob\"]",
                    ));
                }
            },
            other => {
                return Err(self.error(
                    r.show.span(),
                    format!("show: unknown value {other:?}"),
                    show_names,
                ));
            }
        };
        if let (Some(ids), false) = (&r.identities, matches!(show, Show::Pinned(_))) {
            return Err(self.error(
                ids.span(),
                "identities only apply to show = \"pinned\"".into(),
                "remove identities, or set show = \"pinned\"",
            ));
        }
        let arrange = self.choice(
            "arrange",
            &r.arrange,
            &[
                ("grid", Arrange::Grid),
                ("row", Arrange::Row),
                ("column", Arrange::Column),
            ],
            Arrange::Grid,
        )?;
        let columns = self.count("columns", &r.columns, MAX_GRID as i64)?;
        let rows = self.count("rows", &r.rows, MAX_GRID as i64)?;
        if arrange != Arrange::Grid
            && let Some(span) = r.columns.as_ref().or(r.rows.as_ref()).map(Spanned::span)
        {
            return Err(self.error(
                span,
                "columns and rows only apply to arrange = \"grid\"".into(),
                "remove them, or set arrange = \"grid\"",
            ));
        }
        let default_max = match show {
            Show::Speaker | Show::ScreenShare => Some(1),
            _ => None,
        };
        let max = self
            .count("max", &r.max, (MAX_GRID * MAX_GRID) as i64)?
            .map(|m| m as usize)
            .or(default_max);
        Ok(Region {
            area,
            show,
            max,
            arrange,
            columns,
            rows,
            overflow: self.choice(
                "overflow",
                &r.overflow,
                &[("count", Overflow::Count), ("hide", Overflow::Hide)],
                Overflow::Count,
            )?,
            z: r.z,
            style: self.tile_style(
                TileStyleDoc {
                    fit: &r.fit,
                    radius: &r.radius,
                    border: &r.border,
                    highlight: &r.highlight,
                    labels: r.labels,
                },
                style,
            )?,
            spans: (doc.span(), area_span),
        })
    }

    fn compile(&mut self) -> Result<Layout, Diagnostic> {
        let doc: FileDoc = toml::from_str(self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().to_owned();
            let hint = if message.starts_with("unknown field") {
                "check the spelling; docs/layouts.md lists every field"
            } else if message.starts_with("missing field") {
                "add the field; docs/layouts.md lists the required ones"
            } else if message.starts_with("invalid type") {
                "numbers are written bare (0.5), text in double quotes (\"speaker\")"
            } else {
                "layout files are TOML: text in double quotes, [tables] and [[lists]] in brackets"
            };
            self.error(span, message, hint)
        })?;
        let mut themes = BTreeMap::new();
        for (name, t) in doc.theme.get_ref() {
            if name != "dark" && name != "light" {
                return Err(self.error(
                    t.span(),
                    format!("theme {name:?} is not \"dark\" or \"light\""),
                    "LiveKit layouts come in NAME-dark and NAME-light; name the tables [theme.dark] and [theme.light]",
                ));
            }
            themes.insert(name.clone(), self.theme(name, t.get_ref())?);
        }
        if !themes.contains_key("dark") {
            return Err(self.error(
                doc.theme.span(),
                "a dark theme is required (plain layout names use it)".into(),
                "add a [theme.dark] table with background and tile colours",
            ));
        }
        let s = &doc.style;
        let style = self.tile_style(
            TileStyleDoc {
                fit: &s.fit,
                radius: &s.radius,
                border: &s.border,
                highlight: &s.highlight,
                labels: s.labels,
            },
            TileStyle {
                fit: Fit::Cover,
                radius: 0.0,
                border: 0.0,
                highlight: 0.0,
                labels: true,
            },
        )?;
        let padding = self.number("padding", &s.padding, 0.0..0.25, 0.0)?;
        let gap = self.number("gap", &s.gap, 0.0..0.25, 0.0)?;
        let transition = match &s.transition {
            Some(v) if !(0.0..=5.0).contains(v.get_ref()) => {
                return Err(self.error(
                    v.span(),
                    format!("transition must be 0 to 5 seconds, got {}", v.get_ref()),
                    "0 turns animation off; 0.3 is a gentle default",
                ));
            }
            Some(v) => Duration::from_secs_f64(*v.get_ref()),
            None => Duration::from_millis(300),
        };
        if doc.rule.get_ref().is_empty() {
            return Err(self.error(
                doc.rule.span(),
                "at least one rule is required".into(),
                "add a [[rule]] with at least one [[rule.region]]",
            ));
        }
        let mut rules = Vec::new();
        for rule in doc.rule.get_ref() {
            let r = rule.get_ref();
            let participants = match &r.when.participants {
                None => CountRange { min: 1, max: None },
                Some(p) => CountRange::parse(p.get_ref()).ok_or_else(|| {
                    self.error(
                        p.span(),
                        format!("participants: {:?} is not a count or range", p.get_ref()),
                        "write a count (\"2\"), a range (\"3-4\") or an open range (\"10+\")",
                    )
                })?,
            };
            if r.region.get_ref().is_empty() {
                return Err(self.error(
                    r.region.span(),
                    "a rule needs at least one region".into(),
                    "add a [[rule.region]] with area and show",
                ));
            }
            let regions = r
                .region
                .get_ref()
                .iter()
                .map(|reg| self.region(reg, style))
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(Rule {
                participants,
                screen_share: r.when.screen_share,
                regions,
                span: rule.span(),
            });
        }
        let captions = self.captions(doc.captions.as_ref())?;
        Ok(Layout {
            name: doc.name,
            description: doc.description,
            themes,
            padding,
            gap,
            transition,
            rules,
            captions,
        })
    }

    /// The `[captions]` table over the defaults.
    fn captions(&mut self, doc: Option<&CaptionsDoc>) -> Result<CaptionStyle, Diagnostic> {
        let base = CaptionStyle::default();
        let Some(c) = doc else { return Ok(base) };
        let area = match &c.area {
            None => base.area,
            Some(a) => {
                let v = a.get_ref();
                let ok = v.len() == 4
                    && v.iter().all(|x| x.is_finite() && *x >= 0.0)
                    && v[2] > 0.0
                    && v[3] > 0.0
                    && v[0] + v[2] <= 1.0001
                    && v[1] + v[3] <= 1.0001;
                if !ok {
                    return Err(self.error(
                        a.span(),
                        "captions.area must be [x, y, width, height] inside the canvas".into(),
                        "fractions of the canvas: [0.05, 0.75, 0.9, 0.22] is the bottom quarter",
                    ));
                }
                [v[0] as f32, v[1] as f32, v[2] as f32, v[3] as f32]
            }
        };
        let lines = match &c.lines {
            None => base.lines,
            Some(n) if (1..=MAX_LINES as i64).contains(n.get_ref()) => *n.get_ref() as u32,
            Some(n) => {
                return Err(self.error(
                    n.span(),
                    format!(
                        "captions.lines must be 1 to {MAX_LINES}, got {}",
                        n.get_ref()
                    ),
                    "the newest lines are shown; 2 is usual",
                ));
            }
        };
        let sizes = *FONT_SIZES.start() as f64..*FONT_SIZES.end() as f64 + 1e-9;
        Ok(CaptionStyle {
            area,
            lines,
            font_size: self.number("captions.font_size", &c.font_size, sizes, base.font_size)?,
            speaker: c.speaker.unwrap_or(base.speaker),
            enabled: c.enabled.unwrap_or(base.enabled),
        })
    }
}

/// Placeholder colours when a theme names none: muted, distinct hues.
const DEFAULT_PLACEHOLDERS: [&str; 6] = [
    "#5b6ee1", "#d9607c", "#3f9f86", "#c98a2e", "#8a5bd6", "#4a90b8",
];

impl Layout {
    /// Compiles a template's text; `file` names it in diagnostics and `dir` (the file's
    /// directory, none for built-ins) is where image paths start. Returns the layout and
    /// its warnings, or the first error.
    pub fn compile(
        file: &str,
        text: &str,
        dir: Option<&Path>,
    ) -> Result<(Layout, Vec<Diagnostic>), Diagnostic> {
        let mut c = Compiler {
            file,
            text,
            dir,
            warnings: Vec::new(),
        };
        let layout = c.compile()?;
        let mut warnings = c.warnings;
        warnings.extend(super::check::warnings(&layout, file, text));
        Ok((layout, warnings))
    }
}
