//! What a request's JSON says beyond LiveKit's protobuf types, read once per request:
//! tessera's extensions (a segment output's `renditions` ladder, an image output's
//! `"image_codec": "IC_PNG"`) and the `advanced` fields written as an explicit 0 (an error,
//! where proto3 reads 0 as "unset"). Keyed by the output's field name as the planners name
//! it (`segment_outputs[1]`, the deprecated `segments`, v2's `outputs[2].segments`), so the
//! v1 and v2 request shapes read the same way. A request that arrives as protobuf (the
//! worker's) has none: [`Extensions::default`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// A request's extensions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extensions {
    /// Each segment output's `renditions` list, as written (checked when planned).
    renditions: BTreeMap<String, Value>,
    /// The image outputs that ask for PNG.
    png: BTreeSet<String>,
    /// `advanced` fields (snake_case) given as 0.
    explicit_zero: BTreeSet<String>,
    /// Captions and the speaker timeline (read, and checked, by [`Extensions::parse`]).
    pub conversation: super::conversation::Conversation,
}

impl Extensions {
    /// Reads the extensions of a request's JSON (any request type, snake_case or
    /// camelCase keys).
    pub fn read(raw: &Value) -> Extensions {
        let mut ext = Extensions::default();
        let list = |keys: &[&str]| -> Vec<Value> {
            let v = keys.iter().find_map(|k| raw.get(*k));
            v.and_then(Value::as_array).cloned().unwrap_or_default()
        };
        for (i, s) in list(&["segment_outputs", "segmentOutputs"])
            .iter()
            .enumerate()
        {
            ext.add_segments(format!("segment_outputs[{i}]"), s);
        }
        if let Some(s) = raw.get("segments") {
            ext.add_segments("segments".into(), s);
        }
        for (i, im) in list(&["image_outputs", "imageOutputs"]).iter().enumerate() {
            ext.add_images(format!("image_outputs[{i}]"), im);
        }
        // v2: every output is one of file, stream, segments, images.
        for (i, o) in list(&["outputs"]).iter().enumerate() {
            if let Some(s) = o.get("segments") {
                ext.add_segments(format!("outputs[{i}].segments"), s);
            }
            if let Some(im) = o.get("images") {
                ext.add_images(format!("outputs[{i}].images"), im);
            }
        }
        if let Some(Value::Object(adv)) = raw.get("advanced") {
            for (key, v) in adv {
                if v.as_f64() == Some(0.0) {
                    ext.explicit_zero.insert(crate::info::snake(key));
                }
            }
        }
        ext
    }

    /// [`Extensions::read`], with the extensions that can be wrong checked: errors name
    /// the field.
    pub fn parse(raw: &Value) -> Result<Extensions, super::error::RequestError> {
        let mut ext = Extensions::read(raw);
        ext.conversation = super::conversation::read(raw)?;
        Ok(ext)
    }

    fn add_segments(&mut self, field: String, output: &Value) {
        if let Some(list) = output.get("renditions") {
            self.renditions.insert(field, list.clone());
        }
    }

    fn add_images(&mut self, field: String, output: &Value) {
        if IMAGE_CODEC_KEYS
            .iter()
            .any(|k| output.get(*k).is_some_and(is_png))
        {
            self.png.insert(field);
        }
    }

    /// The `renditions` list of the segment output named `field`, if it has one.
    pub fn renditions(&self, field: &str) -> Option<&Value> {
        self.renditions.get(field)
    }

    /// Whether the image output named `field` asks for PNG.
    pub fn png(&self, field: &str) -> bool {
        self.png.contains(field)
    }

    /// Whether `advanced.<name>` (snake_case) was written as 0.
    pub fn explicit_zero(&self, name: &str) -> bool {
        self.explicit_zero.contains(name)
    }
}

/// The image codec's key, snake_case and camelCase.
const IMAGE_CODEC_KEYS: [&str; 2] = ["image_codec", "imageCodec"];

/// tessera's PNG codec (LiveKit's `ImageCodec` has only JPEG).
fn is_png(v: &Value) -> bool {
    matches!(v.as_str(), Some("IC_PNG" | "PNG"))
}

/// `raw` as LiveKit's schema reads it: a PNG image codec (read by [`Extensions::read`])
/// given as the default codec, in v1 `image_outputs` and v2 `outputs[].images`.
pub fn for_schema(raw: &Value) -> Value {
    let mut clean = raw.clone();
    let mut images: Vec<&mut Value> = Vec::new();
    let Value::Object(top) = &mut clean else {
        return clean;
    };
    for (key, v) in top.iter_mut() {
        match (key.as_str(), v) {
            ("image_outputs" | "imageOutputs", Value::Array(list)) => {
                images.extend(list.iter_mut())
            }
            ("outputs", Value::Array(list)) => {
                images.extend(list.iter_mut().filter_map(|o| o.get_mut("images")));
            }
            _ => {}
        }
    }
    for im in images {
        for k in IMAGE_CODEC_KEYS {
            if im.get(k).is_some_and(is_png) {
                im[k] = Value::from("IC_DEFAULT");
            }
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn v1_and_v2_requests_name_their_outputs_as_the_planners_do() {
        let ladder = json!([{"height": 720}, {"height": 360}]);
        let v1 = Extensions::read(&json!({
            "segment_outputs": [{"filename_prefix": "a"}, {"renditions": ladder}],
            "segments": {"renditions": ladder},
            "imageOutputs": [{"imageCodec": "IC_PNG"}, {"image_codec": "IC_JPEG"}],
        }));
        assert_eq!(v1.renditions("segment_outputs[0]"), None);
        assert_eq!(v1.renditions("segment_outputs[1]"), Some(&ladder));
        assert_eq!(v1.renditions("segments"), Some(&ladder));
        assert!(v1.png("image_outputs[0]") && !v1.png("image_outputs[1]"));
        let v2 = Extensions::read(&json!({
            "outputs": [{"file": {}}, {"segments": {"renditions": ladder}}, {"images": {"image_codec": "PNG"}}],
        }));
        assert_eq!(v2.renditions("outputs[1].segments"), Some(&ladder));
        assert!(v2.png("outputs[2].images"));
        assert_eq!(
            Extensions::default(),
            Extensions::read(&json!({"room_name": "r"}))
        );
    }

    #[test]
    fn the_schema_sees_the_default_codec_where_png_was_asked() {
        let raw = json!({
            "image_outputs": [{"image_codec": "IC_PNG"}, {"image_codec": "IC_JPEG"}],
            "outputs": [{"images": {"imageCodec": "PNG"}}],
        });
        let clean = for_schema(&raw);
        assert_eq!(clean["image_outputs"][0]["image_codec"], "IC_DEFAULT");
        assert_eq!(clean["image_outputs"][1]["image_codec"], "IC_JPEG");
        assert_eq!(clean["outputs"][0]["images"]["imageCodec"], "IC_DEFAULT");
    }

    #[test]
    fn explicit_zeros_in_advanced_are_kept_by_their_snake_case_name() {
        let ext =
            Extensions::read(&json!({"advanced": {"width": 0, "videoBitrate": 0, "height": 720}}));
        assert!(ext.explicit_zero("width") && ext.explicit_zero("video_bitrate"));
        assert!(!ext.explicit_zero("height") && !ext.explicit_zero("framerate"));
    }
}
