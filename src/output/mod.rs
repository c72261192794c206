//! Outputs: branches of the single encode. Today: the MP4 file. Each output hangs off the
//! encoded streams' tees behind its own queue, so later outputs (segments, streams,
//! images) attach beside it without a second encode.

#[cfg(feature = "gst")]
pub mod file;

use std::path::{Path, PathBuf};

use crate::request::naming::{self, NameContext, NamingError};

/// Where a file output is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTarget {
    /// The name reported in `FileInfo.filename` (relative to the output directory).
    pub filename: String,
    /// The path on disk.
    pub local_path: PathBuf,
}

/// Resolves a file template against the room and start time, inside `out_dir`.
pub fn file_target(
    out_dir: &Path,
    template: &str,
    extension: &str,
    ctx: &NameContext<'_>,
) -> Result<FileTarget, NamingError> {
    let filename = naming::resolve_filepath(template, ctx, extension)?;
    let local_path = out_dir.join(naming::contained(&filename)?);
    Ok(FileTarget {
        filename,
        local_path,
    })
}
