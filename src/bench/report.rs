//! The harness's report: JSON for machines, Markdown for people, an SVG plot of load
//! against rooms, the cost profile the service admits jobs by, and the comparison of two
//! reports. Pure: the harness fills it, `tessera bench` writes it.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

pub use crate::capacity::{CostProfile, Machine, ShapeCost};

use super::ramp::Policy;
use super::run::{Shape, StepReport};

/// LiveKit's published cost of a room composite, in CPUs.
pub const LIVEKIT_CPUS_PER_ROOM: f64 = 4.0;
/// LiveKit's admission cap: a worker accepts jobs up to this share of its CPUs.
pub const LIVEKIT_CPU_CAP: f64 = 0.8;

/// One contender's ramp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ramped {
    /// Most rooms that held real time.
    pub max_rooms: u32,
    /// Every step measured, in the order run.
    pub steps: Vec<StepReport>,
}

impl Ramped {
    /// The step at the maximum (the largest that held).
    pub fn at_max(&self) -> Option<&StepReport> {
        self.steps
            .iter()
            .rfind(|s| s.holds && s.rooms == self.max_rooms)
    }

    /// The smallest step that did not hold.
    pub fn first_failure(&self) -> Option<&StepReport> {
        self.steps
            .iter()
            .filter(|s| !s.holds)
            .min_by_key(|s| s.rooms)
    }
}

/// LiveKit's cost model applied to this node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LivekitModel {
    /// CPUs per room composite.
    pub cpus_per_room: f64,
    /// Admission cap.
    pub cpu_cap: f64,
    /// Rooms it admits on this node.
    pub max_rooms: u32,
}

impl LivekitModel {
    /// The model for `cores`.
    pub fn for_cores(cores: usize) -> LivekitModel {
        LivekitModel {
            cpus_per_room: LIVEKIT_CPUS_PER_ROOM,
            cpu_cap: LIVEKIT_CPU_CAP,
            max_rooms: (cores as f64 * LIVEKIT_CPU_CAP / LIVEKIT_CPUS_PER_ROOM).floor() as u32,
        }
    }
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// tessera's version.
    pub version: String,
    /// When it was measured (RFC 3339).
    pub measured_at: String,
    /// The node.
    pub machine: Machine,
    /// The room shape.
    pub shape: Shape,
    /// When a step holds.
    pub policy: Policy,
    /// Measured seconds per step.
    pub step_seconds: f64,
    /// tessera's ramp.
    pub tessera: Ramped,
    /// The same shape on a plain GStreamer CPU pipeline (`compositor` + `x264enc`).
    pub gstreamer: Option<Ramped>,
    /// LiveKit's cost model on this node.
    pub livekit_model: LivekitModel,
    /// What limited tessera at the first step that did not hold.
    pub bottleneck: Option<String>,
    /// GPU time per frame from timestamp queries, when the adapter has them.
    pub gpu_ms_per_frame: Option<f64>,
    /// Why a figure is missing, where one is.
    pub notes: Vec<String>,
}

impl Report {
    /// The cost profile entry of this report's shape.
    pub fn cost_profile(&self) -> CostProfile {
        let mut p = CostProfile {
            machine: Some(self.machine.clone()),
            ..Default::default()
        };
        // At the maximum; with none (not even one room held), from the first step.
        if let Some(s) = self.tessera.at_max().or(self.tessera.steps.first()) {
            p.shapes.insert(
                self.shape.key(),
                ShapeCost {
                    cpu_cores_per_room: s.cpu_cores_per_room,
                    memory_mib_per_room: s.rss_mib_per_room,
                    gpu_ms_per_frame: self.gpu_ms_per_frame,
                    max_rooms: self.tessera.max_rooms,
                },
            );
        }
        p
    }

    /// The Markdown summary.
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let s = &self.shape;
        let _ = writeln!(o, "# Capacity: {}\n", s.key());
        let _ = writeln!(
            o,
            "Node: {} ({} logical CPUs), GPU adapter: {}, encoder: {}, decoder: {}. Measured \
             {} with tessera {}, {} s per step.\n",
            self.machine.cpu,
            self.machine.cores,
            self.machine.gpu,
            self.machine.encoder,
            if self.machine.decoder.is_empty() {
                "not recorded"
            } else {
                &self.machine.decoder
            },
            self.measured_at,
            self.version,
            self.step_seconds
        );
        let _ = writeln!(
            o,
            "Rooms of {} participants ({}x{} {} decoded per participant), layout `{}`, \
             output {} ({}). A step holds when at most {:.0}% of composited frames start \
             more than one frame late and every room keeps {:.0}% of real time.\n",
            s.participants,
            s.input_width,
            s.input_height,
            s.codec.name(),
            s.layout,
            s.preset,
            s.outputs.join(" + "),
            self.policy.max_miss_rate * 100.0,
            self.policy.min_realtime * 100.0
        );
        let _ = writeln!(o, "| contender | max rooms held |\n|---|---|");
        let _ = writeln!(o, "| tessera | **{}** |", self.tessera.max_rooms);
        if let Some(g) = &self.gstreamer {
            let _ = writeln!(o, "| GStreamer CPU pipeline (same run) | {} |", g.max_rooms);
        }
        let _ = writeln!(
            o,
            "| LiveKit cost model ({} CPUs/room, {:.0}% cap) | {} |\n",
            self.livekit_model.cpus_per_room,
            self.livekit_model.cpu_cap * 100.0,
            self.livekit_model.max_rooms
        );
        for (name, ramp) in std::iter::once(("tessera", &self.tessera))
            .chain(self.gstreamer.iter().map(|g| ("GStreamer", g)))
        {
            let _ = writeln!(
                o,
                "## {name} steps\n\n| rooms | holds | missed frames | slowest room (× real time) | cores | cores/room | MiB/room |\n|---|---|---|---|---|---|---|"
            );
            for st in &ramp.steps {
                let _ = writeln!(
                    o,
                    "| {} | {} | {:.1}% | {:.3} | {:.2} | {:.2} | {:.0} |",
                    st.rooms,
                    if st.holds { "yes" } else { "no" },
                    st.miss_rate * 100.0,
                    st.realtime_min,
                    st.cpu_cores,
                    st.cpu_cores_per_room,
                    st.rss_mib_per_room
                );
            }
            o.push('\n');
        }
        if let Some(st) = self.tessera.at_max().or(self.tessera.steps.first()) {
            let _ = writeln!(
                o,
                "## Where tessera's time goes ({} rooms)\n\nCPU cores by thread class:\n",
                st.rooms
            );
            for (k, v) in &st.cpu_cores_by_class {
                let _ = writeln!(o, "- {k}: {v:.2}");
            }
            let _ = writeln!(o, "\nFrame-loop wall time per composited frame (ms):\n");
            for (k, v) in &st.stage_ms_per_frame {
                let _ = writeln!(o, "- {k}: {v:.2}");
            }
            o.push('\n');
            if let Some(n) = st.frames_per_submission {
                let _ = writeln!(
                    o,
                    "GPU submissions: {n:.1} composited frames per submission (the rooms' \
                     frames batched).\n"
                );
            }
        }
        match self.gpu_ms_per_frame {
            Some(ms) => {
                let _ = writeln!(
                    o,
                    "GPU time per composited frame (timestamp queries): {ms:.2} ms, so the \
                     compositor alone could draw {:.0} frames/s, {:.1} rooms at 30 fps.\n",
                    1000.0 / ms,
                    1000.0 / ms / 30.0
                );
            }
            None => o.push_str("GPU time per frame: not measured on this adapter.\n\n"),
        }
        if let Some(b) = &self.bottleneck {
            let _ = writeln!(o, "First to saturate: **{b}**.\n");
        }
        for n in &self.notes {
            let _ = writeln!(o, "- {n}");
        }
        o
    }

    /// An SVG plot: slowest room's real-time factor and cores used, against rooms, for
    /// tessera (and the GStreamer baseline, dashed).
    pub fn svg(&self) -> String {
        let (w, h, m) = (640.0, 360.0, 50.0);
        let mut series: Vec<Series<'_>> = Vec::new();
        let mut add = |name, dash, r: &Ramped| {
            let mut steps: Vec<_> = r.steps.iter().collect();
            steps.sort_by_key(|s| s.rooms);
            series.push((
                name,
                dash,
                steps
                    .iter()
                    .map(|s| (s.rooms as f64, s.realtime_min))
                    .collect(),
                steps
                    .iter()
                    .map(|s| {
                        (
                            s.rooms as f64,
                            s.cpu_cores / self.machine.cores.max(1) as f64,
                        )
                    })
                    .collect(),
            ));
        };
        add("tessera", "", &self.tessera);
        if let Some(g) = &self.gstreamer {
            add("gstreamer", "6,4", g);
        }
        let max_k = series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.0))
            .fold(1.0f64, f64::max);
        let x = |k: f64| m + (k - 0.0) / max_k * (w - 2.0 * m);
        let y = |v: f64| h - m - v.clamp(0.0, 1.2) / 1.2 * (h - 2.0 * m);
        let mut o = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = write!(
            o,
            r#"<rect width="{w}" height="{h}" fill="white"/><line x1="{m}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{m}" y1="{m}" x2="{m}" y2="{}" stroke="black"/>"#,
            h - m,
            w - m,
            h - m,
            h - m
        );
        for v in [0.0, 0.5, 1.0] {
            let _ = write!(
                o,
                r##"<text x="{}" y="{}" text-anchor="end">{v:.1}</text><line x1="{m}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
                m - 5.0,
                y(v) + 4.0,
                y(v),
                w - m,
                y(v)
            );
        }
        let _ = write!(
            o,
            r#"<text x="{}" y="{}" text-anchor="middle">concurrent rooms (max {max_k})</text><text x="12" y="{m}" >x real time / CPU share</text>"#,
            w / 2.0,
            h - 12.0
        );
        for (i, (name, dash, rt, cpu)) in series.iter().enumerate() {
            for (pts, colour, label) in
                [(rt, "#1f77b4", "real time"), (cpu, "#d62728", "CPU share")]
            {
                let path: Vec<String> = pts
                    .iter()
                    .map(|&(k, v)| format!("{:.1},{:.1}", x(k), y(v)))
                    .collect();
                let _ = write!(
                    o,
                    r#"<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}" points="{}"/>"#,
                    path.join(" ")
                );
                for &(k, v) in pts.iter() {
                    let _ = write!(
                        o,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                        x(k),
                        y(v)
                    );
                }
                let _ = write!(
                    o,
                    r#"<text x="{}" y="{}" fill="{colour}">{name}: {label}</text>"#,
                    w - m - 150.0,
                    m + 14.0 * (i * 2 + usize::from(label == "CPU share")) as f64
                );
            }
        }
        o.push_str("</svg>\n");
        o
    }
}

/// A contender's plotted lines: name, dash pattern, (rooms, real-time factor) and
/// (rooms, CPU share).
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>, Vec<(f64, f64)>);

/// Markdown comparing two reports (two nodes, or two versions).
pub fn compare(a: &Report, b: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "| | A | B | B / A |\n|---|---|---|---|");
    let row = |o: &mut String, name: &str, x: f64, y: f64| {
        let ratio = if x > 0.0 {
            format!("{:.2}", y / x)
        } else {
            "–".into()
        };
        let _ = writeln!(o, "| {name} | {x:.2} | {y:.2} | {ratio} |");
    };
    let _ = writeln!(o, "| shape | {} | {} | |", a.shape.key(), b.shape.key());
    let _ = writeln!(
        o,
        "| node | {} x{} | {} x{} | |",
        a.machine.cpu, a.machine.cores, b.machine.cpu, b.machine.cores
    );
    let _ = writeln!(o, "| version | {} | {} | |", a.version, b.version);
    row(
        &mut o,
        "max rooms",
        a.tessera.max_rooms as f64,
        b.tessera.max_rooms as f64,
    );
    let cost = |r: &Report| r.tessera.at_max().map_or(0.0, |s| s.cpu_cores_per_room);
    row(&mut o, "cores per room at max", cost(a), cost(b));
    let mem = |r: &Report| r.tessera.at_max().map_or(0.0, |s| s.rss_mib_per_room);
    row(&mut o, "MiB per room at max", mem(a), mem(b));
    let gst = |r: &Report| r.gstreamer.as_ref().map_or(0.0, |g| g.max_rooms as f64);
    row(&mut o, "GStreamer baseline rooms", gst(a), gst(b));
    if a.shape != b.shape {
        o.push_str("\nThe shapes differ: compare with care.\n");
    }
    o
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn step(rooms: u32, holds: bool) -> StepReport {
        StepReport {
            rooms,
            seconds: 10.0,
            holds,
            miss_rate: if holds { 0.0 } else { 0.2 },
            realtime_min: if holds { 1.0 } else { 0.8 },
            cpu_cores: rooms as f64 * 0.8,
            cpu_cores_per_room: 0.8,
            cpu_cores_by_class: [
                ("encode".to_string(), 0.3),
                ("gpu_software".to_string(), 0.4),
            ]
            .into_iter()
            .collect(),
            rss_mib_per_room: 120.0,
            stage_ms_per_frame: BTreeMap::new(),
            gpu_ms_per_frame: None,
            frames_per_submission: None,
            failures: Vec::new(),
        }
    }

    fn report() -> Report {
        Report {
            version: "0.1.0".into(),
            measured_at: "2026-11-26T00:00:00Z".into(),
            machine: Machine {
                cpu: "test".into(),
                cores: 2,
                gpu: "llvmpipe".into(),
                encoder: "x264enc".into(),
                decoder: "avdec_h264 (Software)".into(),
            },
            shape: crate::bench::run::test_shape(4, &["file"]),
            policy: Policy::default(),
            step_seconds: 10.0,
            tessera: Ramped {
                max_rooms: 2,
                steps: vec![step(1, true), step(2, true), step(4, false), step(3, false)],
            },
            gstreamer: Some(Ramped {
                max_rooms: 1,
                steps: vec![step(1, true), step(2, false)],
            }),
            livekit_model: LivekitModel::for_cores(2),
            bottleneck: Some("gpu_software".into()),
            gpu_ms_per_frame: None,
            notes: vec![],
        }
    }

    #[test]
    fn livekit_admits_nothing_on_two_cores() {
        assert_eq!(LivekitModel::for_cores(2).max_rooms, 0);
        assert_eq!(LivekitModel::for_cores(16).max_rooms, 3);
    }

    #[test]
    fn report_round_trips_and_renders() {
        let r = report();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
        assert_eq!(r.tessera.at_max().unwrap().rooms, 2);
        assert_eq!(r.tessera.first_failure().unwrap().rooms, 3);
        let md = r.markdown();
        assert!(md.contains("| tessera | **2** |"), "{md}");
        assert!(md.contains("LiveKit cost model (4 CPUs/room, 80% cap) | 0 |"));
        let svg = r.svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        let profile = r.cost_profile();
        let cost = &profile.shapes["4p-640x360-h264-grid-H264_720P_30-file"];
        assert_eq!((cost.max_rooms, cost.cpu_cores_per_room), (2, 0.8));
        let mut b = r.clone();
        b.tessera.max_rooms = 3;
        let cmp = compare(&r, &b);
        assert!(cmp.contains("| max rooms | 2.00 | 3.00 | 1.50 |"), "{cmp}");
    }
}
