//! `EgressInfo` as LiveKit prints it: proto3 JSON with the proto field names
//! (`egress_id`, `file_results`, ...), 64-bit integers as strings, enums by name.

use livekit_protocol::EgressInfo;
use rand::Rng;
use serde_json::Value;

/// Alphabet of LiveKit's short ids.
const ID_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A new egress id: `EG_` and 12 characters, like LiveKit's.
pub fn new_egress_id() -> String {
    let mut rng = rand::rng();
    let tail: String = (0..12)
        .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
        .collect();
    format!("EG_{tail}")
}

/// Now, as the Unix nanoseconds every `EgressInfo`, `FileInfo` and `StreamInfo` time
/// field holds.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// `lowerCamelCase` → `snake_case` (snake_case names stay as they are).
pub(crate) fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Renames object keys to proto names, except inside user maps (`metadata`), whose keys
/// are the user's own.
fn to_proto_names(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let k = snake(&k);
                    let v = if k == "metadata" && v.is_object() {
                        v
                    } else {
                        to_proto_names(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(to_proto_names).collect()),
        other => other,
    }
}

/// The info as LiveKit's JSON.
pub fn to_json(info: &EgressInfo) -> Value {
    to_proto_names(serde_json::to_value(info).expect("EgressInfo serializes"))
}

/// An `EgressInfo.status` by LiveKit's name (`EGRESS_ACTIVE`, …), `unknown` for a value
/// the enum lacks.
pub fn status_name(status: i32) -> &'static str {
    livekit_protocol::EgressStatus::try_from(status).map_or("unknown", |s| s.as_str_name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use livekit_protocol::{EgressStatus, FileInfo};

    #[test]
    fn ids_look_like_livekit_ids() {
        let id = new_egress_id();
        assert!(id.starts_with("EG_") && id.len() == 15, "{id}");
        assert_ne!(id, new_egress_id());
    }

    #[test]
    fn json_uses_proto_names_and_enum_names() {
        let info = EgressInfo {
            egress_id: "EG_x".into(),
            status: EgressStatus::EgressComplete as i32,
            file_results: vec![FileInfo {
                filename: "a.mp4".into(),
                size: 12,
                duration: 3,
                ..Default::default()
            }],
            ..Default::default()
        };
        let v = to_json(&info);
        assert_eq!(v["egress_id"], "EG_x");
        assert_eq!(v["status"], "EGRESS_COMPLETE");
        assert_eq!(v["file_results"][0]["size"], "12");
        assert_eq!(snake("liveKitURL"), "live_kit_u_r_l");
    }
}
