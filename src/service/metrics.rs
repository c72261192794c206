//! The worker's Prometheus metrics (text exposition format 0.0.4), counted here and
//! rendered on `/metrics`; and the node's CPU load from `/proc/stat` (`CpuSampler`, read
//! once a second by the worker for admission, health and metrics alike).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters that outlive the egresses they count.
#[derive(Default)]
pub struct Metrics {
    started: Mutex<BTreeMap<String, u64>>,
    ended: Mutex<BTreeMap<(String, String), u64>>,
    refused: Mutex<BTreeMap<String, u64>>,
    /// Frames composited by egresses that have ended.
    frames_done: AtomicU64,
    /// Frames late by more than a frame, of egresses that have ended.
    late_done: AtomicU64,
}

/// A point-in-time view of the worker for rendering.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Running egresses per type.
    pub active: BTreeMap<String, u64>,
    /// Frames composited by running egresses.
    pub frames: u64,
    /// Their late frames.
    pub late: u64,
    /// Cores committed.
    pub committed: f64,
    /// Cores of capacity.
    pub capacity: f64,
    /// Draining.
    pub draining: bool,
    /// The compositor (`cpu`, `gpu: NAME (KIND)`).
    pub compositor: String,
    /// The H.264 encoder element.
    pub encoder: String,
    /// IOInfo updates waiting.
    pub io_queued: usize,
    /// The node's CPU load (0..=1), as last sampled.
    pub cpu_load: f64,
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K) {
    *m.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(k)
        .or_default() += 1;
}

impl Metrics {
    /// An egress of `kind` started.
    pub fn started(&self, kind: &str) {
        bump(&self.started, kind.to_owned());
    }

    /// An egress of `kind` ended with `status` (`EGRESS_COMPLETE`, …) after composing
    /// `frames` frames, `late` of them late.
    pub fn ended(&self, kind: &str, status: &str, frames: u64, late: u64) {
        bump(&self.ended, (kind.to_owned(), status.to_owned()));
        self.frames_done.fetch_add(frames, Ordering::Relaxed);
        self.late_done.fetch_add(late, Ordering::Relaxed);
    }

    /// A StartEgress refused (`capacity`, `draining`, `invalid`).
    pub fn refused(&self, reason: &str) {
        bump(&self.refused, reason.to_owned());
    }

    /// The text exposition.
    pub fn render(&self, s: &Snapshot) -> String {
        let mut out = String::new();
        self.egress_families(s, &mut |name, kind, help, rows| {
            family(&mut out, name, kind, help, rows)
        });
        self.node_families(s, &mut |name, kind, help, rows| {
            family(&mut out, name, kind, help, rows)
        });
        out
    }

    /// The egress families: running, started, ended, refused.
    fn egress_families(&self, s: &Snapshot, f: &mut Family<'_>) {
        f(
            "tessera_egress_active",
            "gauge",
            "Egresses running, by request type.",
            s.active
                .iter()
                .map(|(k, v)| format!("{{type=\"{k}\"}} {v}"))
                .collect(),
        );
        let started = self
            .started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(
            "tessera_egress_started_total",
            "counter",
            "Egresses accepted, by request type.",
            started
                .iter()
                .map(|(k, v)| format!("{{type=\"{k}\"}} {v}"))
                .collect(),
        );
        let ended = self
            .ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(
            "tessera_egress_ended_total",
            "counter",
            "Egresses ended, by request type and final status.",
            ended
                .iter()
                .map(|((k, st), v)| format!("{{type=\"{k}\",status=\"{st}\"}} {v}"))
                .collect(),
        );
        let refused = self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(
            "tessera_admission_refusals_total",
            "counter",
            "StartEgress requests this worker refused or did not claim, by reason.",
            refused
                .iter()
                .map(|(k, v)| format!("{{reason=\"{k}\"}} {v}"))
                .collect(),
        );
    }

    /// The frame counters and the node's gauges.
    fn node_families(&self, s: &Snapshot, f: &mut Family<'_>) {
        let frames = s.frames + self.frames_done.load(Ordering::Relaxed);
        let late = s.late + self.late_done.load(Ordering::Relaxed);
        f(
            "tessera_frames_composited_total",
            "counter",
            "Frames composited by every egress.",
            vec![format!(" {frames}")],
        );
        f(
            "tessera_frames_late_total",
            "counter",
            "Frames started more than a frame after their deadline.",
            vec![format!(" {late}")],
        );
        f(
            "tessera_cpu_load",
            "gauge",
            "The node's CPU load (0..1), sampled every second (smoothed).",
            vec![format!(" {:.4}", s.cpu_load)],
        );
        f(
            "tessera_capacity_cores",
            "gauge",
            "Cores egresses may commit on this node.",
            vec![format!(" {:.3}", s.capacity)],
        );
        f(
            "tessera_capacity_committed_cores",
            "gauge",
            "Cores committed to running egresses (admission's measured costs).",
            vec![format!(" {:.3}", s.committed)],
        );
        f(
            "tessera_gpu_load",
            "gauge",
            "Share of the capacity committed to compositing on the GPU (0 when compositing on the CPU).",
            vec![format!(
                " {:.4}",
                if s.compositor.starts_with("gpu") && s.capacity > 0.0 {
                    s.committed / s.capacity
                } else {
                    0.0
                }
            )],
        );
        f(
            "tessera_draining",
            "gauge",
            "1 while the worker drains (claims nothing new).",
            vec![format!(" {}", s.draining as u8)],
        );
        f(
            "tessera_compositor_info",
            "gauge",
            "The compositor in use.",
            vec![format!(
                "{{compositor=\"{}\"}} 1",
                s.compositor.replace('"', "'")
            )],
        );
        f(
            "tessera_encoder_info",
            "gauge",
            "The H.264 encoder element in use.",
            vec![format!("{{encoder=\"{}\"}} 1", s.encoder)],
        );
        f(
            "tessera_upload_queue_depth",
            "gauge",
            "Files and playlists waiting for upload.",
            vec![format!(" {}", crate::storage::uploader::queue_depth())],
        );
        f(
            "tessera_upload_failures_total",
            "counter",
            "Failed upload attempts (each retry counts).",
            vec![format!(" {}", crate::storage::uploader::failed_attempts())],
        );
        f(
            "tessera_io_updates_queued",
            "gauge",
            "Status updates waiting to reach livekit-server.",
            vec![format!(" {}", s.io_queued)],
        );
    }
}

/// Writes one metric family: `name`'s help and type, then one line per row.
type Family<'a> = dyn FnMut(&str, &str, &str, Vec<String>) + 'a;

fn family(out: &mut String, name: &str, kind: &str, help: &str, rows: Vec<String>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for r in rows {
        let _ = writeln!(out, "{name}{r}");
    }
}

/// CPU load between two reads of `/proc/stat`'s first line.
#[derive(Default)]
pub struct CpuSampler {
    last: Option<(u64, u64)>,
    load: f64,
}

impl CpuSampler {
    /// The load (0..=1) since the last call (0 at the first).
    pub fn sample(&mut self) -> f64 {
        let Some((busy, total)) = read_proc_stat() else {
            return self.load;
        };
        if let Some((b0, t0)) = self.last
            && total > t0
        {
            self.load = (busy - b0.min(busy)) as f64 / (total - t0) as f64;
        }
        self.last = Some((busy, total));
        self.load
    }
}

/// (busy, total) jiffies of all CPUs.
fn read_proc_stat() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    cpu_line(text.lines().next()?)
}

fn cpu_line(line: &str) -> Option<(u64, u64)> {
    let v: Vec<u64> = line
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_lines_parse() {
        assert_eq!(
            cpu_line("cpu  100 0 50 800 50 0 0 0 0 0"),
            Some((150, 1000))
        );
        assert_eq!(cpu_line("intr 1 2"), None);
    }

    #[test]
    fn the_exposition_has_each_family() {
        let m = Metrics::default();
        m.started("room_composite");
        m.ended("room_composite", "EGRESS_COMPLETE", 300, 2);
        m.refused("capacity");
        let mut s = Snapshot {
            compositor: "cpu".into(),
            encoder: "x264enc".into(),
            capacity: 2.0,
            ..Default::default()
        };
        s.active.insert("web".into(), 1);
        let text = m.render(&s);
        for line in [
            "tessera_egress_active{type=\"web\"} 1",
            "tessera_egress_started_total{type=\"room_composite\"} 1",
            "tessera_egress_ended_total{type=\"room_composite\",status=\"EGRESS_COMPLETE\"} 1",
            "tessera_admission_refusals_total{reason=\"capacity\"} 1",
            "tessera_frames_composited_total 300",
            "tessera_frames_late_total 2",
            "tessera_encoder_info{encoder=\"x264enc\"} 1",
            "tessera_upload_queue_depth ",
            "# TYPE tessera_cpu_load gauge",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
