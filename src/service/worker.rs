//! The worker: many egresses in one process. Each runs on a thread of its own with the
//! process's shared compositor (one GPU device) and encoder probe; a failure in one — an
//! error, or a panic in its code — ends that egress FAILED with the cause, never the
//! process. Admission (`admission.rs`) bounds what runs; status changes go to the
//! reporters (livekit-server's IOInfo, the worker registry, the worker's own list).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use livekit_protocol::{EgressInfo, EgressStatus, UpdateStreamRequest};

use super::admission::Admission;
use super::bus::BusError;
use super::intake;
use super::io_info::IoReporter;
use super::lenient::{self, Adjustment};
use super::metrics::{Metrics, Snapshot};
use super::psrpc::{CallError, Registration};
use super::registry::Registry;
use super::rpc::start_egress_request::Request;
use super::worker_error::WorkerError;
use crate::compositor::Backend;
use crate::config::ServiceConfig;
use crate::egress::stats::EgressStats;
use crate::egress::{self, Control, EgressError, RunOptions, StatusSink, Stop, StopReason};
use crate::info::{now_ns, status_name};
use crate::launch::{Compositing, LaunchOptions, Room, RoomServer, run_job};
use crate::layout::LayoutLibrary;
use crate::request::page_policy::PagePolicy;

/// Ended egresses kept for `ListEgress` (standalone mode) and `/health`.
const KEEP_ENDED: usize = 1000;

/// A running egress's handles.
struct Running {
    kind: &'static str,
    stop: Stop,
    control: std::sync::mpsc::Sender<Control>,
    stats: Arc<EgressStats>,
    /// Its StopEgress / UpdateStream handlers on the bus (dropped when it ends).
    handlers: Vec<Registration>,
}

#[derive(Default)]
struct State {
    running: HashMap<String, Running>,
    infos: HashMap<String, EgressInfo>,
    ended: VecDeque<String>,
}

impl State {
    /// Takes `info`'s egress id for a new egress, or `already_exists` if it is known
    /// (running, or one of the ended ones kept).
    fn begin(&mut self, info: &EgressInfo, running: Running) -> Result<(), WorkerError> {
        let id = &info.egress_id;
        if self.infos.contains_key(id) {
            return Err(WorkerError::Exists(id.clone()));
        }
        self.infos.insert(id.clone(), info.clone());
        self.running.insert(id.clone(), running);
        Ok(())
    }
}

/// What reports an egress's status.
#[derive(Clone, Default)]
pub struct Reporters {
    /// livekit-server's IOInfo (Redis mode).
    pub io: Option<IoReporter>,
    /// The worker registry (Redis mode).
    pub registry: Option<Registry>,
    /// Where a running egress's own requests are served (Redis mode: psrpc).
    pub endpoints: Option<Arc<dyn EgressEndpoints>>,
}

/// What a registration of an egress's endpoints resolves to: the registrations, which
/// unregister when dropped.
pub type EndpointsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Registration>, BusError>> + Send + 'a>>;

/// Serves a running egress's own requests (LiveKit's `EgressHandler.StopEgress` and
/// `UpdateStream` on its id) from when it starts until its registrations are dropped.
/// The service registers psrpc's; the worker only holds what it is given.
pub trait EgressEndpoints: Send + Sync {
    /// Starts serving egress `id` of `worker`.
    fn register<'a>(&'a self, worker: &'a Worker, id: &'a str) -> EndpointsFuture<'a>;
}

struct Inner {
    node_id: String,
    config: Arc<ServiceConfig>,
    layouts: LayoutLibrary,
    backend: Backend,
    encoder: String,
    state: Mutex<State>,
    admission: Mutex<Admission>,
    draining: AtomicBool,
    reporters: Reporters,
    metrics: Metrics,
    runtime: tokio::runtime::Handle,
    ended: tokio::sync::Notify,
}

/// The worker (cheap to clone).
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

/// A request to start an egress.
pub struct StartRequest {
    /// The id (livekit-server's, or a new one in standalone mode).
    pub egress_id: String,
    /// The request.
    pub request: Request,
    /// The room's sid, when known.
    pub room_id: String,
    /// The server's WebSocket URL from the request (used when the config has none).
    pub ws_url: String,
}

impl Worker {
    /// A worker with `config`, compositing on `backend` with `encoder`. Call inside tokio.
    pub fn new(
        node_id: String,
        config: Arc<ServiceConfig>,
        layouts: LayoutLibrary,
        backend: Backend,
        encoder: String,
        admission: Admission,
        reporters: Reporters,
    ) -> Worker {
        Worker {
            inner: Arc::new(Inner {
                node_id,
                config,
                layouts,
                backend,
                encoder,
                state: Mutex::default(),
                admission: Mutex::new(admission),
                draining: AtomicBool::new(false),
                reporters,
                metrics: Metrics::default(),
                runtime: tokio::runtime::Handle::current(),
                ended: tokio::sync::Notify::new(),
            }),
        }
    }

    /// This worker's node id.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The StartEgress claim's affinity for `payload` (`rpc.StartEgressRequest` bytes):
    /// below 0 when this worker will not take it.
    pub fn affinity(&self, request: &Request) -> f32 {
        let draining = self.is_draining();
        let Ok((job, _)) = self.plan(request) else {
            // Claim it anyway: the caller gets the planning error from one worker.
            return if draining { -1.0 } else { 0.1 };
        };
        let a = self.inner.admission();
        let cost = a.cost(&intake::shape(&job));
        let affinity = a.affinity(cost, draining);
        let refusal = a.check(cost).err();
        let committed = a.committed();
        drop(a);
        if affinity >= 0.0 {
            return affinity;
        }
        let kind = intake::kind_label(&job);
        // Declining is silent to the client (it sees "no response from servers" when every
        // worker declines): say here why, with the figures.
        match refusal.filter(|_| !draining) {
            Some(r) => {
                self.inner.metrics.refused(r.reason());
                tracing::info!(
                    kind,
                    reason = r.reason(),
                    cost_cores = cost,
                    committed_cores = committed,
                    "declined a StartEgress: {r}"
                );
            }
            None => {
                self.inner.metrics.refused("draining");
                tracing::info!(
                    kind,
                    reason = "draining",
                    "declined a StartEgress: the worker is draining"
                );
            }
        }
        affinity
    }

    /// Plans `request`, read as LiveKit reads it first when `tessera.lenient` is set (the
    /// changes are returned for the log).
    fn plan(
        &self,
        request: &Request,
    ) -> Result<(crate::request::Job, Vec<Adjustment>), crate::request::RequestError> {
        let layouts = &self.inner.layouts;
        if !self.inner.config.tessera.lenient {
            return Ok((intake::plan(request, layouts)?, Vec::new()));
        }
        let mut relaxed = request.clone();
        let changes = lenient::relax(&mut relaxed, layouts);
        Ok((intake::plan(&relaxed, layouts)?, changes))
    }

    /// Starts an egress; returns its STARTING info, or why not.
    pub async fn start(&self, req: StartRequest) -> Result<EgressInfo, WorkerError> {
        let inner = &self.inner;
        if self.is_draining() {
            inner.metrics.refused("draining");
            return Err(WorkerError::Draining);
        }
        let id = req.egress_id.clone();
        check_egress_id(&id).map_err(|why| WorkerError::Invalid(format!("egress_id: {why}")))?;
        let (job, relaxed) = self.plan(&req.request).map_err(|e| {
            inner.metrics.refused("invalid");
            WorkerError::Invalid(e.to_string())
        })?;
        for c in &relaxed {
            tracing::warn!(egress_id = %id, field = %c.field, given = %c.given, used = %c.used, "request read leniently (tessera.lenient)");
        }
        let kind = intake::kind_label(&job);
        let info = intake::starting_info(&id, &job, &req.room_id);
        let (control_tx, control_rx) = std::sync::mpsc::channel();
        let stop = Stop::new();
        let stats = Arc::new(EgressStats::default());
        // The id is taken in the same locked step that checks it: two starts of one id
        // cannot both pass.
        inner.state().begin(
            &info,
            Running {
                kind,
                stop: stop.clone(),
                control: control_tx,
                stats: stats.clone(),
                handlers: Vec::new(),
            },
        )?;
        let undo = |why: WorkerError| {
            let mut state = inner.state();
            state.running.remove(&id);
            state.infos.remove(&id);
            inner.admission().release(&id);
            why
        };
        let cost = {
            let mut a = inner.admission();
            let cost = a.cost(&intake::shape(&job));
            let reserved = a.reserve(&id, cost);
            drop(a);
            if let Err(e) = reserved {
                inner.metrics.refused(e.reason());
                tracing::info!(egress_id = %id, kind, reason = e.reason(), "declined a StartEgress: {e}");
                return Err(undo(WorkerError::NoCapacity(e.to_string())));
            }
            cost
        };
        if let Some(io) = &inner.reporters.io
            && let Err(e) = io.create(&info).await
        {
            tracing::error!(egress_id = %id, error = %e, "CreateEgress failed; not starting");
            return Err(undo(create_failed(&e, inner.config.io_create_timeout)));
        }
        if let Some(endpoints) = &inner.reporters.endpoints {
            match endpoints.register(self, &id).await {
                Ok(handlers) => {
                    if let Some(r) = inner.state().running.get_mut(&id) {
                        r.handlers = handlers;
                    }
                }
                Err(e) => return Err(undo(WorkerError::Internal(format!("psrpc: {e}")))),
            }
        }
        if let Some(reg) = &inner.reporters.registry
            && let Err(e) = reg.record(&info).await
        {
            tracing::warn!(egress_id = %id, error = %e, "worker registry not updated");
        }
        // Without a server only a web egress of a URL runs (others end FAILED, naming ws_url).
        let room = inner
            .room_server(&req.ws_url)
            .map_or(Room::None, Room::LiveKit);
        let opts = RunOptions {
            out_dir: inner.config.tessera.out_dir.clone(),
            duration: None,
            stop,
            realtime: true,
            control: Some(control_rx),
            stats: Some(stats),
            storage: inner.config.storage.clone(),
            limit: intake::limit(&inner.config, &job),
            status: self.status_sink(),
        };
        let launch = LaunchOptions {
            await_timeout: inner.config.tessera.await_timeout.0,
            compositing: Compositing::Shared(inner.backend.clone()),
            fast: false,
            page_policy: PagePolicy {
                refuse_private: inner.config.tessera.refuse_private_pages,
            },
        };
        inner.metrics.started(kind);
        tracing::info!(egress_id = %id, kind, cost_cores = cost, limit_s = opts.limit.map(|d| d.as_secs_f64()), "egress accepted");
        let worker = self.clone();
        let base = info.clone();
        let thread_id = id.clone();
        std::thread::Builder::new()
            .name(format!("egress-{id}"))
            .spawn(move || worker.run_egress(&thread_id, base, job, room, opts, launch))
            .map_err(|e| undo(WorkerError::Internal(format!("cannot start a thread: {e}"))))?;
        Ok(info)
    }

    /// The egress's thread: runs it, reports every change, never lets a panic out.
    fn run_egress(
        self,
        id: &str,
        base: EgressInfo,
        job: crate::request::Job,
        room: Room,
        opts: RunOptions,
        launch: LaunchOptions,
    ) {
        let span = tracing::info_span!("egress", egress_id = %id);
        let _enter = span.enter();
        let info = isolated(base, || run_job(id, job, room, opts, &launch));
        self.finish(id, info);
    }

    /// Where an egress reports its changes: everywhere [`Worker::report`] does. Its end is
    /// reported once, by [`Worker::finish`], with the final info.
    fn status_sink(&self) -> StatusSink {
        let reporter = self.clone();
        StatusSink::new(move |info| {
            if info.status < EgressStatus::EgressComplete as i32 {
                reporter.report(info.clone());
            }
        })
    }

    /// Reports an egress's info everywhere and keeps it.
    fn report(&self, info: EgressInfo) {
        let inner = &self.inner;
        inner
            .state()
            .infos
            .insert(info.egress_id.clone(), info.clone());
        if let Some(io) = &inner.reporters.io {
            io.update(info.clone());
        }
        if let Some(reg) = inner.reporters.registry.clone() {
            inner.runtime.spawn(async move {
                if let Err(e) = reg.record(&info).await {
                    tracing::warn!(egress_id = %info.egress_id, error = %e, "worker registry not updated");
                }
            });
        }
    }

    fn finish(&self, id: &str, info: EgressInfo) {
        let status = status_name(info.status);
        tracing::info!(egress_id = %id, status, error = %info.error, "egress ended");
        self.report(info);
        let inner = &self.inner;
        let running = {
            let mut state = inner.state();
            let r = state.running.remove(id);
            state.ended.push_back(id.to_owned());
            while state.ended.len() > KEEP_ENDED {
                if let Some(old) = state.ended.pop_front() {
                    state.infos.remove(&old);
                }
            }
            r
        };
        inner.admission().release(id);
        if let Some(r) = running {
            inner
                .metrics
                .ended(r.kind, status, r.stats.ticks(), r.stats.late());
            // Unsubscribing needs the runtime: drop the handlers there.
            let handlers = r.handlers;
            inner.runtime.spawn(async move { drop(handlers) });
        }
        inner.ended.notify_waiters();
    }

    /// StopEgress: the egress finishes (files, uploads) and ends COMPLETE; the answer is
    /// its info, ENDING.
    pub fn stop(&self, id: &str) -> Result<EgressInfo, WorkerError> {
        let state = self.inner.state();
        let Some(r) = state.running.get(id) else {
            return Err(not_running(&state, id, "stopped"));
        };
        r.stop.request(StopReason::Api);
        let mut info = state.infos.get(id).cloned().unwrap_or_default();
        info.status = EgressStatus::EgressEnding as i32;
        info.updated_at = now_ns();
        tracing::info!(egress_id = %id, "stop requested");
        Ok(info)
    }

    /// UpdateStream: adds and removes stream URLs of a running egress.
    pub async fn update_stream(&self, req: UpdateStreamRequest) -> Result<EgressInfo, WorkerError> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.control(
            &req.egress_id.clone(),
            Control::UpdateStream {
                request: req,
                reply,
            },
        )?;
        wait(answer).await
    }

    /// UpdateLayout (standalone API): switches a running composite's layout.
    pub async fn update_layout(&self, id: &str, layout: &str) -> Result<EgressInfo, WorkerError> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.control(
            id,
            Control::UpdateLayout {
                layout: layout.to_owned(),
                reply,
            },
        )?;
        wait(answer).await?;
        self.info(id)
            .ok_or_else(|| WorkerError::NotFound(id.to_owned()))
    }

    fn control(&self, id: &str, c: Control) -> Result<(), WorkerError> {
        let state = self.inner.state();
        let r = state
            .running
            .get(id)
            .ok_or_else(|| not_running(&state, id, "updated"))?;
        r.control
            .send(c)
            .map_err(|_| WorkerError::NotRunning("egress is ending".into()))
    }

    /// An egress's latest info.
    pub fn info(&self, id: &str) -> Option<EgressInfo> {
        self.inner.state().infos.get(id).cloned()
    }

    /// Every egress known (running, and the last ended ones), newest first.
    pub fn list(&self, room_name: &str, egress_id: &str, active: bool) -> Vec<EgressInfo> {
        let state = self.inner.state();
        let mut items: Vec<EgressInfo> = state
            .infos
            .values()
            .filter(|i| egress_id.is_empty() || i.egress_id == egress_id)
            .filter(|i| room_name.is_empty() || i.room_name == room_name)
            .filter(|i| !active || i.status < EgressStatus::EgressComplete as i32)
            .cloned()
            .collect();
        items.sort_by_key(|i| std::cmp::Reverse(i.updated_at));
        items
    }

    /// The latest info of each egress running (what the registry keeps for them).
    pub fn running_infos(&self) -> Vec<EgressInfo> {
        let state = self.inner.state();
        state
            .running
            .keys()
            .filter_map(|id| state.infos.get(id).cloned())
            .collect()
    }

    /// Ids of the egresses running.
    pub fn active_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.inner.state().running.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The node's measured busy cores (for admission's load guard).
    pub fn set_node_busy(&self, cores: f64) {
        self.inner.admission().set_busy(cores);
    }

    /// Whether the worker drains.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// Drains: claims nothing new, lets running egresses go on up to `bound`, then stops
    /// them (each finishes its files and uploads) and waits for them to end.
    pub async fn drain(&self, bound: Duration) {
        self.inner.draining.store(true, Ordering::Relaxed);
        let running = self.active_ids().len();
        tracing::info!(
            running,
            bound_s = bound.as_secs_f64(),
            "draining: claiming nothing new"
        );
        if tokio::time::timeout(bound, self.wait_idle()).await.is_err() {
            let state = self.inner.state();
            tracing::info!(
                running = state.running.len(),
                "drain bound reached: stopping the egresses"
            );
            for r in state.running.values() {
                r.stop.request(StopReason::Killed);
            }
        }
        self.wait_idle().await;
        if let Some(io) = &self.inner.reporters.io {
            io.flush(Duration::from_secs(30)).await;
        }
        tracing::info!("drained");
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.inner.ended.notified();
            if self.inner.state().running.is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// A view for metrics and health.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.inner.state();
        let mut s = Snapshot {
            draining: self.is_draining(),
            compositor: self.inner.backend.describe(),
            encoder: self.inner.encoder.clone(),
            io_queued: self
                .inner
                .reporters
                .io
                .as_ref()
                .map_or(0, IoReporter::queued),
            ..Default::default()
        };
        for r in state.running.values() {
            *s.active.entry(r.kind.to_owned()).or_default() += 1;
            s.frames += r.stats.ticks();
            s.late += r.stats.late();
        }
        drop(state);
        let a = self.inner.admission();
        s.committed = a.committed();
        s.capacity = a.capacity();
        s.cpu_load = a.load_measured();
        s
    }
}

/// Locks `m`, and goes on if a thread panicked while holding it: the maps it guards are
/// changed one insert or remove at a time, so what a panic leaves is still usable, and one
/// bad egress must not turn every later API call and `/health` into a panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    /// The worker's egresses. Lock order: `state`, then `admission`.
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The admission state (after `state` when both are held).
    fn admission(&self) -> MutexGuard<'_, Admission> {
        lock(&self.admission)
    }

    /// The LiveKit server egresses record: the config's, else the request's URL.
    fn room_server(&self, request_url: &str) -> Option<RoomServer> {
        let url = if self.config.ws_url.is_empty() {
            request_url
        } else {
            &self.config.ws_url
        };
        (!url.is_empty()).then(|| RoomServer {
            url: url.to_owned(),
            key: self.config.api_key.clone(),
            secret: self.config.api_secret.clone(),
        })
    }
}

/// The error for a request to an egress that is not running: ended (with its status) or
/// unknown.
fn not_running(state: &State, id: &str, verb: &str) -> WorkerError {
    match state.infos.get(id) {
        Some(i) => WorkerError::NotRunning(format!(
            "egress with status {} cannot be {verb}",
            status_name(i.status)
        )),
        None => WorkerError::NotFound(id.to_owned()),
    }
}

/// Longest egress id taken (LiveKit's are `EG_` and 12 characters).
const MAX_EGRESS_ID: usize = 64;

/// An egress id names files (`{egress_id}.json`) and directories: only letters, digits,
/// `_` and `-`, at most [`MAX_EGRESS_ID`] of them, whoever sent it.
fn check_egress_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("is required".into());
    }
    if id.len() > MAX_EGRESS_ID {
        return Err(format!("is longer than {MAX_EGRESS_ID} characters"));
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        Some(c) => Err(format!(
            "{c:?} is not allowed (letters, digits, _ and - only)"
        )),
        None => Ok(()),
    }
}

/// The answer to a start whose `IOInfo.CreateEgress` failed. Nothing runs then: without
/// livekit-server's record of the egress, its updates, webhooks and `ListEgress` would all
/// be missing, and a room egress could not join anyway. When nothing answered at all, say
/// plainly that livekit-server is unreachable (psrpc's "no response from servers" reads
/// like a worker problem).
fn create_failed(e: &CallError, waited: Duration) -> WorkerError {
    match e {
        CallError::NoResponse | CallError::Timeout | CallError::Bus(_) => {
            WorkerError::Unavailable(format!(
                "livekit-server unreachable: IOInfo.CreateEgress got no answer within {:.0} s ({e}); \
                 is livekit-server running and using this worker's Redis?",
                waited.as_secs_f64()
            ))
        }
        CallError::Remote(r) => WorkerError::Refused {
            code: r.code.clone(),
            message: r.message.clone(),
        },
    }
}

/// Runs one egress to its end: an error starting it, or a panic in its code, ends it
/// FAILED with the cause (`base` is its STARTING info); the process goes on.
fn isolated(
    base: EgressInfo,
    f: impl FnOnce() -> Result<EgressInfo, crate::launch::LaunchError>,
) -> EgressInfo {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => egress::failed(base, EgressError::Source(e.to_string())),
        Err(panic) => {
            let what = crate::panics::message(panic.as_ref());
            tracing::error!(panic = %what, "egress panicked; the worker goes on");
            egress::failed(base, EgressError::Internal(what))
        }
    }
}

/// Waits for an egress thread's answer without blocking the runtime.
async fn wait<T: Send + 'static>(
    answer: std::sync::mpsc::Receiver<Result<T, String>>,
) -> Result<T, WorkerError> {
    tokio::task::spawn_blocking(move || answer.recv_timeout(Duration::from_secs(15)))
        .await
        .map_err(|e| WorkerError::Internal(e.to_string()))?
        .map_err(|_| WorkerError::Timeout)?
        .map_err(WorkerError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::LaunchError;
    use crate::service::psrpc::{RpcError, wire::code};

    fn base() -> EgressInfo {
        EgressInfo {
            egress_id: "EG_t".into(),
            status: EgressStatus::EgressStarting as i32,
            ..Default::default()
        }
    }

    #[test]
    fn a_panicking_egress_ends_failed_and_the_caller_goes_on() {
        let info = isolated(base(), || {
            let v: Vec<u8> = Vec::new();
            let _ = v[3]; // index out of bounds
            unreachable!()
        });
        assert_eq!(info.status, EgressStatus::EgressFailed as i32);
        assert!(
            info.error
                .starts_with("internal error: index out of bounds"),
            "{}",
            info.error
        );
        let info = isolated(base(), || panic!("boom {}", 7));
        assert!(
            info.error.ends_with("internal error: boom 7"),
            "{}",
            info.error
        );
    }

    fn running() -> Running {
        Running {
            kind: "room_composite",
            stop: Stop::new(),
            control: std::sync::mpsc::channel().0,
            stats: Arc::default(),
            handlers: Vec::new(),
        }
    }

    #[test]
    fn an_id_is_taken_once_and_a_poisoned_lock_does_not_stop_the_worker() {
        let state = Arc::new(Mutex::new(State::default()));
        lock(&state).begin(&base(), running()).unwrap();
        let again = lock(&state).begin(&base(), running()).unwrap_err();
        assert_eq!(again, WorkerError::Exists(base().egress_id));
        // A panic while the lock is held (a bug somewhere) poisons it; the worker goes on.
        let s = state.clone();
        let _ = std::thread::spawn(move || {
            let _held = s.lock().unwrap();
            panic!("a bug while holding the worker's state");
        })
        .join();
        assert!(state.is_poisoned());
        assert_eq!(lock(&state).running.len(), 1);
    }

    #[test]
    fn egress_ids_cannot_name_other_paths() {
        assert_eq!(check_egress_id("EG_aBc23456789x"), Ok(()));
        for bad in ["", "../../etc/x", "EG_a/b", "EG_.", "EG\n", &"E".repeat(65)] {
            assert!(check_egress_id(bad).is_err(), "{bad:?} taken");
        }
    }

    #[test]
    fn an_unanswered_create_says_livekit_server_is_unreachable() {
        for e in [CallError::NoResponse, CallError::Timeout] {
            let r = create_failed(&e, Duration::from_secs(15));
            assert!(matches!(r, WorkerError::Unavailable(_)), "{r:?}");
            assert!(
                r.to_string().starts_with(
                    "livekit-server unreachable: IOInfo.CreateEgress got no answer within 15 s"
                ),
                "{r}"
            );
        }
        let remote = RpcError::new(code::INVALID_ARGUMENT, "bad");
        let r = create_failed(&CallError::Remote(remote), Duration::from_secs(15));
        assert_eq!(r.to_string(), "CreateEgress: bad");
        assert!(matches!(r, WorkerError::Refused { code, .. } if code == code::INVALID_ARGUMENT));
    }

    #[test]
    fn an_egress_that_cannot_start_ends_failed_with_the_cause() {
        let info = isolated(base(), || {
            Err(LaunchError::Join {
                url: "ws://x".into(),
                reason: "refused".into(),
            })
        });
        assert_eq!(info.status, EgressStatus::EgressFailed as i32);
        assert!(
            info.error.contains("joining ws://x: refused"),
            "{}",
            info.error
        );
        let done = EgressInfo {
            status: EgressStatus::EgressComplete as i32,
            ..base()
        };
        assert_eq!(isolated(base(), || Ok(done.clone())), done);
    }
}
