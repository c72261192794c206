//! What a frame draws: layers (solid colours, pictures, still images, each optionally cut
//! to a rounded shape) and texts between them; and how a scene becomes the layers both
//! compositors draw (shaped layers split so only their edges blend, boxes behind texts).

use super::error::MAX_LAYERS;
use super::text::{self, Shaper, Text};
use crate::layout::{Color, Image, Rect};
use crate::source::VideoFrame;

/// What one layer draws.
#[derive(Clone, Copy, Debug)]
pub enum LayerContent<'a> {
    /// A solid colour (alpha below 1 blends over what is under it).
    Solid(Color),
    /// A picture; `slot` names the texture set that holds it (one per participant).
    Picture {
        /// Texture slot (stable per participant, so textures are reused).
        slot: usize,
        /// The picture.
        frame: &'a VideoFrame,
        /// Part of the picture to draw, 0..1.
        src: Rect,
    },
    /// A still image (a background), blended by its alpha.
    Image {
        /// The image (uploaded once per `id`).
        image: &'a Image,
        /// Part of the image to draw, 0..1.
        src: Rect,
    },
}

/// A rounded outline a layer is cut to, with an optional border inside its edge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    /// The outline's rectangle (canvas pixels); the layer is drawn only inside it.
    pub rect: Rect,
    /// Corner radius, pixels.
    pub radius: f32,
    /// Border width inside the edge, pixels (0: none).
    pub border: f32,
    /// Border colour.
    pub border_color: Color,
}

/// A rectangle of the canvas and what fills it; layers are drawn in order.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    /// Destination in canvas pixels.
    pub dst: Rect,
    /// Content.
    pub content: LayerContent<'a>,
    /// Rounded corners and border; `None` is a plain (cheaper, unblended) rectangle.
    pub shape: Option<Shape>,
}

impl<'a> Layer<'a> {
    /// A plain rectangle of `content`.
    pub fn new(dst: Rect, content: LayerContent<'a>) -> Layer<'a> {
        Layer {
            dst,
            content,
            shape: None,
        }
    }
}

/// Everything one target draws in a frame: layers in order, and texts placed between
/// them.
#[derive(Clone, Debug, Default)]
pub struct Scene<'a> {
    /// Layers, bottom first.
    pub layers: Vec<Layer<'a>>,
    /// Texts (each drawn after `after` layers).
    pub texts: Vec<Text>,
}

impl<'a> From<Vec<Layer<'a>>> for Scene<'a> {
    fn from(layers: Vec<Layer<'a>>) -> Scene<'a> {
        Scene {
            layers,
            texts: Vec::new(),
        }
    }
}

/// The layers to draw for `scene`: its layers with shaped ones split (see
/// [`split_shaped`]) and boxes behind its texts added (split the same way); and per text, the layer count
/// after which it draws and its measured box. `shaper` measures the texts (needed only
/// when the scene has any). With `even`, shaped layers are split on even pixel columns
/// and rows (see [`split_shaped`]).
pub(super) fn lay_out<'s>(
    scene: &Scene<'s>,
    shaper: Option<&mut Shaper>,
    even: bool,
) -> (Vec<Layer<'s>>, Vec<(usize, text::Measured)>) {
    // Splitting makes up to 5 layers of one; huge scenes are drawn unsplit to stay
    // within the GPU's uniform slots (the CPU has none).
    // A text is its box (up to 5 pieces) and its glyphs.
    let split = even || scene.layers.len() * 5 + scene.texts.len() * 6 <= MAX_LAYERS;
    let push = |l: &Layer<'s>, out: &mut Vec<Layer<'s>>| {
        if split {
            split_shaped(l, out, even);
        } else {
            out.push(*l);
        }
    };
    let measured: Vec<text::Measured> = match shaper {
        Some(shaper) => scene.texts.iter().map(|t| shaper.measure(t)).collect(),
        None => Vec::new(),
    };
    let mut order: Vec<usize> = (0..scene.texts.len()).collect();
    order.sort_by_key(|&i| scene.texts[i].after);
    let mut next = order.into_iter().peekable();
    // Per text, the number of drawn layers (its box included) before it.
    let mut at = vec![0; scene.texts.len()];
    let mut layers = Vec::with_capacity(scene.layers.len() + scene.texts.len());
    for k in 0..=scene.layers.len() {
        while let Some(i) = next.next_if(|&i| scene.texts[i].after <= k) {
            let (t, m) = (&scene.texts[i], &measured[i]);
            if let Some(b) = t.background {
                let (x, y) = (
                    (m.left - b.padding).max(t.clip.x),
                    (m.top - b.padding / 2.0).max(t.clip.y),
                );
                let right = (m.left + m.width + b.padding).min(t.clip.x + t.clip.w);
                let bottom = (m.top + m.height + b.padding / 2.0).min(t.clip.y + t.clip.h);
                let r = Rect {
                    x,
                    y,
                    w: (right - x).max(0.0),
                    h: (bottom - y).max(0.0),
                };
                // Split as any shaped layer: on the CPU only the box's corners and
                // anti-aliased edges are then drawn per pixel (caption boxes are wide).
                let shaped = Layer {
                    dst: r,
                    content: LayerContent::Solid(b.color),
                    shape: Some(Shape {
                        rect: r,
                        radius: b.radius,
                        border: 0.0,
                        border_color: b.color,
                    }),
                };
                push(&shaped, &mut layers);
            }
            at[i] = layers.len();
        }
        if let Some(l) = scene.layers.get(k) {
            push(l, &mut layers);
        }
    }
    (layers, at.into_iter().zip(measured).collect())
}

/// The part of `src` that `part` (inside `dst`) shows.
fn sub_src(dst: Rect, src: Rect, part: Rect) -> Rect {
    Rect {
        x: src.x + (part.x - dst.x) / dst.w * src.w,
        y: src.y + (part.y - dst.y) / dst.h * src.h,
        w: part.w / dst.w * src.w,
        h: part.h / dst.h * src.h,
    }
}

/// Pushes `layer` to `out`, split when it is shaped and opaque: the interior, away from
/// the rounded corners and the border, is drawn by the plain opaque pipeline and only the
/// band along the edges by the blended, shaped one. The pixels are the same (each piece
/// samples exactly the texture coordinates the whole quad would); on a software
/// rasteriser the blended shape test costs per pixel, so this keeps it to the edges.
/// With `even` the split is finer (see [`split_fine`]).
fn split_shaped<'a>(layer: &Layer<'a>, out: &mut Vec<Layer<'a>>, even: bool) {
    let opaque = match layer.content {
        LayerContent::Solid(c) => c.0[3] >= 1.0,
        LayerContent::Picture { .. } => true,
        LayerContent::Image { .. } => false,
    };
    // The CPU draws a translucent colour's plain pieces with one blend each (they do not
    // overlap), so it splits those too.
    let solid = matches!(layer.content, LayerContent::Solid(_));
    if even && let Some(shape) = layer.shape.filter(|_| opaque || solid) {
        split_fine(layer, shape, out);
        return;
    }
    let Some(shape) = layer.shape.filter(|_| opaque) else {
        out.push(*layer);
        return;
    };
    let band = shape.radius.max(shape.border).ceil() + 1.0;
    let d = layer.dst;
    let (r, b) = (shape.rect, band);
    let x0 = d.x.max(r.x + b);
    let y0 = d.y.max(r.y + b);
    let x1 = (d.x + d.w).min(r.x + r.w - b);
    let y1 = (d.y + d.h).min(r.y + r.h - b);
    if x1 - x0 < 2.0 * band || y1 - y0 < 2.0 * band {
        out.push(*layer);
        return;
    }
    let inner = Rect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    };
    let piece = |part: Rect, shape: Option<Shape>| piece(layer, part, shape);
    out.push(piece(inner, None));
    let edges = [
        Rect { h: y0 - d.y, ..d },
        Rect {
            y: y1,
            h: d.y + d.h - y1,
            ..d
        },
        Rect {
            y: y0,
            w: x0 - d.x,
            h: inner.h,
            ..d
        },
        Rect {
            x: x1,
            y: y0,
            w: d.x + d.w - x1,
            h: inner.h,
        },
    ];
    for e in edges.into_iter().filter(|e| e.w > 0.0 && e.h > 0.0) {
        out.push(piece(e, Some(shape)));
    }
}

/// The part `part` of `layer` (a picture's source cropped to match), with `shape`.
fn piece<'a>(layer: &Layer<'a>, part: Rect, shape: Option<Shape>) -> Layer<'a> {
    Layer {
        dst: part,
        content: match layer.content {
            LayerContent::Picture { slot, frame, src } => LayerContent::Picture {
                slot,
                frame,
                src: sub_src(layer.dst, src, part),
            },
            other => other,
        },
        shape,
    }
}

/// The CPU compositor's split of a shaped layer (opaque, or a colour): the plain pieces
/// are a cross (the middle, and the sides between the corners), so only the rounded
/// corners and a strip as wide as the border (plus the anti-aliased pixel) along the
/// straight edges are drawn per pixel. Every line between pieces is on an even pixel, so no 2x2 chroma
/// block straddles two pieces (its chroma is drawn per block).
fn split_fine<'a>(layer: &Layer<'a>, shape: Shape, out: &mut Vec<Layer<'a>>) {
    let d = layer.dst;
    let r = shape.rect;
    let corner = shape.radius.max(shape.border).ceil() + 1.0;
    let b = shape.border;
    let up = |v: f32| (v / 2.0).ceil() * 2.0;
    let down = |v: f32| (v / 2.0).floor() * 2.0;
    let (dx1, dy1) = (d.x + d.w, d.y + d.h);
    // A pixel whose centre is at least the border plus half a pixel inside a straight
    // edge is the layer's own (no anti-aliasing, no border): the strip along an edge is
    // only as wide as that, and none where the layer's first (last) pixel is that far in.
    // The layer's pixels are those whose centres it covers (a fractional edge's pixel
    // may be partly covered, so anti-aliased).
    let strip_lo = |lo: f32, edge: f32| {
        if (lo - 0.5).ceil() >= edge + b {
            lo
        } else {
            up(edge + b)
        }
    };
    let strip_hi = |hi: f32, edge: f32| {
        if (hi - 0.5).ceil() <= edge - b {
            hi
        } else {
            down(edge - b)
        }
    };
    // Lines: outer edge, end of the straight-edge strip, end of the corner, mirrored.
    // A layer narrower than the corners (a bar beside a picture) has lines out of order:
    // each is kept inside the layer and at or after the one before. A moved line lands
    // on another line or the layer's edge, so the lines between pieces stay even, and
    // the cells that vanish are the parts the layer does not have.
    let lines = |lo: f32, hi: f32, edge_lo: f32, edge_hi: f32| {
        let (s0, s1) = (strip_lo(lo, edge_lo), strip_hi(hi, edge_hi));
        let (c0, c1) = (up(s0.max(edge_lo + corner)), down(s1.min(edge_hi - corner)));
        let mut l = [lo, s0, c0, c1, s1, hi];
        for k in 1..5 {
            l[k] = l[k].clamp(lo, hi).max(l[k - 1]);
        }
        l
    };
    let xs = lines(d.x, dx1, r.x, r.x + r.w);
    let ys = lines(d.y, dy1, r.y, r.y + r.h);
    // Plain: the middle column from strip to strip, and the middle row's side cells.
    let plain =
        |i: usize, j: usize| (i == 2 && (1..=3).contains(&j)) || (j == 2 && (i == 1 || i == 3));
    for j in 0..5 {
        for i in 0..5 {
            let part = Rect {
                x: xs[i],
                y: ys[j],
                w: xs[i + 1] - xs[i],
                h: ys[j + 1] - ys[j],
            };
            if part.w > 0.0 && part.h > 0.0 {
                out.push(piece(layer, part, (!plain(i, j)).then_some(shape)));
            }
        }
    }
}
