//! Layout templates (`layouts/*.toml`): the file format and its compiler with
//! `file:line:column` diagnostics ([`template`], [`diag`], [`check`]), evaluation of a
//! layout for the people in a room ([`eval`]), tile animation ([`animate`]), and the
//! library that resolves LiveKit layout names (`speaker`, `grid-light`, ...). Knows
//! nothing of the GPU.

pub(crate) mod animate;
pub(crate) mod captions;
pub(crate) mod check;
pub(crate) mod diag;
pub(crate) mod eval;
pub(crate) mod geometry;
pub(crate) mod model;
pub(crate) mod template;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub use captions::CaptionStyle;
pub use diag::{Diagnostic, Severity};
pub use eval::{Content, Member, Placement, Roster};
pub use geometry::Rect;
pub use model::{Layout, Theme, TileStyle};

/// Layouts compiled into the binary, so it runs from any directory.
const BUILTIN: [(&str, &str); 6] = [
    ("grid", include_str!("../../layouts/grid.toml")),
    ("speaker", include_str!("../../layouts/speaker.toml")),
    (
        "single-speaker",
        include_str!("../../layouts/single-speaker.toml"),
    ),
    (
        "presentation",
        include_str!("../../layouts/presentation.toml"),
    ),
    ("pip", include_str!("../../layouts/pip.toml")),
    ("track", include_str!("../../layouts/track.toml")),
];

/// The layout used when a request leaves `layout` empty (LiveKit's default).
pub const DEFAULT_LAYOUT: &str = "speaker";

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
    /// The template has an error, at a line and column.
    #[error("{0}")]
    Template(Box<Diagnostic>),
    /// A layout file or directory could not be read.
    #[error("reading layouts from {dir}: {source}")]
    Io {
        /// The file or directory.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// The whole picture is visible; bars where aspects differ.
    Contain,
    /// The cell is filled; the picture is cropped.
    Cover,
}

/// An RGBA picture from a file (a background image): 8-bit, straight alpha.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Rows of R, G, B, A bytes, no padding.
    pub rgba: Vec<u8>,
    /// Process-wide identity, so the GPU uploads each image once.
    pub id: u64,
}

/// Largest side of a layout's image, in pixels.
const MAX_IMAGE_SIDE: u32 = 8192;

impl Image {
    /// An image from RGBA bytes.
    pub fn new(width: u32, height: u32, rgba: Vec<u8>) -> Image {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Image {
            width,
            height,
            rgba,
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Reads a PNG file (any colour type; converted to RGBA 8-bit).
    pub fn load_png(path: &Path) -> Result<Image, String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
        // The header's size is checked before anything that size is allocated.
        let (w, h) = (reader.info().width, reader.info().height);
        if w == 0 || h == 0 || w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
            return Err(format!("{w}x{h} is not 1..={MAX_IMAGE_SIDE} pixels a side"));
        }
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| "image too large".to_string())?;
        let mut buf = vec![0; size];
        let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
        let (w, h) = (info.width, info.height);
        let px = (w * h) as usize;
        let rgba = match info.color_type {
            png::ColorType::Rgba => buf[..px * 4].to_vec(),
            png::ColorType::Rgb => buf[..px * 3]
                .chunks(3)
                .flat_map(|c| [c[0], c[1], c[2], 255])
                .collect(),
            png::ColorType::GrayscaleAlpha => buf[..px * 2]
                .chunks(2)
                .flat_map(|c| [c[0], c[0], c[0], c[1]])
                .collect(),
            png::ColorType::Grayscale => buf[..px].iter().flat_map(|&g| [g, g, g, 255]).collect(),
            png::ColorType::Indexed => return Err("indexed PNG was not expanded".into()),
        };
        Ok(Image::new(w, h, rgba))
    }
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

/// A layout with its theme chosen, ready to evaluate.
#[derive(Clone, Debug)]
pub struct ResolvedLayout {
    /// The name as requested (e.g. `grid-light`).
    pub requested: String,
    /// The layout.
    pub layout: Arc<Layout>,
    /// The chosen theme.
    pub theme: Theme,
}

impl ResolvedLayout {
    /// `layout` with its theme `theme` (`dark` or `light`), under the name `requested`;
    /// `None` when the layout has no such theme.
    pub fn with_theme(requested: &str, layout: Arc<Layout>, theme: &str) -> Option<ResolvedLayout> {
        let theme = layout.themes.get(theme)?.clone();
        Some(ResolvedLayout {
            requested: requested.to_owned(),
            layout,
            theme,
        })
    }
}

/// Where a library layout came from.
#[derive(Clone, Debug)]
struct Entry {
    layout: Arc<Layout>,
    /// The file it was read from (none for built-ins), for hot reload.
    path: Option<std::path::PathBuf>,
}

/// All layouts known to this process, by name.
#[derive(Clone, Debug)]
pub struct LayoutLibrary {
    layouts: BTreeMap<String, Entry>,
}

/// Compiles a layout file from disk.
pub fn load_file(path: &Path) -> Result<(Layout, Vec<Diagnostic>), LayoutError> {
    let text = std::fs::read_to_string(path).map_err(|source| LayoutError::Io {
        dir: path.display().to_string(),
        source,
    })?;
    Layout::compile(&path.display().to_string(), &text, path.parent())
        .map_err(|d| LayoutError::Template(Box::new(d)))
}

impl LayoutLibrary {
    /// The layouts compiled into the binary.
    pub fn builtin() -> LayoutLibrary {
        let layouts = BUILTIN
            .iter()
            .map(|(name, text)| {
                let (layout, _) = Layout::compile(&format!("layouts/{name}.toml"), text, None)
                    .unwrap_or_else(|e| panic!("built-in layout: {e}"));
                let entry = Entry {
                    layout: Arc::new(layout),
                    path: None,
                };
                (name.to_string(), entry)
            })
            .collect();
        LayoutLibrary { layouts }
    }

    /// The built-ins, overridden and extended by every `*.toml` in `dir`. Warnings are
    /// logged; the first error refuses the directory.
    pub fn with_dir(dir: &Path) -> Result<LayoutLibrary, LayoutError> {
        let mut lib = LayoutLibrary::builtin();
        let io = |source| LayoutError::Io {
            dir: dir.display().to_string(),
            source,
        };
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let (layout, warnings) = load_file(&path)?;
                for w in warnings {
                    tracing::warn!("{w}");
                }
                let stem = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let entry = Entry {
                    layout: Arc::new(layout),
                    path: Some(path),
                };
                lib.layouts.insert(stem, entry);
            }
        }
        Ok(lib)
    }

    /// Names of the known layouts.
    pub fn names(&self) -> Vec<&str> {
        self.layouts.keys().map(String::as_str).collect()
    }

    /// Splits a LiveKit layout name into the library name and the theme: `NAME`,
    /// `NAME-dark` or `NAME-light` (plain names are dark, as LiveKit's); empty means
    /// [`DEFAULT_LAYOUT`].
    fn split<'a>(&self, requested: &'a str) -> (&'a str, &'a str) {
        let name = if requested.is_empty() {
            DEFAULT_LAYOUT
        } else {
            requested
        };
        match name.rsplit_once('-') {
            Some((b, t @ ("dark" | "light"))) if self.layouts.contains_key(b) => (b, t),
            _ => (name, "dark"),
        }
    }

    /// Resolves a LiveKit layout name (see [`LayoutLibrary::split`]).
    pub fn resolve(&self, requested: &str) -> Result<ResolvedLayout, LayoutError> {
        let (base, theme) = self.split(requested);
        let unknown = || LayoutError::Unknown {
            name: requested.to_owned(),
            available: self.names().join(", "),
        };
        let entry = self.layouts.get(base).ok_or_else(unknown)?;
        ResolvedLayout::with_theme(requested, entry.layout.clone(), theme).ok_or_else(unknown)
    }

    /// The theme a LiveKit layout name asks for: `light` for `NAME-light`, else `dark`.
    pub fn theme_of<'a>(&self, requested: &'a str) -> &'a str {
        self.split(requested).1
    }

    /// The file a layout name was read from (none for built-ins): what a running egress
    /// watches for changes.
    pub fn file_of(&self, requested: &str) -> Option<&Path> {
        let (base, _) = self.split(requested);
        self.layouts.get(base)?.path.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of a header claiming `w`x`h` (RGBA 8-bit).
    fn png_header_only(w: u32, h: u32) -> Vec<u8> {
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in bytes {
                crc ^= b as u32;
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let mut chunk = b"IHDR".to_vec();
        chunk.extend(w.to_be_bytes());
        chunk.extend(h.to_be_bytes());
        chunk.extend([8, 6, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        // The header, then the start of the image data (where a decoder stops reading
        // the header).
        for (len, chunk) in [(13u32, chunk), (2, b"IDAT\x78\x9c".to_vec())] {
            png.extend(len.to_be_bytes());
            png.extend(&chunk);
            png.extend(crc32(&chunk).to_be_bytes());
        }
        png
    }

    #[test]
    fn an_images_claimed_size_is_checked_before_it_is_allocated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.png");
        // 100000 x 100000 RGBA: 40 GB if the header were believed.
        std::fs::write(&path, png_header_only(100_000, 100_000)).unwrap();
        let e = Image::load_png(&path).unwrap_err();
        assert!(e.contains("100000x100000"), "{e}");
    }

    #[test]
    fn builtins_resolve_with_themes() {
        let lib = LayoutLibrary::builtin();
        for name in ["grid", "speaker", "single-speaker", "presentation", "pip"] {
            let dark = lib.resolve(name).unwrap();
            let light = lib.resolve(&format!("{name}-light")).unwrap();
            assert_eq!(
                dark.theme,
                lib.resolve(&format!("{name}-dark")).unwrap().theme
            );
            assert_ne!(dark.theme, light.theme, "{name}");
        }
        assert_eq!(lib.resolve("").unwrap().layout.name, "speaker");
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
    fn colours() {
        assert_eq!(Color::parse("#ff0000"), Some(Color([1.0, 0.0, 0.0, 1.0])));
        assert_eq!(Color::parse("ff0000"), None);
        assert_eq!(Color::parse("#ff00"), None);
    }
}
