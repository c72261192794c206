//! Reference images of every built-in layout at 1, 2, 3, 4, 6, 9, 16 and 25 participants,
//! with and without a screen share, rendered by the real compositor (lavapipe in CI) with
//! the preview's synthetic participants: participant 2 is the active speaker (from 2 on)
//! and participant 3 has no camera (from 3 on), so highlights and placeholders are in the
//! pictures too.
//!
//! Tolerance: lavapipe is deterministic, but text anti-aliasing and bilinear filtering may
//! differ by a level or two elsewhere, so a picture matches when its mean absolute
//! difference is at most 1.0 level and at most 0.5% of its values differ by more than 8.
//! The CPU compositor (`--compositor cpu`, what `auto` picks where the only adapter is a
//! software one) is held to the same references with one difference stated: up to 1.25%
//! of values may differ by more than 8. It filters a scaled picture's chroma straight
//! from the 4:2:0 samples where the GPU first gives each 2x2 block its sample and
//! converts to RGB (clamping colours outside the RGB cube, such as the synthetic
//! slide's title-bar edge), so sharp colour edges inside scaled pictures land up to a
//! chroma sample apart. Misplaced edges, corners or text exceed it (a chroma block
//! drawn twice at a tile's split line gave 3.9%).
//! A mismatch writes the picture and an amplified difference image under
//! `target/golden-diff/`. To regenerate the references after an intended change:
//! `TESSERA_BLESS=1 cargo test --test core layout_golden`, then look at the pictures.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use tessera::compositor::preview::{PreviewSpec, RgbImage, render_with};
use tessera::compositor::{Backend, BackendChoice, Compositor};
use tessera::layout::LayoutLibrary;

const SIZE: (u32, u32) = (480, 270);
const COUNTS: [usize; 8] = [1, 2, 3, 4, 6, 9, 16, 25];
const MAX_MEAN_ABS_DIFF: f64 = 1.0;
const PIXEL_TOLERANCE: i32 = 8;
const MAX_VALUES_OFF: f64 = 0.005;
const MAX_VALUES_OFF_CPU: f64 = 0.0125;

/// One compositor per backend for all pictures (they are the same size).
fn compositor(cpu: bool) -> &'static Mutex<Compositor> {
    static GPU: OnceLock<Mutex<Compositor>> = OnceLock::new();
    static CPU: OnceLock<Mutex<Compositor>> = OnceLock::new();
    let (cell, backend) = if cpu {
        (&CPU, BackendChoice::Cpu)
    } else {
        (&GPU, BackendChoice::Gpu)
    };
    cell.get_or_init(|| {
        let b = Backend::open(backend).expect("a GPU adapter (lavapipe in CI)");
        Mutex::new(b.compositor(SIZE.0, SIZE.1).unwrap())
    })
}

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/layouts")
}

/// Compares with the reference; `Err` says why (and writes the diff images).
fn compare(name: &str, got: &RgbImage, cpu: bool) -> Result<(), String> {
    let path = reference_dir().join(format!("{name}.png"));
    if std::env::var_os("TESSERA_BLESS").is_some() && !cpu {
        std::fs::create_dir_all(reference_dir()).unwrap();
        got.write_png(&path).unwrap();
        return Ok(());
    }
    let want = RgbImage::read_png(&path).map_err(|e| format!("{name}: reference: {e}"))?;
    if (want.width, want.height) != (got.width, got.height) {
        return Err(format!("{name}: size differs"));
    }
    let diffs: Vec<i32> = want
        .rgb
        .iter()
        .zip(&got.rgb)
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .collect();
    let mean = diffs.iter().map(|d| *d as f64).sum::<f64>() / diffs.len() as f64;
    let off = diffs.iter().filter(|d| **d > PIXEL_TOLERANCE).count() as f64 / diffs.len() as f64;
    let max_off = if cpu {
        MAX_VALUES_OFF_CPU
    } else {
        MAX_VALUES_OFF
    };
    if mean <= MAX_MEAN_ABS_DIFF && off <= max_off {
        return Ok(());
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/golden-diff");
    std::fs::create_dir_all(&out).unwrap();
    let name = format!("{name}{}", if cpu { "-cpu" } else { "" });
    got.write_png(&out.join(format!("{name}-got.png"))).unwrap();
    let diff = RgbImage {
        width: got.width,
        height: got.height,
        rgb: diffs.iter().map(|d| (d * 8).min(255) as u8).collect(),
    };
    diff.write_png(&out.join(format!("{name}-diff.png")))
        .unwrap();
    Err(format!(
        "{name}: mean diff {mean:.3}, {:.3}% of values off by more than {PIXEL_TOLERANCE} (see {})",
        off * 100.0,
        out.display()
    ))
}

fn check_layout(layout: &str, cpu: bool) {
    let resolved = LayoutLibrary::builtin().resolve(layout).unwrap();
    let mut failures = Vec::new();
    for n in COUNTS {
        for share in [false, true] {
            let spec = PreviewSpec {
                participants: n,
                screen_share: share,
                speaker: (n >= 2).then_some(1),
                no_camera: if n >= 3 { vec![2] } else { vec![] },
                width: SIZE.0,
                height: SIZE.1,
                captions: Vec::new(),
            };
            let got = render_with(&mut compositor(cpu).lock().unwrap(), &resolved, &spec).unwrap();
            let name = format!("{layout}-{n}{}", if share { "-share" } else { "" });
            if let Err(e) = compare(&name, &got, cpu) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn grid() {
    check_layout("grid", false);
}

#[test]
fn speaker() {
    check_layout("speaker", false);
}

#[test]
fn single_speaker() {
    check_layout("single-speaker", false);
}

#[test]
fn presentation() {
    check_layout("presentation", false);
}

#[test]
fn pip() {
    check_layout("pip", false);
}

/// The light themes differ from the dark ones only in colours: one picture each.
#[test]
fn light_themes() {
    light(false);
}

fn light(cpu: bool) {
    let layouts = ["grid", "speaker", "single-speaker", "presentation", "pip"];
    let named: Vec<(String, String)> = layouts
        .iter()
        .map(|l| (format!("{l}-light"), format!("{l}-light-4")))
        .collect();
    four_people(&named, Vec::new(), cpu);
}

/// Each `(layout, reference)` with 4 people, participant 2 speaking and participant 3
/// without a camera, and `captions` burned in.
fn four_people(named: &[(String, String)], captions: Vec<(usize, String)>, cpu: bool) {
    let mut failures = Vec::new();
    for (layout, reference) in named {
        let resolved = LayoutLibrary::builtin().resolve(layout).unwrap();
        let spec = PreviewSpec {
            participants: 4,
            screen_share: false,
            speaker: Some(1),
            no_camera: vec![2],
            width: SIZE.0,
            height: SIZE.1,
            captions: captions.clone(),
        };
        let got = render_with(&mut compositor(cpu).lock().unwrap(), &resolved, &spec).unwrap();
        if let Err(e) = compare(reference, &got, cpu) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Burned-in captions in each built-in layout's caption region (its default: two lines
/// at the bottom, speakers named), dark and light: the wrapped text, its boxes, the
/// newest lines only.
#[test]
fn burned_in_captions() {
    captions(false);
}

fn captions(cpu: bool) {
    let named: Vec<(String, String)> = ["grid", "speaker-light", "pip"]
        .iter()
        .map(|l| (l.to_string(), format!("{l}-4-captions")))
        .collect();
    let captions = vec![
        (1, "An older line that scrolls away.".into()),
        (
            1,
            "Welcome, everyone: thanks for joining the review.".into(),
        ),
        (0, "Thanks & hello!".into()),
    ];
    four_people(&named, captions, cpu);
}

/// The CPU compositor (what `auto` picks on a machine whose only adapter is a software
/// one) draws every reference picture within the same tolerance as the GPU.
#[test]
fn cpu_compositor_matches_every_reference() {
    for layout in ["grid", "speaker", "single-speaker", "presentation", "pip"] {
        check_layout(layout, true);
    }
    light(true);
    captions(true);
}
