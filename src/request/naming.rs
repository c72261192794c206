//! File naming: LiveKit's filename templating, default names, extensions, and containment.

use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};

/// Values the templates of a room composite can use.
#[derive(Clone, Debug)]
pub struct NameContext<'a> {
    /// The room's name (`{room_name}`).
    pub room_name: &'a str,
    /// The room's server id (`{room_id}`), known once the room is joined.
    pub room_id: &'a str,
    /// The egress start time (`{time}`, `{utc}`).
    pub time: DateTime<Utc>,
}

/// Extensions LiveKit recognises as "an extension" to be replaced when it is the wrong one.
const KNOWN_EXTENSIONS: [&str; 11] = [
    ".mp4", ".ogg", ".webm", ".mp3", ".m3u8", ".ts", ".m4s", ".jpeg", ".jpg", ".png", ".json",
];

/// Why a file path cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NamingError {
    /// The path is absolute; paths are relative to the output directory.
    #[error("must be relative to the output directory, got absolute path {0:?}")]
    Absolute(String),
    /// The path climbs out of the output directory with `..`.
    #[error("escapes the output directory: {0:?}")]
    Escapes(String),
}

/// LiveKit's `{time}` format: `2006-01-02T150405`.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H%M%S").to_string()
}

/// LiveKit's `{utc}` format: `20060102150405` plus milliseconds.
pub fn format_utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%S%3f").to_string()
}

/// Replaces the template variables a room composite supports.
pub fn substitute(template: &str, ctx: &NameContext<'_>) -> String {
    template
        .replace("{room_name}", ctx.room_name)
        .replace("{room_id}", ctx.room_id)
        .replace("{time}", &format_time(ctx.time))
        .replace("{utc}", &format_utc(ctx.time))
}

/// Resolves a request's `filepath` into the file name LiveKit would produce:
/// variables replaced; empty or trailing `/` gets `{room_name}-{time}`; the extension is
/// added, or a wrong known one replaced. `ext` includes the dot (".mp4").
pub fn resolve_filepath(
    template: &str,
    ctx: &NameContext<'_>,
    ext: &str,
) -> Result<String, NamingError> {
    let mut path = substitute(template, ctx);
    if path.is_empty() || path.ends_with('/') {
        path = format!("{path}{}-{}{ext}", ctx.room_name, format_time(ctx.time));
    } else if !path.ends_with(ext) {
        if let Some(dot) = path.rfind('.') {
            let after_slash = path.rfind('/').is_none_or(|slash| dot > slash);
            if after_slash && KNOWN_EXTENSIONS.contains(&&path[dot..]) {
                path.truncate(dot);
            }
        }
        path.push_str(ext);
    }
    contained(&path)?;
    Ok(path)
}

/// Checks that a relative path stays inside the directory it is joined to, and returns it
/// normalised (`a/./b` → `a/b`).
pub fn contained(path: &str) -> Result<PathBuf, NamingError> {
    let p = Path::new(path);
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for c in p.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => {
                return Err(NamingError::Absolute(path.to_owned()));
            }
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return Err(NamingError::Escapes(path.to_owned()));
                }
                depth -= 1;
                out.pop();
            }
            Component::Normal(s) => {
                depth += 1;
                out.push(s);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ctx() -> NameContext<'static> {
        NameContext {
            room_name: "testroom",
            room_id: "RM_abc",
            time: Utc.with_ymd_and_hms(2022, 10, 4, 1, 13, 6).unwrap(),
        }
    }

    #[test]
    fn seed_examples() {
        let c = ctx();
        assert_eq!(
            resolve_filepath("", &c, ".mp4").unwrap(),
            "testroom-2022-10-04T011306.mp4"
        );
        assert_eq!(
            resolve_filepath("livekit-recordings/", &c, ".mp4").unwrap(),
            "livekit-recordings/testroom-2022-10-04T011306.mp4"
        );
        assert_eq!(
            resolve_filepath("{room_name}/{time}", &c, ".mp4").unwrap(),
            "testroom/2022-10-04T011306.mp4"
        );
        assert_eq!(
            resolve_filepath("{room_id}-x.mp4", &c, ".mp4").unwrap(),
            "RM_abc-x.mp4"
        );
    }

    #[test]
    fn extension_added_or_corrected() {
        let c = ctx();
        assert_eq!(resolve_filepath("a", &c, ".mp4").unwrap(), "a.mp4");
        assert_eq!(resolve_filepath("a.ogg", &c, ".mp4").unwrap(), "a.mp4");
        assert_eq!(resolve_filepath("a.v2", &c, ".mp4").unwrap(), "a.v2.mp4");
        assert_eq!(
            resolve_filepath("dir.ogg/a", &c, ".mp4").unwrap(),
            "dir.ogg/a.mp4"
        );
        assert_eq!(resolve_filepath("a.mp4", &c, ".mp4").unwrap(), "a.mp4");
    }

    #[test]
    fn utc_has_milliseconds() {
        assert_eq!(format_utc(ctx().time), "20221004011306000");
    }

    #[test]
    fn escapes_are_rejected() {
        let c = ctx();
        assert!(matches!(
            resolve_filepath("../x.mp4", &c, ".mp4"),
            Err(NamingError::Escapes(_))
        ));
        assert!(matches!(
            resolve_filepath("a/../../x", &c, ".mp4"),
            Err(NamingError::Escapes(_))
        ));
        assert!(matches!(
            resolve_filepath("/etc/x", &c, ".mp4"),
            Err(NamingError::Absolute(_))
        ));
        assert_eq!(
            contained("a/../b/./c.mp4").unwrap(),
            PathBuf::from("b/c.mp4")
        );
    }

    #[test]
    fn room_name_cannot_smuggle_an_escape() {
        let c = NameContext {
            room_name: "../../etc",
            ..ctx()
        };
        assert!(resolve_filepath("{room_name}.mp4", &c, ".mp4").is_err());
    }
}
