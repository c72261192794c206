// Composite pass: draws one quad per layer into the RGBA canvas.
// A layer is a solid colour (cell backgrounds) or a participant's picture, uploaded as
// YUV planes (I420: Y, U, V; NV12: Y, UV) and converted to R'G'B' here (BT.709, limited).

struct Layer {
    // Destination rectangle in clip space: x0, y0 (top-left), x1, y1 (bottom-right).
    dst: vec4<f32>,
    // Source rectangle in texture coordinates: u0, v0, u1, v1.
    src: vec4<f32>,
    // Colour for solid layers (R'G'B'A).
    color: vec4<f32>,
    // 0 = I420 picture, 1 = NV12 picture, 2 = solid colour (drawn by fs_solid).
    mode: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> layer: Layer;
@group(0) @binding(1) var tex_y: texture_2d<f32>;
@group(0) @binding(2) var tex_u: texture_2d<f32>;
@group(0) @binding(3) var tex_v: texture_2d<f32>;
@group(0) @binding(4) var samp: sampler;

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

// BT.709 limited range Y'CbCr (each in 0..1 as sampled from 8-bit) to R'G'B'.
fn yuv709_to_rgb(y8: f32, cb8: f32, cr8: f32) -> vec3<f32> {
    let y = (y8 * 255.0 - 16.0) / 219.0;
    let u = (cb8 * 255.0 - 128.0) / 224.0;
    let v = (cr8 * 255.0 - 128.0) / 224.0;
    let r = y + 1.5748 * v;
    let g = y - 0.187324 * u - 0.468124 * v;
    let b = y + 1.8556 * u;
    return clamp(vec3<f32>(r, g, b), vec3<f32>(0.0), vec3<f32>(1.0));
}

// Solid layers (cell backgrounds, bars): no texture access at all.
@fragment
fn fs_solid(in: VsOut) -> @location(0) vec4<f32> {
    return layer.color;
}

// Picture layers. Explicit level 0 (no mipmaps): software rasterisers then skip the
// per-quad LOD computation.
@fragment
fn fs_picture(in: VsOut) -> @location(0) vec4<f32> {
    let y = textureSampleLevel(tex_y, samp, in.uv, 0.0).r;
    if layer.mode == 1u {
        let uv = textureSampleLevel(tex_u, samp, in.uv, 0.0);
        return vec4<f32>(yuv709_to_rgb(y, uv.r, uv.g), 1.0);
    }
    let u = textureSampleLevel(tex_u, samp, in.uv, 0.0).r;
    let v = textureSampleLevel(tex_v, samp, in.uv, 0.0).r;
    return vec4<f32>(yuv709_to_rgb(y, u, v), 1.0);
}
