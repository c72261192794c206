//! What the process is using, read from `/proc/self`: CPU time per thread, grouped by
//! what the thread does (from its name), and resident memory.

use std::collections::BTreeMap;

/// Clock ticks per second of `/proc` CPU times (Linux's USER_HZ).
const TICKS_PER_S: f64 = 100.0;

/// What a thread's name says it does. Threads inherit their creator's name: decoder and
/// encoder threads take their queue's (`dec-N:src`, `enc-v0:src`), and the GPU driver's
/// threads the name of the thread that opened the device (`gpu-init`, see
/// [`super::run`]).
pub fn class_of(thread_name: &str) -> &'static str {
    if thread_name.starts_with("dec-")
        || thread_name.starts_with("qtdemux")
        || thread_name.starts_with("matroskademux")
    {
        "decode"
    } else if thread_name.starts_with("enc-") {
        "encode"
    } else if thread_name.starts_with("llvmpipe")
        || thread_name.starts_with("lavapipe")
        || thread_name.starts_with("gpu-")
    {
        "gpu_software"
    } else if thread_name.starts_with("egress-") {
        "frame_loop"
    } else {
        "mux_and_other"
    }
}

/// CPU seconds per thread class, summed over the live threads.
pub fn cpu_by_class() -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let dir = t.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue;
        };
        *out.entry(class_of(comm.trim())).or_insert(0.0) += stat_cpu(&stat);
    }
    out
}

/// user + system CPU seconds from a `stat` line (fields after the `(comm)`).
fn stat_cpu(stat: &str) -> f64 {
    let after = stat.rsplit_once(')').map_or(stat, |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // after ")": state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / TICKS_PER_S
}

/// The whole process's CPU seconds (every thread, including those that ended).
pub fn process_cpu() -> f64 {
    std::fs::read_to_string("/proc/self/stat").map_or(0.0, |s| stat_cpu(&s))
}

/// The text after the `:` of the first line of `/proc/...` file `path` that starts
/// with `key`, trimmed.
fn proc_value(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

/// Resident memory in MiB.
pub fn rss_mib() -> f64 {
    proc_value("/proc/self/status", "VmRSS:")
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

pub use crate::capacity::cores;

/// The CPU model, from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    proc_value("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_and_classes() {
        let stat = "123 (queue0:src (x)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        assert!((stat_cpu(stat) - 3.0).abs() < 1e-9);
        assert_eq!(class_of("dec-3:src"), "decode");
        assert_eq!(class_of("enc-v0:src"), "encode");
        assert_eq!(class_of("llvmpipe-1"), "gpu_software");
        assert_eq!(class_of("gpu-init"), "gpu_software");
        assert_eq!(class_of("qtdemux0:sink"), "decode");
        assert_eq!(class_of("egress-2"), "frame_loop");
        assert!(process_cpu() >= 0.0 && rss_mib() > 0.0);
    }
}
