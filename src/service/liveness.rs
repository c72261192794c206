//! When a worker may declare another one dead. Pure: handed its own heartbeats' outcomes
//! and each sweep's view of the registry, with the time, by `serve.rs`.
//!
//! A node whose key is missing is not dead yet: the sweeper may be the one cut off, Redis
//! may have restarted and lost every key, or the other node may be reconnecting. So a
//! node is reaped only after it was seen missing in [`MISSES_TO_REAP`] sweeps in a row,
//! all made while this worker's own heartbeats succeeded, and not before [`GRACE`] has
//! passed since they last started succeeding (every live worker re-registers within a
//! heartbeat of a reconnect, well inside it).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::registry::HEARTBEAT_TTL;

/// Sweeps in a row a node's key must be missing before it is reaped.
pub const MISSES_TO_REAP: u32 = 3;
/// How long after this worker's heartbeats (re)start succeeding it trusts what it sees.
pub const GRACE: Duration = HEARTBEAT_TTL;

/// One worker's view of the others' liveness.
#[derive(Debug, Default)]
pub struct Liveness {
    /// Since when this worker's own heartbeats have succeeded without a failure.
    healthy_since: Option<Instant>,
    /// Nodes seen missing, and in how many sweeps in a row.
    missing: HashMap<String, u32>,
}

impl Liveness {
    /// A worker that has not beaten yet (it trusts nothing).
    pub fn new() -> Liveness {
        Liveness::default()
    }

    /// The outcome of this worker's heartbeat at `now`. A failure forgets every count: what
    /// was seen while cut off, or just before, proves nothing.
    pub fn own_beat(&mut self, now: Instant, ok: bool) {
        if ok {
            self.healthy_since.get_or_insert(now);
        } else {
            self.healthy_since = None;
            self.missing.clear();
        }
    }

    /// Whether what a sweep sees at `now` can be trusted.
    fn trusted(&self, now: Instant) -> bool {
        self.healthy_since
            .is_some_and(|since| now.saturating_duration_since(since) >= GRACE)
    }

    /// One sweep at `now`: each listed node (this one excluded) and whether its key exists.
    /// Returns the nodes to reap now.
    pub fn sweep(&mut self, now: Instant, seen: &[(String, bool)]) -> Vec<String> {
        if !self.trusted(now) {
            self.missing.clear();
            return Vec::new();
        }
        self.missing
            .retain(|node, _| seen.iter().any(|(n, alive)| n == node && !alive));
        let mut due = Vec::new();
        for (node, alive) in seen {
            if *alive {
                continue;
            }
            let misses = self.missing.entry(node.clone()).or_default();
            *misses += 1;
            if *misses >= MISSES_TO_REAP {
                due.push(node.clone());
            }
        }
        for node in &due {
            self.missing.remove(node);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWEEP: Duration = Duration::from_secs(3);

    fn gone(node: &str) -> Vec<(String, bool)> {
        vec![(node.to_owned(), false)]
    }

    /// A worker whose own beats succeed from `t0` on, past the grace.
    fn settled(t0: Instant) -> Liveness {
        let mut l = Liveness::new();
        l.own_beat(t0, true);
        l
    }

    #[test]
    fn a_node_missing_in_three_trusted_sweeps_is_reaped() {
        let t0 = Instant::now();
        let mut l = settled(t0);
        let t = t0 + GRACE;
        assert!(l.sweep(t, &gone("NE_a")).is_empty());
        assert!(l.sweep(t + SWEEP, &gone("NE_a")).is_empty());
        assert_eq!(l.sweep(t + 2 * SWEEP, &gone("NE_a")), ["NE_a"]);
    }

    #[test]
    fn a_node_seen_alive_again_starts_afresh() {
        let t0 = Instant::now();
        let mut l = settled(t0);
        let t = t0 + GRACE;
        l.sweep(t, &gone("NE_a"));
        l.sweep(t + SWEEP, &gone("NE_a"));
        l.sweep(t + 2 * SWEEP, &[("NE_a".into(), true)]);
        assert!(l.sweep(t + 3 * SWEEP, &gone("NE_a")).is_empty());
        assert!(l.sweep(t + 4 * SWEEP, &gone("NE_a")).is_empty());
        assert_eq!(l.sweep(t + 5 * SWEEP, &gone("NE_a")), ["NE_a"]);
    }

    #[test]
    fn a_sweeper_cut_off_from_redis_reaps_nobody() {
        let t0 = Instant::now();
        let mut l = settled(t0);
        let t = t0 + GRACE;
        l.sweep(t, &gone("NE_a"));
        l.sweep(t + SWEEP, &gone("NE_a"));
        // Its own heartbeat fails (Redis paused, restarted, or this node cut off).
        l.own_beat(t + SWEEP + Duration::from_secs(1), false);
        assert!(l.sweep(t + 2 * SWEEP, &gone("NE_a")).is_empty());
        // Back: everything seen before is forgotten, and nothing counts during the grace
        // in which every live worker re-registers.
        let back = t + 3 * SWEEP;
        l.own_beat(back, true);
        for k in 0..3 {
            let at = back + SWEEP * k;
            if at.duration_since(back) < GRACE {
                assert!(
                    l.sweep(at, &gone("NE_a")).is_empty(),
                    "reaped during the grace"
                );
            }
        }
        let after = back + GRACE;
        assert!(l.sweep(after, &gone("NE_a")).is_empty());
        assert!(l.sweep(after + SWEEP, &gone("NE_a")).is_empty());
        assert_eq!(l.sweep(after + 2 * SWEEP, &gone("NE_a")), ["NE_a"]);
    }

    #[test]
    fn before_its_first_beat_a_worker_trusts_nothing() {
        let mut l = Liveness::new();
        let t0 = Instant::now();
        for k in 0..5 {
            assert!(l.sweep(t0 + SWEEP * k, &gone("NE_a")).is_empty());
        }
    }
}
