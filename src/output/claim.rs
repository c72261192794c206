//! Who writes where. Each egress claims the local paths and store objects it writes for
//! as long as it runs; a second egress that resolves to the same one gets a clash error
//! that names it instead of writing over (or, after its upload, deleting) the first
//! one's recording. Local files an egress keeps are also created exclusively, so a file
//! left by an earlier run or written by another process is never overwritten.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// What this process's running egresses hold: local paths and `store/key` names.
static HELD: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// The directory an egress stages the files it uploads in: its own, under the output
/// directory, so two egresses never share a local file.
pub fn staging_dir(out_dir: &Path, egress_id: &str) -> PathBuf {
    out_dir.join(".staging").join(egress_id)
}

/// The file in a staging directory that says which stores its files were bound for:
/// one line per store, `default` (the worker's own storage) or `own` (the request's).
/// A worker that restarts after a crash resumes uploading what only went to `default`.
pub const STORES_NOTE: &str = ".stores";

/// Notes in `staging` that files bound for a store (the worker's default or not) are
/// staged there. Best effort: without the note a crash's leftovers are only reported.
pub fn note_store(staging: &Path, default: bool) {
    let line = if default { "default\n" } else { "own\n" };
    let r = std::fs::create_dir_all(staging).and_then(|()| {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(staging.join(STORES_NOTE))?
            .write_all(line.as_bytes())
    });
    if let Err(e) = r {
        tracing::debug!(error = %e, "cannot note the staging directory's stores");
    }
}

/// Why a target cannot be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClashError {
    /// Another running egress writes the same file or object.
    #[error("{0} is being written by another egress")]
    Held(String),
    /// A file already exists where this egress would keep its recording.
    #[error("{0} already exists; an egress never overwrites a recording")]
    Exists(String),
    /// The target could not be created.
    #[error("cannot create {path}: {source}")]
    Create {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The names one egress holds; released when dropped, when the files it created and
/// never wrote to (an egress that ended before recording) are removed.
#[derive(Debug, Default)]
pub struct Claims {
    held: Vec<String>,
    created: Vec<PathBuf>,
}

impl Claims {
    /// Claims `name` (a local path, or a store's description and an object key).
    pub fn claim(&mut self, name: String) -> Result<(), ClashError> {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.insert(name.clone()) {
            return Err(ClashError::Held(name));
        }
        self.held.push(name);
        Ok(())
    }

    /// Claims the object `key` in the store `store` describes.
    pub fn claim_object(&mut self, store: &str, key: &str) -> Result<(), ClashError> {
        self.claim(format!("{store}/{key}"))
    }

    /// Claims a local file and creates it, empty, failing if it already exists.
    pub fn create_file(&mut self, path: &Path) -> Result<(), ClashError> {
        self.claim(path.display().to_string())?;
        create_new(path)?;
        self.created.push(path.to_owned());
        Ok(())
    }

    /// Claims a local name that is written later (a playlist, a prefix), failing if a
    /// file is already there.
    pub fn claim_absent(&mut self, path: &Path) -> Result<(), ClashError> {
        self.claim(path.display().to_string())?;
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(ClashError::Exists(path.display().to_string()));
        }
        Ok(())
    }
}

impl Drop for Claims {
    fn drop(&mut self) {
        for path in &self.created {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = std::fs::remove_file(path);
            }
        }
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        for name in &self.held {
            held.remove(name);
        }
    }
}

/// Creates `path` empty, never following a link and never opening an existing file.
fn create_new(path: &Path) -> Result<(), ClashError> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(ClashError::Exists(path.display().to_string()))
        }
        Err(source) => Err(ClashError::Create {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Every file staged under `staging` (the stores note aside), playlists last, so that a
/// resumed upload stores segments before the playlists that name them.
pub fn staged_files(staging: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path(), out),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    let mut files = Vec::new();
    walk(staging, &mut files);
    files.retain(|f| f != &staging.join(STORES_NOTE));
    files.sort_by_key(|f| (f.extension().is_some_and(|e| e == "m3u8"), f.clone()));
    files
}

/// Removes what is left of an egress's staging directory once its uploads are done:
/// only empty directories go (files an upload could not store stay where the report
/// says they are).
pub fn remove_empty_staging(staging: &Path) {
    fn prune(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    prune(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    if staged_files(staging).is_empty() {
        let _ = std::fs::remove_file(staging.join(STORES_NOTE));
    }
    prune(staging);
    if let Some(parent) = staging.parent() {
        let _ = std::fs::remove_dir(parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_clashes_until_the_first_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.mp4");
        let mut a = Claims::default();
        a.create_file(&path).unwrap();
        let mut b = Claims::default();
        let e = b.create_file(&path).unwrap_err();
        assert!(matches!(e, ClashError::Held(_)), "{e}");
        assert!(e.to_string().contains("rec.mp4"), "{e}");
        std::fs::write(&path, b"recorded").unwrap();
        drop(a);
        // Released, but the first recording is on disk: still never overwritten.
        let e = b.create_file(&path).unwrap_err();
        assert_eq!(std::fs::read(&path).unwrap(), b"recorded");
        assert!(matches!(e, ClashError::Exists(_)), "{e}");
        let mut c = Claims::default();
        c.claim_object("s3://bucket", "rooms/a.mp4").unwrap();
        assert!(matches!(
            Claims::default().claim_object("s3://bucket", "rooms/a.mp4"),
            Err(ClashError::Held(_))
        ));
        Claims::default()
            .claim_object("s3://other", "rooms/a.mp4")
            .unwrap();
    }

    #[test]
    fn a_file_created_and_never_written_is_removed_with_the_claims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nothing.mp4");
        let mut a = Claims::default();
        a.create_file(&path).unwrap();
        assert!(path.exists());
        drop(a);
        assert!(!path.exists());
    }

    #[test]
    fn an_existing_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("rec.mp4");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(Claims::default().create_file(&link).is_err());
        assert!(Claims::default().claim_absent(&link).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn only_empty_staging_directories_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let a = staging_dir(dir.path(), "EG_a");
        std::fs::create_dir_all(a.join("rooms/x")).unwrap();
        let b = staging_dir(dir.path(), "EG_b");
        std::fs::create_dir_all(b.join("rooms")).unwrap();
        std::fs::write(b.join("rooms/kept.mp4"), b"x").unwrap();
        remove_empty_staging(&a);
        assert!(!a.exists());
        remove_empty_staging(&b);
        assert!(b.join("rooms/kept.mp4").exists());
    }
}
