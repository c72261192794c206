//! The adaptive HLS ladder, a tessera extension of `SegmentedFileOutput`: a `renditions`
//! list read from the request's raw JSON, each rendition a size and bitrate of its own.

use serde_json::Value;

use super::encoding::{EncodingParams, VideoEncode};
use super::error::RequestError;

/// Most renditions in one adaptive HLS output.
pub const MAX_RENDITIONS: usize = 4;

/// Checks the tessera extension `renditions` of the segment output `field` (the list as
/// written, from [`super::Extensions`]):
/// `[{"name": "720p", "width": 1280, "height": 720, "video_bitrate": 3000}, ...]`.
pub fn renditions(
    list: Option<&Value>,
    field: &str,
    main: &EncodingParams,
) -> Result<Vec<(String, VideoEncode)>, RequestError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let field = format!("{field}.renditions");
    let list = list
        .as_array()
        .ok_or_else(|| RequestError::invalid(&field, "must be a list of renditions"))?;
    if !(2..=MAX_RENDITIONS).contains(&list.len()) {
        return Err(RequestError::invalid(
            &field,
            format!(
                "must list 2 to {MAX_RENDITIONS} renditions, got {}",
                list.len()
            ),
        ));
    }
    let mut out: Vec<(String, VideoEncode)> = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let num = |key: &str| -> Result<Option<u32>, RequestError> {
            match r.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .filter(|&n| n > 0 && n <= u32::MAX as u64)
                    .map(|n| Some(n as u32))
                    .ok_or_else(|| {
                        RequestError::invalid(&format!("{f}.{key}"), "must be a positive integer")
                    }),
            }
        };
        let height =
            num("height")?.ok_or_else(|| RequestError::invalid(&f, "height is required"))?;
        let width = match num("width")? {
            Some(w) => w,
            // Keep the main aspect ratio, rounded to even.
            None => ((main.width as u64 * height as u64 / main.height as u64) as u32 + 1) & !1,
        };
        for (key, v) in [("width", width), ("height", height)] {
            super::encoding::check_output_dimension(&format!("{f}.{key}"), v.into())?;
        }
        let bitrate = match num("video_bitrate")? {
            Some(b) => b,
            // Scale the main bitrate by the pixel count.
            None => ((main.video_bitrate_kbps as u64 * (width * height) as u64
                / (main.width * main.height) as u64) as u32)
                .max(200),
        };
        let name = match r.get("name") {
            None => format!("{height}p"),
            Some(Value::String(s))
                if !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                s.clone()
            }
            Some(_) => {
                return Err(RequestError::invalid(
                    &format!("{f}.name"),
                    "must be letters, digits, '-' or '_'",
                ));
            }
        };
        if out.iter().any(|(n, _)| *n == name) {
            return Err(RequestError::invalid(
                &format!("{f}.name"),
                format!("{name:?} is used twice"),
            ));
        }
        out.push((
            name,
            VideoEncode {
                width,
                height,
                bitrate_kbps: bitrate,
            },
        ));
    }
    Ok(out)
}
