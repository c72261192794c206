//! What a crash left: files an egress staged for upload (`output::claim::staging_dir`)
//! and that its worker, killed, never stored. At start a worker resumes them when they
//! were bound only for its own default storage (uploaded under the same keys, then
//! deleted), and reports the others (a request's own store: its credentials died with
//! the egress) with where they are. Multipart uploads a kill left open in S3 are not
//! visible from here: a bucket lifecycle rule (`AbortIncompleteMultipartUpload`)
//! removes them.

use std::path::{Path, PathBuf};

use crate::output::claim::{self, STORES_NOTE};
use crate::storage::StorageDefaults;
use crate::storage::uploader::{RetryPolicy, Uploader};

/// What was done with one crashed egress's staging directory.
#[derive(Debug, PartialEq, Eq)]
pub enum Leftover {
    /// Its files were uploaded to the worker's default storage: how many, and how many
    /// stay on disk.
    Resumed {
        /// The egress.
        egress_id: String,
        /// Files stored.
        uploaded: usize,
        /// Files that could not be stored (they stay).
        kept: usize,
    },
    /// Its files were bound for a request's own store: left where they are.
    Reported {
        /// The egress.
        egress_id: String,
        /// Its staging directory.
        dir: PathBuf,
        /// Files there.
        files: usize,
        /// Their bytes.
        bytes: u64,
    },
}

/// Whether a staging directory's files went only to the worker's default storage.
fn default_only(staging: &Path) -> bool {
    std::fs::read_to_string(staging.join(STORES_NOTE))
        .is_ok_and(|t| t.lines().count() > 0 && t.lines().all(|l| l == "default"))
}

/// The staging directories under `out_dir`: listed at start, before the worker takes an
/// egress, they are all a crash's leftovers.
pub fn found(out_dir: &Path) -> Vec<PathBuf> {
    let root = claim::staging_dir(out_dir, "");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Resumes or reports each of `dirs` ([`found`]). Blocking: run it off the runtime.
pub fn resume(dirs: Vec<PathBuf>, defaults: &StorageDefaults) -> Vec<Leftover> {
    let mut done = Vec::new();
    for dir in dirs {
        let egress_id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let files = claim::staged_files(&dir);
        if files.is_empty() {
            claim::remove_empty_staging(&dir);
            continue;
        }
        let leftover = match (&defaults.storage, default_only(&dir)) {
            (Some(store), true) => upload(&egress_id, &dir, &files, store, defaults),
            _ => {
                let bytes = files
                    .iter()
                    .filter_map(|f| f.metadata().ok())
                    .map(|m| m.len())
                    .sum();
                tracing::warn!(%egress_id, dir = %dir.display(), files = files.len(), bytes,
                    "a crashed egress left files for a store of its request; they stay here");
                Leftover::Reported {
                    egress_id,
                    dir,
                    files: files.len(),
                    bytes,
                }
            }
        };
        done.push(leftover);
    }
    done
}

fn upload(
    egress_id: &str,
    dir: &Path,
    files: &[PathBuf],
    store: &crate::storage::StoreSpec,
    defaults: &StorageDefaults,
) -> Leftover {
    let policy = RetryPolicy {
        deadline: defaults.upload_deadline,
        ..RetryPolicy::default()
    };
    let report = match Uploader::start(
        store,
        defaults.backup.as_ref(),
        dir,
        &defaults.prefix,
        policy,
    ) {
        Ok(up) => {
            let q = up.queue();
            for f in files {
                q.file(f);
            }
            up.finish()
        }
        Err(e) => {
            tracing::warn!(%egress_id, error = %e, "cannot resume a crashed egress's uploads");
            return Leftover::Reported {
                egress_id: egress_id.to_owned(),
                dir: dir.to_owned(),
                files: files.len(),
                bytes: 0,
            };
        }
    };
    claim::remove_empty_staging(dir);
    tracing::warn!(%egress_id, uploaded = report.uploaded.len(), kept = report.kept.len(),
        store = %report.store, "resumed the uploads a crashed egress left");
    Leftover::Resumed {
        egress_id: egress_id.to_owned(),
        uploaded: report.uploaded.len(),
        kept: report.kept.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_stores_leftovers_are_reported_and_kept() {
        let out = tempfile::tempdir().unwrap();
        let a = claim::staging_dir(out.path(), "EG_a");
        claim::note_store(&a, false);
        std::fs::create_dir_all(a.join("rec")).unwrap();
        std::fs::write(a.join("rec/x.mp4"), vec![1u8; 10]).unwrap();
        let b = claim::staging_dir(out.path(), "EG_b");
        claim::note_store(&b, true);
        let running = claim::staging_dir(out.path(), "EG_run");
        std::fs::create_dir_all(&running).unwrap();
        std::fs::write(running.join("live.ts"), b"x").unwrap();
        let mut dirs = found(out.path());
        assert_eq!(dirs.len(), 3);
        // An egress that started after the listing is not a leftover.
        dirs.retain(|d| !d.ends_with("EG_run"));
        // No default storage on this worker: nothing can be resumed.
        let got = resume(dirs, &StorageDefaults::default());
        assert_eq!(
            got,
            [Leftover::Reported {
                egress_id: "EG_a".into(),
                dir: a.clone(),
                files: 1,
                bytes: 10,
            }]
        );
        assert!(a.join("rec/x.mp4").exists(), "kept");
        assert!(!b.exists(), "an empty leftover is removed");
        assert!(
            running.join("live.ts").exists(),
            "a running egress's files are left alone"
        );
    }
}
