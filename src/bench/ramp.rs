//! The ramp: how many rooms to try next, given what the last steps showed. Pure: the
//! harness measures, this decides. Doubling until real time is lost, then bisecting
//! between the largest count that held and the smallest that did not.

use serde::{Deserialize, Serialize};

/// When a step counts as holding real time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Most rooms to try.
    pub max_rooms: u32,
    /// Highest share of composited frames that may miss their deadline (start more than
    /// one frame late).
    pub max_miss_rate: f64,
    /// Lowest media-seconds per wall-second every room must keep.
    pub min_realtime: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_rooms: 64,
            max_miss_rate: 0.02,
            min_realtime: 0.97,
        }
    }
}

/// What one step measured (the part the ramp needs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// Concurrent rooms.
    pub rooms: u32,
    /// Share of frames (all rooms) that missed their deadline.
    pub miss_rate: f64,
    /// The slowest room's media-seconds per wall-second.
    pub realtime: f64,
}

impl Policy {
    /// Whether a step held real time.
    pub fn holds(&self, o: &Outcome) -> bool {
        o.miss_rate <= self.max_miss_rate && o.realtime >= self.min_realtime
    }
}

/// The ramp's state.
#[derive(Clone, Debug)]
pub struct Ramp {
    policy: Policy,
    /// Largest count that held (0: none yet).
    best: u32,
    /// Smallest count that did not.
    failed: Option<u32>,
    next: Option<u32>,
}

impl Ramp {
    /// Starts at one room.
    pub fn new(policy: Policy) -> Ramp {
        Ramp {
            policy,
            best: 0,
            failed: None,
            next: (policy.max_rooms >= 1).then_some(1),
        }
    }

    /// The room count to measure next; `None` when the answer is known.
    pub fn next_rooms(&self) -> Option<u32> {
        self.next
    }

    /// Records a step and chooses the next count.
    pub fn record(&mut self, o: &Outcome) {
        if self.policy.holds(o) {
            self.best = self.best.max(o.rooms);
        } else {
            self.failed = Some(self.failed.map_or(o.rooms, |f| f.min(o.rooms)));
        }
        self.next = match self.failed {
            None if self.best >= self.policy.max_rooms => None,
            None => Some((self.best * 2).clamp(1, self.policy.max_rooms)),
            Some(f) if f <= self.best + 1 => None,
            Some(f) => Some(self.best + (f - self.best) / 2),
        };
    }

    /// The most rooms that held real time (0 if even one did not).
    pub fn max_sustained(&self) -> u32 {
        self.best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node with `cores` and rooms whose stages cost these CPU-ms per frame at 30 fps:
    /// beyond the cores, every room falls behind in proportion.
    fn simulate(rooms: u32, cores: f64, stage_ms: &[f64]) -> Outcome {
        let per_room_cores = stage_ms.iter().sum::<f64>() * 30.0 / 1000.0;
        let load = rooms as f64 * per_room_cores / cores;
        let realtime = if load <= 1.0 { 1.0 } else { 1.0 / load };
        Outcome {
            rooms,
            miss_rate: if load <= 0.95 {
                0.0
            } else {
                (load - 0.95).min(1.0)
            },
            realtime,
        }
    }

    fn run(cores: f64, stage_ms: &[f64], policy: Policy) -> (u32, Vec<u32>) {
        let mut ramp = Ramp::new(policy);
        let mut tried = Vec::new();
        while let Some(k) = ramp.next_rooms() {
            tried.push(k);
            ramp.record(&simulate(k, cores, stage_ms));
            assert!(tried.len() < 20, "ramp does not converge: {tried:?}");
        }
        (ramp.max_sustained(), tried)
    }

    #[test]
    fn finds_the_largest_count_that_holds() {
        // decode 2 ms + composite 6 ms + encode 10 ms per frame = 0.54 cores per room:
        // 16 cores hold 28 rooms (28 x 0.54 = 15.1 < 0.95 x 16), 29 would not.
        let (max, tried) = run(16.0, &[2.0, 6.0, 10.0], Policy::default());
        assert_eq!(max, 28);
        assert_eq!(&tried[..6], &[1, 2, 4, 8, 16, 32]);
        assert!(tried.len() <= 11, "{tried:?}");
    }

    #[test]
    fn nothing_holds_on_a_node_too_small() {
        let (max, tried) = run(2.0, &[30.0, 40.0, 50.0], Policy::default());
        assert_eq!((max, tried), (0, vec![1]));
    }

    #[test]
    fn stops_at_the_cap() {
        let policy = Policy {
            max_rooms: 5,
            ..Policy::default()
        };
        let (max, tried) = run(64.0, &[1.0], policy);
        assert_eq!(max, 5);
        assert_eq!(tried, vec![1, 2, 4, 5]);
    }
}
