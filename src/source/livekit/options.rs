//! Where and how the recorder joins a room, and how long it waits.

use std::time::Duration;

use super::tap::Tap;
use crate::request::select::Selection;
use crate::secret::Secret;

/// How long a participant or track egress's subject may be gone (left, unpublished)
/// before the recording ends: a quick rejoin continues it.
pub const DEPARTURE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a participant or track egress waits for its participant or track by default
/// (LiveKit's egress waits 30 s).
pub const AWAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to join.
#[derive(Clone)]
pub struct ConnectOptions {
    /// `ws://` or `wss://` address of the LiveKit server.
    pub url: String,
    /// API key the token is signed with.
    pub api_key: String,
    /// API secret the token is signed with.
    pub api_secret: Secret,
    /// The room.
    pub room_name: String,
    /// The recorder's identity (the egress id, as LiveKit's egress does).
    pub identity: String,
    /// What to take from the room.
    pub selection: Selection,
    /// A track egress's track, delivered as received (or as decoded audio) instead of to
    /// the egress's decoders.
    pub tap: Option<Tap>,
    /// Largest picture size asked of the server for a video track (its simulcast layer).
    pub video_size: (u32, u32),
    /// Delay between a frame's capture (on our clock) and its presentation: covers network
    /// jitter, retransmissions and decoding.
    pub playout_delay: Duration,
    /// How long joining may take (signaling and the media path).
    pub connect_timeout: Duration,
    /// Keep the room's transcriptions (for captions).
    pub transcripts: bool,
}

impl std::fmt::Debug for ConnectOptions {
    /// Everything but the API secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("url", &self.url)
            .field("api_key", &self.api_key)
            .field("api_secret", &self.api_secret)
            .field("room_name", &self.room_name)
            .field("identity", &self.identity)
            .field("selection", &self.selection)
            .field("tap", &self.tap.as_ref().map(|t| (&t.track, t.mode)))
            .field("video_size", &self.video_size)
            .field("playout_delay", &self.playout_delay)
            .field("connect_timeout", &self.connect_timeout)
            .field("transcripts", &self.transcripts)
            .finish()
    }
}

impl ConnectOptions {
    /// Defaults for everything but the server, credentials and room.
    pub fn new(url: &str, api_key: &str, api_secret: &Secret, room_name: &str) -> ConnectOptions {
        ConnectOptions {
            url: url.to_owned(),
            api_key: api_key.to_owned(),
            api_secret: api_secret.clone(),
            room_name: room_name.to_owned(),
            identity: crate::info::new_egress_id(),
            selection: Selection::room(true, true, Default::default()),
            tap: None,
            video_size: (1280, 720),
            playout_delay: Duration::from_millis(300),
            connect_timeout: Duration::from_secs(15),
            transcripts: false,
        }
    }
}
