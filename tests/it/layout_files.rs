//! Layout template files from `--layouts DIR`: a custom file drives the geometry of the
//! recording, and a broken one is refused with its file, line and column.

use crate::common;

use common::*;
use tessera::source::synthetic::participant_color;

/// Participants stacked in one column of four rows, on a red background, no padding,
/// no labels.
const STACKED: &str = r##"
name = "stacked"
[theme.dark]
background = "#ff0000"
tile = "#000000"
[style]
fit = "cover"
labels = false
[[rule]]
[[rule.region]]
area = [0, 0, 1, 1]
show = "everyone"
columns = 1
rows = 4
"##;

#[test]
fn a_custom_layout_file_drives_the_recording() {
    let _shared = common::shared();
    let layouts = tempfile::tempdir().unwrap();
    std::fs::write(layouts.path().join("stacked.toml"), STACKED).unwrap();
    let request = r#"{"room_name": "l", "layout": "stacked",
        "advanced": {"width": 640, "height": 360}, "file_outputs": [{"filepath": "l.mp4"}]}"#;
    let run = tessera_run(
        request,
        &[
            "--room",
            "synthetic:2",
            "--duration",
            "1",
            "--fast",
            "--layouts",
            layouts.path().to_str().unwrap(),
        ],
    );
    assert!(run.output.status.success(), "{}", run.stderr());
    let frame = frame_rgb(&run.file(), 0.5, 640, 360);
    // Two rows of 180 px, full width (cover): participant 1 on top, 2 below.
    for (i, y) in [(0, 90), (1, 270)] {
        let got = mean_rgb(&frame, 640, 320, y, 4);
        let want = participant_color(i);
        assert!(
            (0..3).all(|c| (got[c] - want[c] as f64).abs() <= 20.0),
            "row {i}: {got:?} vs {want:?}"
        );
    }
}

#[test]
fn a_broken_layout_file_is_refused_with_its_position() {
    let _shared = common::shared();
    let layouts = tempfile::tempdir().unwrap();
    std::fs::write(
        layouts.path().join("broken.toml"),
        "name = \"broken\"\n[style\npadding = 0\n",
    )
    .unwrap();
    let run = tessera_run(
        r#"{"room_name": "l", "file_outputs": [{}]}"#,
        &["--layouts", layouts.path().to_str().unwrap()],
    );
    let stderr = run.stderr();
    assert!(!run.output.status.success());
    assert!(stderr.contains("broken.toml:2:"), "{stderr}");
    assert!(files_under(&run.dir.path().join("out")).is_empty());
}
