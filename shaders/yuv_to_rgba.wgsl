// Upload pass: a participant's picture, as uploaded (I420: Y, U, V planes; NV12: Y, UV),
// converted once per new picture to RGBA at its own size. BT.709, limited range in;
// R'G'B' out. Chroma is the co-located 4:2:0 sample of each 2x2 block. The result is
// written as packed RGBA8 words into a buffer (rows of `row_words`), then copied into the
// texture the composite pass samples: on a software rasteriser, buffer stores cost far
// less than storage-texture stores.

struct Params {
    // 0 = I420, 1 = NV12.
    mode: u32,
    width: u32,
    height: u32,
    // Words (pixels) per row of the output buffer.
    row_words: u32,
};

@group(0) @binding(0) var tex_y: texture_2d<f32>;
@group(0) @binding(1) var tex_u: texture_2d<f32>;
@group(0) @binding(2) var tex_v: texture_2d<f32>;
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

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

// One invocation per 4x2 block: two chroma samples, eight luma samples (fewer, fatter
// invocations: a software rasteriser pays per invocation).
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let c = vec2<u32>(id.x * 2u, id.y);
    if c.x * 2u >= params.width || c.y * 2u >= params.height {
        return;
    }
    for (var k = 0u; k < 2u; k++) {
        let cc = vec2<u32>(min(c.x + k, params.width / 2u - 1u), c.y);
        var cb: f32;
        var cr: f32;
        if params.mode == 1u {
            let uv = textureLoad(tex_u, cc, 0);
            cb = uv.r;
            cr = uv.g;
        } else {
            cb = textureLoad(tex_u, cc, 0).r;
            cr = textureLoad(tex_v, cc, 0).r;
        }
        for (var dy = 0u; dy < 2u; dy++) {
            for (var dx = 0u; dx < 2u; dx++) {
                let p = cc * 2u + vec2<u32>(dx, dy);
                let rgb = yuv709_to_rgb(textureLoad(tex_y, p, 0).r, cb, cr);
                out[p.y * params.row_words + p.x] = pack4x8unorm(vec4<f32>(rgb, 1.0));
            }
        }
    }
}
