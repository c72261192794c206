// Conversion pass: RGBA canvas -> NV12 (BT.709, limited range) in a storage buffer laid
// out exactly as GStreamer's default NV12: Y rows of `stride` bytes, then interleaved
// CbCr rows of `stride` bytes at half height. `stride` is the width rounded up to 4.
// One invocation writes a 4x2 block: two words of luma and one word of chroma.

struct Params {
    width: u32,
    height: u32,
    // Words (4 bytes) per row.
    stride_words: u32,
    // Word index where the chroma plane starts.
    uv_offset_words: u32,
};

@group(0) @binding(0) var canvas: texture_2d<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

const KR: f32 = 0.2126;
const KB: f32 = 0.0722;

fn luma(c: vec3<f32>) -> f32 {
    return dot(c, vec3<f32>(KR, 1.0 - KR - KB, KB));
}

fn to_byte(x: f32) -> u32 {
    return u32(clamp(x * 255.0 + 0.5, 0.0, 255.0));
}

fn load(x: u32, y: u32) -> vec3<f32> {
    return textureLoad(canvas, vec2<u32>(min(x, params.width - 1u), y), 0).rgb;
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let bx = id.x;
    let by = id.y;
    if bx >= params.stride_words || by * 2u >= params.height {
        return;
    }
    var sums = array<vec3<f32>, 2>(vec3<f32>(0.0), vec3<f32>(0.0));
    for (var row = 0u; row < 2u; row++) {
        let y = by * 2u + row;
        var word = 0u;
        for (var col = 0u; col < 4u; col++) {
            let c = load(bx * 4u + col, y);
            sums[col / 2u] += c;
            word |= to_byte((16.0 + 219.0 * luma(c)) / 255.0) << (8u * col);
        }
        out[y * params.stride_words + bx] = word;
    }
    var uv = 0u;
    for (var p = 0u; p < 2u; p++) {
        let c = sums[p] * 0.25;
        let yl = luma(c);
        let cb = (c.b - yl) / (2.0 * (1.0 - KB));
        let cr = (c.r - yl) / (2.0 * (1.0 - KR));
        uv |= to_byte((128.0 + 224.0 * cb) / 255.0) << (16u * p);
        uv |= to_byte((128.0 + 224.0 * cr) / 255.0) << (16u * p + 8u);
    }
    out[params.uv_offset_words + by * params.stride_words + bx] = uv;
}
