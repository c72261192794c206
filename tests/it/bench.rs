//! The capacity harness end to end, tiny: up to 2 rooms of 2 participants, 2 s per step,
//! with the GStreamer baseline. It must finish and write a valid report, Markdown, SVG and
//! cost profile, and compare two reports.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// `tessera bench ARGS --out OUT`.
fn bench(args: &[&str], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("bench")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn a_tiny_ramp_writes_a_valid_report() {
    let _shared = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let run = bench(
        &[
            "--participants",
            "2",
            "--step-seconds",
            "2",
            "--max-rooms",
            "2",
        ],
        &out,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // Progress, a line per step.
    assert!(stderr.contains("bench: tessera: 1 room(s): "), "{stderr}");

    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let steps = report["tessera"]["steps"].as_array().unwrap();
    assert!(!steps.is_empty() && steps.len() <= 2);
    assert_eq!(steps[0]["rooms"], 1);
    let max = report["tessera"]["max_rooms"].as_u64().unwrap();
    assert!(max <= 2);
    // The compositor `auto` chose: the CPU one here (lavapipe is the only adapter), whose
    // work is frame-loop time; the GPU one's on a software adapter shows as its threads.
    let compositor = report["machine"]["gpu"].as_str().unwrap();
    assert!(
        compositor == "cpu" || compositor.starts_with("gpu: "),
        "{compositor}"
    );
    let mut classes_wanted = vec!["decode", "encode", "frame_loop"];
    if compositor.ends_with("(Cpu)") {
        classes_wanted.push("gpu_software");
    }
    for s in steps {
        assert!(s["seconds"].as_f64().unwrap() >= 1.9);
        assert!(s["cpu_cores"].as_f64().unwrap() > 0.0);
        let classes = s["cpu_cores_by_class"].as_object().unwrap();
        for &class in &classes_wanted {
            assert!(classes.contains_key(class), "{class} in {classes:?}");
        }
        assert!(s["stage_ms_per_frame"]["composite"].as_f64().unwrap() > 0.0);
        // The GPU compositor's frames go out in batched submissions: at least one frame
        // in each; the CPU compositor submits nothing.
        match s["frames_per_submission"].as_f64() {
            Some(n) => assert!(compositor.starts_with("gpu: ") && n >= 1.0, "{n}"),
            None => assert_eq!(compositor, "cpu"),
        }
    }
    // The participants' decoder, from the decoder probe, with where it runs.
    let decoder = report["machine"]["decoder"].as_str().unwrap();
    assert!(
        decoder.ends_with("(Software)")
            || decoder.ends_with("(Nvdec)")
            || decoder.ends_with("(Vaapi)"),
        "{decoder}"
    );
    assert!(!report["gstreamer"]["steps"].as_array().unwrap().is_empty());
    let cores = report["machine"]["cores"].as_u64().unwrap() as f64;
    assert_eq!(
        report["livekit_model"]["max_rooms"].as_u64().unwrap(),
        (cores * 0.8 / 4.0).floor() as u64
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| tessera | **"), "{md}");
    let svg = std::fs::read_to_string(out.join("report.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
    let profile: Value =
        serde_json::from_slice(&std::fs::read(out.join("cost-profile.json")).unwrap()).unwrap();
    let shape = "2p-640x360-h264-grid-H264_720P_30-file";
    assert!(
        profile["shapes"][shape]["cpu_cores_per_room"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    let cmp = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["bench", "compare"])
        .arg(out.join("report.json"))
        .arg(out.join("report.json"))
        .output()
        .unwrap();
    assert!(cmp.status.success());
    let table = String::from_utf8_lossy(&cmp.stdout);
    assert!(
        table.contains(&format!("| max rooms | {max}.00 | {max}.00 |")),
        "{table}"
    );
}

#[test]
fn bad_shapes_are_refused_naming_the_option() {
    let _shared = common::shared();
    for (args, expect) in [
        (vec!["--input", "641x360"], "--input"),
        (vec!["--codec", "av1"], "--codec"),
        (vec!["--outputs", "file,srt"], "--outputs"),
        (vec!["--layout", "nope"], "layout"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = bench(&args, dir.path());
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}

/// `--outputs rtmp`: the harness starts its own nginx-rtmp on loopback, every room
/// streams to it for the whole step (a stream that fails would fail the room), and the
/// sink is gone afterwards.
#[test]
fn an_rtmp_bench_streams_to_a_sink_it_starts() {
    let _shared = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let run = bench(
        &[
            "--participants",
            "1",
            "--outputs",
            "rtmp",
            "--step-seconds",
            "2",
            "--max-rooms",
            "1",
            "--no-baseline",
        ],
        &out,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("bench: RTMP sink rtmp://127.0.0.1:"),
        "{stderr}"
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let step = &report["tessera"]["steps"][0];
    assert_eq!(step["failures"].as_array().unwrap().len(), 0, "{step}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("writes the MP4 file only"), "{notes}");
    // nginx was started with its configuration under the output directory; none is
    // left running with it.
    let conf = out.join("rtmp-sink/nginx.conf");
    assert!(conf.exists());
    let ps = Command::new("pgrep")
        .args(["-f", &conf.display().to_string()])
        .output()
        .unwrap();
    assert!(!ps.status.success(), "nginx is still running");
}
