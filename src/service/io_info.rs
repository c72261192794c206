//! Reporting to livekit-server through its `IOInfo` service (psrpc): `CreateEgress` when
//! an egress is accepted, `UpdateEgress` at each status change and stream update, in order,
//! retried with a doubling backoff (250 ms up to 1 min between tries, as LiveKit's egress)
//! while the server does not answer, so that `ListEgress`, webhooks and the SDKs see every
//! change even across a livekit-server restart.
//!
//! The queue is bounded by what it must say ([`UpdateQueue`]): an update waiting behind
//! another of the same egress and status is replaced by the newer one (every update
//! carries the whole info), an update that keeps failing gives way to a newer one of its
//! egress, and a final state (COMPLETE, FAILED, ABORTED, LIMIT_REACHED) is never given up
//! while the worker runs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use livekit_protocol::{EgressInfo, EgressStatus};
use prost::Message;
use tokio::sync::Notify;

use super::bus::{Bus, BusError};
use super::psrpc::{CallError, Client};
use super::rpc::{CREATE_EGRESS, UPDATE_EGRESS};
use crate::backoff::Backoff;

/// How long an update that is not final is retried before it is given up (logged).
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);
/// Waits between CreateEgress tries (bounded by the create timeout): 250 ms, doubling.
const CREATE_BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::MAX);
/// Waits between UpdateEgress tries: 250 ms doubling up to 1 min (LiveKit's egress).
const UPDATE_BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(60));

/// Whether an egress has ended with this status: nothing comes after it.
pub fn is_final(status: i32) -> bool {
    matches!(
        EgressStatus::try_from(status),
        Ok(EgressStatus::EgressComplete
            | EgressStatus::EgressFailed
            | EgressStatus::EgressAborted
            | EgressStatus::EgressLimitReached)
    )
}

/// The updates waiting to be sent, oldest first; the first may be in flight.
#[derive(Debug, Default)]
pub struct UpdateQueue {
    items: VecDeque<EgressInfo>,
}

impl UpdateQueue {
    /// Queues `info`: it replaces a waiting (not the first) update of the same egress and
    /// status, else goes last.
    pub fn push(&mut self, info: EgressInfo) {
        let same = self
            .items
            .iter()
            .skip(1)
            .rposition(|q| q.egress_id == info.egress_id)
            .map(|i| i + 1)
            .filter(|&i| self.items[i].status == info.status);
        match same {
            Some(i) => self.items[i] = info,
            None => self.items.push_back(info),
        }
    }

    /// The update to send next.
    pub fn front(&self) -> Option<&EgressInfo> {
        self.items.front()
    }

    /// Whether a newer update of the first one's egress waits behind it.
    pub fn front_superseded(&self) -> bool {
        let Some(first) = self.items.front() else {
            return false;
        };
        self.items
            .iter()
            .skip(1)
            .any(|q| q.egress_id == first.egress_id)
    }

    /// Removes the first update (sent, or given up).
    pub fn pop(&mut self) -> Option<EgressInfo> {
        self.items.pop_front()
    }

    /// Updates waiting, the one in flight included.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

struct Shared {
    queue: Mutex<UpdateQueue>,
    /// Something was queued.
    queued: Notify,
    /// The queue became empty.
    drained: Notify,
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, UpdateQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The IOInfo client and its ordered update queue.
#[derive(Clone)]
pub struct IoReporter {
    client: Client,
    shared: Arc<Shared>,
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
        let shared = Arc::new(Shared {
            queue: Mutex::new(UpdateQueue::default()),
            queued: Notify::new(),
            drained: Notify::new(),
        });
        let (c, s) = (client.clone(), shared.clone());
        tokio::spawn(async move {
            loop {
                let notified = s.queued.notified();
                let next = s.queue().front().cloned();
                let Some(info) = next else {
                    notified.await;
                    continue;
                };
                send_update(&c, &info, update_timeout, &s).await;
                let mut q = s.queue();
                q.pop();
                if q.is_empty() {
                    s.drained.notify_waiters();
                }
            }
        });
        Ok(IoReporter {
            client,
            shared,
            create_timeout,
        })
    }

    /// `IOInfo.CreateEgress`, retried within the create timeout.
    pub async fn create(&self, info: &EgressInfo) -> Result<(), CallError> {
        let deadline = tokio::time::Instant::now() + self.create_timeout;
        let mut delays = CREATE_BACKOFF.delays();
        let mut delay = delays.next().unwrap_or_default();
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
                    delay = delays.next().unwrap_or(delay);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues `IOInfo.UpdateEgress` with `info`.
    pub fn update(&self, info: EgressInfo) {
        self.shared.queue().push(info);
        self.shared.queued.notify_one();
    }

    /// Updates not yet sent.
    pub fn queued(&self) -> usize {
        self.shared.queue().len()
    }

    /// Waits until every queued update is sent (or given up), at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let wait = async {
            loop {
                let notified = self.shared.drained.notified();
                if self.queued() == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
    }
}

/// Sends one update until it is taken, it is superseded by a newer update of its egress
/// (after a failure), or (not final) [`GIVE_UP_AFTER`] has passed.
async fn send_update(client: &Client, info: &EgressInfo, timeout: Duration, shared: &Shared) {
    let started = tokio::time::Instant::now();
    let mut delays = UPDATE_BACKOFF.delays();
    let mut delay = delays.next().unwrap_or_default();
    let status = crate::info::status_name(info.status);
    let last = is_final(info.status);
    loop {
        match client
            .call(UPDATE_EGRESS, "", info.encode_to_vec(), timeout)
            .await
        {
            Ok(_) => {
                tracing::info!(egress_id = %info.egress_id, status, "reported to livekit-server");
                return;
            }
            Err(e) if e.is_retryable() && !last && shared.queue().front_superseded() => {
                tracing::warn!(egress_id = %info.egress_id, status, error = %e, "UpdateEgress failed; a newer update replaces it");
                return;
            }
            Err(e) if e.is_retryable() && (last || started.elapsed() < GIVE_UP_AFTER) => {
                tracing::warn!(egress_id = %info.egress_id, status, error = %e, retry_in_ms = delay.as_millis() as u64, "UpdateEgress failed; retrying");
                tokio::time::sleep(delay).await;
                delay = delays.next().unwrap_or(delay);
            }
            Err(e) => {
                tracing::error!(egress_id = %info.egress_id, status, error = %e, "UpdateEgress failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, status: EgressStatus, details: &str) -> EgressInfo {
        EgressInfo {
            egress_id: id.into(),
            status: status as i32,
            details: details.into(),
            ..Default::default()
        }
    }

    fn shown(q: &UpdateQueue) -> Vec<String> {
        q.items
            .iter()
            .map(|i| {
                format!(
                    "{} {} {}",
                    i.egress_id,
                    crate::info::status_name(i.status),
                    i.details
                )
            })
            .collect()
    }

    #[test]
    fn waiting_updates_of_one_status_collapse_to_the_newest_and_status_changes_stay() {
        use EgressStatus::*;
        let mut q = UpdateQueue::default();
        q.push(info("a", EgressStarting, "0"));
        // While the first is in flight, a thousand stream updates of two egresses.
        for n in 1..=1000 {
            q.push(info("a", EgressActive, &n.to_string()));
            q.push(info("b", EgressActive, &n.to_string()));
        }
        q.push(info("a", EgressEnding, ""));
        q.push(info("a", EgressComplete, "done"));
        q.push(info("b", EgressActive, "1001"));
        assert_eq!(
            shown(&q),
            [
                "a EGRESS_STARTING 0",
                "a EGRESS_ACTIVE 1000",
                "b EGRESS_ACTIVE 1001",
                "a EGRESS_ENDING ",
                "a EGRESS_COMPLETE done",
            ]
        );
        // The one in flight is never replaced.
        q.push(info("a", EgressStarting, "again"));
        assert_eq!(q.front().unwrap().details, "0");
        assert!(q.front_superseded());
    }

    #[test]
    fn only_ended_statuses_are_final() {
        use EgressStatus::*;
        for s in [
            EgressComplete,
            EgressFailed,
            EgressAborted,
            EgressLimitReached,
        ] {
            assert!(is_final(s as i32), "{s:?}");
        }
        for s in [EgressStarting, EgressActive, EgressEnding] {
            assert!(!is_final(s as i32), "{s:?}");
        }
    }
}
