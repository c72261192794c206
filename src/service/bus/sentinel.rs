//! Redis behind Sentinel: the master the sentinels name, a command connection to it
//! checked to still be the master's at most once a second (`ROLE`), and the watch that
//! asks the sentinels every second which server is the master (after a failover the old
//! master can stay up, and a master, until the sentinels demote it, while livekit-server
//! already publishes on the new one: both of the bus's connections move as soon as the
//! sentinels name another server).

use std::time::{Duration, Instant};

use super::server::{BusError, redis_url};
use crate::config::RedisConfig;

/// How often a Sentinel master's connection is checked to still be the master.
const ROLE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// How often the sentinels are asked which server is the master.
pub(super) const MASTER_WATCH_EVERY: Duration = Duration::from_secs(1);

/// A command connection to the master, the server it goes to and when it was last seen
/// to be the master's.
type HeldConnection = (redis::aio::MultiplexedConnection, Option<Server>, Instant);

/// The master the sentinels name, and a connection to it.
pub(super) struct SentinelMaster {
    pub(super) name: String,
    node: redis::sentinel::SentinelNodeConnectionInfo,
    sentinel: tokio::sync::Mutex<redis::sentinel::Sentinel>,
    /// The sentinels themselves, asked in turn which server is the master.
    sentinels: Vec<redis::Client>,
    /// A connection to the sentinel that answered last.
    watch: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    conn: tokio::sync::Mutex<Option<HeldConnection>>,
}

/// A Redis server's host and port, as the sentinels name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Server {
    host: String,
    port: u16,
}

impl Server {
    /// The server a client connects to (`None` for a Unix socket).
    pub(super) fn of(client: &redis::Client) -> Option<Server> {
        match client.get_connection_info().addr() {
            redis::ConnectionAddr::Tcp(host, port)
            | redis::ConnectionAddr::TcpTls { host, port, .. } => Some(Server {
                host: host.clone(),
                port: *port,
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Whether a connection to `connected` must move: the sentinels name another server.
/// Not knowing either (no sentinel answered, a Unix socket) moves nothing.
pub(super) fn master_moved(connected: Option<&Server>, named: Option<&Server>) -> bool {
    matches!((connected, named), (Some(c), Some(n)) if c != n)
}

/// Whether a `ROLE` reply is a master's.
fn is_master(reply: &redis::Value) -> bool {
    let redis::Value::Array(items) = reply else {
        return false;
    };
    match items.first() {
        Some(redis::Value::BulkString(b)) => b == b"master",
        Some(redis::Value::SimpleString(s)) => s == "master",
        _ => false,
    }
}

impl SentinelMaster {
    /// A client of the master the sentinels name now.
    pub(super) async fn client(&self) -> Result<redis::Client, BusError> {
        let mut sentinel = self.sentinel.lock().await;
        Ok(sentinel
            .async_master_for(&self.name, Some(&self.node))
            .await?)
    }

    /// The server the sentinels name as the master now: `SENTINEL
    /// get-master-addr-by-name`, from each sentinel in turn until one answers.
    pub(super) async fn named(&self) -> Result<Server, BusError> {
        let mut watch = self.watch.lock().await;
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("get-master-addr-by-name").arg(&self.name);
        if let Some(c) = watch.as_mut() {
            match cmd.query_async::<Option<(String, u16)>>(c).await {
                Ok(Some((host, port))) => return Ok(Server { host, port }),
                Ok(None) => return Err(unknown_master(&self.name)),
                Err(_) => *watch = None,
            }
        }
        let mut last = None;
        for sentinel in &self.sentinels {
            let answer = async {
                let mut c = sentinel.get_multiplexed_async_connection().await?;
                let named: Option<(String, u16)> = cmd.query_async(&mut c).await?;
                Ok::<_, redis::RedisError>((c, named))
            };
            match answer.await {
                Ok((c, Some((host, port)))) => {
                    *watch = Some(c);
                    return Ok(Server { host, port });
                }
                Ok((_, None)) => last = Some(unknown_master(&self.name)),
                Err(e) => last = Some(e.into()),
            }
        }
        Err(last.unwrap_or_else(|| BusError::Config("redis.sentinel_addresses: empty".into())))
    }

    /// Drops the command connection unless it goes to `named`.
    pub(super) async fn keep_only(&self, named: &Server) {
        let mut held = self.conn.lock().await;
        if let Some((_, Some(server), _)) = held.as_ref()
            && server != named
        {
            tracing::warn!(master = %self.name, from = %server, to = %named, "the sentinels name another redis master; moving the command connection");
            *held = None;
        }
    }

    /// The connection to the master: the one held while it still is the master's,
    /// else a new one to the master the sentinels name.
    pub(super) async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, BusError> {
        let mut held = self.conn.lock().await;
        if let Some((c, _, checked)) = held.as_mut() {
            if checked.elapsed() < ROLE_CHECK_EVERY {
                return Ok(c.clone());
            }
            let role: Result<redis::Value, _> = redis::cmd("ROLE").query_async(c).await;
            if role.as_ref().is_ok_and(is_master) {
                *checked = Instant::now();
                return Ok(c.clone());
            }
            tracing::warn!(master = %self.name, "the redis master changed or went away; asking the sentinels again");
            *held = None;
        }
        let client = self.client().await?;
        let c = client.get_multiplexed_async_connection().await?;
        *held = Some((c.clone(), Server::of(&client), Instant::now()));
        Ok(c)
    }

    /// Runs `cmd` on the master; once more on a new master after an error that says the
    /// master moved (a dropped connection, a write refused by a replica).
    pub(super) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, BusError> {
        let mut c = self.connection().await?;
        match cmd.query_async(&mut c).await {
            Ok(v) => Ok(v),
            Err(e) if moved(&e) => {
                *self.conn.lock().await = None;
                let mut c = self.connection().await?;
                Ok(cmd.query_async(&mut c).await?)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The sentinels do not know the master `name`.
fn unknown_master(name: &str) -> BusError {
    BusError::Config(format!(
        "redis.sentinel_master_name: the sentinels know no master {name:?}"
    ))
}

/// An error after which the master should be looked up again.
fn moved(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_timeout()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
        )
}

/// The sentinels and the master's connection settings of `config`.
pub(super) fn sentinel_master(config: &RedisConfig) -> Result<SentinelMaster, BusError> {
    let urls = config
        .sentinel_addresses
        .iter()
        .map(|a| {
            redis_url(
                config,
                a,
                &config.sentinel_username,
                config.sentinel_password.expose(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sentinel = redis::sentinel::Sentinel::build(urls.clone())?;
    let mut info = redis::RedisConnectionInfo::default().set_db(config.db);
    if !config.username.is_empty() {
        info = info.set_username(&config.username);
    }
    if !config.password.is_empty() {
        info = info.set_password(config.password.expose());
    }
    let node =
        redis::sentinel::SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
    let node = if config.use_tls {
        node.set_tls_mode(redis::TlsMode::Secure)
    } else {
        node
    };
    let sentinels = urls
        .iter()
        .map(|u| redis::Client::open(u.as_str()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SentinelMaster {
        name: config.sentinel_master_name.clone(),
        node,
        sentinel: tokio::sync::Mutex::new(sentinel),
        sentinels,
        watch: tokio::sync::Mutex::new(None),
        conn: tokio::sync::Mutex::new(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str, port: u16) -> Server {
        Server {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn a_connection_moves_only_when_the_sentinels_name_another_server() {
        let a = server("127.0.0.1", 6379);
        let b = server("127.0.0.1", 6380);
        assert!(!master_moved(Some(&a), Some(&a.clone())));
        assert!(master_moved(Some(&a), Some(&b)));
        assert!(!master_moved(None, Some(&b)));
        assert!(!master_moved(Some(&a), None));
    }

    #[test]
    fn a_client_names_its_server() {
        let c = redis::Client::open("redis://10.1.2.3:7000/0").unwrap();
        assert_eq!(Server::of(&c), Some(server("10.1.2.3", 7000)));
        let tls = redis::Client::open("rediss://cache.example:6380/0").unwrap();
        assert_eq!(Server::of(&tls), Some(server("cache.example", 6380)));
    }
}
