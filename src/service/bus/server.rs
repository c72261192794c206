//! Where the bus connects and what can go wrong there: one server's URL from the
//! `redis` configuration, and the bus's error.

use crate::config::RedisConfig;

/// `redis[s]://[user:password@]host:port/db` for one server.
pub(super) fn redis_url(
    config: &RedisConfig,
    address: &str,
    username: &str,
    password: &str,
) -> Result<String, BusError> {
    let scheme = if config.use_tls { "rediss" } else { "redis" };
    let mut url = url::Url::parse(&format!("{scheme}://{address}/{}", config.db))
        .map_err(|e| BusError::Config(format!("redis.address {address:?}: {e}")))?;
    if !username.is_empty() {
        let _ = url.set_username(username);
    }
    if !password.is_empty() {
        let _ = url.set_password(Some(password));
    }
    Ok(url.into())
}

/// What went wrong on the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The `redis` configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// Redis refused or failed a command.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}
