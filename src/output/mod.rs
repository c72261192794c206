//! Outputs: branches of the single encode. Each output hangs off the encoded streams' tees
//! behind its own queue (files, HLS), or is fed from them into a pipeline of its own
//! (streams), so every output shares one encode. Images come from the compositor.

pub(crate) mod adts;
pub(crate) mod claim;
pub(crate) mod file;
pub(crate) mod hls;
pub(crate) mod hls_audio;
pub(crate) mod images;
pub(crate) mod isolated;
pub(crate) mod manifest;
pub(crate) mod moov;
pub(crate) mod playlist;
pub(crate) mod stream;
pub(crate) mod subtitles;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::request::naming::{self, NameContext, NamingError};

/// Where a file output is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTarget {
    /// The name reported in `FileInfo.filename` (relative to the output directory).
    pub filename: String,
    /// The path on disk.
    pub local_path: PathBuf,
}

/// Resolves a file template against the room and start time, inside `out_dir`.
pub fn file_target(
    out_dir: &Path,
    template: &str,
    extension: &str,
    ctx: &NameContext<'_>,
) -> Result<FileTarget, NamingError> {
    let filename = naming::resolve_filepath(template, ctx, extension)?;
    let local_path = out_dir.join(naming::contained(&filename)?);
    Ok(FileTarget {
        filename,
        local_path,
    })
}

impl FileTarget {
    /// The file beside this one with extension `ext` instead of its own (`rec.mp4` →
    /// `rec.vtt`); with `keep_own`, added to its name instead (`rec.ogg.vtt`), for when
    /// another output already makes the first name.
    pub fn sidecar(&self, ext: &str, keep_own: bool) -> FileTarget {
        let rename = |name: &str| -> String {
            let stem = match name.rsplit_once('.') {
                Some((stem, own)) if !keep_own && !own.contains('/') => stem,
                _ => name,
            };
            format!("{stem}.{ext}")
        };
        FileTarget {
            filename: rename(&self.filename),
            local_path: PathBuf::from(rename(&self.local_path.to_string_lossy())),
        }
    }
}

/// Resolves a prefix template (segments, images): as a file path with `extension`, then
/// without it, so `""` gives `{room_name}-{time}` and `"dir/"` gives `dir/{room_name}-{time}`.
pub fn prefix_target(
    out_dir: &Path,
    template: &str,
    extension: &str,
    ctx: &NameContext<'_>,
) -> Result<FileTarget, NamingError> {
    let t = file_target(out_dir, template, extension, ctx)?;
    let strip = |s: &str| s.strip_suffix(extension).unwrap_or(s).to_owned();
    Ok(FileTarget {
        filename: strip(&t.filename),
        local_path: PathBuf::from(strip(&t.local_path.to_string_lossy())),
    })
}

/// Writes `bytes` to `path` atomically: a reader sees the old file or the new one, never
/// half of either (written beside it, synced, then renamed over it).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)
}

/// `to` as a relative URI from directory `from_dir` (both relative to the same root).
pub fn relative_uri(from_dir: &Path, to: &Path) -> String {
    let from: Vec<_> = from_dir.components().collect();
    let to_c: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to_c).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); from.len() - common];
    parts.extend(
        to_c[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_uris() {
        assert_eq!(
            relative_uri(Path::new("a"), Path::new("a/s_1.ts")),
            "s_1.ts"
        );
        assert_eq!(relative_uri(Path::new(""), Path::new("a/s.ts")), "a/s.ts");
        assert_eq!(
            relative_uri(Path::new("p"), Path::new("a/s.ts")),
            "../a/s.ts"
        );
    }

    #[test]
    fn sidecars_sit_beside_their_file() {
        let t = FileTarget {
            filename: "rooms/rec.mp4".into(),
            local_path: PathBuf::from("/out/rooms/rec.mp4"),
        };
        let vtt = t.sidecar("vtt", false);
        assert_eq!(vtt.filename, "rooms/rec.vtt");
        assert_eq!(vtt.local_path, PathBuf::from("/out/rooms/rec.vtt"));
        assert_eq!(t.sidecar("vtt", true).filename, "rooms/rec.mp4.vtt");
        let bare = FileTarget {
            filename: "a.b/rec".into(),
            local_path: PathBuf::from("/o/a.b/rec"),
        };
        assert_eq!(bare.sidecar("vtt", false).filename, "a.b/rec.vtt");
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x/y.m3u8");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
