//! AAC in ADTS frames, as each participant's isolated track is written while recording:
//! the frames found, silence put in front of a late joiner's track (one encoded silent
//! frame, repeated) so it spans the recording, and the stream cut into HLS packed-audio
//! segments (each an ID3 tag carrying its MPEG-TS start time, then its frames). Pure.

use std::ops::Range;

/// Samples per AAC frame.
pub const FRAME_SAMPLES: u64 = 1024;

/// The byte ranges of the ADTS frames in `data`, in order; stops at the first byte that
/// is not a frame (a cut-off end).
pub fn frames(data: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 7 <= data.len() {
        let h = &data[at..];
        if h[0] != 0xFF || h[1] & 0xF6 != 0xF0 {
            break;
        }
        let len = ((h[3] as usize & 0x03) << 11) | (h[4] as usize) << 3 | (h[5] as usize) >> 5;
        if len < 7 || at + len > data.len() {
            break;
        }
        out.push(at..at + len);
        at += len;
    }
    out
}

/// `stream` with `count` copies of `silent` (one ADTS frame of silence) in front.
pub fn pad_front(silent: &[u8], count: u64, stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(silent.len() * count as usize + stream.len());
    for _ in 0..count {
        out.extend_from_slice(silent);
    }
    out.extend_from_slice(stream);
    out
}

/// Frames of silence that put a track starting at sample `first_sample` at time 0.
pub fn padding_frames(first_sample: u64) -> u64 {
    (first_sample + FRAME_SAMPLES / 2) / FRAME_SAMPLES
}

/// An ID3v2.4 tag with Apple's `com.apple.streaming.transportStreamTimestamp` PRIV frame:
/// the MPEG-TS time (90 kHz, 33 bits) of a packed-audio segment's first sample.
pub fn id3_timestamp(pts: u64) -> Vec<u8> {
    const OWNER: &[u8] = b"com.apple.streaming.transportStreamTimestamp\0";
    let mut frame = Vec::new();
    frame.extend_from_slice(b"PRIV");
    let body = OWNER.len() + 8;
    frame.extend_from_slice(&synchsafe(body as u32));
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(OWNER);
    frame.extend_from_slice(&(pts & ((1 << 33) - 1)).to_be_bytes());
    let mut tag = b"ID3\x04\x00\x00".to_vec();
    tag.extend_from_slice(&synchsafe(frame.len() as u32));
    tag.extend_from_slice(&frame);
    tag
}

fn synchsafe(n: u32) -> [u8; 4] {
    [
        (n >> 21) as u8 & 0x7F,
        (n >> 14) as u8 & 0x7F,
        (n >> 7) as u8 & 0x7F,
        n as u8 & 0x7F,
    ]
}

/// `stream` (frames from time 0 at `rate` Hz) cut into packed-audio segments at the
/// sample boundaries `cuts` (each segment's first sample; the first is 0): per segment
/// its ID3 timestamp (`mpegts` is the MPEG-TS time of time 0) and its frames. A frame
/// belongs to the segment its first sample falls in.
pub fn packed_segments(stream: &[u8], rate: u32, cuts: &[u64], mpegts: u64) -> Vec<Vec<u8>> {
    let frames = frames(stream);
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(cuts.len());
    let mut next = 0;
    for (k, &start) in cuts.iter().enumerate() {
        let end = cuts.get(k + 1).copied().unwrap_or(u64::MAX);
        let first = next;
        while next < frames.len() && (next as u64) * FRAME_SAMPLES < end {
            next += 1;
        }
        let at = first as u64 * FRAME_SAMPLES;
        let pts = mpegts + at.max(start) * 90_000 / rate as u64;
        let mut seg = id3_timestamp(pts);
        for f in &frames[first..next] {
            seg.extend_from_slice(&stream[f.clone()]);
        }
        out.push(seg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ADTS frame of `len` bytes (header + filler) with `marker` as its first payload byte.
    fn frame(len: usize, marker: u8) -> Vec<u8> {
        let mut f = vec![0xFF, 0xF1, 0x4C, 0x40, 0, 0x1F, 0xFC];
        f[3] |= ((len >> 11) & 0x03) as u8;
        f[4] = ((len >> 3) & 0xFF) as u8;
        f[5] = (((len & 0x07) << 5) as u8) | 0x1F;
        f.push(marker);
        f.resize(len, 0);
        f
    }

    #[test]
    fn frames_are_found_and_a_cut_end_is_left_out() {
        let mut s = frame(20, 1);
        s.extend(frame(9, 2));
        s.extend(&frame(30, 3)[..10]);
        assert_eq!(frames(&s), [0..20, 20..29]);
        assert!(frames(b"ID3 not adts").is_empty());
    }

    #[test]
    fn a_late_track_gets_silence_in_front() {
        assert_eq!(padding_frames(0), 0);
        assert_eq!(padding_frames(48_000), 47); // 46.875 frames, rounded
        let padded = pad_front(&frame(8, 0), 3, &frame(10, 7));
        let f = frames(&padded);
        assert_eq!(f.len(), 4);
        assert_eq!(padded[f[3].start + 7], 7);
    }

    #[test]
    fn packed_segments_start_with_their_timestamp() {
        let tag = id3_timestamp(324_000_000 + 90_000);
        assert_eq!(&tag[..3], b"ID3");
        assert_eq!(tag.len(), 10 + 10 + 45 + 8);
        assert_eq!(&tag[tag.len() - 8..], &(324_090_000u64).to_be_bytes());
        // Five frames, cut at 2048 samples: frames 0-1, then 2-4.
        let stream: Vec<u8> = (0..5).flat_map(|i| frame(12, i)).collect();
        let segs = packed_segments(&stream, 48_000, &[0, 2048], 324_000_000);
        assert_eq!(segs.len(), 2);
        let body = |s: &[u8]| frames(&s[tag.len()..]).len();
        assert_eq!((body(&segs[0]), body(&segs[1])), (2, 3));
        assert_eq!(
            &segs[1][tag.len() - 8..tag.len()],
            &(324_003_840u64).to_be_bytes()
        );
    }
}
