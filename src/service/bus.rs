//! The message bus on Redis, as psrpc's Redis bus uses it: `PUBLISH` to a channel,
//! `SUBSCRIBE` on one shared pub/sub connection (resubscribed after a reconnect), and
//! queue subscriptions where one subscriber takes each message by setting a key (`SET NX`,
//! 5 s) named after the payload's hash, so that one server of many handles it.
//! Also plain commands for the worker registry (`registry.rs`).
//!
//! With Sentinel, the master is the one the sentinels name now: a command connection is
//! checked to still be a master at most once a second (`ROLE`) and found again through
//! the sentinels after an error or a failover, and the pub/sub connection asks them again
//! each time it reconnects. The sentinels are also asked every second which server is the
//! master: after a failover the old master can stay up, and a master for some seconds
//! more (until the sentinels demote it), while livekit-server already publishes on the new
//! one, so both connections move as soon as the sentinels name another server. With a cluster, a lost pub/sub connection moves on to the
//! next seed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::sync::mpsc;

use super::psrpc::wire::queue_lock_key;
use crate::backoff::Backoff;
use crate::config::RedisConfig;

/// Waits before each pub/sub reconnect: 100 ms doubling up to 1 s.
const RECONNECT_BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));

/// How long a queue message's lock holds (psrpc's `lockExpiration`).
const LOCK_EXPIRY_MS: u64 = 5_000;

/// `redis[s]://[user:password@]host:port/db` for one server.
fn redis_url(
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

/// Where commands go.
#[derive(Clone)]
enum Commands {
    Single(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
    Sentinel(Arc<SentinelMaster>),
}

/// How often a Sentinel master's connection is checked to still be the master.
const ROLE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// How often the sentinels are asked which server is the master.
const MASTER_WATCH_EVERY: Duration = Duration::from_secs(1);

/// A command connection to the master, the server it goes to and when it was last seen
/// to be the master's.
type HeldConnection = (redis::aio::MultiplexedConnection, Option<Server>, Instant);

/// The master the sentinels name, and a connection to it.
struct SentinelMaster {
    name: String,
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
struct Server {
    host: String,
    port: u16,
}

impl Server {
    /// The server a client connects to (`None` for a Unix socket).
    fn of(client: &redis::Client) -> Option<Server> {
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
fn master_moved(connected: Option<&Server>, named: Option<&Server>) -> bool {
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
    async fn client(&self) -> Result<redis::Client, BusError> {
        let mut sentinel = self.sentinel.lock().await;
        Ok(sentinel
            .async_master_for(&self.name, Some(&self.node))
            .await?)
    }

    /// The server the sentinels name as the master now: `SENTINEL
    /// get-master-addr-by-name`, from each sentinel in turn until one answers.
    async fn named(&self) -> Result<Server, BusError> {
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
    async fn keep_only(&self, named: &Server) {
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
    async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, BusError> {
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
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, BusError> {
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

/// Where the pub/sub connection goes, each time it (re)connects.
enum PubSubSource {
    /// A server, or a cluster's seeds tried in turn.
    Seeds(Vec<redis::Client>, AtomicUsize),
    /// The master the sentinels name at that moment.
    Sentinel(Arc<SentinelMaster>),
}

impl PubSubSource {
    /// The Sentinel master, when the sentinels say where the server is.
    fn sentinel(&self) -> Option<&SentinelMaster> {
        match self {
            PubSubSource::Sentinel(m) => Some(m),
            PubSubSource::Seeds(..) => None,
        }
    }

    async fn client(&self) -> Result<redis::Client, BusError> {
        match self {
            PubSubSource::Seeds(seeds, next) => {
                Ok(seeds[next.fetch_add(1, Ordering::Relaxed) % seeds.len()].clone())
            }
            PubSubSource::Sentinel(m) => m.client().await,
        }
    }
}

/// One subscriber of a channel.
struct Route {
    id: u64,
    tx: mpsc::UnboundedSender<Vec<u8>>,
}

#[derive(Default)]
struct Channels {
    /// Every subscriber gets every message.
    subs: HashMap<String, Vec<Route>>,
    /// One subscriber (round robin) gets each message, if it wins the lock.
    queues: HashMap<String, (Vec<Route>, usize)>,
    next_id: u64,
}

impl Channels {
    fn is_wanted(&self, channel: &str) -> bool {
        self.subs.contains_key(channel) || self.queues.contains_key(channel)
    }
}

struct Inner {
    commands: Commands,
    pubsub: PubSubSource,
    channels: Mutex<Channels>,
    sink: tokio::sync::Mutex<Option<redis::aio::PubSubSink>>,
}

/// The bus: cheap to clone, one pub/sub connection per process.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

/// Messages of one subscription; unsubscribes when dropped.
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    bus: Bus,
    channel: String,
    queue: bool,
    id: u64,
}

impl Subscription {
    /// The next message (`None` once the bus is gone).
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.bus.unsubscribe(&self.channel, self.queue, self.id);
    }
}

/// The sentinels and the master's connection settings of `config`.
fn sentinel_master(config: &RedisConfig) -> Result<SentinelMaster, BusError> {
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

impl Bus {
    /// Connects (commands and pub/sub) and starts the reader. Must run inside tokio.
    pub async fn connect(config: &RedisConfig) -> Result<Bus, BusError> {
        let (commands, pubsub) = if !config.cluster_addresses.is_empty() {
            let urls = config
                .cluster_addresses
                .iter()
                .map(|a| redis_url(config, a, &config.username, config.password.expose()))
                .collect::<Result<Vec<_>, _>>()?;
            let cluster = redis::cluster::ClusterClient::new(urls.clone())?;
            let conn = cluster.get_async_connection().await?;
            // PUBLISH reaches every node of a cluster: one node's pub/sub sees all.
            let seeds = urls
                .iter()
                .map(|u| redis::Client::open(u.as_str()))
                .collect::<Result<Vec<_>, _>>()?;
            (
                Commands::Cluster(conn),
                PubSubSource::Seeds(seeds, AtomicUsize::new(0)),
            )
        } else if !config.sentinel_addresses.is_empty() {
            let master = Arc::new(sentinel_master(config)?);
            // The first connection now: a worker that cannot reach its master says so.
            master.connection().await?;
            (
                Commands::Sentinel(master.clone()),
                PubSubSource::Sentinel(master),
            )
        } else {
            if config.address.is_empty() {
                return Err(BusError::Config("redis.address: is required".into()));
            }
            let client = redis::Client::open(
                redis_url(
                    config,
                    &config.address,
                    &config.username,
                    config.password.expose(),
                )?
                .as_str(),
            )?;
            let manager = client.get_connection_manager().await?;
            (
                Commands::Single(manager),
                PubSubSource::Seeds(vec![client], AtomicUsize::new(0)),
            )
        };
        let bus = Bus {
            inner: Arc::new(Inner {
                commands,
                pubsub,
                channels: Mutex::new(Channels::default()),
                sink: tokio::sync::Mutex::new(None),
            }),
        };
        // The first pub/sub connection before returning: a server must be listening
        // before it announces itself.
        let (stream, server) = bus.open_pubsub().await?;
        tokio::spawn(bus.clone().read(stream, server));
        Ok(bus)
    }

    /// Opens the pub/sub connection and subscribes every wanted channel; says which
    /// server it went to.
    async fn open_pubsub(&self) -> Result<(redis::aio::PubSubStream, Option<Server>), BusError> {
        let client = self.inner.pubsub.client().await?;
        let server = Server::of(&client);
        let pubsub = client.get_async_pubsub().await?;
        let (mut sink, stream) = pubsub.split();
        let mut guard = self.inner.sink.lock().await;
        let wanted: Vec<String> = {
            let c = self
                .inner
                .channels
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            c.subs.keys().chain(c.queues.keys()).cloned().collect()
        };
        if !wanted.is_empty() {
            sink.subscribe(&wanted).await?;
        }
        *guard = Some(sink);
        Ok((stream, server))
    }

    /// Reads messages until the connection drops; reconnects with a backoff.
    async fn read(self, mut stream: redis::aio::PubSubStream, mut server: Option<Server>) {
        let mut failures = 0;
        loop {
            self.pump(&mut stream, server.as_ref()).await;
            *self.inner.sink.lock().await = None;
            tracing::warn!("redis pub/sub connection lost or moved; reconnecting");
            loop {
                tokio::time::sleep(RECONNECT_BACKOFF.delay(failures)).await;
                match self.open_pubsub().await {
                    Ok((s, to)) => {
                        tracing::info!("redis pub/sub connection restored");
                        stream = s;
                        server = to;
                        failures = 0;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "redis pub/sub reconnect failed");
                        failures += 1;
                    }
                }
            }
        }
    }

    /// Hands out the messages of `stream` until it ends or, with Sentinel, the sentinels
    /// name another master than `server` (the command connection moves then too).
    async fn pump(&self, stream: &mut redis::aio::PubSubStream, server: Option<&Server>) {
        let Some(master) = self.inner.pubsub.sentinel() else {
            while let Some(msg) = stream.next().await {
                self.dispatch(msg.get_channel_name(), msg.get_payload_bytes());
            }
            return;
        };
        let mut watch = tokio::time::interval(MASTER_WATCH_EVERY);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => self.dispatch(msg.get_channel_name(), msg.get_payload_bytes()),
                    None => return,
                },
                _ = watch.tick() => match master.named().await {
                    Ok(named) => {
                        master.keep_only(&named).await;
                        if master_moved(server, Some(&named)) {
                            tracing::warn!(master = %master.name, to = %named, "the sentinels name another redis master; moving the pub/sub connection");
                            return;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "no sentinel answered which server is the master"),
                },
            }
        }
    }

    fn dispatch(&self, channel: &str, payload: &[u8]) {
        let mut c = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(subs) = c.subs.get(channel) {
            for r in subs {
                let _ = r.tx.send(payload.to_vec());
            }
        }
        if let Some((routes, next)) = c.queues.get_mut(channel)
            && !routes.is_empty()
        {
            *next %= routes.len();
            let tx = routes[*next].tx.clone();
            *next += 1;
            let bus = self.clone();
            let payload = payload.to_vec();
            tokio::spawn(async move {
                match bus.take_lock(&queue_lock_key(&payload)).await {
                    Ok(true) => {
                        let _ = tx.send(payload);
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "redis queue lock failed"),
                }
            });
        }
    }

    /// `SET key rand NX PX 5000`: whether this process took the message.
    async fn take_lock(&self, key: &str) -> Result<bool, BusError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key)
            .arg(rand::random::<u32>())
            .arg("NX")
            .arg("PX")
            .arg(LOCK_EXPIRY_MS);
        let v: Option<String> = self.query(&cmd).await?;
        Ok(v.is_some())
    }

    /// Subscribes to `channel`; with `queue`, this process's subscribers share its
    /// messages with other processes' (one taker each).
    pub async fn subscribe(&self, channel: &str, queue: bool) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut guard = self.inner.sink.lock().await;
        let (id, new) = {
            let mut c = self
                .inner
                .channels
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let new = !c.is_wanted(channel);
            c.next_id += 1;
            let id = c.next_id;
            let route = Route { id, tx };
            if queue {
                c.queues
                    .entry(channel.to_owned())
                    .or_default()
                    .0
                    .push(route);
            } else {
                c.subs.entry(channel.to_owned()).or_default().push(route);
            }
            (id, new)
        };
        let sub = Subscription {
            rx,
            bus: self.clone(),
            channel: channel.to_owned(),
            queue,
            id,
        };
        // While reconnecting there is no sink: the reconnect subscribes every channel.
        if new && let Some(sink) = guard.as_mut() {
            sink.subscribe(channel).await?;
        }
        Ok(sub)
    }

    fn unsubscribe(&self, channel: &str, queue: bool, id: u64) {
        let gone = {
            let mut c = self
                .inner
                .channels
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if queue {
                if let Some((routes, _)) = c.queues.get_mut(channel) {
                    routes.retain(|r| r.id != id);
                    if routes.is_empty() {
                        c.queues.remove(channel);
                    }
                }
            } else if let Some(routes) = c.subs.get_mut(channel) {
                routes.retain(|r| r.id != id);
                if routes.is_empty() {
                    c.subs.remove(channel);
                }
            }
            !c.is_wanted(channel)
        };
        if gone && let Ok(handle) = tokio::runtime::Handle::try_current() {
            let bus = self.clone();
            let channel = channel.to_owned();
            handle.spawn(async move {
                let mut guard = bus.inner.sink.lock().await;
                let still_gone = !bus
                    .inner
                    .channels
                    .lock()
                    .expect("bus channels")
                    .is_wanted(&channel);
                if still_gone && let Some(sink) = guard.as_mut() {
                    let _ = sink.unsubscribe(&channel).await;
                }
            });
        }
    }

    /// `PUBLISH channel payload`.
    pub async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BusError> {
        match self.inner.commands.clone() {
            Commands::Single(mut c) => c.publish::<_, _, ()>(channel, payload).await?,
            Commands::Cluster(mut c) => c.publish::<_, _, ()>(channel, payload).await?,
            Commands::Sentinel(m) => {
                m.query::<()>(redis::cmd("PUBLISH").arg(channel).arg(payload))
                    .await?
            }
        }
        Ok(())
    }

    /// Runs a command.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, BusError> {
        Ok(match self.inner.commands.clone() {
            Commands::Single(mut c) => cmd.query_async(&mut c).await?,
            Commands::Cluster(mut c) => cmd.query_async(&mut c).await?,
            Commands::Sentinel(m) => m.query(cmd).await?,
        })
    }
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
