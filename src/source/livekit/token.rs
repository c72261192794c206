//! The recorder's access token, as LiveKit's egress signs it: join one room, subscribe
//! only, hidden from the other participants, marked as a recorder, kind `egress`.

use std::time::Duration;

use livekit_api::access_token::{AccessToken, VideoGrants};

use super::error::LiveKitError;
use super::options::ConnectOptions;

/// How long the token is valid (the server refreshes it while connected).
const TTL: Duration = Duration::from_secs(24 * 3600);

/// Signs the token for `opts.identity` in `opts.room_name` (never shown: it stays in
/// tessera's own connection).
pub fn egress_token(opts: &ConnectOptions) -> Result<String, LiveKitError> {
    recorder_token(
        &opts.api_key,
        opts.api_secret.expose(),
        &opts.identity,
        &opts.room_name,
        TTL,
    )
}

/// How long a custom template's token is valid: what the egress may last (its duration
/// or session limit, when it has one) after its page may take `start` to begin, and a
/// minute's margin. Without a bound, long enough to join: livekit-server refreshes a
/// connected participant's token, and a page is never reloaded (a browser that dies ends
/// the egress). Never more than the recorder's own 24 h.
pub fn template_token_ttl(bound: Option<Duration>, start: Duration) -> Duration {
    let after_start = bound.unwrap_or(Duration::from_secs(10 * 60));
    (start + after_start + Duration::from_secs(60)).min(TTL)
}

/// The recorder's token for `identity` in `room`, valid `ttl` (also what a custom web
/// template gets, in its page URL).
pub fn recorder_token(
    api_key: &str,
    api_secret: &str,
    identity: &str,
    room: &str,
    ttl: Duration,
) -> Result<String, LiveKitError> {
    AccessToken::with_api_key(api_key, api_secret)
        .with_identity(identity)
        .with_kind("egress")
        .with_ttl(ttl)
        .with_grants(VideoGrants {
            room_join: true,
            room: room.to_owned(),
            can_subscribe: Some(true),
            can_publish: Some(false),
            can_publish_data: Some(false),
            hidden: true,
            recorder: true,
            ..Default::default()
        })
        .to_jwt()
        .map_err(|e| LiveKitError::Token(e.to_string()))
}

/// A short-lived token with `roomAdmin` for `room` (the RoomService calls an egress
/// makes: a template's layout change).
pub fn admin_token(api_key: &str, api_secret: &str, room: &str) -> Result<String, LiveKitError> {
    AccessToken::with_api_key(api_key, api_secret)
        .with_ttl(Duration::from_secs(600))
        .with_grants(VideoGrants {
            room_admin: true,
            room: room.to_owned(),
            ..Default::default()
        })
        .to_jwt()
        .map_err(|e| LiveKitError::Token(e.to_string()))
}
