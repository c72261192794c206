//! Burned-in captions as texts: the caption lines of a frame, each centred in the
//! layout's caption region with its own square box behind it, drawn over everything else.

use super::layers::Scene;
use super::text::{Anchor, Text, TextBox};
use crate::layout::{CaptionStyle, Color, ResolvedLayout};

/// How a layout draws captions: its caption region and its theme's caption colours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaptionLook {
    /// The region, lines, size and naming.
    pub style: CaptionStyle,
    /// The layout's canvas padding (the region is inside it).
    pub padding: f32,
    /// Text colour.
    pub text: Color,
    /// The box behind each line.
    pub background: Color,
}

impl CaptionLook {
    /// The look of `layout` in its theme.
    pub fn of(layout: &ResolvedLayout) -> CaptionLook {
        CaptionLook {
            style: layout.layout.captions,
            padding: layout.layout.padding,
            text: layout.theme.caption,
            background: layout.theme.caption_background,
        }
    }
}

/// Adds the captions showing now (`(speaker name, text)`, oldest first) to a
/// `width` x `height` scene: the newest lines that fit the style, on top of its layers.
pub fn add_captions(
    scene: &mut Scene<'_>,
    look: &CaptionLook,
    (width, height): (u32, u32),
    captions: &[(String, String)],
) {
    if captions.is_empty() {
        return;
    }
    let style = &look.style;
    let probe = style.place(look.padding, width, height, 0);
    let lines = style.lines(captions, probe.chars_per_line);
    let placed = style.place(look.padding, width, height, lines.len());
    let pad = (placed.font_px * 0.2).round();
    for (line, &(x, y)) in lines.into_iter().zip(&placed.centres) {
        scene.texts.push(Text {
            text: line,
            size: placed.font_px,
            color: look.text,
            anchor: Anchor::Center(x, y),
            clip: placed.rect,
            // Square boxes, as broadcast captions have (and the cheapest to blend).
            background: Some(TextBox {
                color: look.background,
                padding: pad,
                radius: 0.0,
            }),
            after: scene.layers.len(),
        });
    }
}
