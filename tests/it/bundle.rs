//! The GPU-node bundle (`scripts/package.sh`), unpacked into a temporary directory and run
//! with the system's GStreamer hidden: in a private mount namespace its plugin and scanner
//! directories are empty and its libraries (`libgst*`) are empty files, the host's Vulkan
//! drivers and layers are hidden, and the environment is clean. `tessera probe` must name
//! only the bundle's files, a synthetic egress must record through the bundle's GStreamer
//! (and, in the lavapipe flavour, composite on its software Vulkan adapter), and the
//! dynamic loader's trace must show no library loaded from outside the bundle but glibc's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;

/// Makes the system's GStreamer and Vulkan drivers invisible, then runs the command.
const HIDE: &str = r#"set -e
L=/usr/lib/x86_64-linux-gnu
for d in $L/gstreamer-1.0 $L/gstreamer1.0 /usr/share/vulkan/icd.d /usr/share/vulkan/implicit_layer.d \
  /usr/share/vulkan/explicit_layer.d /etc/vulkan /usr/share/glvnd; do
  [ -d "$d" ] && mount -t tmpfs none "$d"
done
for f in $L/libgst*.so.*; do mount --bind /dev/null "$f"; done
exec "$@"
"#;

/// Libraries the bundle leaves to the host: glibc (the loader must match it).
const HOST: [&str; 8] = [
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libresolv.so.2",
    "libmvec.so.1",
];

/// Whether this process may make a private mount namespace (root with CAP_SYS_ADMIN).
fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

struct Bundle {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

fn package(flavour: &[&str]) -> Bundle {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tessera");
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/package.sh"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_tessera"))
        .arg("--dir")
        .arg(&root)
        .args(flavour)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "package.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Bundle { tmp, root }
}

impl Bundle {
    /// Runs the bundle's launcher with the system's GStreamer hidden, a clean environment,
    /// and the loader tracing every library it initialises.
    fn run(&self, args: &[&str]) -> Output {
        let hide = self.tmp.path().join("hide.sh");
        std::fs::write(&hide, HIDE).unwrap();
        let home = self.tmp.path().join("home");
        std::fs::create_dir_all(self.tmp.path().join("trace")).unwrap();
        // Without the right to make a mount namespace (a container without
        // CAP_SYS_ADMIN), the system's GStreamer stays visible; the loader's trace still
        // proves that nothing outside the bundle was loaded.
        let (mut cmd, extra) = if can_unshare() {
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "bash"])
                .arg(&hide);
            (c, vec![])
        } else {
            eprintln!("bundle: no mount namespace here; the system's GStreamer is not hidden");
            // The host's Vulkan drivers and implicit layers stay out all the same: the
            // only driver is the bundle's lavapipe (absent from the default flavour).
            let lvp = self.root.join("share/vulkan/icd.d/lvp_icd.x86_64.json");
            let vk = vec![
                format!("VK_DRIVER_FILES={}", lvp.display()),
                "VK_LOADER_LAYERS_DISABLE=~implicit~".to_owned(),
            ];
            (Command::new("env"), vk)
        };
        let out = cmd
            .args(["env", "-i", "PATH=/usr/bin:/bin", "LD_DEBUG=libs"])
            .args(&extra)
            .arg(format!("HOME={}", home.display()))
            .arg(format!("XDG_RUNTIME_DIR={}", self.tmp.path().display()))
            .arg(format!(
                "LD_DEBUG_OUTPUT={}",
                self.tmp.path().join("trace/ld").display()
            ))
            .arg(self.root.join("bin/tessera"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bundle's tessera {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Every library the loader initialised for the bundle's programs in the runs so far
    /// (tessera and the plugin scanner; the launcher's shell tools are the host's).
    fn loaded(&self) -> Vec<String> {
        let mut libs = Vec::new();
        for entry in std::fs::read_dir(self.tmp.path().join("trace")).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            // One file per process. The launcher's own tools (coreutils) run in processes
            // of their own and are the host's: skipped. The launcher's shell execs tessera
            // in its process, so that file also holds the shell's libc.
            let ours = text
                .lines()
                .filter_map(|l| l.split_once("initialize program: "))
                .any(|(_, program)| Path::new(program.trim()).starts_with(&self.root));
            if ours {
                libs.extend(
                    text.lines()
                        .filter_map(|l| l.split_once("calling init: "))
                        .map(|(_, lib)| lib.trim().to_owned()),
                );
            }
        }
        libs.sort();
        libs.dedup();
        libs
    }

    fn assert_only_bundle_libraries(&self) {
        let libs = self.loaded();
        assert!(
            libs.iter().any(|l| l.ends_with("libgstreamer-1.0.so.0")),
            "the trace has GStreamer: {libs:?}"
        );
        let outside: Vec<_> = libs
            .iter()
            .filter(|l| !Path::new(l).starts_with(&self.root))
            .filter(|l| !HOST.iter().any(|h| l.ends_with(&format!("/{h}"))))
            .collect();
        assert!(
            outside.is_empty(),
            "loaded from outside the bundle: {outside:?}"
        );
    }
}

fn probe_lines(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every `from PATH` and the GStreamer library line name a file inside the bundle.
fn assert_probe_names_the_bundle(probe: &str, root: &Path) {
    let root = root.display().to_string();
    let gst = probe
        .lines()
        .find(|l| l.starts_with("gstreamer: "))
        .expect("a gstreamer line");
    assert!(
        gst.contains(&format!("{root}/lib/libgstreamer-1.0.so")),
        "{probe}"
    );
    let from: Vec<_> = probe
        .lines()
        .filter_map(|l| l.split_once(", from ").map(|(_, p)| p))
        .collect();
    assert!(from.len() >= 6, "encoder, AAC and four decoders: {probe}");
    for path in from {
        assert!(
            path.starts_with(&format!("{root}/lib/gstreamer-1.0/")),
            "{probe}"
        );
    }
    assert!(probe.contains("video encoder: x264enc"), "{probe}");
    assert!(probe.contains("audio encoder (AAC): voaacenc"), "{probe}");
    assert!(probe.contains("H.264: openh264dec (Software)"), "{probe}");
}

#[test]
fn the_bundle_records_with_only_its_own_gstreamer_and_vulkan() {
    let _g = common::shared();
    let bundle = package(&["--with-lavapipe"]);
    let probe = probe_lines(&bundle.run(&["probe"]));
    assert_probe_names_the_bundle(&probe, &bundle.root);
    assert!(
        probe.contains("gpu: llvmpipe"),
        "the bundle's lavapipe: {probe}"
    );

    let out_dir = bundle.tmp.path().join("out");
    let out_arg = out_dir.display().to_string();
    let run = bundle.run(&[
        "run",
        "--room",
        "synthetic:4",
        "--duration",
        "3",
        "--compositor",
        "gpu",
        "--out",
        &out_arg,
    ]);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(
        log.contains("llvmpipe"),
        "composited on the bundle's lavapipe: {log}"
    );
    let mp4 = common::files_under(&out_dir)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "mp4"))
        .expect("an MP4");
    let info = common::ffprobe(&mp4);
    assert_eq!(common::stream(&info, "video")["codec_name"], "h264");
    assert_eq!(common::stream(&info, "audio")["codec_name"], "aac");
    let duration = common::num(&info["format"]["duration"]);
    assert!((2.5..4.0).contains(&duration), "duration {duration}");
    bundle.assert_only_bundle_libraries();
}

#[test]
fn the_default_bundle_has_no_software_vulkan_and_composites_on_the_cpu() {
    let _g = common::shared();
    let bundle = package(&[]);
    assert!(!bundle.root.join("lib/libLLVM-15.so.1").exists());
    let manifest = std::fs::read_to_string(bundle.root.join("share/tessera/MANIFEST.txt")).unwrap();
    assert!(
        manifest.contains("libgstx264.so\tgstreamer1.0-plugins-ugly"),
        "{manifest}"
    );
    let probe = probe_lines(&bundle.run(&["probe"]));
    assert_probe_names_the_bundle(&probe, &bundle.root);
    assert!(probe.contains("compositor (auto): cpu"), "{probe}");
    bundle.assert_only_bundle_libraries();
}
