//! psrpc's wire format, as livekit/psrpc writes it on Redis: every message published is an
//! `internal.Msg` (a `google.protobuf.Any` with a third, unused `channel` field) whose value
//! is one of the envelopes below (`internal.Request`, `Response`, `ClaimRequest`,
//! `ClaimResponse`); the RPC's own request and response travel as protobuf bytes inside
//! (`raw_request`, `raw_response`). Channel names are psrpc's "legacy" names, the ones its
//! Redis bus uses: `Service|Method|topic|REQ` and so on, each part sanitised.
//!
//! Pure: no IO. Byte-level fixtures in the tests are derived from `internal.proto`.

use std::collections::HashMap;

use prost::Message;
use rand::Rng;

/// The prefix of every `type_url` psrpc writes.
const TYPE_PREFIX: &str = "type.googleapis.com/";

/// `internal.Msg`: what is published on a channel.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Msg {
    /// `type.googleapis.com/internal.Request`, …
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The envelope's bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    /// Unused on Redis (psrpc writes it empty).
    #[prost(string, tag = "3")]
    pub channel: String,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    /// The type.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// Its bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `internal.Request`: an RPC call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    /// `REQ_` + 12 characters.
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// The caller (`CLI_…`): claims and the response go to its channels.
    #[prost(string, tag = "2")]
    pub client_id: String,
    /// Unix nanoseconds.
    #[prost(int64, tag = "3")]
    pub sent_at: i64,
    /// Unix nanoseconds after which the request is dropped unanswered.
    #[prost(int64, tag = "4")]
    pub expiry: i64,
    /// A multi-RPC (every server answers).
    #[prost(bool, tag = "5")]
    pub multi: bool,
    /// Deprecated form of the request (older psrpc); read when `raw_request` is empty.
    #[prost(message, optional, tag = "6")]
    pub request: Option<Any>,
    /// The caller's metadata.
    #[prost(map = "string, string", tag = "7")]
    pub metadata: HashMap<String, String>,
    /// The RPC's request message.
    #[prost(bytes = "vec", tag = "8")]
    pub raw_request: Vec<u8>,
}

/// `internal.Response`: a server's answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    /// The request answered.
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// The server answering.
    #[prost(string, tag = "2")]
    pub server_id: String,
    /// Unix nanoseconds.
    #[prost(int64, tag = "3")]
    pub sent_at: i64,
    /// Deprecated form of the response (older psrpc); read when `raw_response` is empty.
    #[prost(message, optional, tag = "4")]
    pub response: Option<Any>,
    /// Error text (empty on success).
    #[prost(string, tag = "5")]
    pub error: String,
    /// psrpc error code (`unavailable`, `not_found`, …).
    #[prost(string, tag = "6")]
    pub code: String,
    /// The RPC's response message.
    #[prost(bytes = "vec", tag = "7")]
    pub raw_response: Vec<u8>,
    /// Error details.
    #[prost(message, repeated, tag = "8")]
    pub error_details: Vec<Any>,
}

/// `internal.ClaimRequest`: a server offering to handle a request, with its affinity.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClaimRequest {
    /// The request.
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// The server offering.
    #[prost(string, tag = "2")]
    pub server_id: String,
    /// How much it wants the request (the caller takes the highest).
    #[prost(float, tag = "3")]
    pub affinity: f32,
}

/// `internal.ClaimResponse`: the caller's choice among the claims.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClaimResponse {
    /// The request.
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// The server chosen.
    #[prost(string, tag = "2")]
    pub server_id: String,
}

/// `google.protobuf.Empty`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// One decoded bus message.
#[derive(Clone, Debug, PartialEq)]
pub enum Envelope {
    /// A call.
    Request(Request),
    /// An answer.
    Response(Response),
    /// A server's claim.
    ClaimRequest(ClaimRequest),
    /// The caller's choice.
    ClaimResponse(ClaimResponse),
}

/// What cannot be read off the bus.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The bytes are not a protobuf message of the expected shape.
    #[error("malformed psrpc message: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A message type psrpc's RPCs do not use (streams are not served).
    #[error("unexpected psrpc message type {0:?}")]
    UnknownType(String),
}

impl Envelope {
    /// The protobuf full name of the envelope.
    pub fn type_name(&self) -> &'static str {
        match self {
            Envelope::Request(_) => "internal.Request",
            Envelope::Response(_) => "internal.Response",
            Envelope::ClaimRequest(_) => "internal.ClaimRequest",
            Envelope::ClaimResponse(_) => "internal.ClaimResponse",
        }
    }

    /// The bytes published: `internal.Msg{type_url, value}`.
    pub fn encode(&self) -> Vec<u8> {
        let value = match self {
            Envelope::Request(m) => m.encode_to_vec(),
            Envelope::Response(m) => m.encode_to_vec(),
            Envelope::ClaimRequest(m) => m.encode_to_vec(),
            Envelope::ClaimResponse(m) => m.encode_to_vec(),
        };
        Msg {
            type_url: format!("{TYPE_PREFIX}{}", self.type_name()),
            value,
            channel: String::new(),
        }
        .encode_to_vec()
    }

    /// Reads a published message.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, WireError> {
        let msg = Msg::decode(bytes)?;
        let name = msg
            .type_url
            .rsplit_once('/')
            .map_or(msg.type_url.as_str(), |(_, n)| n);
        let v = msg.value.as_slice();
        Ok(match name {
            "internal.Request" => Envelope::Request(Request::decode(v)?),
            "internal.Response" => Envelope::Response(Response::decode(v)?),
            "internal.ClaimRequest" => Envelope::ClaimRequest(ClaimRequest::decode(v)?),
            "internal.ClaimResponse" => Envelope::ClaimResponse(ClaimResponse::decode(v)?),
            _ => return Err(WireError::UnknownType(msg.type_url)),
        })
    }
}

impl Request {
    /// The RPC's request bytes (`raw_request`, or the older `request` Any).
    pub fn payload(&self) -> &[u8] {
        match (&self.raw_request, &self.request) {
            (raw, Some(any)) if raw.is_empty() => &any.value,
            (raw, _) => raw,
        }
    }
}

impl Response {
    /// The RPC's response bytes (`raw_response`, or the older `response` Any).
    pub fn payload(&self) -> &[u8] {
        match (&self.raw_response, &self.response) {
            (raw, Some(any)) if raw.is_empty() => &any.value,
            (raw, _) => raw,
        }
    }
}

/// psrpc's id alphabet (`pkg/rand`).
const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A psrpc id: `prefix` and 12 characters (`CLI_`, `SRV_`, `REQ_`).
pub fn new_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + 12);
    s.push_str(prefix);
    for _ in 0..12 {
        s.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    s
}

/// Appends one channel part, each character outside `[0-9A-Za-z_]` written `u+XXXX`
/// (`U+XXXXXXXX` beyond the BMP), as psrpc's `appendSanitizedChannelPart`.
fn push_part(out: &mut String, part: &str) {
    for c in part.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if (c as u32) < 0x10000 {
            out.push_str(&format!("u+{:04x}", c as u32));
        } else {
            out.push_str(&format!("U+{:08x}", c as u32));
        }
    }
}

/// psrpc's `formatChannel('|', parts...)`: empty parts (an empty topic) leave no separator.
fn channel(parts: &[&str]) -> String {
    let mut out = String::new();
    let mut prefix = false;
    for part in parts {
        if prefix {
            out.push('|');
        }
        let len = out.len();
        push_part(&mut out, part);
        prefix = out.len() > len;
    }
    out
}

/// Where calls to `service.method` on `topic` are published (`…|REQ`).
pub fn rpc_channel(service: &str, method: &str, topic: &str) -> String {
    channel(&[service, method, topic, "REQ"])
}

/// Where the caller publishes its choice among the claims (`…|RCLAIM`).
pub fn claim_response_channel(service: &str, method: &str, topic: &str) -> String {
    channel(&[service, method, topic, "RCLAIM"])
}

/// Where servers send their claims to a caller (`service|client|CLAIM`).
pub fn claim_request_channel(service: &str, client_id: &str) -> String {
    channel(&[service, client_id, "CLAIM"])
}

/// Where servers send responses to a caller (`service|client|RES`).
pub fn response_channel(service: &str, client_id: &str) -> String {
    channel(&[service, client_id, "RES"])
}

/// The Redis key a queue subscriber sets (NX, 5 s) to take a message from the other
/// subscribers: base64 of the payload's SHA-256, as psrpc's Redis bus.
pub fn queue_lock_key(payload: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(payload))
}

/// psrpc's error codes (`psrpc.ErrorCode`), the ones this service sends or reads.
pub mod code {
    /// The request could not be parsed.
    pub const MALFORMED_REQUEST: &str = "malformed_request";
    /// Bad argument.
    pub const INVALID_ARGUMENT: &str = "invalid_argument";
    /// No such thing.
    pub const NOT_FOUND: &str = "not_found";
    /// Already exists.
    pub const ALREADY_EXISTS: &str = "already_exists";
    /// Not in a state for this.
    pub const FAILED_PRECONDITION: &str = "failed_precondition";
    /// Full.
    pub const RESOURCE_EXHAUSTED: &str = "resource_exhausted";
    /// Unavailable (draining, no server).
    pub const UNAVAILABLE: &str = "unavailable";
    /// Internal failure.
    pub const INTERNAL: &str = "internal";
    /// No answer in time.
    pub const DEADLINE_EXCEEDED: &str = "deadline_exceeded";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `internal.Msg{type_url: "type.googleapis.com/internal.NAME", value: inner}` by hand:
    /// field 1 (0x0a) and field 2 (0x12), each length-delimited.
    fn msg_bytes(name: &str, inner: &[u8]) -> Vec<u8> {
        let url = format!("type.googleapis.com/internal.{name}");
        [
            &[0x0a, url.len() as u8][..],
            url.as_bytes(),
            &[0x12, inner.len() as u8],
            inner,
        ]
        .concat()
    }

    /// `internal.ClaimRequest{request_id: "REQ_a", server_id: "SRV_b", affinity: 0.5}` by
    /// hand from internal.proto: field 1 (0x0a) len 5, field 2 (0x12) len 5, field 3
    /// fixed32 (0x1d) 0.5f little-endian; wrapped in `internal.Msg` field 1 (type URL)
    /// and field 2 (value).
    #[test]
    fn claim_request_bytes_match_the_protocol() {
        let inner: Vec<u8> = [
            &[0x0a, 5][..],
            b"REQ_a",
            &[0x12, 5],
            b"SRV_b",
            &[0x1d, 0x00, 0x00, 0x00, 0x3f],
        ]
        .concat();
        let expected = msg_bytes("ClaimRequest", &inner);
        let env = Envelope::ClaimRequest(ClaimRequest {
            request_id: "REQ_a".into(),
            server_id: "SRV_b".into(),
            affinity: 0.5,
        });
        assert_eq!(env.encode(), expected);
        assert_eq!(Envelope::decode(&expected).unwrap(), env);
    }

    #[test]
    fn claim_response_bytes_match_the_protocol() {
        let inner: Vec<u8> = [&[0x0a, 5][..], b"REQ_a", &[0x12, 5], b"SRV_b"].concat();
        let expected = msg_bytes("ClaimResponse", &inner);
        let env = Envelope::ClaimResponse(ClaimResponse {
            request_id: "REQ_a".into(),
            server_id: "SRV_b".into(),
        });
        assert_eq!(env.encode(), expected);
        assert_eq!(Envelope::decode(&expected).unwrap(), env);
    }

    /// A request as psrpc's client writes it: ids, times as varints, `multi`, one
    /// metadata entry (a map entry is a nested message: key 1, value 2), `raw_request`.
    #[test]
    fn request_bytes_match_the_protocol() {
        let entry: Vec<u8> = [&[0x0a, 1][..], b"k", &[0x12, 1], b"v"].concat();
        let inner: Vec<u8> = [
            &[0x0a, 5][..],
            b"REQ_1",
            &[0x12, 5],
            b"CLI_2",
            &[0x18, 0x96, 0x01], // sent_at = 150
            &[0x20, 0xac, 0x02], // expiry = 300
            &[0x28, 0x01],       // multi
            &[0x3a, entry.len() as u8],
            &entry,
            &[0x42, 3],
            &[1, 2, 3],
        ]
        .concat();
        let decoded = Request::decode(inner.as_slice()).unwrap();
        let mut metadata = HashMap::new();
        metadata.insert("k".to_owned(), "v".to_owned());
        let expected = Request {
            request_id: "REQ_1".into(),
            client_id: "CLI_2".into(),
            sent_at: 150,
            expiry: 300,
            multi: true,
            request: None,
            metadata,
            raw_request: vec![1, 2, 3],
        };
        assert_eq!(decoded, expected);
        // One map entry: the encoding is canonical, so it is the same bytes.
        assert_eq!(expected.encode_to_vec(), inner);
        let env = Envelope::Request(expected);
        assert_eq!(Envelope::decode(&env.encode()).unwrap(), env);
    }

    #[test]
    fn response_bytes_match_the_protocol() {
        let inner: Vec<u8> = [
            &[0x0a, 5][..],
            b"REQ_1",
            &[0x12, 5],
            b"SRV_2",
            &[0x18, 0x07],
            &[0x2a, 4],
            b"full",
            &[0x32, 18],
            b"resource_exhausted",
        ]
        .concat();
        let r = Response {
            request_id: "REQ_1".into(),
            server_id: "SRV_2".into(),
            sent_at: 7,
            error: "full".into(),
            code: code::RESOURCE_EXHAUSTED.into(),
            ..Default::default()
        };
        assert_eq!(r.encode_to_vec(), inner);
        let ok = Response {
            request_id: "REQ_1".into(),
            raw_response: vec![9],
            ..Default::default()
        };
        assert_eq!(
            ok.encode_to_vec(),
            [&[0x0a, 5][..], b"REQ_1", &[0x3a, 1, 9]].concat()
        );
        assert_eq!(ok.payload(), &[9]);
    }

    /// Older psrpc sent the request as an Any (field 6): still read.
    #[test]
    fn an_any_request_is_read_when_raw_is_empty() {
        let r = Request {
            request: Some(Any {
                type_url: "type.googleapis.com/rpc.ListActiveEgressRequest".into(),
                value: vec![4, 5],
            }),
            ..Default::default()
        };
        assert_eq!(r.payload(), &[4, 5]);
    }

    #[test]
    fn unknown_types_are_refused() {
        let m = Msg {
            type_url: "type.googleapis.com/internal.Stream".into(),
            value: vec![],
            channel: String::new(),
        };
        assert!(matches!(
            Envelope::decode(&m.encode_to_vec()),
            Err(WireError::UnknownType(_))
        ));
        assert!(Envelope::decode(&[0xff, 0xff]).is_err());
    }

    /// Channel names as psrpc's `GetRPCChannel().Legacy` etc. build them.
    #[test]
    fn channel_names_follow_psrpc() {
        assert_eq!(
            rpc_channel("EgressInternal", "StartEgress", ""),
            "EgressInternal|StartEgress|REQ"
        );
        assert_eq!(
            rpc_channel("EgressHandler", "StopEgress", "EG_abc123"),
            "EgressHandler|StopEgress|EG_abc123|REQ"
        );
        assert_eq!(
            claim_response_channel("EgressInternal", "StartEgress", "cluster-1"),
            "EgressInternal|StartEgress|clusteru+002d1|RCLAIM"
        );
        assert_eq!(
            claim_request_channel("IOInfo", "CLI_x"),
            "IOInfo|CLI_x|CLAIM"
        );
        assert_eq!(response_channel("IOInfo", "CLI_x"), "IOInfo|CLI_x|RES");
        assert_eq!(channel(&["a", "é", "😀"]), "a|u+00e9|U+0001f600");
    }

    #[test]
    fn ids_have_psrpc_shape() {
        let id = new_id("REQ_");
        assert_eq!(id.len(), 16);
        assert!(id[4..].bytes().all(|b| ALPHABET.contains(&b)));
    }

    #[test]
    fn the_queue_lock_key_is_base64_sha256() {
        // sha256("") = e3b0c442…; base64 of it:
        assert_eq!(
            queue_lock_key(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
