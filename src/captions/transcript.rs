//! The room's transcriptions as LiveKit sends them, reassembled into segment updates:
//! text streams on topic `lk.transcription` (a header with attributes, chunks, a trailer;
//! or the text inline in the header) and the older `Transcription` data packets. Pure:
//! the session hands it each data packet it receives.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use livekit_protocol as proto;
use proto::data_packet::Value;
use proto::data_stream::header::ContentHeader;

/// The text streams' topic for transcriptions.
pub const TOPIC: &str = "lk.transcription";
/// Attribute: the track whose speech the text transcribes.
pub const ATTR_TRACK: &str = "lk.transcribed_track_id";
/// Attribute: the segment the text belongs to (interim texts share their final's id).
pub const ATTR_SEGMENT: &str = "lk.segment_id";
/// Attribute: `"true"` when the text is the segment's final one.
pub const ATTR_FINAL: &str = "lk.transcription_final";

/// Streams open at once beyond which the oldest is dropped (a sender that never ends its
/// streams cannot grow the recorder's memory).
const MAX_OPEN_STREAMS: usize = 64;
/// Bytes of text kept per stream; the rest is dropped.
const MAX_STREAM_BYTES: usize = 16 * 1024;

/// Whose speech a text transcribes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Speaker {
    /// The owner of this track (`TR_…`).
    Track(String),
    /// This participant.
    Identity(String),
}

/// The newest text of one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heard {
    /// The segment (interim texts are replaced by later ones with the same id).
    pub segment: String,
    /// Whose speech it is.
    pub speaker: Speaker,
    /// The segment's whole text so far.
    pub text: String,
    /// The segment's last text.
    pub is_final: bool,
}

/// One text stream being received.
struct OpenStream {
    speaker: Speaker,
    segment: String,
    is_final: bool,
    deflated: bool,
    chunks: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
    /// Arrival order, to drop the oldest.
    order: u64,
}

impl OpenStream {
    fn content(&self) -> Vec<u8> {
        self.chunks.values().flatten().copied().collect()
    }

    /// The text so far (`None` for a compressed stream before its end).
    fn text(&self, whole: bool) -> Option<String> {
        let raw = self.content();
        if !self.deflated {
            return Some(String::from_utf8_lossy(&raw).into_owned());
        }
        whole.then(|| inflate(&raw))
    }
}

/// Raw DEFLATE (LiveKit's `DEFLATE_RAW`) to text, at most [`MAX_STREAM_BYTES`].
fn inflate(raw: &[u8]) -> String {
    let mut out = Vec::new();
    let mut d = flate2::read::DeflateDecoder::new(raw).take(MAX_STREAM_BYTES as u64);
    if let Err(e) = d.read_to_end(&mut out) {
        tracing::debug!(error = %e, "undecodable compressed transcription");
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reassembles transcriptions from data packets.
#[derive(Default)]
pub struct Assembler {
    streams: HashMap<String, OpenStream>,
    next_order: u64,
}

impl Assembler {
    /// Nothing received yet.
    pub fn new() -> Assembler {
        Assembler::default()
    }

    /// Takes one data packet; returns the segments it updated (none for other data).
    pub fn receive(&mut self, packet: proto::DataPacket) -> Vec<Heard> {
        let sender = packet.participant_identity;
        match packet.value {
            Some(Value::Transcription(t)) => legacy(t, &sender),
            Some(Value::StreamHeader(h)) => self.header(h, &sender).into_iter().collect(),
            Some(Value::StreamChunk(c)) => self.chunk(c).into_iter().collect(),
            Some(Value::StreamTrailer(t)) => self.trailer(t).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    fn header(&mut self, h: proto::data_stream::Header, sender: &str) -> Option<Heard> {
        if h.topic != TOPIC || !matches!(h.content_header, Some(ContentHeader::TextHeader(_))) {
            return None;
        }
        let attr = |k: &str| h.attributes.get(k).filter(|v| !v.is_empty());
        let speaker = match attr(ATTR_TRACK) {
            Some(track) => Speaker::Track(track.clone()),
            None => Speaker::Identity(sender.to_owned()),
        };
        let mut stream = OpenStream {
            speaker,
            segment: attr(ATTR_SEGMENT).unwrap_or(&h.stream_id).clone(),
            is_final: attr(ATTR_FINAL).is_some_and(|v| is_true(v)),
            deflated: h.compression == proto::data_stream::CompressionType::DeflateRaw as i32,
            chunks: BTreeMap::new(),
            bytes: 0,
            order: self.next_order,
        };
        self.next_order += 1;
        if let Some(inline) = h.inline_content {
            // The whole text in one packet: complete now (a trailer may still follow).
            stream.bytes = inline.len().min(MAX_STREAM_BYTES);
            stream.chunks.insert(0, inline[..stream.bytes].to_vec());
            let heard = finished(&stream);
            self.open(h.stream_id, stream);
            return heard;
        }
        self.open(h.stream_id, stream);
        None
    }

    fn open(&mut self, id: String, stream: OpenStream) {
        if self.streams.len() >= MAX_OPEN_STREAMS
            && let Some(oldest) = self
                .streams
                .iter()
                .min_by_key(|(_, s)| s.order)
                .map(|(k, _)| k.clone())
        {
            tracing::debug!(stream = %oldest, "too many open transcription streams: oldest dropped");
            self.streams.remove(&oldest);
        }
        self.streams.insert(id, stream);
    }

    fn chunk(&mut self, c: proto::data_stream::Chunk) -> Option<Heard> {
        let s = self.streams.get_mut(&c.stream_id)?;
        let room = MAX_STREAM_BYTES.saturating_sub(s.bytes);
        if room == 0 || s.chunks.contains_key(&c.chunk_index) {
            return None;
        }
        let take = c.content.len().min(room);
        s.bytes += take;
        s.chunks.insert(c.chunk_index, c.content[..take].to_vec());
        Some(Heard {
            segment: s.segment.clone(),
            speaker: s.speaker.clone(),
            text: s.text(false)?,
            is_final: false,
        })
    }

    fn trailer(&mut self, t: proto::data_stream::Trailer) -> Option<Heard> {
        let mut s = self.streams.remove(&t.stream_id)?;
        if let Some(v) = t.attributes.get(ATTR_FINAL) {
            s.is_final = is_true(v);
        }
        if !t.reason.is_empty() {
            tracing::debug!(reason = %t.reason, segment = %s.segment, "transcription stream ended early");
        }
        finished(&s)
    }
}

/// A stream's text once it is complete.
fn finished(s: &OpenStream) -> Option<Heard> {
    Some(Heard {
        segment: s.segment.clone(),
        speaker: s.speaker.clone(),
        text: s.text(true)?,
        is_final: s.is_final,
    })
}

fn is_true(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true")
}

/// The older `Transcription` packet: every segment it carries.
fn legacy(t: proto::Transcription, sender: &str) -> Vec<Heard> {
    let speaker = match (
        t.transcribed_participant_identity.as_str(),
        t.track_id.as_str(),
    ) {
        ("", "") => Speaker::Identity(sender.to_owned()),
        ("", track) => Speaker::Track(track.to_owned()),
        (who, _) => Speaker::Identity(who.to_owned()),
    };
    t.segments
        .into_iter()
        .map(|s| {
            let mut text = s.text;
            text.truncate(floor_char_boundary(&text, MAX_STREAM_BYTES));
            Heard {
                segment: s.id,
                speaker: speaker.clone(),
                text,
                is_final: s.r#final,
            }
        })
        .collect()
}

/// The largest index ≤ `at` that is a char boundary of `s`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    (0..=at.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proto::data_stream::{Chunk, Header, TextHeader, Trailer};

    use super::*;

    fn packet(from: &str, value: Value) -> proto::DataPacket {
        proto::DataPacket {
            participant_identity: from.into(),
            value: Some(value),
            ..Default::default()
        }
    }

    fn header(id: &str, attrs: &[(&str, &str)], inline: Option<&str>) -> Value {
        Value::StreamHeader(Header {
            stream_id: id.into(),
            topic: TOPIC.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            inline_content: inline.map(|s| s.as_bytes().to_vec()),
            content_header: Some(ContentHeader::TextHeader(TextHeader::default())),
            ..Default::default()
        })
    }

    fn chunk(id: &str, i: u64, text: &[u8]) -> Value {
        Value::StreamChunk(Chunk {
            stream_id: id.into(),
            chunk_index: i,
            content: text.to_vec(),
            ..Default::default()
        })
    }

    fn trailer(id: &str, attrs: &[(&str, &str)]) -> Value {
        Value::StreamTrailer(Trailer {
            stream_id: id.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn a_streamed_segment_grows_then_ends_final() {
        let mut a = Assembler::new();
        let attrs = [
            (ATTR_TRACK, "TR_a"),
            (ATTR_SEGMENT, "SG_1"),
            (ATTR_FINAL, "true"),
        ];
        assert!(
            a.receive(packet("agent", header("s1", &attrs, None)))
                .is_empty()
        );
        let h = a.receive(packet("agent", chunk("s1", 0, b"Hello ")));
        assert_eq!(h[0].text, "Hello ");
        assert!(!h[0].is_final);
        assert_eq!(h[0].speaker, Speaker::Track("TR_a".into()));
        // Out of order and repeated chunks are placed by index.
        a.receive(packet("agent", chunk("s1", 2, b"!")));
        a.receive(packet("agent", chunk("s1", 1, b"world")));
        assert!(a.receive(packet("agent", chunk("s1", 1, b"XX"))).is_empty());
        let done = a.receive(packet("agent", trailer("s1", &[])));
        assert_eq!(done[0].text, "Hello world!");
        assert!(done[0].is_final);
        assert_eq!(done[0].segment, "SG_1");
        // Other topics and unknown streams are not transcriptions.
        let mut other = header("s2", &[], Some("x"));
        if let Value::StreamHeader(h) = &mut other {
            h.topic = "lk.chat".into();
        }
        assert!(a.receive(packet("p", other)).is_empty());
        assert!(a.receive(packet("p", chunk("s2", 0, b"x"))).is_empty());
    }

    #[test]
    fn interim_and_final_texts_share_their_segment() {
        let mut a = Assembler::new();
        let interim = a.receive(packet(
            "alice",
            header(
                "s1",
                &[(ATTR_SEGMENT, "SG_9"), (ATTR_FINAL, "false")],
                Some("helo"),
            ),
        ));
        assert_eq!(interim[0].speaker, Speaker::Identity("alice".into()));
        assert!(!interim[0].is_final);
        // The trailer can finalise too.
        a.receive(packet(
            "alice",
            header("s2", &[(ATTR_SEGMENT, "SG_9")], None),
        ));
        a.receive(packet("alice", chunk("s2", 0, b"hello")));
        let fin = a.receive(packet("alice", trailer("s2", &[(ATTR_FINAL, "TRUE")])));
        assert_eq!((fin[0].segment.as_str(), fin[0].is_final), ("SG_9", true));
    }

    #[test]
    fn compressed_streams_are_read_at_their_end() {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all("caption compressée".as_bytes()).unwrap();
        let raw = enc.finish().unwrap();
        let mut a = Assembler::new();
        let mut h = header("s1", &[(ATTR_FINAL, "true")], None);
        if let Value::StreamHeader(h) = &mut h {
            h.compression = proto::data_stream::CompressionType::DeflateRaw as i32;
        }
        a.receive(packet("bob", h));
        let (first, rest) = raw.split_at(raw.len() / 2);
        assert!(a.receive(packet("bob", chunk("s1", 0, first))).is_empty());
        a.receive(packet("bob", chunk("s1", 1, rest)));
        let done = a.receive(packet("bob", trailer("s1", &[])));
        assert_eq!(done[0].text, "caption compressée");
    }

    #[test]
    fn legacy_packets_carry_their_segments() {
        let mut a = Assembler::new();
        let t = proto::Transcription {
            transcribed_participant_identity: "carol".into(),
            track_id: "TR_c".into(),
            segments: vec![
                proto::TranscriptionSegment {
                    id: "a".into(),
                    text: "one".into(),
                    r#final: true,
                    ..Default::default()
                },
                proto::TranscriptionSegment {
                    id: "b".into(),
                    text: "tw".into(),
                    ..Default::default()
                },
            ],
        };
        let h = a.receive(packet("agent", Value::Transcription(t)));
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].speaker, Speaker::Identity("carol".into()));
        assert!(h[0].is_final && !h[1].is_final);
    }

    #[test]
    fn hostile_streams_stay_bounded() {
        let mut a = Assembler::new();
        for i in 0..200 {
            a.receive(packet("x", header(&format!("s{i}"), &[], None)));
        }
        assert_eq!(a.streams.len(), MAX_OPEN_STREAMS);
        assert!(a.streams.contains_key("s199") && !a.streams.contains_key("s0"));
        let big = vec![b'a'; 10_000];
        for i in 0..5 {
            a.receive(packet("x", chunk("s199", i, &big)));
        }
        let done = a.receive(packet("x", trailer("s199", &[])));
        assert_eq!(done[0].text.len(), MAX_STREAM_BYTES);
    }
}
