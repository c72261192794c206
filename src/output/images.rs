//! Image outputs (thumbnails): composited frames, drawn by the compositor at the image's
//! own size, every `capture_interval`, encoded to JPEG or PNG on a worker thread and
//! written atomically (so an overwritten thumbnail is never seen half-written).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use livekit_protocol::ImagesInfo;

use crate::compositor::Nv12Frame;
use crate::output::{FileTarget, atomic_write, prefix_target};
use crate::request::naming::{self, NameContext, NamingError};
use crate::request::outputs::{ImageFormat, ImagesPlan, Suffix};
use crate::storage::UploadQueue;

/// JPEG quality (0–100).
pub const JPEG_QUALITY: u8 = 85;
/// Captures waiting for the encoder; more are skipped (with a warning).
const QUEUE: usize = 2;

/// Why an image could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Encoding failed.
    #[error("encoding {0}: {1}")]
    Encode(&'static str, String),
    /// Writing the file failed.
    #[error("writing {0}: {1}")]
    Io(String, std::io::Error),
    /// The image worker stopped unexpectedly (a panic): later images were not written.
    #[error("the image worker stopped unexpectedly: {0}")]
    Worker(String),
}

/// One written image, for the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRecord {
    /// Name relative to the output directory.
    pub filename: String,
    /// Path on disk.
    pub location: String,
    /// Capture time (Unix nanoseconds).
    pub timestamp: i64,
}

/// Encodes packed RGB as JPEG or PNG.
pub fn encode(
    rgb: &[u8],
    width: u32,
    height: u32,
    format: ImageFormat,
) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    match format {
        ImageFormat::Jpeg => {
            let enc = jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY);
            enc.encode(
                rgb,
                width as u16,
                height as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .map_err(|e| ImageError::Encode("JPEG", e.to_string()))?;
        }
        ImageFormat::Png => {
            let mut enc = png::Encoder::new(&mut out, width, height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Fast);
            let mut w = enc
                .write_header()
                .map_err(|e| ImageError::Encode("PNG", e.to_string()))?;
            w.write_image_data(rgb)
                .map_err(|e| ImageError::Encode("PNG", e.to_string()))?;
        }
    }
    Ok(out)
}

struct Capture {
    frame: Nv12Frame,
    at: DateTime<Utc>,
}

/// One image output: its schedule, worker thread and result.
pub struct ImagesOutput {
    field: String,
    interval: Duration,
    next: Duration,
    size: (u32, u32),
    tx: Option<SyncSender<Capture>>,
    worker: Option<JoinHandle<Result<(), ImageError>>>,
    records: Arc<Mutex<Vec<ImageRecord>>>,
    info: ImagesInfo,
}

fn worker(
    rx: Receiver<Capture>,
    prefix: FileTarget,
    plan: ImagesPlan,
    records: Arc<Mutex<Vec<ImageRecord>>>,
    uploads: Option<UploadQueue>,
) -> Result<(), ImageError> {
    let ext = plan.format.extension();
    let mut index = 0u64;
    while let Ok(c) = rx.recv() {
        let tail = match plan.suffix {
            Suffix::Index => format!("_{index:05}{ext}"),
            Suffix::Timestamp => format!("_{}{ext}", naming::format_utc(c.at)),
            Suffix::NoneOverwrite => ext.to_owned(),
        };
        let filename = format!("{}{tail}", prefix.filename);
        let path = PathBuf::from(format!("{}{tail}", prefix.local_path.to_string_lossy()));
        let rgb = c.frame.to_rgb();
        let bytes = encode(&rgb, c.frame.width, c.frame.height, plan.format)?;
        atomic_write(&path, &bytes).map_err(|e| ImageError::Io(path.display().to_string(), e))?;
        if let Some(q) = &uploads {
            q.file(&path);
        }
        records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ImageRecord {
                filename,
                location: path.display().to_string(),
                timestamp: c.at.timestamp_nanos_opt().unwrap_or(0),
            });
        index += 1;
    }
    Ok(())
}

impl ImagesOutput {
    /// Starts the output's worker; names resolve inside `out_dir`. With `uploads`, each
    /// image is queued for upload once written.
    pub fn new(
        plan: &ImagesPlan,
        out_dir: &Path,
        ctx: &NameContext<'_>,
        uploads: Option<UploadQueue>,
    ) -> Result<ImagesOutput, NamingError> {
        let prefix = prefix_target(out_dir, &plan.prefix_template, plan.format.extension(), ctx)?;
        let (tx, rx) = sync_channel(QUEUE);
        let records = Arc::new(Mutex::new(Vec::new()));
        let (p, r) = (plan.clone(), records.clone());
        let info = ImagesInfo {
            filename_prefix: prefix.filename.clone(),
            ..Default::default()
        };
        let span = tracing::Span::current();
        let worker = std::thread::Builder::new()
            .name("images".into())
            .spawn(move || span.in_scope(|| worker(rx, prefix, p, r, uploads)))
            .expect("spawn image worker");
        Ok(ImagesOutput {
            field: plan.field.clone(),
            interval: Duration::from_secs(plan.interval_s as u64),
            next: Duration::ZERO,
            size: (plan.width, plan.height),
            tx: Some(tx),
            worker: Some(worker),
            records,
            info,
        })
    }

    /// The image size the compositor draws.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// Whether the frame at media time `t` is captured (advances the schedule).
    pub fn due(&mut self, t: Duration) -> bool {
        if t < self.next {
            return false;
        }
        while self.next <= t {
            self.next += self.interval;
        }
        true
    }

    /// Hands a captured frame to the encoder; skipped (with a warning) if it is behind.
    pub fn submit(&self, frame: Nv12Frame, at: DateTime<Utc>) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(Capture { frame, at }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(output = %self.field, "image encoder is behind; capture skipped")
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Sets when the output started (egress ACTIVE).
    pub fn set_started(&mut self, at: i64) {
        self.info.started_at = at;
    }

    /// Images written so far.
    pub fn records(&self) -> Vec<ImageRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits for the encoder to finish the queued captures; returns the result.
    pub fn finish(&mut self, ended_at: i64) -> Result<ImagesInfo, (ImagesInfo, ImageError)> {
        self.tx = None;
        let outcome = self.worker.take().map_or(Ok(()), |w| {
            w.join()
                .unwrap_or_else(|p| Err(ImageError::Worker(crate::panics::message(p.as_ref()))))
        });
        self.info.image_count = self.records().len() as i64;
        self.info.ended_at = ended_at;
        match outcome {
            Ok(()) => Ok(self.info.clone()),
            Err(e) => Err((self.info.clone(), e)),
        }
    }

    /// Field path of the output.
    pub fn field(&self) -> &str {
        &self.field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_panicked_is_an_error_not_a_success() {
        let mut out = ImagesOutput {
            field: "image_outputs[0]".into(),
            interval: Duration::from_secs(1),
            next: Duration::ZERO,
            size: (16, 16),
            tx: None,
            worker: Some(std::thread::spawn(|| panic!("encoder blew up"))),
            records: Default::default(),
            info: ImagesInfo::default(),
        };
        let (_, e) = out.finish(1).unwrap_err();
        assert!(matches!(e, ImageError::Worker(_)));
        assert!(e.to_string().contains("encoder blew up"), "{e}");
    }

    #[test]
    fn schedule_counts_floor_plus_one() {
        let plan = ImagesPlan {
            field: "image_outputs[0]".into(),
            interval_s: 2,
            width: 16,
            height: 16,
            prefix_template: "x".into(),
            suffix: Suffix::Index,
            format: ImageFormat::Png,
            storage: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let ctx = NameContext {
            room_name: "r",
            room_id: "RM",
            time: Utc::now(),
            ..Default::default()
        };
        let mut out = ImagesOutput::new(&plan, dir.path(), &ctx, None).unwrap();
        let due = (0..=300u64)
            .filter(|k| out.due(Duration::from_millis(k * 1000 / 30)))
            .count();
        assert_eq!(due, 6); // 0, 2, 4, 6, 8, 10 s
    }

    #[test]
    fn grey_nv12_encodes_to_grey() {
        let (w, h) = (16u32, 8u32);
        let mut data = vec![126u8; (w * h) as usize];
        data.extend(vec![128u8; (w * h / 2) as usize]);
        let frame = Nv12Frame {
            data,
            stride: w,
            width: w,
            height: h,
            pts: Duration::ZERO,
        };
        let rgb = frame.to_rgb();
        assert_eq!(rgb.len(), (w * h * 3) as usize);
        assert!(rgb.iter().all(|&c| c == 128));
        let png = encode(&rgb, w, h, ImageFormat::Png).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let jpeg = encode(&rgb, w, h, ImageFormat::Jpeg).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    }
}
