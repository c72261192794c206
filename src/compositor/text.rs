//! Text on the GPU (name labels, placeholder initials, "+N" tiles) with glyphon: text is
//! shaped by cosmic-text with the one font shipped in the repo (DejaVu Sans Bold, no
//! system fonts are looked at, so every machine draws the same pixels), glyphs are
//! rasterised once into a GPU atlas and drawn as textured quads in the composite pass.

use std::collections::HashMap;
use std::sync::Arc;

use glyphon::{
    Attrs, Buffer, Cache, Family, FontSystem, Metrics, Resolution, Shaping, SwashCache, SwashImage,
    TextArea, TextAtlas, TextBounds, TextRenderer, Viewport, Wrap,
};

use super::gpu::GpuContext;
use super::pipelines::CANVAS_FORMAT;
use crate::layout::{Color, Rect};

/// The font every text is drawn in.
pub const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");
/// Its family name.
const FAMILY: &str = "DejaVu Sans";

/// Where a text sits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Anchor {
    /// Bottom-left corner of the text's box at this point.
    BottomLeft(f32, f32),
    /// Centre of the text's box at this point.
    Center(f32, f32),
}

/// A box drawn behind a text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TextBox {
    /// Fill.
    pub color: Color,
    /// Space around the text, pixels.
    pub padding: f32,
    /// Corner radius, pixels.
    pub radius: f32,
}

/// One line of text to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    /// The text (one line; longer than the clip, it is cut).
    pub text: String,
    /// Font size in pixels.
    pub size: f32,
    /// Colour.
    pub color: Color,
    /// Position.
    pub anchor: Anchor,
    /// Nothing is drawn outside this rectangle.
    pub clip: Rect,
    /// Optional box behind it.
    pub background: Option<TextBox>,
    /// Drawn after this many of the frame's layers (so tiles on top cover it).
    pub after: usize,
}

/// Glyphon's per-device pipeline cache, shared by every compositor on the device.
pub(super) fn shared_cache(gpu: &GpuContext) -> &Cache {
    gpu.text_cache.get_or_init(|| Cache::new(&gpu.device))
}

/// Shaped lines by (text, size in 1/8 px); kept while used.
type Shaped = HashMap<(String, u32), (Buffer, bool)>;

/// Fonts, the glyph rasteriser and shaped lines: what both compositors (GPU and CPU)
/// need to lay text out and rasterise its glyphs.
pub(super) struct Shaper {
    pub(super) fonts: FontSystem,
    pub(super) swash: SwashCache,
    shaped: Shaped,
}

/// A GPU compositor's text state: the shaper, the glyph atlas, and per target a viewport
/// and one renderer per group of texts drawn at the same point.
pub(super) struct TextState {
    pub(super) shaper: Shaper,
    atlas: TextAtlas,
    targets: Vec<TargetText>,
}

#[derive(Default)]
struct TargetText {
    viewport: Option<Viewport>,
    renderers: Vec<TextRenderer>,
}

/// A text laid out: its box in canvas pixels.
pub(super) struct Measured {
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
}

impl Shaper {
    pub(super) fn new() -> Shaper {
        let mut db = glyphon::fontdb::Database::new();
        db.load_font_source(glyphon::fontdb::Source::Binary(Arc::new(FONT)));
        Shaper {
            fonts: FontSystem::new_with_locale_and_db("en-US".into(), db),
            swash: SwashCache::new(),
            shaped: HashMap::new(),
        }
    }

    fn key(t: &Text) -> (String, u32) {
        (t.text.clone(), (t.size * 8.0).round() as u32)
    }

    /// Shapes `t` (once per text and size) and returns its box.
    pub(super) fn measure(&mut self, t: &Text) -> Measured {
        let key = Self::key(t);
        let fonts = &mut self.fonts;
        let (buffer, used) = self.shaped.entry(key).or_insert_with(|| {
            let size = t.size.max(1.0);
            let mut b = Buffer::new(fonts, Metrics::new(size, (size * 1.2).ceil()));
            b.set_wrap(Wrap::None);
            b.set_size(None, None);
            b.set_text(
                &t.text,
                &Attrs::new().family(Family::Name(FAMILY)),
                Shaping::Advanced,
                None,
            );
            b.shape_until_scroll(fonts, false);
            (b, false)
        });
        *used = true;
        let width = buffer
            .layout_runs()
            .map(|r| r.line_w)
            .fold(0.0f32, f32::max)
            .ceil();
        let height = buffer.metrics().line_height;
        let (left, top) = match t.anchor {
            Anchor::BottomLeft(x, y) => (x, y - height),
            Anchor::Center(x, y) => (x - width / 2.0, y - height / 2.0),
        };
        Measured {
            left: left.round(),
            top: top.round(),
            width,
            height,
        }
    }

    /// Calls `draw` with each glyph of `t` (measured this frame as `m`): its rasterised
    /// image and the canvas pixel of the image's top-left corner, placed exactly as
    /// glyphon places them on the GPU. Nothing outside `t.clip` or the canvas is meant
    /// to be drawn; `draw` clips.
    pub(super) fn each_glyph(
        &mut self,
        t: &Text,
        m: &Measured,
        mut draw: impl FnMut(i32, i32, &SwashImage),
    ) {
        let (buffer, _) = &self.shaped[&Self::key(t)];
        let (top, bottom) = (t.clip.y as i32, (t.clip.y + t.clip.h) as i32);
        for run in buffer.layout_runs() {
            let start = (m.top + run.line_top) as i32;
            if start > bottom || top > start + run.line_height as i32 {
                continue;
            }
            for glyph in run.glyphs.iter() {
                let physical = glyph.physical((m.left, m.top), 1.0);
                if let Some(image) = self.swash.get_image(&mut self.fonts, physical.cache_key) {
                    let x = physical.x + image.placement.left;
                    let y = run.line_y.round() as i32 + physical.y - image.placement.top;
                    draw(x, y, image);
                }
            }
        }
    }

    /// Ends a frame: forgets lines not used since the last call.
    pub(super) fn end_frame(&mut self) {
        self.shaped.retain(|_, (_, used)| std::mem::take(used));
    }
}

impl TextState {
    pub(super) fn new(gpu: &GpuContext) -> TextState {
        let atlas = TextAtlas::with_color_mode(
            &gpu.device,
            &gpu.queue,
            shared_cache(gpu),
            CANVAS_FORMAT,
            glyphon::ColorMode::Web,
        );
        TextState {
            shaper: Shaper::new(),
            atlas,
            targets: Vec::new(),
        }
    }

    /// Prepares target `target`'s texts for drawing, each with the number of drawn layers
    /// it comes after and its measured box; returns, per group of texts drawn at the same
    /// point, that layer count.
    pub(super) fn prepare(
        &mut self,
        gpu: &GpuContext,
        target: usize,
        size: (u32, u32),
        texts: &[(&Text, usize, Measured)],
    ) -> Result<Vec<usize>, glyphon::PrepareError> {
        if self.targets.len() <= target {
            self.targets.resize_with(target + 1, TargetText::default);
        }
        let tt = &mut self.targets[target];
        let viewport = tt
            .viewport
            .get_or_insert_with(|| Viewport::new(&gpu.device, shared_cache(gpu)));
        viewport.update(
            &gpu.queue,
            Resolution {
                width: size.0,
                height: size.1,
            },
        );
        let mut groups: Vec<usize> = texts.iter().map(|(_, at, _)| *at).collect();
        groups.sort_unstable();
        groups.dedup();
        while tt.renderers.len() < groups.len() {
            tt.renderers.push(TextRenderer::new(
                &mut self.atlas,
                &gpu.device,
                wgpu::MultisampleState::default(),
                None,
            ));
        }
        for (g, &after) in groups.iter().enumerate() {
            let areas = texts
                .iter()
                .filter(|(_, at, _)| *at == after)
                .map(|(t, _, m)| {
                    let (buffer, _) = &self.shaper.shaped[&Shaper::key(t)];
                    let [r, g, b, a] = t.color.0.map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8);
                    TextArea {
                        buffer,
                        left: m.left,
                        top: m.top,
                        scale: 1.0,
                        bounds: TextBounds {
                            left: t.clip.x as i32,
                            top: t.clip.y as i32,
                            right: (t.clip.x + t.clip.w) as i32,
                            bottom: (t.clip.y + t.clip.h) as i32,
                        },
                        default_color: glyphon::Color::rgba(r, g, b, a),
                        custom_glyphs: &[],
                    }
                });
            tt.renderers[g].prepare(
                &gpu.device,
                &gpu.queue,
                &mut self.shaper.fonts,
                &mut self.atlas,
                viewport,
                areas,
                &mut self.shaper.swash,
            )?;
        }
        Ok(groups)
    }

    /// Draws target `target`'s group `g` (as returned by `prepare`) into `pass`.
    pub(super) fn render(&self, target: usize, g: usize, pass: &mut wgpu::RenderPass<'_>) {
        let tt = &self.targets[target];
        if let (Some(viewport), Some(r)) = (&tt.viewport, tt.renderers.get(g)) {
            // A render error means a glyph did not fit the atlas; the text is skipped.
            let _ = r.render(&self.atlas, viewport, pass);
        }
    }

    /// Ends a frame: forgets lines not used since the last call and trims the atlas.
    pub(super) fn end_frame(&mut self) {
        self.shaper.end_frame();
        self.atlas.trim();
    }
}
