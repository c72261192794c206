//! What the session and the decoders share with the egress: the room's state behind one
//! lock, and how the session ended.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::media::{AudioRing, PictureQueue};
use super::shown::{Published, Shown};

/// How the session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RoomEnd {
    /// The room was closed (deleted, or emptied).
    Closed,
    /// The egress asked to leave.
    Stopped,
    /// Lost or refused.
    Failed(String),
}

/// What the session and the decoders share with the egress.
#[derive(Default)]
pub(crate) struct State {
    pub(super) room_sid: String,
    pub(super) shown: Vec<Shown>,
    /// Track sid → decoded pictures.
    pub(super) pictures: HashMap<String, PictureQueue>,
    /// Track sid → decoded sound.
    pub(super) sound: HashMap<String, AudioRing>,
    pub(super) end: Option<RoomEnd>,
    /// Track sid → the picture size the egress draws it at (for its simulcast layer).
    pub(super) wanted_sizes: HashMap<String, (u32, u32)>,
    /// Every track published in the room, by sid.
    pub(super) published: HashMap<String, Published>,
    /// What the selection waits for: there, or what is missing (`None` before the first
    /// participant list).
    pub(super) ready: Option<Result<(), String>>,
    /// `{publisher_identity}` of a participant or track egress.
    pub(super) publisher: Option<String>,
    /// Since when nothing the egress records is in the room (after it was once).
    pub(super) subject_gone_since: Option<Instant>,
    pub(super) subject_seen: bool,
    /// The layout in the egress participant's metadata, not yet taken by the egress.
    pub(super) layout_request: Option<String>,
    /// The last layout seen there (a repeated update is not a new request).
    pub(super) layout_seen: Option<String>,
    /// Transcriptions received (`at` on the session clock), not yet taken by the egress.
    pub(super) transcripts: Vec<crate::source::Transcript>,
}

/// The `layout` of participant metadata `{"layout": "…"}` (what livekit-server's
/// UpdateLayout writes), if it has one.
pub(crate) fn layout_in_metadata(metadata: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(metadata).ok()?;
    let layout = v.get("layout")?.as_str()?;
    (!layout.is_empty()).then(|| layout.to_owned())
}

/// What the session thread and the room share: the session's clock and its state.
pub(crate) struct Shared {
    /// Session time 0.
    pub(super) epoch: Instant,
    pub(super) state: Mutex<State>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
