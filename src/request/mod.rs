//! LiveKit requests → an [`EgressPlan`]: parsing (LiveKit's proto3 JSON through
//! `livekit-protocol`), validation with errors that name the field, and defaults.
//! Knows nothing of GStreamer, the GPU or sockets.

pub mod encoding;
pub mod naming;

use livekit_protocol::{
    EncodedFileOutput, EncodedFileType, EncodingOptionsPreset, RoomCompositeEgressRequest,
    room_composite_egress_request::{Options, Output},
};
use serde_json::Value;

use crate::layout::{LayoutLibrary, ResolvedLayout};
pub use encoding::{AudioCodecKind, EncodingParams, H264Profile};

/// Why a request cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The text is not JSON at all.
    #[error("request is not valid JSON: {0}")]
    Json(String),
    /// The JSON does not fit LiveKit's schema; `field` is the path to the offending value.
    #[error("{field}: {reason}")]
    Schema {
        /// Path of the field, e.g. `advanced.width`.
        field: String,
        /// What the schema said.
        reason: String,
    },
    /// A field has a value that cannot be used.
    #[error("{field}: {reason}")]
    Invalid {
        /// Path of the field, e.g. `file_outputs[0].filepath`.
        field: String,
        /// Why the value is refused.
        reason: String,
    },
}

impl RequestError {
    /// An invalid-value error for `field`.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        RequestError::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The field the error is about, where there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            RequestError::Json(_) => None,
            RequestError::Schema { field, .. } | RequestError::Invalid { field, .. } => Some(field),
        }
    }
}

/// Which media the egress records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracks {
    /// Record (and composite) video.
    pub video: bool,
    /// Record (and mix) audio.
    pub audio: bool,
}

/// The file output of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePlan {
    /// The request's `filepath` template, unresolved (room id and time come at start).
    pub filepath_template: String,
    /// Field path of the template, for errors found when it is resolved.
    pub field: String,
    /// Extension including the dot.
    pub extension: &'static str,
}

/// A validated room composite, ready to run.
#[derive(Clone, Debug)]
pub struct EgressPlan {
    /// The room's name.
    pub room_name: String,
    /// The layout, resolved from its template file.
    pub layout: ResolvedLayout,
    /// Encoding after presets/advanced/defaults.
    pub encoding: EncodingParams,
    /// Which media are recorded.
    pub tracks: Tracks,
    /// The file output.
    pub file: FilePlan,
    /// The request as parsed, echoed in `EgressInfo`.
    pub request: RoomCompositeEgressRequest,
}

/// Parses LiveKit's JSON form of a `RoomCompositeEgressRequest` (snake_case or camelCase keys,
/// enums by name or number), returning the request and the raw JSON.
pub fn parse_room_composite(
    text: &str,
) -> Result<(RoomCompositeEgressRequest, Value), RequestError> {
    let raw: Value = serde_json::from_str(text).map_err(|e| RequestError::Json(e.to_string()))?;
    if !raw.is_object() {
        return Err(RequestError::Json("expected a JSON object".into()));
    }
    let req: RoomCompositeEgressRequest = serde_path_to_error::deserialize(&raw).map_err(|e| {
        let field = e.path().to_string();
        RequestError::Schema {
            field: if field == "." {
                "request".into()
            } else {
                field
            },
            reason: e.into_inner().to_string(),
        }
    })?;
    Ok((req, raw))
}

/// Validates a room composite and applies LiveKit's defaults.
pub fn plan_room_composite(
    req: RoomCompositeEgressRequest,
    raw: &Value,
    layouts: &LayoutLibrary,
) -> Result<EgressPlan, RequestError> {
    if req.room_name.trim().is_empty() {
        return Err(RequestError::invalid("room_name", "is required"));
    }
    if !req.custom_base_url.is_empty() {
        return Err(RequestError::invalid(
            "custom_base_url",
            "custom web templates are not supported yet; use a layout template file",
        ));
    }
    let layout = layouts
        .resolve(&req.layout)
        .map_err(|e| RequestError::invalid("layout", e.to_string()))?;

    let encoding = match &req.options {
        None => encoding::default_params(),
        Some(Options::Preset(n)) => {
            let preset = EncodingOptionsPreset::try_from(*n)
                .map_err(|_| RequestError::invalid("preset", format!("unknown preset {n}")))?;
            encoding::from_preset(preset)?
        }
        Some(Options::Advanced(adv)) => encoding::from_advanced(adv, raw.get("advanced"))?,
    };

    if req.audio_only && req.video_only {
        return Err(RequestError::invalid(
            "video_only",
            "audio_only and video_only cannot both be set",
        ));
    }
    let tracks = Tracks {
        video: !req.audio_only,
        audio: !req.video_only,
    };

    for (name, count) in [
        ("stream_outputs", req.stream_outputs.len()),
        ("segment_outputs", req.segment_outputs.len()),
        ("image_outputs", req.image_outputs.len()),
        ("webhooks", req.webhooks.len()),
    ] {
        if count > 0 {
            return Err(RequestError::invalid(
                name,
                "not supported yet by this version of tessera",
            ));
        }
    }
    #[allow(deprecated)]
    let legacy_file = match &req.output {
        None => None,
        Some(Output::File(f)) => Some(f),
        Some(Output::Stream(_)) => {
            return Err(RequestError::invalid("stream", "not supported yet"));
        }
        Some(Output::Segments(_)) => {
            return Err(RequestError::invalid("segments", "not supported yet"));
        }
    };
    let (file, field): (&EncodedFileOutput, String) =
        match (req.file_outputs.as_slice(), legacy_file) {
            ([], None) => {
                return Err(RequestError::invalid(
                    "file_outputs",
                    "no output requested: set file_outputs",
                ));
            }
            ([f], None) => (f, "file_outputs[0]".into()),
            ([], Some(f)) => (f, "file".into()),
            ([_, _, ..], _) => {
                return Err(RequestError::invalid(
                    "file_outputs",
                    "only one file output is supported per egress",
                ));
            }
            ([_], Some(_)) => {
                return Err(RequestError::invalid(
                    "file",
                    "use either file or file_outputs, not both",
                ));
            }
        };
    if file.output.is_some() {
        return Err(RequestError::invalid(
            &format!("{field}.output"),
            "cloud storage uploads are not supported yet; omit s3/gcp/azure/aliOSS to write locally",
        ));
    }
    let extension = match EncodedFileType::try_from(file.file_type) {
        Ok(EncodedFileType::DefaultFiletype | EncodedFileType::Mp4) => ".mp4",
        Ok(other) => {
            return Err(RequestError::invalid(
                &format!("{field}.file_type"),
                format!("{} is not supported yet; use MP4", other.as_str_name()),
            ));
        }
        Err(_) => {
            return Err(RequestError::invalid(
                &format!("{field}.file_type"),
                format!("unknown file type {}", file.file_type),
            ));
        }
    };
    let filepath_field = format!("{field}.filepath");
    // Reject escapes now, before anything runs: check the template with the variables
    // replaced by harmless names (the real values are checked again at start).
    let probe = naming::NameContext {
        room_name: "room",
        room_id: "RM_id",
        time: chrono::Utc::now(),
    };
    naming::resolve_filepath(&file.filepath, &probe, extension)
        .map_err(|e| RequestError::invalid(&filepath_field, e.to_string()))?;

    let file = FilePlan {
        filepath_template: file.filepath.clone(),
        field: filepath_field,
        extension,
    };
    Ok(EgressPlan {
        room_name: req.room_name.clone(),
        layout,
        encoding,
        tracks,
        file,
        request: req,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> Result<EgressPlan, RequestError> {
        let (req, raw) = parse_room_composite(json)?;
        plan_room_composite(req, &raw, &LayoutLibrary::builtin())
    }

    #[test]
    fn seed_shape_parses_with_defaults() {
        let p = plan(r#"{"room_name":"my-room","layout":"grid","file_outputs":[{"filepath":"my-test-file.mp4"}]}"#)
            .unwrap();
        assert_eq!(p.room_name, "my-room");
        assert_eq!((p.encoding.width, p.encoding.height), (1280, 720));
        assert_eq!(p.file.extension, ".mp4");
        assert!(p.tracks.audio && p.tracks.video);
    }

    #[test]
    fn camel_case_and_preset_by_name() {
        let p =
            plan(r#"{"roomName":"r","preset":"H264_1080P_60","fileOutputs":[{"filepath":"x"}]}"#)
                .unwrap();
        assert_eq!((p.encoding.width, p.encoding.framerate), (1920, 60));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"room_name":"r","preset":"H264_4K","file_outputs":[{}]}"#,
                "preset",
            ),
            (
                r#"{"room_name":"r","advanced":{"width":1279},"file_outputs":[{}]}"#,
                "advanced.width",
            ),
            (
                r#"{"room_name":"r","advanced":{"width":0},"file_outputs":[{}]}"#,
                "advanced.width",
            ),
            (
                r#"{"room_name":"r","advanced":{"video_bitrate":-1},"file_outputs":[{}]}"#,
                "advanced.video_bitrate",
            ),
            (
                r#"{"room_name":"r","file_outputs":[{"filepath":"../x.mp4"}]}"#,
                "file_outputs[0].filepath",
            ),
            (
                r#"{"room_name":"r","layout":"nope","file_outputs":[{}]}"#,
                "layout",
            ),
            (r#"{"room_name":"","file_outputs":[{}]}"#, "room_name"),
            (r#"{"room_name":"r"}"#, "file_outputs"),
            (
                r#"{"room_name":"r","file_outputs":[{}],"stream_outputs":[{"urls":["rtmp://x"]}]}"#,
                "stream_outputs",
            ),
        ];
        for (json, field) in cases {
            let err = plan(json).unwrap_err();
            assert_eq!(err.field(), Some(field), "{json}: {err}");
            assert!(err.to_string().starts_with(field), "{err}");
        }
    }

    #[test]
    fn malformed_json_is_a_json_error() {
        assert!(matches!(
            plan("{\"room_name\": "),
            Err(RequestError::Json(_))
        ));
    }
}
