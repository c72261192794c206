//! File naming: LiveKit's filename templating, default names, extensions, and containment.

use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};

/// Values the filename templates can use. Which variables a request may use depends on
/// its egress type ([`EgressKind::variables`]); the planner refuses the others, so an
/// empty value here is never substituted into a name.
#[derive(Clone, Debug, Default)]
pub struct NameContext<'a> {
    /// The room's name (`{room_name}`).
    pub room_name: &'a str,
    /// The room's server id (`{room_id}`), known once the room is joined.
    pub room_id: &'a str,
    /// The egress start time (`{time}`, `{utc}`).
    pub time: DateTime<Utc>,
    /// The recorded participant's identity (`{publisher_identity}`).
    pub publisher_identity: &'a str,
    /// The recorded track's id (`{track_id}`, `TR_…`).
    pub track_id: &'a str,
    /// `audio` or `video` (`{track_type}`).
    pub track_type: &'a str,
    /// `camera`, `microphone`, `screen_share`, `screen_share_audio` (`{track_source}`).
    pub track_source: &'a str,
}

/// LiveKit's egress types, as far as naming goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EgressKind {
    /// `RoomCompositeEgressRequest` (and the v2 `TemplateSource`).
    RoomComposite,
    /// `WebEgressRequest` (and the v2 `WebSource`).
    Web,
    /// `ParticipantEgressRequest`.
    Participant,
    /// `TrackCompositeEgressRequest` (and the v2 `MediaSource`).
    TrackComposite,
    /// `TrackEgressRequest`.
    Track,
}

/// Every template variable tessera knows.
pub const VARIABLES: [&str; 8] = [
    "room_id",
    "room_name",
    "time",
    "utc",
    "publisher_identity",
    "track_id",
    "track_type",
    "track_source",
];

impl EgressKind {
    /// The variables this type's templates may use: LiveKit's table in the egress
    /// outputs page, plus `{utc}` for every type.
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            EgressKind::RoomComposite => &["room_id", "room_name", "time", "utc"],
            EgressKind::Web => &["time", "utc"],
            EgressKind::Participant | EgressKind::TrackComposite => {
                &["room_id", "room_name", "time", "utc", "publisher_identity"]
            }
            EgressKind::Track => &VARIABLES,
        }
    }

    /// How LiveKit names the type in prose.
    pub fn label(self) -> &'static str {
        match self {
            EgressKind::RoomComposite => "room composite",
            EgressKind::Web => "web",
            EgressKind::Participant => "participant",
            EgressKind::TrackComposite => "track composite",
            EgressKind::Track => "track",
        }
    }
}

/// Refuses a template using a known variable that `kind` cannot fill (`{track_id}` in a
/// room composite); other text in braces is left alone, as LiveKit does.
pub fn check_variables(template: &str, kind: EgressKind) -> Result<(), String> {
    for var in VARIABLES {
        if template.contains(&format!("{{{var}}}")) && !kind.variables().contains(&var) {
            let allowed: Vec<String> = kind
                .variables()
                .iter()
                .map(|v| format!("{{{v}}}"))
                .collect();
            return Err(format!(
                "{{{var}}} does not apply to a {} egress (it can use {})",
                kind.label(),
                allowed.join(", ")
            ));
        }
    }
    Ok(())
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
    /// The path holds a control character (a newline, say), from the template or a name
    /// substituted into it: it would break playlists, manifests and object keys.
    #[error("contains a control character: {0:?}")]
    Control(String),
}

/// LiveKit's `{time}` format: `2006-01-02T150405`.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H%M%S").to_string()
}

/// LiveKit's `{utc}` format: `20060102150405` plus milliseconds.
pub fn format_utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%S%3f").to_string()
}

/// Replaces the template variables.
pub fn substitute(template: &str, ctx: &NameContext<'_>) -> String {
    template
        .replace("{room_name}", ctx.room_name)
        .replace("{room_id}", ctx.room_id)
        .replace("{time}", &format_time(ctx.time))
        .replace("{utc}", &format_utc(ctx.time))
        .replace("{publisher_identity}", ctx.publisher_identity)
        .replace("{track_id}", ctx.track_id)
        .replace("{track_type}", ctx.track_type)
        .replace("{track_source}", ctx.track_source)
}

/// Resolves a request's `filepath` into the file name LiveKit would produce:
/// variables replaced; empty or trailing `/` gets `{room_name}-{time}` (`{time}` without a
/// room); the extension is
/// added, or a wrong known one replaced. `ext` includes the dot (".mp4").
pub fn resolve_filepath(
    template: &str,
    ctx: &NameContext<'_>,
    ext: &str,
) -> Result<String, NamingError> {
    let mut path = substitute(template, ctx);
    if path.chars().any(char::is_control) {
        return Err(NamingError::Control(path));
    }
    if path.is_empty() || path.ends_with('/') {
        path = if ctx.room_name.is_empty() {
            // A web egress has no room: LiveKit names its file by time alone.
            format!("{path}{}{ext}", format_time(ctx.time))
        } else {
            format!("{path}{}-{}{ext}", ctx.room_name, format_time(ctx.time))
        };
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

/// Whether a relative path climbs out of the directory it is joined to (`../x`,
/// `a/../../x`), which [`contained`] refuses.
#[cfg_attr(not(feature = "egress"), allow(dead_code))]
pub fn escapes(path: &str) -> bool {
    matches!(contained(path), Err(NamingError::Escapes(_)))
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
            ..Default::default()
        }
    }

    #[test]
    fn a_control_character_in_a_name_is_refused() {
        let c = NameContext {
            room_name: "evil\n#EXT-X-ENDLIST",
            ..ctx()
        };
        let e = resolve_filepath("{room_name}/index", &c, ".m3u8").unwrap_err();
        assert!(matches!(e, NamingError::Control(_)), "{e:?}");
        assert!(e.to_string().contains("control character"), "{e}");
        assert!(resolve_filepath("a\tb", &ctx(), ".mp4").is_err());
        // Unicode and spaces are names like any other.
        assert!(resolve_filepath("Salle café 1", &ctx(), ".mp4").is_ok());
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
    fn a_web_egress_without_a_room_is_named_by_time() {
        let c = NameContext {
            room_name: "",
            ..ctx()
        };
        assert_eq!(
            resolve_filepath("", &c, ".mp4").unwrap(),
            "2022-10-04T011306.mp4"
        );
        assert_eq!(
            resolve_filepath("web/", &c, ".mp4").unwrap(),
            "web/2022-10-04T011306.mp4"
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
    fn seed_examples_of_participant_and_track_variables() {
        let c = NameContext {
            room_id: "10719607-f7b0-4d82-afe1-06b77e91fe12",
            publisher_identity: "david",
            track_id: "TR_SKasdXCVgHsei",
            track_type: "audio",
            track_source: "microphone",
            ..ctx()
        };
        assert_eq!(
            resolve_filepath("{room_id}-{publisher_identity}.mp4", &c, ".mp4").unwrap(),
            "10719607-f7b0-4d82-afe1-06b77e91fe12-david.mp4"
        );
        assert_eq!(
            resolve_filepath("{track_type}-{track_source}-{track_id}", &c, ".ogg").unwrap(),
            "audio-microphone-TR_SKasdXCVgHsei.ogg"
        );
    }

    #[test]
    fn each_type_uses_only_its_variables() {
        // The seed's table, row by row (plus {utc} everywhere).
        let table = [
            (EgressKind::RoomComposite, "YYYNNNN"),
            (EgressKind::Web, "NNYNNNN"),
            (EgressKind::Participant, "YYYYNNN"),
            (EgressKind::TrackComposite, "YYYYNNN"),
            (EgressKind::Track, "YYYYYYY"),
        ];
        let columns = [
            "room_id",
            "room_name",
            "time",
            "publisher_identity",
            "track_id",
            "track_type",
            "track_source",
        ];
        for (kind, row) in table {
            for (var, yes) in columns.iter().zip(row.chars()) {
                let r = check_variables(&format!("x-{{{var}}}"), kind);
                assert_eq!(r.is_ok(), yes == 'Y', "{kind:?} {{{var}}}: {r:?}");
            }
            assert!(check_variables("{utc}", kind).is_ok());
        }
        let e = check_variables("{track_id}.mp4", EgressKind::Participant).unwrap_err();
        assert!(e.contains("{track_id}") && e.contains("participant"), "{e}");
        assert!(check_variables("{other}", EgressKind::Web).is_ok());
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
