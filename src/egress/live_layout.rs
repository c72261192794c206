//! The layout of a running egress: evaluated every frame for who is in the room, who is
//! speaking (from the audio levels) and whether a screen is shared; switched by LiveKit's
//! `UpdateLayout`; and reloaded when its template file changes on disk, without a break
//! in the recording (a broken edit is logged and the last good layout stays).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::audio::speaker::SpeakerDetector;
use crate::compositor::Scene;
use crate::compositor::scene::{Director, Pictures, compose};
use crate::layout::{
    Content, Fit, LayoutError, LayoutLibrary, Member, ResolvedLayout, Theme, load_file,
};
use crate::source::PictureSizes;

/// How often the template file's modification time is looked at (media time).
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// A layout file being watched: its path and the modification time last loaded.
#[derive(Debug)]
struct Watched {
    path: PathBuf,
    modified: Option<SystemTime>,
    checked_at: Duration,
}

/// The live layout of one egress.
#[derive(Debug)]
pub struct LiveLayout {
    current: ResolvedLayout,
    library: LayoutLibrary,
    watched: Option<Watched>,
    director: Director,
    speaker: SpeakerDetector,
    sizes: PictureSizes,
}

/// The size a picture of `aspect` is drawn at in a `w` x `h` cell (the cell itself
/// while its aspect is unknown).
fn drawn_size(w: f32, h: f32, aspect: Option<f32>, fit: Fit) -> (u32, u32) {
    let (w, h) = match aspect {
        Some(a) if a > 0.0 && h > 0.0 => {
            let wider = a > w / h;
            match (fit, wider) {
                (Fit::Contain, true) | (Fit::Cover, false) => (w, w / a),
                (Fit::Contain, false) | (Fit::Cover, true) => (h * a, h),
            }
        }
        _ => (w, h),
    };
    (w.round() as u32, h.round() as u32)
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl LiveLayout {
    /// Starts with `layout`; `library` resolves later `UpdateLayout` names.
    pub fn new(layout: ResolvedLayout, library: LayoutLibrary) -> LiveLayout {
        let mut live = LiveLayout {
            watched: None,
            current: layout,
            library,
            director: Director::new(),
            speaker: SpeakerDetector::new(),
            sizes: PictureSizes::default(),
        };
        live.watch();
        live
    }

    /// Watches the current layout's file, if it came from one.
    fn watch(&mut self) {
        self.watched = self
            .library
            .file_of(&self.current.requested)
            .map(|path| Watched {
                modified: modified(path),
                path: path.to_owned(),
                checked_at: Duration::ZERO,
            });
    }

    /// The layout name in use.
    pub fn name(&self) -> &str {
        &self.current.requested
    }

    /// The theme in use.
    pub fn theme(&self) -> &Theme {
        &self.current.theme
    }

    /// How the layout in use draws captions.
    pub fn caption_look(&self) -> crate::compositor::CaptionLook {
        crate::compositor::CaptionLook::of(&self.current)
    }

    /// LiveKit's `UpdateLayout`: switches to another layout by name. Tiles glide to
    /// their new places.
    pub fn update_layout(&mut self, name: &str) -> Result<(), LayoutError> {
        self.current = self.library.resolve(name)?;
        self.watch();
        tracing::info!(layout = %name, "layout updated");
        Ok(())
    }

    /// Reloads the template file if it changed since it was loaded (checked every
    /// [`WATCH_EVERY`] of media time). A file that no longer compiles is reported and
    /// the layout in use stays.
    pub fn poll_file(&mut self, now: Duration) {
        let Some(w) = self.watched.as_mut() else {
            return;
        };
        if now < w.checked_at + WATCH_EVERY {
            return;
        }
        w.checked_at = now;
        let m = modified(&w.path);
        if m == w.modified {
            return;
        }
        w.modified = m;
        match load_file(&w.path) {
            Ok((layout, warnings)) => {
                for warning in warnings {
                    tracing::warn!("{warning}");
                }
                let requested = &self.current.requested;
                let theme = self.library.theme_of(requested);
                match ResolvedLayout::with_theme(requested, Arc::new(layout), theme) {
                    Some(reloaded) => {
                        self.current = reloaded;
                        tracing::info!(file = %w.path.display(), "layout file reloaded");
                    }
                    None => tracing::warn!(
                        file = %w.path.display(),
                        "layout file reloaded without a {theme} theme; keeping the last good layout"
                    ),
                }
            }
            Err(e) => tracing::warn!("layout file not reloaded, keeping the last good layout: {e}"),
        }
    }

    /// Feeds participants' audio levels over a block of `block`.
    pub fn hear(&mut self, levels: &[f32], block: Duration) {
        self.speaker.update(levels, block);
    }

    /// The tile of each picture in the last [`LiveLayout::scenes`].
    pub fn picture_sizes(&self) -> &PictureSizes {
        &self.sizes
    }

    /// The scenes for several targets (index and size) at media time `now`.
    pub fn scenes<'a>(
        &'a mut self,
        targets: &[(usize, u32, u32)],
        members: &[Member],
        pictures: &Pictures<'a>,
        now: Duration,
    ) -> Vec<Scene<'a>> {
        let speaker = self.speaker.speaker();
        let placements: Vec<_> = targets
            .iter()
            .map(|&(k, w, h)| {
                self.director
                    .place(k, &self.current, members, speaker, pictures, w, h, now)
            })
            .collect();
        // Every frame: reuse the vector rather than allocate one.
        self.sizes.cameras.clear();
        self.sizes.cameras.resize(members.len(), None);
        self.sizes.screen_share = None;
        for p in placements.iter().flatten() {
            let aspect = match p.content {
                Content::Camera(i) => members.get(i).and_then(|m| m.aspect),
                Content::ScreenShare(_) => pictures.screen_share.map(|(_, f)| f.aspect()),
                Content::More(_) => None,
            };
            let size = drawn_size(p.cell.w, p.cell.h, aspect, p.style.fit);
            let larger = |slot: &mut Option<(u32, u32)>| {
                if slot.is_none_or(|(w, h)| w * h < size.0 * size.1) {
                    *slot = Some(size);
                }
            };
            match p.content {
                Content::Camera(i) => {
                    if let Some(slot) = self.sizes.cameras.get_mut(i) {
                        larger(slot);
                    }
                }
                Content::ScreenShare(_) => larger(&mut self.sizes.screen_share),
                Content::More(_) => {}
            }
        }
        targets
            .iter()
            .zip(&placements)
            .map(|(&(_, w, h), p)| compose(&self.current.theme, members, p, pictures, w, h))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Fit, drawn_size};

    #[test]
    fn pictures_are_asked_for_at_the_size_drawn() {
        // A 16:9 camera in a tall half-screen cell: contained, it is as wide as the cell.
        assert_eq!(
            drawn_size(630.0, 706.0, Some(16.0 / 9.0), Fit::Contain),
            (630, 354)
        );
        // Covering, it is as tall as the cell (and cropped at the sides).
        assert_eq!(
            drawn_size(630.0, 706.0, Some(16.0 / 9.0), Fit::Cover),
            (1255, 706)
        );
        assert_eq!(drawn_size(400.0, 300.0, None, Fit::Contain), (400, 300));
    }
}
