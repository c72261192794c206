//! Transitions: when the layout moves a tile (someone joins or leaves, the speaker
//! changes), the tile glides from where it was to where it goes over the layout's
//! `transition` time instead of jumping. Keyed by [`Placement::key`], so a participant's
//! tile is followed across evaluations.

use std::collections::HashMap;
use std::time::Duration;

use super::eval::{Placement, Roster};
use super::geometry::Rect;

#[derive(Clone, Copy, Debug)]
struct Track {
    from: Rect,
    to: Rect,
    start: Duration,
}

/// Follows tiles between frames and eases their moves.
#[derive(Debug, Default)]
pub struct Animator {
    tracks: HashMap<String, Track>,
}

/// Smooth start and stop (cubic ease-in-out), `t` in 0..=1.
fn ease(t: f32) -> f32 {
    if t < 0.5 {
        4.0 * t * t * t
    } else {
        1.0 - (-2.0 * t + 2.0).powi(3) / 2.0
    }
}

fn lerp(a: Rect, b: Rect, t: f32) -> Rect {
    let l = |x: f32, y: f32| (x + (y - x) * t).round();
    Rect {
        x: l(a.x, b.x),
        y: l(a.y, b.y),
        w: l(a.w, b.w),
        h: l(a.h, b.h),
    }
}

impl Track {
    fn at(&self, now: Duration, duration: Duration) -> Rect {
        if duration.is_zero() || now >= self.start + duration {
            return self.to;
        }
        let t = (now.saturating_sub(self.start)).as_secs_f32() / duration.as_secs_f32();
        lerp(self.from, self.to, ease(t))
    }
}

impl Animator {
    /// A new animator with nothing on screen.
    pub fn new() -> Animator {
        Animator::default()
    }

    /// Moves each placement's cell to where its tile is at `now`: tiles new to the screen
    /// appear in place; a tile whose target moved starts gliding from where it is now.
    pub fn animate(
        &mut self,
        now: Duration,
        duration: Duration,
        roster: &Roster<'_>,
        placements: &mut [Placement],
    ) {
        let mut next = HashMap::with_capacity(placements.len());
        for p in placements.iter_mut() {
            let key = p.key(roster);
            let track = match self.tracks.remove(&key) {
                Some(t) if t.to == p.cell => t,
                Some(t) => Track {
                    from: t.at(now, duration),
                    to: p.cell,
                    start: now,
                },
                None => Track {
                    from: p.cell,
                    to: p.cell,
                    start: now,
                },
            };
            p.cell = track.at(now, duration);
            next.insert(key, track);
        }
        self.tracks = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Fit;
    use crate::layout::eval::{Content, Member};
    use crate::layout::model::TileStyle;

    fn placement(x: f32) -> Placement {
        Placement {
            content: Content::Camera(0),
            cell: Rect {
                x,
                y: 0.0,
                w: 100.0,
                h: 100.0,
            },
            z: 0,
            style: TileStyle {
                fit: Fit::Cover,
                radius: 0.0,
                border: 0.0,
                highlight: 0.0,
                labels: false,
            },
            speaking: false,
            region: 0,
        }
    }

    #[test]
    fn a_moved_tile_glides_and_arrives() {
        let m = [Member {
            identity: "a".into(),
            name: String::new(),
            aspect: None,
        }];
        let roster = Roster {
            members: &m,
            screen_share: None,
            speaker: None,
        };
        let d = Duration::from_millis(400);
        let mut anim = Animator::new();
        let at = |anim: &mut Animator, ms: u64, x: f32| {
            let mut p = [placement(x)];
            anim.animate(Duration::from_millis(ms), d, &roster, &mut p);
            p[0].cell.x
        };
        assert_eq!(at(&mut anim, 0, 0.0), 0.0); // appears in place
        assert_eq!(at(&mut anim, 100, 400.0), 0.0); // starts moving
        assert_eq!(at(&mut anim, 300, 400.0), 200.0); // halfway (eased)
        let x = at(&mut anim, 400, 400.0);
        assert!(x > 300.0 && x < 400.0, "{x}");
        assert_eq!(at(&mut anim, 500, 400.0), 400.0); // arrived
        // Redirected mid-way: continues from where it is.
        at(&mut anim, 600, 0.0);
        assert_eq!(at(&mut anim, 800, 0.0), 200.0);
        // Without a duration tiles jump.
        let mut p = [placement(1000.0)];
        anim.animate(Duration::from_millis(900), Duration::ZERO, &roster, &mut p);
        assert_eq!(p[0].cell.x, 1000.0);
    }
}
