// Composite pass: draws one quad per layer into the RGBA canvas, in order.
// A layer is a solid colour (cell backgrounds) or a participant's picture, already
// converted to RGBA by yuv_to_rgba.wgsl, sampled bilinearly (scaled and cropped here).

struct Layer {
    // Destination rectangle in clip space: x0, y0 (top-left), x1, y1 (bottom-right).
    dst: vec4<f32>,
    // Source rectangle in texture coordinates: u0, v0, u1, v1.
    src: vec4<f32>,
    // Colour for solid layers (R'G'B'A).
    color: vec4<f32>,
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
