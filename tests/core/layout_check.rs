//! The template compiler's diagnostics: every error class with its exact message and
//! position, the warnings, `tessera layout check` on the command line, and a property
//! test that no input makes the compiler panic.

use proptest::prelude::*;
use tessera::layout::{Layout, Severity};

/// A valid layout the cases below break one piece at a time.
const BASE: &str = r##"name = "t"
[theme.dark]
background = "#000000"
tile = "#111111"
[style]
padding = 0.01
[[rule]]
when = { participants = "1-4" }
[[rule.region]]
area = [0, 0, 1, 1]
show = "everyone"
[[rule]]
[[rule.region]]
area = [0, 0, 0.5, 1]
show = "speaker"
[[rule.region]]
area = [0.5, 0, 0.5, 1]
show = "others"
"##;

fn error_of(text: &str) -> String {
    match Layout::compile("t.toml", text, None) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(d) => {
            assert_eq!(d.severity, Severity::Error);
            d.to_string()
        }
    }
}

fn warnings_of(text: &str) -> Vec<String> {
    let (_, w) = Layout::compile("t.toml", text, None).expect("compiles");
    w.iter().map(ToString::to_string).collect()
}

/// `(what is replaced, by what, the exact diagnostic)`.
const CASES: &[(&str, &str, &str)] = &[
    // TOML syntax.
    (
        "[style]",
        "[style",
        "t.toml:5:7: error: unclosed table, expected `]`\n  hint: layout files are TOML: text in double quotes, [tables] and [[lists]] in brackets",
    ),
    // Unknown field.
    (
        "padding = 0.01",
        "paddin = 0.01",
        "t.toml:6:1: error: unknown field `paddin`, expected one of `padding`, `gap`, `transition`, `fit`, `radius`, `border`, `highlight`, `labels`\n  hint: check the spelling; docs/layouts.md lists every field",
    ),
    // Missing field.
    (
        "show = \"others\"",
        "",
        "t.toml:16:1: error: missing field `show`\n  hint: add the field; docs/layouts.md lists the required ones",
    ),
    // Wrong type.
    (
        "padding = 0.01",
        "padding = \"small\"",
        "t.toml:6:11: error: invalid type: string \"small\", expected f64\n  hint: numbers are written bare (0.5), text in double quotes (\"speaker\")",
    ),
    // Bad colour.
    (
        "tile = \"#111111\"",
        "tile = \"grey\"",
        "t.toml:4:8: error: theme.dark.tile: \"grey\" is not a colour\n  hint: write colours as \"#rrggbb\" or \"#rrggbbaa\" (aa = opacity)",
    ),
    // Unknown theme.
    (
        "[theme.dark]",
        "[theme.dusk]",
        "t.toml:2:1: error: theme \"dusk\" is not \"dark\" or \"light\"\n  hint: LiveKit layouts come in NAME-dark and NAME-light; name the tables [theme.dark] and [theme.light]",
    ),
    // Number out of range.
    (
        "padding = 0.01",
        "padding = 0.4",
        "t.toml:6:11: error: padding must be at least 0 and below 0.25, got 0.4\n  hint: lengths are fractions of the output's shorter side (0.01 = 1%)",
    ),
    // Bad participant range.
    (
        "\"1-4\"",
        "\"4-1\"",
        "t.toml:8:25: error: participants: \"4-1\" is not a count or range\n  hint: write a count (\"2\"), a range (\"3-4\") or an open range (\"10+\")",
    ),
    // Unknown value.
    (
        "show = \"everyone\"",
        "show = \"everybody\"",
        "t.toml:11:8: error: show: unknown value \"everybody\"\n  hint: one of \"speaker\", \"screen_share\", \"others\", \"everyone\", \"pinned\"",
    ),
    // Pinned without identities.
    (
        "show = \"everyone\"",
        "show = \"pinned\"",
        "t.toml:11:8: error: show = \"pinned\" needs identities\n  hint: add identities = [\"alice\", \"bob\"]",
    ),
    // Area with the wrong count.
    (
        "area = [0, 0, 1, 1]",
        "area = [0, 0, 1]",
        "t.toml:10:8: error: area needs 4 numbers, got 3\n  hint: area = [x, y, width, height], fractions of the canvas: [0, 0, 1, 1] is all of it",
    ),
    // Area without size.
    (
        "area = [0, 0, 1, 1]",
        "area = [0, 0, 0, 1]",
        "t.toml:10:8: error: area width and height must be above 0\n  hint: area = [x, y, width, height], fractions of the canvas: [0, 0, 1, 1] is all of it",
    ),
    // Fixed grid out of range.
    (
        "show = \"everyone\"",
        "show = \"everyone\"\ncolumns = 17",
        "t.toml:12:11: error: columns must be 1 to 16, got 17",
    ),
    // Grid size on a row.
    (
        "show = \"everyone\"",
        "show = \"everyone\"\narrange = \"row\"\nrows = 2",
        "t.toml:13:8: error: columns and rows only apply to arrange = \"grid\"\n  hint: remove them, or set arrange = \"grid\"",
    ),
    // Transition out of range.
    (
        "padding = 0.01",
        "transition = 9",
        "t.toml:6:14: error: transition must be 0 to 5 seconds, got 9\n  hint: 0 turns animation off; 0.3 is a gentle default",
    ),
    // Images in built-ins.
    (
        "tile = \"#111111\"",
        "tile = \"#111111\"\nbackground_image = \"bg.png\"",
        "t.toml:5:20: error: theme.dark.background_image: built-in layouts cannot name image files\n  hint: copy the layout into a --layouts directory and put the image beside it",
    ),
];

#[test]
fn every_error_class_has_its_message_and_position() {
    for (from, to, want) in CASES {
        assert!(BASE.contains(from), "{from}");
        let text = BASE.replacen(from, to, 1);
        let got = error_of(&text);
        assert_eq!(&got, want, "replacing {from:?} by {to:?}");
    }
}

#[test]
fn a_missing_dark_theme_is_an_error() {
    let text = BASE.replace("[theme.dark]", "[theme.light]");
    assert_eq!(
        error_of(&text),
        "t.toml:2:2: error: a dark theme is required (plain layout names use it)\n  hint: add a [theme.dark] table with background and tile colours"
    );
}

#[test]
fn warnings_name_overlaps_dead_rules_gaps_and_the_off_canvas() {
    assert!(warnings_of(BASE).is_empty());
    // Overlap on the same level; a higher z is fine.
    let overlap = BASE.replace("area = [0.5, 0, 0.5, 1]", "area = [0.4, 0, 0.5, 1]");
    assert_eq!(
        warnings_of(&overlap),
        [
            "t.toml:16:1: warning: region 2 of this rule overlaps region 1 (both z = 0)\n  hint: give the region meant to be on top a higher z (picture-in-picture), or change the areas"
        ]
    );
    let pip = overlap.replace("show = \"others\"", "show = \"others\"\nz = 1");
    assert!(warnings_of(&pip).is_empty());
    // Off the canvas.
    let off = BASE.replace("area = [0.5, 0, 0.5, 1]", "area = [0.6, 0, 0.5, 1]");
    assert_eq!(
        warnings_of(&off),
        [
            "t.toml:17:8: warning: region falls off the canvas\n  hint: x + width and y + height should stay within 0..1"
        ]
    );
    // A rule shadowed by an earlier one, and counts no rule covers.
    let dead = BASE.replace(
        "[[rule]]\n[[rule.region]]\narea = [0, 0, 0.5, 1]",
        "[[rule]]\nwhen = { participants = \"2-3\" }\n[[rule.region]]\narea = [0, 0, 0.5, 1]",
    );
    let w = warnings_of(&dead);
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(
        w[0].starts_with("t.toml:12:1: warning: rule 2 never applies"),
        "{}",
        w[0]
    );
    assert!(
        w[1].contains("no rule matches 5 participants without a screen share"),
        "{}",
        w[1]
    );
    assert!(
        w[2].contains("no rule matches 5 participants with a screen share"),
        "{}",
        w[2]
    );
}

#[test]
fn the_built_in_and_example_layouts_check_clean() {
    for file in ["grid", "speaker", "single-speaker", "presentation", "pip"] {
        let path = format!("{}/layouts/{file}.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (_, w) = Layout::compile(&path, &text, None).unwrap();
        assert!(w.is_empty(), "{w:#?}");
    }
    for file in ["interview", "stage", "classroom"] {
        let path = format!(
            "{}/layouts/examples/{file}.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let (_, w) = tessera::layout::load_file(std::path::Path::new(&path)).unwrap();
        assert!(w.is_empty(), "{w:#?}");
    }
}

#[test]
fn layout_check_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, BASE.replace("tile = \"#111111\"", "tile = \"grey\"")).unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, BASE).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["layout", "check"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("{}: ok (2 rules, 0 warnings)", good.display())));
    assert!(
        stdout.contains(&format!("{}:4:8: error: theme.dark.tile", bad.display())),
        "{stdout}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["layout", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
}

proptest! {
    // 2000 cases in CI; `PROPTEST_CASES` (scripts/fuzz.sh) asks for more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000),
        ..ProptestConfig::default()
    })]

    /// Arbitrary text never panics the compiler.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = Layout::compile("p.toml", &text, None);
    }

    /// Valid TOML made of the format's own words, in random shapes, never panics it, and
    /// whatever compiles evaluates for any room without panicking.
    #[test]
    fn format_shaped_input_never_panics(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("[theme.dark]".to_string()),
                Just("[theme.light]".to_string()),
                Just("[style]".to_string()),
                Just("[[rule]]".to_string()),
                Just("[[rule.region]]".to_string()),
                "(background|tile|border|highlight) = \"#[0-9a-f]{6}\"",
                "(padding|gap|radius|border|highlight|transition) = -?[0-9]{1,2}\\.[0-9]{1,3}",
                "area = \\[(-?[0-9]\\.[0-9], ){3}-?[0-9]\\.[0-9]\\]",
                "show = \"(speaker|screen_share|others|everyone|pinned|x)\"",
                "(max|columns|rows|z) = -?[0-9]{1,3}",
                "arrange = \"(grid|row|column)\"",
                "when = \\{ participants = \"[0-9]{1,2}(-[0-9]{1,2}|\\+)?\" \\}",
                "identities = \\[\"p[0-9]\"\\]",
            ],
            0..40,
        ),
        n in 0usize..40,
        share in any::<bool>(),
        speaker in proptest::option::of(0usize..40),
    ) {
        let text = lines.join("\n");
        if let Ok((layout, _)) = Layout::compile("p.toml", &text, None) {
            let members: Vec<_> = (0..n)
                .map(|i| tessera::layout::Member {
                    identity: format!("p{i}"),
                    name: String::new(),
                    aspect: Some(1.5),
                })
                .collect();
            let roster = tessera::layout::Roster {
                members: &members,
                screen_share: share.then_some((0, 1.7)),
                speaker,
            };
            for (w, h) in [(1280, 720), (720, 1280), (16, 16)] {
                let placements = layout.place(&roster, w, h);
                for p in placements {
                    prop_assert!(p.cell.w.is_finite() && p.cell.h.is_finite());
                }
            }
        }
    }
}
