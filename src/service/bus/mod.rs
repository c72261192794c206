//! The message bus on Redis, as psrpc's Redis bus uses it: `PUBLISH` to a channel,
//! `SUBSCRIBE` on one shared pub/sub connection (resubscribed after a reconnect), and
//! queue subscriptions where one subscriber takes each message by setting a key (`SET NX`,
//! 5 s) named after the payload's hash, so that one server of many handles it.
//! Also plain commands for the worker registry (`registry.rs`).
//!
//! With Sentinel (`sentinel.rs`), commands and the pub/sub connection go to the master
//! the sentinels name now, and move when they name another. With a cluster, a lost
//! pub/sub connection moves on to the next seed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::sync::mpsc;

use super::psrpc::wire::queue_lock_key;
use crate::backoff::Backoff;
use crate::config::RedisConfig;
use sentinel::{MASTER_WATCH_EVERY, SentinelMaster, Server, master_moved, sentinel_master};
pub use server::BusError;
use server::redis_url;

mod sentinel;
mod server;

/// Waits before each pub/sub reconnect: 100 ms doubling up to 1 s.
const RECONNECT_BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));

/// How long a queue message's lock holds (psrpc's `lockExpiration`).
const LOCK_EXPIRY_MS: u64 = 5_000;

/// Where commands go.
#[derive(Clone)]
enum Commands {
    Single(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
    Sentinel(Arc<SentinelMaster>),
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
