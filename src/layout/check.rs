//! Warnings for layouts that compile but probably do not do what the author meant:
//! regions that overlap on the same level, rules that never apply, and participant
//! counts no rule covers. (Regions off the canvas are caught while compiling.)

use super::diag::{Diagnostic, Severity};
use super::geometry::{Rect, overlaps};
use super::model::Layout;

/// Counts checked for coverage: beyond this every open range behaves the same.
const CHECKED_COUNTS: usize = 64;

/// The warnings for a compiled layout; `file` and `text` place them.
pub fn warnings(layout: &Layout, file: &str, text: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let warn = |span: std::ops::Range<usize>, message: String, hint: &str| {
        Diagnostic::at(
            Severity::Warning,
            file,
            text,
            span,
            message,
            Some(hint.to_owned()),
        )
    };
    for rule in &layout.rules {
        for (j, b) in rule.regions.iter().enumerate() {
            for (i, a) in rule.regions[..j].iter().enumerate() {
                let ra = area_rect(a.area);
                let rb = area_rect(b.area);
                if a.z == b.z && overlaps(&ra, &rb) {
                    out.push(warn(
                        b.spans.0.clone(),
                        format!(
                            "region {} of this rule overlaps region {} (both z = {})",
                            j + 1,
                            i + 1,
                            a.z
                        ),
                        "give the region meant to be on top a higher z (picture-in-picture), or change the areas",
                    ));
                }
            }
        }
    }
    for (k, rule) in layout.rules.iter().enumerate() {
        let reachable = (1..=CHECKED_COUNTS).any(|n| {
            [false, true].into_iter().any(|share| {
                rule.applies(n, share) && !layout.rules[..k].iter().any(|r| r.applies(n, share))
            })
        });
        if !reachable {
            out.push(warn(
                rule.span.clone(),
                format!("rule {} never applies: earlier rules match all its cases", k + 1),
                "rules are tried in order and the first match wins; move it up or narrow the earlier ones",
            ));
        }
    }
    for share in [false, true] {
        if let Some(n) =
            (1..=CHECKED_COUNTS).find(|&n| !layout.rules.iter().any(|r| r.applies(n, share)))
        {
            let last = layout.rules.last().expect("a layout has rules");
            out.push(warn(
                last.span.clone(),
                format!(
                    "no rule matches {n} participant{} {} a screen share; the last rule is used",
                    if n == 1 { "" } else { "s" },
                    if share { "with" } else { "without" }
                ),
                "end with a catch-all rule (participants = \"1+\", no screen_share condition)",
            ));
        }
    }
    out
}

fn area_rect(a: [f32; 4]) -> Rect {
    Rect {
        x: a[0],
        y: a[1],
        w: a[2],
        h: a[3],
    }
}
