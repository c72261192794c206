//! `tessera serve`: the worker put together. With `redis`, it joins livekit-server's
//! psrpc bus (StartEgress and ListActiveEgress on the cluster's topic, StopEgress and
//! UpdateStream per egress, IOInfo for reports) and the worker registry; with
//! `tessera.api_port`, it serves LiveKit's Egress API itself (standalone). SIGTERM or
//! SIGINT drains: nothing new is claimed, running egresses go on up to
//! `tessera.drain_timeout`, then are stopped with their files finished and uploaded; a
//! second signal stops them at once (still finishing their files).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::admission::Admission;
use super::bus::{Bus, BusError};
use super::handlers;
use super::http::{self, Api};
use super::io_info::IoReporter;
use super::liveness::Liveness;
use super::psrpc;
use super::registry::{self, Registry};
use super::rpc;
use super::worker::{Reporters, Worker};
use crate::capacity::CostProfile;
use crate::compositor::{Backend, GpuError};
use crate::config::ServiceConfig;
use crate::layout::{LayoutError, LayoutLibrary};

/// Why the worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// GStreamer could not be initialised.
    #[error("GStreamer: {0}")]
    Gstreamer(String),
    /// No compositor.
    #[error("compositor: {0}")]
    Compositor(#[from] GpuError),
    /// No encoder.
    #[error("encoder: {0}")]
    Encoder(String),
    /// The layouts directory is unusable.
    #[error("tessera.layouts: {0}")]
    Layouts(#[from] LayoutError),
    /// The cost profile is unreadable.
    #[error("tessera.cost_profile: {0}")]
    CostProfile(String),
    /// Redis is unreachable.
    #[error("redis: {0}")]
    Bus(#[from] BusError),
    /// A port cannot be bound.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The addresses the worker listens on, once bound (for tests and logs).
#[derive(Clone, Debug, Default)]
pub struct Bound {
    /// Per configured port, the address.
    pub addrs: Vec<SocketAddr>,
}

/// Runs the worker until a signal has drained it. `on_ready` gets the bound addresses.
pub fn serve(config: ServiceConfig, on_ready: impl FnOnce(&Bound)) -> Result<(), ServeError> {
    gstreamer::init().map_err(|e| ServeError::Gstreamer(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tessera-service")
        .build()?;
    runtime.block_on(run(config, on_ready))
}

async fn run(config: ServiceConfig, on_ready: impl FnOnce(&Bound)) -> Result<(), ServeError> {
    for note in &config.adjustments {
        tracing::warn!(adjusted = %note, "configuration read leniently (tessera.lenient)");
    }
    let config = Arc::new(config);
    let node_id = psrpc::wire::new_id("NE_");
    let backend = Backend::open(config.tessera.compositor)?;
    let encoder = crate::encode::shared_video_encoder()
        .map_err(|e| ServeError::Encoder(e.to_string()))?
        .factory
        .to_owned();
    let layouts = match &config.tessera.layouts {
        Some(dir) => LayoutLibrary::with_dir(dir)?,
        None => LayoutLibrary::builtin(),
    };
    let machine = crate::capacity::cores() as f64;
    let cores = config.tessera.cpu_cores.unwrap_or(machine);
    let admission = admission(&config, cores, machine)?;
    // What a crashed run of this node left: its pages' processes and directories.
    let reaped =
        crate::source::web::processes::reap_leftovers(&crate::source::web::processes::root());
    if reaped > 0 {
        tracing::info!(reaped, "cleaned up what an earlier run left");
    }
    let (reporters, rpc) = connect(&config, &node_id).await?;
    let worker = Worker::new(
        node_id.clone(),
        config.clone(),
        layouts,
        backend.clone(),
        encoder.clone(),
        admission,
        reporters.clone(),
    );
    // What a crash of an earlier run left for upload: resumed or reported, off the
    // runtime, while the worker already takes egresses (which stage elsewhere).
    let leftovers = super::leftovers::found(&config.tessera.out_dir);
    if !leftovers.is_empty() {
        let defaults = config.storage.clone();
        std::thread::Builder::new()
            .name("leftovers".into())
            .spawn(move || super::leftovers::resume(leftovers, &defaults))?;
    }
    let registrations = match &rpc {
        Some(rpc) => register_cluster_methods(rpc, &config.cluster_id, &worker).await?,
        None => Vec::new(),
    };
    if let (Some(reg), Some(io)) = (reporters.registry.clone(), reporters.io.clone()) {
        tokio::spawn(watch_workers(reg, io, worker.clone()));
    }
    tokio::spawn(sample_load(worker.clone(), machine));
    let bound = listen(&config, &worker).await?;
    tracing::info!(
        node_id = %node_id,
        compositor = %backend.describe(),
        encoder = %encoder,
        capacity_cores = cores,
        mode = if rpc.is_some() { "psrpc" } else { "standalone" },
        cluster_id = %config.cluster_id,
        "egress worker ready"
    );
    on_ready(&bound);

    wait_for_signal().await;
    // Claim nothing new (the affinity is -1 from now), then let the egresses finish.
    let w = worker.clone();
    let bound_s = config.tessera.drain_timeout.0;
    let drain = tokio::spawn(async move { w.drain(bound_s).await });
    tokio::select! {
        _ = drain => {}
        _ = wait_for_signal() => {
            tracing::warn!("second signal: stopping every egress now");
            worker.drain(std::time::Duration::ZERO).await;
        }
    }
    drop(registrations);
    if let Some(reg) = &reporters.registry
        && let Err(e) = reg.leave().await
    {
        tracing::warn!(error = %e, "worker registry not cleaned");
    }
    tracing::info!("egress worker stopped");
    Ok(())
}

/// Admission for `cores` of a `machine`-core node, priced by the cost profile when the
/// configuration names one.
fn admission(config: &ServiceConfig, cores: f64, machine: f64) -> Result<Admission, ServeError> {
    let profile = match &config.tessera.cost_profile {
        Some(path) => Some(CostProfile::read(path).map_err(ServeError::CostProfile)?),
        None => None,
    };
    Ok(Admission::new(cores, config.cpu_cost.clone(), profile).with_machine_cores(machine))
}

/// With Redis: livekit-server's IOInfo, the worker registry and psrpc (the server, and the
/// egress endpoints the worker registers on it). Without: nothing (standalone).
async fn connect(
    config: &ServiceConfig,
    node_id: &str,
) -> Result<(Reporters, Option<psrpc::Server>), ServeError> {
    let mut reporters = Reporters::default();
    let Some(r) = &config.redis else {
        return Ok((reporters, None));
    };
    tracing::info!(redis = %r, "connecting to Redis");
    let bus = Bus::connect(r).await?;
    let (create, update) = (config.io_create_timeout, config.io_update_timeout);
    reporters.io = Some(IoReporter::new(bus.clone(), create, update).await?);
    reporters.registry = Some(Registry::join(bus.clone(), node_id.to_owned()).await?);
    let server = psrpc::Server::new(bus, node_id.to_owned());
    reporters.endpoints = Some(Arc::new(handlers::PsrpcEndpoints(server.clone())));
    Ok((reporters, Some(server)))
}

/// Serves StartEgress and ListActiveEgress on the cluster's topic.
async fn register_cluster_methods(
    rpc: &psrpc::Server,
    cluster_id: &str,
    worker: &Worker,
) -> Result<Vec<psrpc::Registration>, ServeError> {
    let start = Arc::new(handlers::StartEgress(worker.clone()));
    let list = Arc::new(handlers::ListActive(worker.clone()));
    Ok(vec![
        rpc.register(rpc::START_EGRESS, cluster_id, start).await?,
        rpc.register(rpc::LIST_ACTIVE_EGRESS, cluster_id, list)
            .await?,
    ])
}

/// The node's load, for admission, /health and /metrics: busy cores over the last
/// second, smoothed; forever.
async fn sample_load(worker: Worker, machine: f64) {
    let mut cpu = super::metrics::CpuSampler::default();
    let mut smoothed: Option<f64> = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        let busy = cpu.sample() * machine;
        let s = smoothed.map_or(busy, |s| 0.5 * s + 0.5 * busy);
        smoothed = Some(s);
        worker.set_node_busy(s);
    }
}

/// Opens the HTTP ports (/health, /metrics, the standalone Twirp API), each on its bind
/// address; returns where they listen.
async fn listen(config: &ServiceConfig, worker: &Worker) -> Result<Bound, ServeError> {
    let t = &config.tessera;
    let at = |own: &Option<String>, own_key: &str, port: u16| {
        let (text, key) = match own {
            Some(a) => (a.as_str(), own_key),
            None => (t.bind_address.as_str(), "bind_address"),
        };
        text.parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, port))
            .map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("tessera.{key}: {e}: {text:?}"),
                )
            })
    };
    let health = at(
        &t.health_bind_address,
        "health_bind_address",
        config.health_port,
    )?;
    let metrics_key = "prometheus_bind_address";
    let metrics = at(
        &t.prometheus_bind_address,
        metrics_key,
        config.prometheus_port,
    )?;
    let twirp = at(&t.api_bind_address, "api_bind_address", t.api_port)?;
    let api = Api {
        worker: worker.clone(),
        api_key: config.api_key.clone(),
        api_secret: config.api_secret.clone(),
    };
    let mut bound = Bound::default();
    for (at, routes) in http::listeners(health, metrics, twirp) {
        let addr = http::serve(at, routes, api.clone()).await?;
        tracing::info!(%addr, health = routes.health, metrics = routes.metrics, twirp = routes.twirp, "listening");
        bound.addrs.push(addr);
    }
    Ok(bound)
}

/// This worker's heartbeat and its sweep for dead workers, until the process ends.
/// Every Redis call is bounded by a beat: one that hangs (Redis paused) counts as failed.
async fn watch_workers(reg: Registry, io: IoReporter, worker: Worker) {
    let mut beat = tokio::time::interval(registry::HEARTBEAT_EVERY);
    let mut sweep = tokio::time::interval(registry::SWEEP_EVERY);
    let mut liveness = Liveness::new();
    let bound = registry::HEARTBEAT_EVERY;
    loop {
        tokio::select! {
            _ = beat.tick() => {
                let running = worker.running_infos();
                let ok = match tokio::time::timeout(bound, reg.heartbeat(&running)).await {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "heartbeat not written");
                        false
                    }
                    Err(_) => {
                        tracing::warn!("heartbeat not written: Redis did not answer");
                        false
                    }
                };
                liveness.own_beat(std::time::Instant::now(), ok);
            }
            _ = sweep.tick() => {
                let seen = match tokio::time::timeout(bound, reg.observe()).await {
                    Ok(Ok(seen)) => seen,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "worker sweep failed");
                        continue;
                    }
                    Err(_) => continue,
                };
                let due = liveness.sweep(std::time::Instant::now(), &seen);
                if due.is_empty() {
                    continue;
                }
                match reg.reap(&due, &io).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(failed = n, "egresses of a lost worker reported FAILED"),
                    Err(e) => tracing::warn!(error = %e, "worker sweep failed"),
                }
            }
        }
    }
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: draining"),
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
    }
}
