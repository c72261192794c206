//! An egress's uploads: each output's store resolved (its own, else the worker's default,
//! else local disk), one [`Uploader`] per distinct store, and at the end every local path
//! mapped to the URL it was stored at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::output::claim::{self, Claims, ClashError};
use crate::request::OutputsPlan;
use crate::storage::uploader::RetryPolicy;
use crate::storage::{
    StorageDefaults, StorageError, StoreSpec, UploadQueue, UploadReport, Uploader, spec,
};

use super::error::EgressError;

/// The uploaders of one egress and the queue of each output (`None`: local disk).
pub struct Uploads {
    uploaders: Vec<(StoreSpec, Uploader)>,
    /// Queue of each file output, in plan order.
    pub files: Vec<Option<UploadQueue>>,
    /// Queue of each segment output.
    pub segments: Vec<Option<UploadQueue>>,
    /// Queue of each image output.
    pub images: Vec<Option<UploadQueue>>,
    /// Where the manifest goes: the first output's store.
    manifest: StoreSpec,
    defaults: StorageDefaults,
    out_dir: PathBuf,
    /// This egress's own directory for the files it uploads (see [`claim::staging_dir`]).
    staging: PathBuf,
    /// The local paths and objects this egress writes.
    claims: Claims,
}

/// What the uploads came to.
#[derive(Debug)]
pub struct Finished {
    /// Local path → the URL it was stored at.
    pub locations: BTreeMap<PathBuf, String>,
    /// Whether the backup store took any file.
    pub backup_used: bool,
    /// Why files could not be stored anywhere, if any were not (they stay on disk).
    pub error: Option<EgressError>,
    manifest: StoreSpec,
    defaults: StorageDefaults,
    out_dir: PathBuf,
    /// Held until the egress's report is written.
    _claims: Claims,
}

impl Finished {
    /// The URL of a local path if it was uploaded, else the path itself.
    pub fn location(&self, local: &str) -> String {
        self.locations
            .get(Path::new(local))
            .cloned()
            .unwrap_or_else(|| local.to_owned())
    }

    /// Uploads the manifest (written last, with the other files' URLs) to the first
    /// output's store; on failure it stays on disk and the failure is logged.
    pub fn upload_manifest(&self, path: &Path) {
        self.upload_beside_manifest(path, "manifest");
    }

    /// Uploads `path` (`what` it is, for the log) to the manifest's store; returns where
    /// it is: its URL, or its local path when the store is local or the upload failed
    /// (logged).
    pub fn upload_beside_manifest(&self, path: &Path, what: &str) -> String {
        let local = path.display().to_string();
        if self.manifest.is_local() {
            return local;
        }
        let up = match Uploader::start(
            &self.manifest,
            self.defaults.backup.as_ref(),
            &self.out_dir,
            &self.defaults.prefix,
            RetryPolicy {
                deadline: self.defaults.upload_deadline,
                ..RetryPolicy::default()
            },
        ) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, what, "not uploaded");
                return local;
            }
        };
        up.queue().file(path);
        let report = up.finish();
        match report.uploaded.get(path) {
            Some(u) => {
                tracing::info!(location = %u.location, what, "uploaded");
                u.location.clone()
            }
            None => {
                tracing::warn!(file = %local, what, "kept on local disk");
                local
            }
        }
    }
}

/// What went wrong with one store's uploads, if anything: files kept on disk (the first
/// few named), or a worker that stopped unexpectedly.
fn failure_of(report: &UploadReport, staging: &Path) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(why) = &report.panicked {
        parts.push(format!(
            "the upload worker for {} stopped unexpectedly ({why}); files it had not \
             uploaded stay under {}",
            report.store,
            staging.display()
        ));
    }
    if let Some((_, cause)) = report.kept.last() {
        let paths: Vec<_> = report
            .kept
            .iter()
            .take(3)
            .map(|(p, _)| p.display().to_string())
            .collect();
        let more = report.kept.len().saturating_sub(paths.len());
        parts.push(format!(
            "upload to {} failed ({cause}); {} file(s) kept on local disk: {}{}",
            report.store,
            report.kept.len(),
            paths.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn clash(field: &str, e: ClashError) -> EgressError {
    EgressError::Output {
        field: field.to_owned(),
        reason: e.to_string(),
    }
}

fn storage_error(e: StorageError) -> EgressError {
    match e {
        StorageError::Invalid { field, reason } => EgressError::Output { field, reason },
        e => EgressError::Output {
            field: "storage".into(),
            reason: e.to_string(),
        },
    }
}

impl Uploads {
    /// Resolves every output's store and starts the uploaders (no request is made yet);
    /// files that are uploaded are staged under `staging`.
    pub fn start(
        plan: &OutputsPlan,
        defaults: &StorageDefaults,
        out_dir: &Path,
        staging: &Path,
    ) -> Result<Uploads, EgressError> {
        let mut u = Uploads {
            uploaders: Vec::new(),
            files: Vec::new(),
            segments: Vec::new(),
            images: Vec::new(),
            manifest: StoreSpec::Local,
            defaults: defaults.clone(),
            out_dir: out_dir.to_owned(),
            staging: staging.to_owned(),
            claims: Claims::default(),
        };
        let mut first = None;
        u.files = u.queues(
            plan.files.iter().map(|f| (&f.storage, f.field.as_str())),
            &mut first,
        )?;
        u.segments = u.queues(
            plan.segments.iter().map(|s| (&s.storage, s.field.as_str())),
            &mut first,
        )?;
        u.images = u.queues(
            plan.images.iter().map(|i| (&i.storage, i.field.as_str())),
            &mut first,
        )?;
        u.manifest = first.unwrap_or(StoreSpec::Local);
        Ok(u)
    }

    /// The queue of each of a kind of output (`(own storage, field)`), in order; `first`
    /// keeps the first store resolved (the manifest's).
    fn queues<'a>(
        &mut self,
        outputs: impl Iterator<Item = (&'a Option<StoreSpec>, &'a str)>,
        first: &mut Option<StoreSpec>,
    ) -> Result<Vec<Option<UploadQueue>>, EgressError> {
        outputs
            .map(|(own, field)| {
                let spec =
                    spec::effective(own.as_ref(), field, &self.defaults).map_err(storage_error)?;
                first.get_or_insert_with(|| spec.clone());
                self.queue_for(&spec)
            })
            .collect()
    }

    fn queue_for(&mut self, spec: &StoreSpec) -> Result<Option<UploadQueue>, EgressError> {
        if spec.is_local() {
            return Ok(None);
        }
        if let Some((_, up)) = self.uploaders.iter().find(|(s, _)| s == spec) {
            return Ok(Some(up.queue()));
        }
        let default = self.defaults.storage.as_ref() == Some(spec);
        claim::note_store(&self.staging, default);
        let up = Uploader::start(
            spec,
            self.defaults.backup.as_ref(),
            &self.staging,
            &self.defaults.prefix,
            RetryPolicy {
                deadline: self.defaults.upload_deadline,
                ..RetryPolicy::default()
            },
        )
        .map_err(storage_error)?;
        let q = up.queue();
        self.uploaders.push((spec.clone(), up));
        Ok(Some(q))
    }

    /// The directory an output's files are written under: the staging directory when
    /// they are uploaded (`queue`), else the output directory.
    pub fn root(&self, queue: Option<&UploadQueue>) -> &Path {
        if queue.is_some() {
            &self.staging
        } else {
            &self.out_dir
        }
    }

    /// Claims a file target this egress writes from its start (a file output): its
    /// object when it is uploaded, and the local file, created empty and exclusively.
    pub fn claim_file(
        &mut self,
        queue: Option<&UploadQueue>,
        path: &Path,
        field: &str,
    ) -> Result<(), EgressError> {
        let r = match queue {
            Some(q) => self
                .claims
                .claim_object(q.store(), &q.key_of(path))
                .and_then(|()| self.claims.create_file(path)),
            None => self.claims.create_file(path),
        };
        r.map_err(|e| clash(field, e))
    }

    /// Claims a name written later (a playlist, an image prefix): its object when it is
    /// uploaded, else the local name, which must not exist yet.
    pub fn claim_name(
        &mut self,
        queue: Option<&UploadQueue>,
        path: &Path,
        field: &str,
    ) -> Result<(), EgressError> {
        let r = match queue {
            Some(q) => self.claims.claim_object(q.store(), &q.key_of(path)),
            None => self.claims.claim_absent(path),
        };
        r.map_err(|e| clash(field, e))
    }

    /// Waits for every queued upload; maps local paths to URLs.
    pub fn finish(self) -> Finished {
        let mut done = Finished {
            locations: BTreeMap::new(),
            backup_used: false,
            error: None,
            manifest: self.manifest,
            defaults: self.defaults,
            out_dir: self.out_dir,
            _claims: self.claims,
        };
        let mut failures = Vec::new();
        for (_, up) in self.uploaders {
            let report = up.finish();
            tracing::info!(
                store = %report.store,
                uploaded = report.uploaded.len(),
                kept = report.kept.len(),
                retries = report.retries,
                queue_high_water = report.high_water,
                queue_overflows = report.overflows,
                backup_used = report.backup_used,
                "uploads finished"
            );
            done.backup_used |= report.backup_used;
            failures.extend(failure_of(&report, &self.staging));
            for (path, u) in report.uploaded {
                done.locations.insert(path, u.location);
            }
        }
        if !failures.is_empty() {
            done.error = Some(EgressError::Upload(failures.join("; ")));
        }
        claim::remove_empty_staging(&self.staging);
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_upload_worker_or_a_kept_file_is_a_failure() {
        let staging = Path::new("/out/.staging/EG_x");
        let fine = UploadReport {
            store: "s3 bucket \"rec\"".into(),
            ..Default::default()
        };
        assert_eq!(failure_of(&fine, staging), None);
        let panicked = UploadReport {
            panicked: Some("boom".into()),
            ..fine.clone()
        };
        let e = failure_of(&panicked, staging).unwrap();
        assert!(
            e.contains("stopped unexpectedly (boom)") && e.contains("/out/.staging/EG_x"),
            "{e}"
        );
        let kept = UploadReport {
            kept: (0..5)
                .map(|i| (PathBuf::from(format!("/out/f{i}.ts")), "timeout".to_owned()))
                .collect(),
            ..fine
        };
        let e = failure_of(&kept, staging).unwrap();
        assert!(e.contains("(timeout); 5 file(s) kept on local disk: /out/f0.ts, /out/f1.ts, /out/f2.ts and 2 more"), "{e}");
    }
}
