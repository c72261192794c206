//! The manifest `{egress_id}.json` written beside the outputs: which room, when, and every
//! file, playlist (with its segments) and image the egress wrote, as LiveKit's manifest
//! lists them.

use std::path::Path;

use serde::Serialize;

use crate::output::atomic_write;

/// A written file.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ManifestFile {
    /// Name relative to the output directory.
    pub filename: String,
    /// Path on disk.
    pub location: String,
}

/// A playlist and its segments.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ManifestPlaylist {
    /// Path on disk.
    pub location: String,
    /// Segment paths.
    pub segments: Vec<String>,
}

/// A captured image.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ManifestImage {
    /// Name relative to the output directory.
    pub filename: String,
    /// Path on disk.
    pub location: String,
    /// Capture time (Unix nanoseconds).
    pub timestamp: i64,
}

/// The manifest.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Manifest {
    /// Egress id.
    pub egress_id: String,
    /// Room id.
    pub room_id: String,
    /// Room name.
    pub room_name: String,
    /// Egress start (Unix nanoseconds).
    pub started_at: i64,
    /// Egress end (Unix nanoseconds; 0 while running).
    pub ended_at: i64,
    /// Final status (`EGRESS_COMPLETE`, ...), or the current one while running.
    pub status: String,
    /// Files.
    pub files: Vec<ManifestFile>,
    /// HLS playlists.
    pub playlists: Vec<ManifestPlaylist>,
    /// Images.
    pub images: Vec<ManifestImage>,
    /// The speaker timeline `{egress_id}.speakers.json`, when the egress keeps one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speakers: Option<String>,
}

impl Manifest {
    /// The manifest of `info` (ids, times, status), with no files yet.
    pub fn of(info: &livekit_protocol::EgressInfo) -> Manifest {
        Manifest {
            egress_id: info.egress_id.clone(),
            room_id: info.room_id.clone(),
            room_name: info.room_name.clone(),
            started_at: info.started_at,
            ended_at: info.ended_at,
            status: livekit_protocol::EgressStatus::try_from(info.status)
                .map_or("", |s| s.as_str_name())
                .to_owned(),
            ..Default::default()
        }
    }

    /// Writes the manifest as `{egress_id}.json` in `out_dir` (atomically); returns its path.
    pub fn write(&self, out_dir: &Path) -> std::io::Result<std::path::PathBuf> {
        let text = serde_json::to_vec_pretty(self).expect("manifest serialises");
        let path = out_dir.join(format!("{}.json", self.egress_id));
        atomic_write(&path, &text)?;
        Ok(path)
    }
}
