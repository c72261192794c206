//! The recorder's access token, as LiveKit's egress signs it: join one room, subscribe
//! only, hidden from the other participants, marked as a recorder, kind `egress`.

use std::time::Duration;

use livekit_api::access_token::{AccessToken, VideoGrants};

use super::{ConnectOptions, LiveKitError};

/// How long the token is valid (the server refreshes it while connected).
const TTL: Duration = Duration::from_secs(24 * 3600);

/// Signs the token for `opts.identity` in `opts.room_name`.
pub fn egress_token(opts: &ConnectOptions) -> Result<String, LiveKitError> {
    AccessToken::with_api_key(&opts.api_key, &opts.api_secret)
        .with_identity(&opts.identity)
        .with_kind("egress")
        .with_ttl(TTL)
        .with_grants(VideoGrants {
            room_join: true,
            room: opts.room_name.clone(),
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
