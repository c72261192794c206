//! Admission: what an egress costs this node, whether it fits, and the affinity the worker
//! claims a StartEgress with. Pure.
//!
//! Costs are in CPU cores. A measured cost profile (the capacity harness's
//! `cost-profile.json`) prices composites with video: a shape that held `max_rooms` rooms
//! in real time on a node of `cores` cores costs `cores / max_rooms`, scaled by the
//! request's pixel rate against the profiled preset's, and is committed against every
//! core (the harness already found the real-time limit). Without a profile, LiveKit's
//! `cpu_cost` model applies: each kind's cost against `cores × max_cpu_utilization`.
//!
//! The profile prices egresses alone; the node's measured CPU load catches what it does
//! not see (publishers, livekit-server or anything else on the node, a room dearer than
//! profiled): a job is also refused when the measured busy cores plus its cost exceed
//! `machine cores × max_cpu_utilization`, as LiveKit's egress checks its CPU. Committed
//! costs bound bursts (egresses just admitted have not loaded the CPU yet).

use std::collections::HashMap;

use crate::capacity::CostProfile;
use crate::config::CpuCost;
use crate::request::naming::EgressKind;

/// What is known of a job when it is admitted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JobShape {
    /// The request kind.
    pub kind: EgressKind,
    /// Whether it composites video.
    pub video: bool,
    /// Output width, height and frame rate (composites).
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Output frame rate.
    pub framerate: u32,
}

/// Why a job was refused, with the figures an operator needs to see why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The costs already committed leave too little.
    #[error("not enough capacity: needs {needs:.2} cores, {free:.2} of {capacity:.2} free")]
    Capacity {
        /// The job's cost.
        needs: f64,
        /// What is left.
        free: f64,
        /// The node's capacity.
        capacity: f64,
    },
    /// The node's measured CPU load leaves too little (LiveKit's `max_cpu_utilization`).
    #[error(
        "CPU load too high: needs {needs:.2} cores, {busy:.2} of {machine:.0} cores busy, \
         {limit:.2} usable (max_cpu_utilization {max_cpu_utilization})"
    )]
    Load {
        /// The job's cost.
        needs: f64,
        /// Busy cores measured.
        busy: f64,
        /// The machine's cores.
        machine: f64,
        /// `machine × max_cpu_utilization`.
        limit: f64,
        /// The configured share.
        max_cpu_utilization: f64,
    },
}

impl Refusal {
    /// The reason's label in metrics and logs: `capacity` or `load`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Capacity { .. } => "capacity",
            Refusal::Load { .. } => "load",
        }
    }
}

/// The node's committed capacity.
#[derive(Clone, Debug)]
pub struct Admission {
    cores: f64,
    costs: CpuCost,
    profile: Option<CostProfile>,
    committed: HashMap<String, f64>,
    /// The machine's cores and its measured busy cores (when sampled).
    machine: f64,
    busy: Option<f64>,
}

/// 1280x720 at 30 fps: the pixel rate a cost is scaled from when a preset is unknown.
const REFERENCE_RATE: f64 = 1280.0 * 720.0 * 30.0;

/// The pixel rate of a LiveKit preset name (`H264_720P_30`, `PORTRAIT_H264_1080P_60`).
fn preset_rate(preset: &str) -> Option<f64> {
    let p = preset.strip_prefix("PORTRAIT_").unwrap_or(preset);
    let rest = p.strip_prefix("H264_")?;
    let (h, fps) = rest.split_once("P_")?;
    let h: f64 = h.parse().ok()?;
    let fps: f64 = fps.parse().ok()?;
    Some(h * (h * 16.0 / 9.0) * fps)
}

impl Admission {
    /// A node of `cores` cores with `costs`, priced by `profile` where it applies.
    pub fn new(cores: f64, costs: CpuCost, profile: Option<CostProfile>) -> Admission {
        Admission {
            cores,
            costs,
            profile,
            committed: HashMap::new(),
            machine: cores,
            busy: None,
        }
    }

    /// The machine's cores (the load guard's scale), when not `cores`.
    pub fn with_machine_cores(mut self, machine: f64) -> Admission {
        self.machine = machine;
        self
    }

    /// The node's measured busy cores now (every process, from `/proc/stat`).
    pub fn set_busy(&mut self, busy: f64) {
        self.busy = Some(busy);
    }

    /// The node's measured load (0..=1 of the machine's cores), 0 before it is sampled.
    pub fn load_measured(&self) -> f64 {
        self.busy.map_or(0.0, |b| (b / self.machine).min(1.0))
    }

    /// The node's capacity in cores.
    pub fn capacity(&self) -> f64 {
        self.cores
    }

    /// What `job` costs, in cores of this node's capacity.
    pub fn cost(&self, job: &JobShape) -> f64 {
        let c = &self.costs;
        let util = c.max_cpu_utilization;
        let composite = matches!(
            job.kind,
            EgressKind::RoomComposite | EgressKind::Participant | EgressKind::TrackComposite
        );
        if job.video
            && composite
            && let Some(cost) = self.profiled(job)
        {
            return cost;
        }
        let cores = match (job.kind, job.video) {
            (EgressKind::RoomComposite, true) => c.room_composite_cpu_cost,
            (EgressKind::RoomComposite, false) => c.audio_room_composite_cpu_cost,
            (EgressKind::Web, true) => c.web_cpu_cost,
            (EgressKind::Web, false) => c.audio_web_cpu_cost,
            (EgressKind::Participant, _) => c.participant_cpu_cost,
            (EgressKind::TrackComposite, _) => c.track_composite_cpu_cost,
            (EgressKind::Track, _) => c.track_cpu_cost,
        };
        cores / util
    }

    /// The profile's price: the dearest shape per room, scaled by pixel rate.
    fn profiled(&self, job: &JobShape) -> Option<f64> {
        let p = self.profile.as_ref()?;
        let cores = p.machine.as_ref().map_or(self.cores, |m| m.cores as f64);
        let rate = job.width as f64 * job.height as f64 * job.framerate as f64;
        p.shapes
            .iter()
            .filter(|(_, s)| s.max_rooms > 0)
            .map(|(key, s)| {
                let preset = key.split('-').nth(5).unwrap_or_default();
                let base = preset_rate(preset).unwrap_or(REFERENCE_RATE);
                cores / s.max_rooms as f64 * (rate / base)
            })
            .reduce(f64::max)
    }

    /// Cores committed now.
    pub fn committed(&self) -> f64 {
        self.committed.values().sum()
    }

    /// Share of the capacity committed (0..=1).
    #[cfg(test)]
    pub fn load(&self) -> f64 {
        (self.committed() / self.cores).min(1.0)
    }

    /// Whether `cost` fits now, against the committed costs and then the measured load;
    /// the refusal says which and with what figures.
    pub fn check(&self, cost: f64) -> Result<(), Refusal> {
        let committed = self.committed();
        if committed + cost > self.cores + 1e-9 {
            return Err(Refusal::Capacity {
                needs: cost,
                free: (self.cores - committed).max(0.0),
                capacity: self.cores,
            });
        }
        let util = self.costs.max_cpu_utilization;
        let limit = self.machine * util;
        match self.busy {
            Some(busy) if busy + cost > limit + 1e-9 => Err(Refusal::Load {
                needs: cost,
                busy,
                machine: self.machine,
                limit,
                max_cpu_utilization: util,
            }),
            _ => Ok(()),
        }
    }

    /// Whether `cost` fits now: committed costs and the measured load.
    pub fn fits(&self, cost: f64) -> bool {
        self.check(cost).is_ok()
    }

    /// Commits `cost` for `id`, or says why not.
    pub fn reserve(&mut self, id: &str, cost: f64) -> Result<(), Refusal> {
        self.check(cost)?;
        self.committed.insert(id.to_owned(), cost);
        Ok(())
    }

    /// Frees `id`'s commitment.
    pub fn release(&mut self, id: &str) {
        self.committed.remove(id);
    }

    /// The claim's affinity, LiveKit's convention: none (-1) when it does not fit or the
    /// worker drains; 1 when the worker is already busy and has room (fill busy workers
    /// first, keep idle ones for big jobs); 0.5 when idle.
    pub fn affinity(&self, cost: f64, draining: bool) -> f32 {
        if draining || !self.fits(cost) {
            -1.0
        } else if self.committed.is_empty() {
            0.5
        } else {
            1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::capacity::{Machine, ShapeCost};

    fn composite() -> JobShape {
        JobShape {
            kind: EgressKind::RoomComposite,
            video: true,
            width: 1280,
            height: 720,
            framerate: 30,
        }
    }

    fn profile(max_rooms: u32) -> CostProfile {
        let mut shapes = BTreeMap::new();
        shapes.insert(
            "4p-640x360-h264-grid-H264_720P_30-file".to_owned(),
            ShapeCost {
                cpu_cores_per_room: 0.27,
                memory_mib_per_room: 20.0,
                gpu_ms_per_frame: None,
                max_rooms,
            },
        );
        CostProfile {
            machine: Some(Machine {
                cpu: "test".into(),
                cores: 2,
                gpu: "cpu".into(),
                encoder: "x264enc".into(),
                decoder: "avdec_h264 (Software)".into(),
            }),
            shapes,
        }
    }

    #[test]
    fn a_profile_admits_what_the_harness_held() {
        let mut a = Admission::new(2.0, CpuCost::default(), Some(profile(7)));
        let cost = a.cost(&composite());
        let mut admitted = 0;
        while a.reserve(&format!("EG_{admitted}"), cost).is_ok() {
            admitted += 1;
        }
        assert_eq!(admitted, 7);
        // 1080p30 costs 2.25 times as much.
        let big = JobShape {
            width: 1920,
            height: 1080,
            ..composite()
        };
        assert!((a.cost(&big) / cost - 2.25).abs() < 1e-9);
    }

    #[test]
    fn without_a_profile_livekit_costs_apply() {
        let a = Admission::new(2.0, CpuCost::default(), None);
        // 0.5 cores / 0.8 utilisation.
        assert!((a.cost(&composite()) - 0.625).abs() < 1e-9);
        let track = JobShape {
            kind: EgressKind::Track,
            video: false,
            ..composite()
        };
        assert!((a.cost(&track) - 0.0625).abs() < 1e-9);
    }

    #[test]
    fn affinity_prefers_busy_workers_with_room() {
        let mut a = Admission::new(2.0, CpuCost::default(), Some(profile(2)));
        let cost = a.cost(&composite());
        assert_eq!(a.affinity(cost, false), 0.5);
        a.reserve("EG_1", cost).unwrap();
        assert_eq!(a.affinity(cost, false), 1.0);
        assert_eq!(a.affinity(cost, true), -1.0);
        a.reserve("EG_2", cost).unwrap();
        assert_eq!(a.affinity(cost, false), -1.0);
        let e = a.reserve("EG_3", cost).unwrap_err();
        assert!(matches!(e, Refusal::Capacity { free: 0.0, .. }), "{e:?}");
        assert_eq!(e.reason(), "capacity");
        a.release("EG_1");
        assert_eq!(a.affinity(cost, false), 1.0);
        assert!((a.load() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn the_measured_load_refuses_what_the_profile_would_admit() {
        let mut a = Admission::new(2.0, CpuCost::default(), Some(profile(7)));
        let cost = a.cost(&composite());
        a.reserve("EG_1", cost).unwrap();
        // Publishers and the SFU on the node: 1.4 cores busy of 2 (0.8 → 1.6 usable).
        a.set_busy(1.4);
        assert!(!a.fits(cost));
        assert_eq!(a.affinity(cost, false), -1.0);
        let e = a.check(cost).unwrap_err();
        assert_eq!(e.reason(), "load");
        let text = e.to_string();
        assert!(
            text.contains("1.40 of 2 cores busy") && text.contains("1.60 usable"),
            "{text}"
        );
        a.set_busy(0.6);
        assert!(a.fits(cost));
    }

    #[test]
    fn presets_have_pixel_rates() {
        assert_eq!(preset_rate("H264_720P_30"), Some(1280.0 * 720.0 * 30.0));
        assert_eq!(
            preset_rate("PORTRAIT_H264_1080P_60"),
            Some(1920.0 * 1080.0 * 60.0)
        );
        assert_eq!(preset_rate("custom"), None);
    }
}
