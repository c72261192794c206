//! psrpc (livekit/psrpc) on the Redis bus: a server side (handlers registered per method
//! and topic, the claim handshake, responses) and a client side (calls with a claim,
//! timeouts). The wire format is in `wire.rs`.
//!
//! A call, as psrpc makes it: the client publishes an `internal.Request` on
//! `Service|Method|topic|REQ`; when the method needs a claim, every server that wants it
//! publishes an `internal.ClaimRequest` with its affinity on `Service|client|CLAIM`, the
//! client picks the highest (or the first above its threshold) and publishes an
//! `internal.ClaimResponse` on `Service|Method|topic|RCLAIM`; the chosen server runs the
//! handler and publishes the `internal.Response` on `Service|client|RES`. A request is
//! dropped unanswered once its `expiry` has passed.

pub mod wire;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::bus::{Bus, BusError};
use super::rpc::Method;
use crate::info::now_ns;
use wire::{ClaimRequest, ClaimResponse, Envelope, Request, Response};

/// An RPC's failure as psrpc carries it: a code and a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct RpcError {
    /// psrpc's code (`wire::code`).
    pub code: String,
    /// The message.
    pub message: String,
}

impl RpcError {
    /// An error with `code`.
    pub fn new(code: &str, message: impl Into<String>) -> RpcError {
        RpcError {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// What a handler returns: the response's protobuf bytes, or an error.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, RpcError>> + Send>>;

/// A served method.
pub trait Handler: Send + Sync + 'static {
    /// Affinity for a claimed method: below 0 makes no claim (full, draining). The caller
    /// takes the highest claim.
    fn affinity(&self, _request: &[u8]) -> f32 {
        1.0
    }
    /// Runs the request (protobuf bytes).
    fn handle(&self, request: Vec<u8>) -> HandlerFuture;
}

/// The server side: one id, handlers registered per method and topic.
#[derive(Clone)]
pub struct Server {
    bus: Bus,
    id: String,
}

/// A registered handler; unregistered (its subscriptions dropped) when dropped.
pub struct Registration {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<String>>>>;

impl Server {
    /// A server on `bus` with id `id` (`SRV_…`, or the worker's node id).
    pub fn new(bus: Bus, id: String) -> Server {
        Server { bus, id }
    }

    /// This server's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Serves `method` on `topic` with `handler`; subscribed when this returns.
    pub async fn register(
        &self,
        method: Method,
        topic: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<Registration, BusError> {
        let mut requests = self
            .bus
            .subscribe(
                &wire::rpc_channel(method.service, method.name, topic),
                method.queue,
            )
            .await?;
        let mut claims = if method.require_claim {
            Some(
                self.bus
                    .subscribe(
                        &wire::claim_response_channel(method.service, method.name, topic),
                        false,
                    )
                    .await?,
            )
        } else {
            None
        };
        let waiters: Waiters = Arc::default();
        let server = self.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = requests.recv() => {
                        let Some(bytes) = msg else { return };
                        match Envelope::decode(&bytes) {
                            Ok(Envelope::Request(r)) if now_ns() < r.expiry => {
                                let s = server.clone();
                                let (h, w) = (handler.clone(), waiters.clone());
                                tokio::spawn(async move { s.handle(method, r, h, w).await });
                            }
                            Ok(Envelope::Request(r)) => {
                                tracing::debug!(request_id = %r.request_id, method = method.name, "expired request dropped");
                            }
                            Ok(other) => tracing::debug!(kind = other.type_name(), "unexpected message on a request channel"),
                            Err(e) => tracing::warn!(error = %e, method = method.name, "unreadable psrpc request"),
                        }
                    }
                    msg = async { match claims.as_mut() { Some(c) => c.recv().await, None => std::future::pending().await } } => {
                        let Some(bytes) = msg else { return };
                        if let Ok(Envelope::ClaimResponse(c)) = Envelope::decode(&bytes)
                            && let Some(tx) = waiters.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&c.request_id)
                        {
                            let _ = tx.send(c.server_id);
                        }
                    }
                }
            }
        });
        Ok(Registration { task })
    }

    async fn handle(self, method: Method, r: Request, handler: Arc<dyn Handler>, waiters: Waiters) {
        let payload = r.payload().to_vec();
        if method.require_claim {
            let affinity = handler.affinity(&payload);
            if affinity < 0.0 {
                return;
            }
            let (tx, rx) = oneshot::channel();
            waiters
                .lock()
                .expect("claim waiters")
                .insert(r.request_id.clone(), tx);
            let claim = Envelope::ClaimRequest(ClaimRequest {
                request_id: r.request_id.clone(),
                server_id: self.id.clone(),
                affinity,
            });
            let channel = wire::claim_request_channel(method.service, &r.client_id);
            if let Err(e) = self.bus.publish(&channel, claim.encode()).await {
                tracing::warn!(error = %e, "psrpc claim not sent");
                waiters
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&r.request_id);
                return;
            }
            let left = Duration::from_nanos((r.expiry - now_ns()).max(0) as u64);
            let chosen = tokio::time::timeout(left, rx).await;
            waiters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&r.request_id);
            match chosen {
                Ok(Ok(id)) if id == self.id => {}
                _ => return,
            }
        }
        let result = handler.handle(payload).await;
        let mut response = Response {
            request_id: r.request_id.clone(),
            server_id: self.id.clone(),
            sent_at: now_ns(),
            ..Default::default()
        };
        match result {
            Ok(bytes) => response.raw_response = bytes,
            Err(e) => {
                response.error = e.message;
                response.code = e.code;
            }
        }
        let channel = wire::response_channel(method.service, &r.client_id);
        if let Err(e) = self
            .bus
            .publish(&channel, Envelope::Response(response).encode())
            .await
        {
            tracing::warn!(error = %e, method = method.name, "psrpc response not sent");
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No server claimed the request in time.
    #[error("no response from servers")]
    NoResponse,
    /// Claimed, but no answer in time.
    #[error("request timed out")]
    Timeout,
    /// The server answered with an error.
    #[error("{0}")]
    Remote(RpcError),
    /// Publishing failed.
    #[error("{0}")]
    Bus(#[from] BusError),
}

impl CallError {
    /// Worth retrying (psrpc's retryable set: timeouts, no server, unavailable).
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::NoResponse | CallError::Timeout | CallError::Bus(_) => true,
            CallError::Remote(e) => {
                e.code == wire::code::UNAVAILABLE || e.code == wire::code::DEADLINE_EXCEEDED
            }
        }
    }
}

#[derive(Default)]
struct Pending {
    claims: HashMap<String, mpsc::UnboundedSender<ClaimRequest>>,
    responses: HashMap<String, oneshot::Sender<Response>>,
}

/// The client side for one service: its response and claim channels are subscribed once.
#[derive(Clone)]
pub struct Client {
    bus: Bus,
    service: &'static str,
    id: String,
    pending: Arc<Mutex<Pending>>,
    _reader: Arc<ReaderTask>,
}

struct ReaderTask(tokio::task::JoinHandle<()>);

impl Drop for ReaderTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Client {
    /// A client of `service` (`IOInfo`) with a new id.
    pub async fn new(bus: Bus, service: &'static str) -> Result<Client, BusError> {
        let id = wire::new_id("CLI_");
        let mut responses = bus
            .subscribe(&wire::response_channel(service, &id), false)
            .await?;
        let mut claims = bus
            .subscribe(&wire::claim_request_channel(service, &id), false)
            .await?;
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let p = pending.clone();
        let reader = tokio::spawn(async move {
            loop {
                let bytes = tokio::select! {
                    m = responses.recv() => m,
                    m = claims.recv() => m,
                };
                let Some(bytes) = bytes else { return };
                let mut p = p.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match Envelope::decode(&bytes) {
                    Ok(Envelope::Response(r)) => {
                        if let Some(tx) = p.responses.remove(&r.request_id) {
                            let _ = tx.send(r);
                        }
                    }
                    Ok(Envelope::ClaimRequest(c)) => {
                        if let Some(tx) = p.claims.get(&c.request_id) {
                            let _ = tx.send(c);
                        }
                    }
                    _ => {}
                }
            }
        });
        Ok(Client {
            bus,
            service,
            id,
            pending,
            _reader: Arc::new(ReaderTask(reader)),
        })
    }

    /// Calls `method` on `topic` with `payload` (protobuf bytes), waiting at most `timeout`
    /// for the answer; the first server to claim it is chosen.
    pub async fn call(
        &self,
        method: Method,
        topic: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        assert_eq!(method.service, self.service, "a client serves one service");
        let request_id = wire::new_id("REQ_");
        let now = now_ns();
        let request = Request {
            request_id: request_id.clone(),
            client_id: self.id.clone(),
            sent_at: now,
            expiry: now + timeout.as_nanos() as i64,
            raw_request: payload,
            ..Default::default()
        };
        let (res_tx, res_rx) = oneshot::channel();
        let (claim_tx, mut claim_rx) = mpsc::unbounded_channel();
        {
            let mut p = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            p.responses.insert(request_id.clone(), res_tx);
            if method.require_claim {
                p.claims.insert(request_id.clone(), claim_tx);
            }
        }
        let result = async {
            self.bus
                .publish(
                    &wire::rpc_channel(method.service, method.name, topic),
                    Envelope::Request(request).encode(),
                )
                .await?;
            let deadline = tokio::time::Instant::now() + timeout;
            if method.require_claim {
                let claim = tokio::time::timeout_at(deadline, claim_rx.recv())
                    .await
                    .ok()
                    .flatten()
                    .ok_or(CallError::NoResponse)?;
                let choice = Envelope::ClaimResponse(ClaimResponse {
                    request_id: request_id.clone(),
                    server_id: claim.server_id,
                });
                self.bus
                    .publish(
                        &wire::claim_response_channel(method.service, method.name, topic),
                        choice.encode(),
                    )
                    .await?;
            }
            let response = tokio::time::timeout_at(deadline, res_rx)
                .await
                .map_err(|_| CallError::Timeout)?
                .map_err(|_| CallError::Timeout)?;
            if response.error.is_empty() {
                Ok(response.payload().to_vec())
            } else {
                Err(CallError::Remote(RpcError {
                    code: response.code,
                    message: response.error,
                }))
            }
        }
        .await;
        let mut p = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        p.responses.remove(&request_id);
        p.claims.remove(&request_id);
        result
    }
}
