//! Everything a composite egress writes: its files, playlists and image prefixes named,
//! claimed (so two egresses never share one) and created before anything is recorded, and
//! listed in the manifest at the start and the end.

use std::path::{Path, PathBuf};

use livekit_protocol::EgressInfo;

use super::conversation::ConversationLog;
use super::error::EgressError;
use super::uploads::{Finished, Uploads};
use crate::output::images::ImagesOutput;
use crate::output::isolated::{IsolatedError, IsolatedTrack};
use crate::output::manifest::{Manifest, ManifestFile, ManifestImage, ManifestPlaylist};
use crate::output::{FileTarget, file_target, prefix_target};
use crate::request::EgressPlan;
use crate::request::naming::NameContext;
use crate::storage::UploadQueue;

/// Everything an egress writes, while it runs.
pub(crate) struct Outputs {
    pub files: Vec<FileTarget>,
    pub images: Vec<ImagesOutput>,
    /// Each HLS playlist written and its segments (filled at the end).
    pub playlists: Vec<(String, Vec<String>)>,
    /// Upload queue of each segment output (`None`: local disk).
    pub segment_uploads: Vec<Option<UploadQueue>>,
    /// The directory each segment output's names resolve in.
    pub segment_roots: Vec<PathBuf>,
    /// Each file's WebVTT sidecar, when the egress writes captions (else empty).
    pub sidecars: Vec<FileTarget>,
    /// What the egress kept of the conversation (once it has finished).
    pub conversation: Option<ConversationLog>,
    /// Where the speaker timeline went, once written.
    pub speakers: Option<String>,
    /// Where participants' isolated tracks are written while recording (when asked for).
    pub isolated_dir: Option<PathBuf>,
    /// The isolated tracks once finished (or why they failed).
    pub isolated: Option<Result<Vec<IsolatedTrack>, IsolatedError>>,
}

/// Resolves and claims every output's target and opens the image outputs: the egress's
/// outputs before anything is recorded.
pub(crate) fn open(
    plan: &EgressPlan,
    ctx: &NameContext<'_>,
    uploads: &mut Uploads,
) -> Result<Outputs, EgressError> {
    let mut outputs = claim_targets(plan, ctx, uploads)?;
    for (im, q) in plan.outputs.images.iter().zip(&uploads.images) {
        let o = ImagesOutput::new(im, uploads.root(q.as_ref()), ctx, q.clone()).map_err(|e| {
            EgressError::Output {
                field: format!("{}.filename_prefix", im.field),
                reason: e.to_string(),
            }
        })?;
        outputs.images.push(o);
    }
    Ok(outputs)
}

/// Resolves and claims every file, playlist and image prefix the egress writes (each in
/// its store's staging directory or the output directory), so that a clash with another
/// egress fails this one before anything is recorded.
fn claim_targets(
    plan: &EgressPlan,
    ctx: &NameContext<'_>,
    uploads: &mut Uploads,
) -> Result<Outputs, EgressError> {
    let mut outputs = Outputs {
        files: Vec::new(),
        images: Vec::new(),
        playlists: Vec::new(),
        segment_uploads: uploads.segments.clone(),
        segment_roots: Vec::new(),
        sidecars: Vec::new(),
        conversation: None,
        speakers: None,
        isolated_dir: None,
        isolated: None,
    };
    let output_error = |field: &str, reason: String| EgressError::Output {
        field: field.to_owned(),
        reason,
    };
    for (f, q) in plan.outputs.files.iter().zip(uploads.files.clone()) {
        let root = uploads.root(q.as_ref()).to_owned();
        let target = file_target(&root, &f.filepath_template, f.kind.extension(), ctx)
            .map_err(|e| output_error(&f.field, e.to_string()))?;
        create_parent(&target.local_path).map_err(|r| output_error(&f.field, r))?;
        uploads.claim_file(q.as_ref(), &target.local_path, &f.field)?;
        if plan.conversation.webvtt {
            let mut vtt = target.sidecar("vtt", false);
            if outputs
                .sidecars
                .iter()
                .any(|s| s.local_path == vtt.local_path)
            {
                vtt = target.sidecar("vtt", true);
            }
            uploads.claim_file(
                q.as_ref(),
                &vtt.local_path,
                &format!("{}.captions", f.field),
            )?;
            outputs.sidecars.push(vtt);
        }
        outputs.files.push(target);
    }
    for (s, q) in plan.outputs.segments.iter().zip(uploads.segments.clone()) {
        let root = uploads.root(q.as_ref()).to_owned();
        let field = format!("{}.playlist_name", s.field);
        let playlist = crate::output::hls::main_playlist(&root, s, ctx)
            .map_err(|e| output_error(&field, e.to_string()))?;
        uploads.claim_name(q.as_ref(), &playlist.local_path, &field)?;
        outputs.segment_roots.push(root);
    }
    for (im, q) in plan.outputs.images.iter().zip(uploads.images.clone()) {
        let root = uploads.root(q.as_ref()).to_owned();
        let field = format!("{}.filename_prefix", im.field);
        let prefix = prefix_target(&root, &im.prefix_template, im.format.extension(), ctx)
            .map_err(|e| output_error(&field, e.to_string()))?;
        uploads.claim_name(q.as_ref(), &prefix.local_path, &field)?;
    }
    Ok(outputs)
}

/// Creates the directory a file goes in; the error names it.
fn create_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display())),
        None => Ok(()),
    }
}

/// Writes the manifest (URLs for uploaded files); returns its path.
pub(crate) fn write_manifest(
    info: &EgressInfo,
    outputs: &Outputs,
    out_dir: &Path,
    stored: Option<&Finished>,
) -> Option<PathBuf> {
    let location = |local: &str| stored.map_or_else(|| local.to_owned(), |s| s.location(local));
    let playlists = &outputs.playlists;
    let manifest = Manifest {
        files: outputs
            .files
            .iter()
            .chain(&outputs.sidecars)
            .map(|f| ManifestFile {
                filename: f.filename.clone(),
                location: location(&f.local_path.display().to_string()),
            })
            .collect(),
        playlists: if playlists.is_empty() {
            info.segment_results
                .iter()
                .map(|s| ManifestPlaylist {
                    location: s.playlist_location.clone(),
                    segments: Vec::new(),
                })
                .collect()
        } else {
            playlists
                .iter()
                .map(|(path, segments)| ManifestPlaylist {
                    location: location(path),
                    segments: segments.iter().map(|s| location(s)).collect(),
                })
                .collect()
        },
        images: outputs
            .images
            .iter()
            .flat_map(|o| o.records())
            .map(|r| ManifestImage {
                filename: r.filename,
                location: location(&r.location),
                timestamp: r.timestamp,
            })
            .collect(),
        speakers: outputs.speakers.clone(),
        ..Manifest::of(info)
    };
    match manifest.write(out_dir) {
        Ok(path) => Some(path),
        Err(e) => {
            tracing::warn!(error = %e, "cannot write the manifest");
            None
        }
    }
}
