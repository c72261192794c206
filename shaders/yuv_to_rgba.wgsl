// Upload pass: a participant's picture, uploaded as its packed planes (I420: Y, U, V;
// NV12: Y, UV) into a byte buffer, converted once per new picture to RGBA at its own size.
// BT.709, limited range in; R'G'B' out. Each 2x2 block takes its co-located 4:2:0 chroma
// sample. Output: packed RGBA8 words (rows of `row_words`), then copied into the texture
// the composite pass samples. Plain buffer loads and stores: on a software rasteriser they
// cost far less than texel fetches and storage-texture stores.

struct Params {
    // 0 = I420, 1 = NV12.
    mode: u32,
    width: u32,
    height: u32,
    // Words (pixels) per row of the output buffer.
    row_words: u32,
    // Byte offsets of the chroma planes (for NV12, `u_offset` is the UV plane).
    u_offset: u32,
    v_offset: u32,
    _pad0: u32,
    _pad1: u32,
};

@group(0) @binding(0) var<storage, read> planes: array<u32>;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

fn byte_at(offset: u32) -> f32 {
    return f32((planes[offset >> 2u] >> ((offset & 3u) * 8u)) & 0xffu) / 255.0;
}

// BT.709 limited range Y'CbCr (each in 0..1 as read from 8-bit) to R'G'B'.
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
    let cw = params.width / 2u;
    let c = vec2<u32>(id.x * 2u, id.y);
    if c.x >= cw || c.y * 2u >= params.height {
        return;
    }
    for (var k = 0u; k < 2u; k++) {
        let cx = min(c.x + k, cw - 1u);
        var cb: f32;
        var cr: f32;
        if params.mode == 1u {
            let at = params.u_offset + (c.y * cw + cx) * 2u;
            cb = byte_at(at);
            cr = byte_at(at + 1u);
        } else {
            cb = byte_at(params.u_offset + c.y * cw + cx);
            cr = byte_at(params.v_offset + c.y * cw + cx);
        }
        for (var dy = 0u; dy < 2u; dy++) {
            for (var dx = 0u; dx < 2u; dx++) {
                let x = cx * 2u + dx;
                let y = c.y * 2u + dy;
                let rgb = yuv709_to_rgb(byte_at(y * params.width + x), cb, cr);
                out[y * params.row_words + x] = pack4x8unorm(vec4<f32>(rgb, 1.0));
            }
        }
    }
}
