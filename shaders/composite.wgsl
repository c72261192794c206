// Composite pass: draws one quad per layer into the RGBA canvas, in order.
// A layer is a solid colour (cell backgrounds, label boxes) or a picture (a participant's,
// already converted to RGBA by yuv_to_rgba.wgsl, or a still image), sampled bilinearly
// (scaled and cropped here). Plain layers are opaque rectangles (fs_solid, fs_picture);
// shaped layers are cut to a rounded rectangle with an optional border and blended
// (fs_solid_shaped, fs_picture_shaped).

struct Layer {
    // Destination rectangle in clip space: x0, y0 (top-left), x1, y1 (bottom-right).
    dst: vec4<f32>,
    // Source rectangle in texture coordinates: u0, v0, u1, v1.
    src: vec4<f32>,
    // Colour for solid layers (R'G'B'A).
    color: vec4<f32>,
    // The shape in canvas pixels: x0, y0, x1, y1.
    shape: vec4<f32>,
    // Border colour.
    border_color: vec4<f32>,
    // x: corner radius, y: border width (pixels).
    params: vec4<f32>,
};

@group(0) @binding(0) var<uniform> layer: Layer;
@group(0) @binding(1) var picture: texture_2d<f32>;
@group(0) @binding(2) var samp: sampler;

struct VsOut {
    @builtin(position) pos: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// Four vertices as a triangle strip: (0,0) (1,0) (0,1) (1,1).
@vertex
fn vs_main(@builtin(vertex_index) vi: u32) -> VsOut {
    let corner = vec2<f32>(f32(vi & 1u), f32((vi >> 1u) & 1u));
    var out: VsOut;
    out.pos = vec4<f32>(mix(layer.dst.xy, layer.dst.zw, corner), 0.0, 1.0);
    out.uv = mix(layer.src.xy, layer.src.zw, corner);
    return out;
}

// Solid layers: no texture access at all.
@fragment
fn fs_solid(in: VsOut) -> @location(0) vec4<f32> {
    return layer.color;
}

// Picture layers. Explicit level 0 (no mipmaps): software rasterisers then skip the
// per-quad LOD computation.
@fragment
fn fs_picture(in: VsOut) -> @location(0) vec4<f32> {
    return vec4<f32>(textureSampleLevel(picture, samp, in.uv, 0.0).rgb, 1.0);
}

// Signed distance (pixels) from p to the layer's rounded rectangle: negative inside.
fn shape_distance(p: vec2<f32>) -> f32 {
    let lo = layer.shape.xy;
    let hi = layer.shape.zw;
    let half = (hi - lo) * 0.5;
    let r = min(layer.params.x, min(half.x, half.y));
    let q = abs(p - (lo + hi) * 0.5) - half + vec2<f32>(r);
    return length(max(q, vec2<f32>(0.0))) + min(max(q.x, q.y), 0.0) - r;
}

// Cuts `c` to the shape (anti-aliased edge, one pixel wide) and draws the border.
fn shaped(c: vec4<f32>, p: vec2<f32>) -> vec4<f32> {
    let d = shape_distance(p);
    var rgb = c.rgb;
    var a = c.a;
    let border = layer.params.y;
    if border > 0.0 {
        let t = clamp(d + border + 0.5, 0.0, 1.0);
        rgb = mix(rgb, layer.border_color.rgb, t);
        a = mix(a, layer.border_color.a, t);
    }
    return vec4<f32>(rgb, a * clamp(0.5 - d, 0.0, 1.0));
}

@fragment
fn fs_solid_shaped(in: VsOut) -> @location(0) vec4<f32> {
    return shaped(layer.color, in.pos.xy);
}

@fragment
fn fs_picture_shaped(in: VsOut) -> @location(0) vec4<f32> {
    return shaped(textureSampleLevel(picture, samp, in.uv, 0.0), in.pos.xy);
}
