//! tessera's conversation extensions of a request: captions from the room's
//! transcriptions (`"captions": {"webvtt": true, "burn_in": true}`), each participant's
//! own audio (`"isolated_audio": true`) and the speaker timeline
//! (`"speaker_timeline": true`, on whenever captions are). Top-level keys of
//! RoomComposite, Participant, TrackComposite and v2 requests; refused on those without a
//! room of tessera's own (web egress, a custom web template, a track egress).

use serde_json::Value;

use super::error::RequestError;
use super::naming::EgressKind;

/// What the request asks of the conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conversation {
    /// A WebVTT sidecar beside every file output, and an HLS subtitles rendition.
    pub webvtt: bool,
    /// Captions drawn into the picture.
    pub burn_in: bool,
    /// `{egress_id}.speakers.json` beside the manifest.
    pub speaker_timeline: bool,
    /// Every participant's own audio as an extra track (MP4 files).
    pub isolated_audio: bool,
}

impl Conversation {
    /// Whether anything is asked.
    pub fn any(&self) -> bool {
        self.webvtt || self.burn_in || self.speaker_timeline || self.isolated_audio
    }

    /// Whether the room's transcriptions are needed.
    pub fn captions(&self) -> bool {
        self.webvtt || self.burn_in
    }
}

/// The extension's keys, snake_case and camelCase.
const KEYS: [(&str, &str); 3] = [
    ("captions", "captions"),
    ("speaker_timeline", "speakerTimeline"),
    ("isolated_audio", "isolatedAudio"),
];

/// Captions and the speaker timeline need tessera's own view of a room: refused on a
/// web egress (no room) and a track egress (one track as received).
pub(crate) fn refused(field: &str, kind: EgressKind) -> RequestError {
    let why = match kind {
        EgressKind::Track => {
            "a track egress records one track as received; use a participant or room composite egress"
        }
        _ => {
            "needs a room recorded with tessera's own layouts: a web page or custom web template has none"
        }
    };
    RequestError::invalid(field, why)
}

/// Whether `raw` (a request's JSON) names any of the extension's keys.
pub fn named(raw: &Value) -> Option<&'static str> {
    KEYS.iter()
        .find(|(snake, camel)| raw.get(*snake).is_some() || raw.get(*camel).is_some())
        .map(|(snake, _)| *snake)
}

/// Reads the extension from a request's JSON; errors name the field.
pub fn read(raw: &Value) -> Result<Conversation, RequestError> {
    let get = |snake: &str, camel: &str| raw.get(snake).or_else(|| raw.get(camel));
    let mut c = Conversation::default();
    if let Some(v) = get("captions", "captions") {
        let Value::Object(map) = v else {
            return Err(RequestError::invalid(
                "captions",
                r#"must be an object such as {"webvtt": true, "burn_in": true}"#,
            ));
        };
        for (key, v) in map {
            let slot = match key.as_str() {
                "webvtt" => &mut c.webvtt,
                "burn_in" | "burnIn" => &mut c.burn_in,
                other => {
                    return Err(RequestError::invalid(
                        &format!("captions.{other}"),
                        "unknown field (captions takes webvtt and burn_in)",
                    ));
                }
            };
            *slot = flag(v, &format!("captions.{key}"))?;
        }
    }
    if let Some(v) = get("speaker_timeline", "speakerTimeline") {
        c.speaker_timeline = flag(v, "speaker_timeline")?;
    }
    if let Some(v) = get("isolated_audio", "isolatedAudio") {
        c.isolated_audio = flag(v, "isolated_audio")?;
    }
    c.speaker_timeline |= c.captions();
    Ok(c)
}

fn flag(v: &Value, field: &str) -> Result<bool, RequestError> {
    v.as_bool()
        .ok_or_else(|| RequestError::invalid(field, "must be true or false"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn captions_and_the_timeline_are_read_with_either_key_style() {
        let c = read(&json!({"captions": {"webvtt": true, "burnIn": false}})).unwrap();
        assert_eq!(
            c,
            Conversation {
                webvtt: true,
                burn_in: false,
                speaker_timeline: true,
                isolated_audio: false,
            }
        );
        let t = read(&json!({"speakerTimeline": true})).unwrap();
        assert!(t.speaker_timeline && !t.captions());
        assert!(!read(&json!({"room_name": "r"})).unwrap().any());
        assert_eq!(
            named(&json!({"isolatedAudio": false})),
            Some("isolated_audio")
        );
        assert_eq!(named(&json!({"room_name": "r"})), None);
    }

    #[test]
    fn bad_values_name_their_field() {
        let field = |v: Value| read(&v).unwrap_err().to_string();
        assert!(field(json!({"captions": true})).contains("captions"));
        assert!(field(json!({"captions": {"webvtt": "yes"}})).contains("captions.webvtt"));
        assert!(field(json!({"captions": {"srt": true}})).contains("captions.srt"));
        assert!(field(json!({"speaker_timeline": 1})).contains("speaker_timeline"));
        assert!(field(json!({"isolated_audio": "yes"})).contains("isolated_audio"));
        assert!(
            read(&json!({"isolatedAudio": true}))
                .unwrap()
                .isolated_audio
        );
    }
}
