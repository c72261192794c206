//! Workers watching each other on Redis, so that an egress whose worker died (SIGKILL,
//! power loss) still ends FAILED in livekit-server: no coordinator, only keys.
//!
//! Each worker keeps `tessera:node:{id}` alive (expires 6 s after its last refresh, every
//! 2 s), lists itself in the set `tessera:nodes`, and keeps each running egress's latest
//! `EgressInfo` (protobuf) in the hash `tessera:node:{id}:egresses`. Every heartbeat
//! registers the node again (the set, and the hash when it is gone), so a Redis restart
//! without persistence, or another worker's mistaken reap, is repaired within a beat.
//! Every worker sweeps every 3 s: a listed node whose key is missing may be dead
//! (`liveness.rs` decides when it is); the first sweeper to take `tessera:reap:{id}`
//! (`SET NX`) reports each of its egresses FAILED through IOInfo and removes the node's
//! keys. A worker restarted after a crash is a new node and sweeps its predecessor like
//! any other.

use std::time::Duration;

use livekit_protocol::{EgressInfo, EgressStatus};
use prost::Message;

use super::bus::{Bus, BusError};
use super::io_info::IoReporter;
use crate::info::now_ns;

/// A node's key lives this long after its last refresh.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(6);
/// How often a node refreshes its key.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// How often a node looks for dead ones.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3);

const NODES: &str = "tessera:nodes";

fn node_key(id: &str) -> String {
    format!("tessera:node:{id}")
}

fn egresses_key(id: &str) -> String {
    format!("tessera:node:{id}:egresses")
}

/// `EgressInfo.error` of an egress whose worker died.
pub fn lost_worker_error(node: &str) -> String {
    format!("egress worker {node} stopped unexpectedly (no heartbeat)")
}

/// One worker's entries.
#[derive(Clone)]
pub struct Registry {
    bus: Bus,
    node: String,
}

impl Registry {
    /// Registers `node`.
    pub async fn join(bus: Bus, node: String) -> Result<Registry, BusError> {
        let r = Registry { bus, node };
        r.heartbeat(&[]).await?;
        Ok(r)
    }

    /// Refreshes this node's key and registers it again: in the set of nodes, and with
    /// its `running` egresses when their record is gone (Redis lost its data, or a
    /// sweeper took this node for dead).
    pub async fn heartbeat(&self, running: &[EgressInfo]) -> Result<(), BusError> {
        self.bus
            .query::<()>(
                redis::cmd("SET")
                    .arg(node_key(&self.node))
                    .arg(now_ns())
                    .arg("PX")
                    .arg(HEARTBEAT_TTL.as_millis() as u64),
            )
            .await?;
        let added: i64 = self
            .bus
            .query(redis::cmd("SADD").arg(NODES).arg(&self.node))
            .await?;
        let key = egresses_key(&self.node);
        if running.is_empty()
            || self
                .bus
                .query::<bool>(redis::cmd("EXISTS").arg(&key))
                .await?
        {
            return Ok(());
        }
        if added == 1 {
            tracing::warn!(
                egresses = running.len(),
                "this worker was not registered (Redis restarted, or it was taken for dead): registered again"
            );
        }
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&key);
        for info in running {
            cmd.arg(&info.egress_id).arg(info.encode_to_vec());
        }
        self.bus.query::<()>(&cmd).await
    }

    /// Records an egress's latest info (removed once it has ended).
    pub async fn record(&self, info: &EgressInfo) -> Result<(), BusError> {
        let key = egresses_key(&self.node);
        if info.status >= EgressStatus::EgressComplete as i32 {
            self.bus
                .query::<()>(redis::cmd("HDEL").arg(key).arg(&info.egress_id))
                .await
        } else {
            self.bus
                .query::<()>(
                    redis::cmd("HSET")
                        .arg(key)
                        .arg(&info.egress_id)
                        .arg(info.encode_to_vec()),
                )
                .await
        }
    }

    /// Removes this node (a clean exit).
    pub async fn leave(&self) -> Result<(), BusError> {
        self.bus
            .query::<()>(
                redis::cmd("DEL")
                    .arg(node_key(&self.node))
                    .arg(egresses_key(&self.node)),
            )
            .await?;
        self.bus
            .query::<()>(redis::cmd("SREM").arg(NODES).arg(&self.node))
            .await
    }

    /// Every other listed node, and whether its key exists now.
    pub async fn observe(&self) -> Result<Vec<(String, bool)>, BusError> {
        let nodes: Vec<String> = self.bus.query(redis::cmd("SMEMBERS").arg(NODES)).await?;
        let mut seen = Vec::new();
        for node in nodes.into_iter().filter(|n| *n != self.node) {
            let alive: bool = self
                .bus
                .query(redis::cmd("EXISTS").arg(node_key(&node)))
                .await?;
            seen.push((node, alive));
        }
        Ok(seen)
    }

    /// Reports the egresses of `nodes` (taken for dead) FAILED, unless another sweeper
    /// does, or the node's key came back; returns how many.
    pub async fn reap(&self, nodes: &[String], io: &IoReporter) -> Result<usize, BusError> {
        let mut failed = 0;
        for node in nodes {
            let alive: bool = self
                .bus
                .query(redis::cmd("EXISTS").arg(node_key(node)))
                .await?;
            if alive {
                continue;
            }
            let took: Option<String> = self
                .bus
                .query(
                    redis::cmd("SET")
                        .arg(format!("tessera:reap:{node}"))
                        .arg(&self.node)
                        .arg("NX")
                        .arg("PX")
                        .arg(30_000),
                )
                .await?;
            if took.is_none() {
                continue;
            }
            let entries: Vec<(String, Vec<u8>)> = self
                .bus
                .query(redis::cmd("HGETALL").arg(egresses_key(node)))
                .await?;
            tracing::warn!(node = %node, egresses = entries.len(), "a worker stopped without a goodbye; failing its egresses");
            for (id, bytes) in entries {
                let Ok(mut info) = EgressInfo::decode(bytes.as_slice()) else {
                    tracing::warn!(egress_id = %id, "unreadable record of a lost egress");
                    continue;
                };
                lost(&mut info, node);
                io.update(info);
                failed += 1;
            }
            self.bus
                .query::<()>(redis::cmd("DEL").arg(egresses_key(node)))
                .await?;
            self.bus
                .query::<()>(redis::cmd("SREM").arg(NODES).arg(node))
                .await?;
        }
        Ok(failed)
    }
}

/// An egress of a dead worker: FAILED, as LiveKit's egress reports a killed handler.
fn lost(info: &mut EgressInfo, node: &str) {
    let now = now_ns();
    info.status = EgressStatus::EgressFailed as i32;
    info.error = lost_worker_error(node);
    info.error_code = 500;
    info.details = "End reason: Process killed".into();
    info.updated_at = now;
    info.ended_at = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_egress_is_failed_with_livekits_words() {
        let mut info = EgressInfo {
            egress_id: "EG_1".into(),
            status: EgressStatus::EgressActive as i32,
            ..Default::default()
        };
        lost(&mut info, "NE_x");
        assert_eq!(info.status, EgressStatus::EgressFailed as i32);
        assert_eq!(info.details, "End reason: Process killed");
        assert!(info.error.contains("NE_x"));
        assert!(info.ended_at > 0);
    }
}
