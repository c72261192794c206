//! The caption region of a layout (`[captions]` in a template): where burned-in captions
//! go, how many lines, how large, and whether the speaker is named; and the pure part of
//! drawing them: cues turned into wrapped lines, and those lines placed in the region.

use super::Rect;

/// How burned-in captions look in a layout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaptionStyle {
    /// `[x, y, width, height]`, fractions of the canvas inside its padding; lines sit at
    /// the bottom of it, centred.
    pub area: [f32; 4],
    /// Most lines shown (the newest).
    pub lines: u32,
    /// Font size, a fraction of the canvas's shorter side.
    pub font_size: f32,
    /// Each caption starts with its speaker's name (`Name: text`).
    pub speaker: bool,
    /// Drawn whenever the room has captions, even if the request does not ask.
    pub enabled: bool,
}

impl Default for CaptionStyle {
    /// Two lines at the bottom centre, speakers named; off unless asked for.
    fn default() -> CaptionStyle {
        CaptionStyle {
            area: [0.05, 0.75, 0.9, 0.22],
            lines: 2,
            font_size: 0.045,
            speaker: true,
            enabled: false,
        }
    }
}

/// Most lines a caption region may show.
pub const MAX_LINES: u32 = 6;
/// Font size range (fraction of the shorter side).
pub const FONT_SIZES: std::ops::RangeInclusive<f32> = 0.02..=0.15;
/// The font's average advance per character, in ems (DejaVu Sans Bold, mixed case):
/// lines are wrapped by this estimate so the text fits the region's width.
const ADVANCE_EM: f32 = 0.62;
/// Line pitch, in font sizes.
const LINE_PITCH: f32 = 1.45;

/// Where a region's lines go on a `width` x `height` canvas with `padding`.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptionPlacement {
    /// The region in canvas pixels (nothing is drawn outside it).
    pub rect: Rect,
    /// Font size, pixels.
    pub font_px: f32,
    /// Characters that fit on a line.
    pub chars_per_line: usize,
    /// Centre of each line, top line first, for `lines` lines.
    pub centres: Vec<(f32, f32)>,
}

impl CaptionStyle {
    /// The region's pixels, font size, line width and line centres for `lines` lines.
    pub fn place(&self, padding: f32, width: u32, height: u32, lines: usize) -> CaptionPlacement {
        let (w, h) = (width as f32, height as f32);
        let short = w.min(h);
        let pad = (padding * short).round();
        let (iw, ih) = (w - 2.0 * pad, h - 2.0 * pad);
        let a = self.area;
        let rect = Rect {
            x: (pad + a[0] * iw).round(),
            y: (pad + a[1] * ih).round(),
            w: (a[2] * iw).round(),
            h: (a[3] * ih).round(),
        };
        let font_px = (self.font_size * short).round().max(6.0);
        let pitch = (font_px * LINE_PITCH).round();
        let chars_per_line = ((rect.w - font_px) / (font_px * ADVANCE_EM)).max(8.0) as usize;
        let cx = rect.x + rect.w / 2.0;
        let bottom = rect.y + rect.h - pitch / 2.0;
        let centres = (0..lines)
            .map(|i| (cx, bottom - (lines - 1 - i) as f32 * pitch))
            .collect();
        CaptionPlacement {
            rect,
            font_px,
            chars_per_line,
            centres,
        }
    }

    /// The lines to show for these captions (`(speaker name, text)`, oldest first): each
    /// wrapped at `chars_per_line`, the newest [`CaptionStyle::lines`] kept.
    pub fn lines(&self, captions: &[(String, String)], chars_per_line: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (name, text) in captions {
            let full = if self.speaker && !name.is_empty() {
                format!("{name}: {text}")
            } else {
                text.clone()
            };
            out.extend(wrap(&full, chars_per_line));
        }
        let keep = self.lines as usize;
        out.split_off(out.len().saturating_sub(keep))
    }
}

/// `text` broken into lines of at most `width` characters at spaces (a word longer than
/// a line is cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: &str = word;
        loop {
            let len = line.chars().count();
            let need = word.chars().count() + usize::from(len > 0);
            if len + need <= width {
                if len > 0 {
                    line.push(' ');
                }
                line.push_str(word);
                break;
            }
            if len > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word wider than a line: cut it.
            let cut = word
                .char_indices()
                .nth(width)
                .map_or(word.len(), |(i, _)| i);
            lines.push(word[..cut].to_owned());
            word = &word[cut..];
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_at_spaces_and_long_words_are_cut() {
        assert_eq!(wrap("the quick brown fox", 10), ["the quick", "brown fox"]);
        assert_eq!(wrap("  a   b  ", 10), ["a b"]);
        assert_eq!(wrap("abcdefghijkl x", 5), ["abcde", "fghij", "kl x"]);
        assert_eq!(wrap("ééééé", 2), ["éé", "éé", "é"]);
        assert!(wrap("", 5).is_empty());
    }

    #[test]
    fn the_newest_lines_are_kept_with_speakers_named() {
        let style = CaptionStyle::default();
        let caps = [
            ("Ada".to_owned(), "first words".to_owned()),
            ("Alan".to_owned(), "one two three four".to_owned()),
        ];
        assert_eq!(
            style.lines(&caps, 12),
            ["Alan: one", "two three", "four"][1..]
        );
        let unnamed = CaptionStyle {
            speaker: false,
            lines: 3,
            ..style
        };
        assert_eq!(
            unnamed.lines(&caps, 40),
            ["first words", "one two three four"]
        );
    }

    const BASE: &str = "[theme.dark]\nbackground = \"#000000\"\ntile = \"#111111\"\n\
                        [[rule]]\n[[rule.region]]\narea = [0, 0, 1, 1]\nshow = \"everyone\"\n";

    #[test]
    fn a_template_sets_its_caption_region_and_errors_point_at_the_field() {
        let compile =
            |extra: &str| super::super::Layout::compile("t.toml", &format!("{BASE}{extra}"), None);
        let (plain, _) = compile("").unwrap();
        assert_eq!(plain.captions, CaptionStyle::default());
        let (set, _) = compile(
            "[captions]\narea = [0, 0, 1, 0.3]\nlines = 3\nspeaker = false\nenabled = true\n",
        )
        .unwrap();
        assert_eq!(
            set.captions,
            CaptionStyle {
                area: [0.0, 0.0, 1.0, 0.3],
                lines: 3,
                speaker: false,
                enabled: true,
                ..CaptionStyle::default()
            }
        );
        let err = |extra: &str| compile(extra).unwrap_err().to_string();
        assert!(err("[captions]\nlines = 9\n").contains("t.toml:9:9: error: captions.lines"));
        assert!(err("[captions]\nfont_size = 0.5\n").contains("captions.font_size"));
        assert!(err("[captions]\narea = [0.5, 0, 0.6, 1]\n").contains("captions.area"));
        assert!(err("[captions]\ncolour = 1\n").contains("colour"));
    }

    #[test]
    fn lines_sit_at_the_bottom_of_the_region_centred() {
        let style = CaptionStyle::default();
        let p = style.place(0.0, 1280, 720, 2);
        assert_eq!(
            p.rect,
            Rect {
                x: 64.0,
                y: 540.0,
                w: 1152.0,
                h: 158.0
            }
        );
        assert_eq!(p.font_px, 32.0);
        assert_eq!(p.centres.len(), 2);
        let (x, y1) = p.centres[1];
        assert_eq!(x, 640.0);
        assert!(y1 < p.rect.y + p.rect.h && y1 > p.centres[0].1);
        assert!(
            p.chars_per_line > 40 && p.chars_per_line < 70,
            "{}",
            p.chars_per_line
        );
    }
}
