//! Reporting to livekit-server through its `IOInfo` service (psrpc): `CreateEgress` when
//! an egress is accepted, `UpdateEgress` at each status change and stream update, in order,
//! retried with a doubling backoff (250 ms up to 1 min between tries, as LiveKit's egress)
//! while the server does not answer, so that `ListEgress`, webhooks and the SDKs see every
//! change even across a livekit-server restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use livekit_protocol::EgressInfo;
use prost::Message;
use tokio::sync::{Notify, mpsc};

use super::bus::{Bus, BusError};
use super::psrpc::{CallError, Client};
use super::rpc::{CREATE_EGRESS, UPDATE_EGRESS};

/// How long an update is retried before it is given up (logged).
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// The IOInfo client and its ordered update queue.
#[derive(Clone)]
pub struct IoReporter {
    client: Client,
    tx: mpsc::UnboundedSender<EgressInfo>,
    pending: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    create_timeout: Duration,
}

impl IoReporter {
    /// Connects the client; updates are sent by a task of their own.
    pub async fn new(
        bus: Bus,
        create_timeout: Duration,
        update_timeout: Duration,
    ) -> Result<IoReporter, BusError> {
        let client = Client::new(bus, "IOInfo").await?;
        let (tx, mut rx) = mpsc::unbounded_channel::<EgressInfo>();
        let pending = Arc::new(AtomicUsize::new(0));
        let drained = Arc::new(Notify::new());
        let (c, p, d) = (client.clone(), pending.clone(), drained.clone());
        tokio::spawn(async move {
            while let Some(info) = rx.recv().await {
                send_update(&c, &info, update_timeout).await;
                if p.fetch_sub(1, Ordering::AcqRel) == 1 {
                    d.notify_waiters();
                }
            }
        });
        Ok(IoReporter {
            client,
            tx,
            pending,
            drained,
            create_timeout,
        })
    }

    /// `IOInfo.CreateEgress`, retried within the create timeout.
    pub async fn create(&self, info: &EgressInfo) -> Result<(), CallError> {
        let deadline = tokio::time::Instant::now() + self.create_timeout;
        let mut delay = Duration::from_millis(250);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let r = self
                .client
                .call(
                    CREATE_EGRESS,
                    "",
                    info.encode_to_vec(),
                    left.max(Duration::from_secs(1)),
                )
                .await;
            match r {
                Ok(_) => return Ok(()),
                Err(e) if e.is_retryable() && tokio::time::Instant::now() + delay < deadline => {
                    tracing::warn!(egress_id = %info.egress_id, error = %e, "CreateEgress failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues `IOInfo.UpdateEgress` with `info`.
    pub fn update(&self, info: EgressInfo) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(info).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Updates not yet sent.
    pub fn queued(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Waits until every queued update is sent (or given up), at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let wait = async {
            loop {
                let notified = self.drained.notified();
                if self.queued() == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
    }
}

async fn send_update(client: &Client, info: &EgressInfo, timeout: Duration) {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    let status = crate::info::status_name(info.status);
    loop {
        match client
            .call(UPDATE_EGRESS, "", info.encode_to_vec(), timeout)
            .await
        {
            Ok(_) => {
                tracing::info!(egress_id = %info.egress_id, status, "reported to livekit-server");
                return;
            }
            Err(e) if e.is_retryable() && started.elapsed() < GIVE_UP_AFTER => {
                tracing::warn!(egress_id = %info.egress_id, status, error = %e, retry_in_ms = delay.as_millis() as u64, "UpdateEgress failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(60));
            }
            Err(e) => {
                tracing::error!(egress_id = %info.egress_id, status, error = %e, "UpdateEgress failed");
                return;
            }
        }
    }
}
