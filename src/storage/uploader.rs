//! Live uploads: the outputs queue each file the moment it is complete (a segment, then the
//! playlist that names it; an image; the final file; the manifest) and one worker thread
//! per store uploads them in the order they were queued, so a playlist never reaches the
//! store before its segments.
//!
//! Policy:
//! - **Never blocks media**: queuing is a channel send. Files stay on disk until their
//!   upload is confirmed, so the queue holds only paths (and playlist snapshots); past
//!   [`MAX_PENDING`] files waiting, each new file is counted as an overflow and logged,
//!   and still uploaded in order when the store catches up.
//! - **Retries**: each file up to [`RetryPolicy::attempts`] times, waiting 250 ms, 500 ms,
//!   1 s, ... up to 8 s between attempts (about 24 s in all), which rides out a store
//!   restart. A refusal (a 4xx answer: credentials, bucket, permissions) is not retried.
//!   Once a store has failed a file for good, its later files get one attempt each until
//!   one succeeds, so a dead store costs one retry cycle, not one per file.
//! - **Backup**: a file that still fails goes to the backup store (same policy); from then
//!   on the egress's later files go straight to the backup, so a playlist and its segments
//!   stay together. With no backup, or if the backup fails too, the file stays on disk and
//!   the report says where.
//! - **Nothing lost**: a local file is deleted only after its upload is confirmed.
//! - A playlist is queued as a snapshot of the bytes written at that moment. Only the
//!   newest snapshot of each playlist is held: an older one still waiting is skipped when
//!   its turn comes, so a store that stalls costs one playlist copy, not one per segment.
//! - **Bounded**: an attempt that takes longer than [`attempt_limit`] (30 s plus 4 s per
//!   MiB) is abandoned and retried; once the egress has ended, its uploads have
//!   [`RetryPolicy::deadline`] to reach the primary store and as long again to reach the
//!   backup, after which every file not stored stays on disk and the report says so. A
//!   store that accepts connections and never answers cannot hold an egress's end or a
//!   drain for longer.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use super::StorageError;
use super::azure::AzureStore;
use super::gcs::GcsStore;
use super::s3::{Body, S3Store};
use super::spec::{StoreSpec, UPLOAD_DEADLINE};
use crate::backoff::Backoff;

/// Files waiting beyond which the queue reports overflow.
pub const MAX_PENDING: usize = 64;

/// How often and how patiently a file is retried.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per file and store (at least 1).
    pub attempts: u32,
    /// Wait after the first failure; doubled after each.
    pub first_delay: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
    /// How long after the egress's end its files may still try the primary store (and
    /// then as long again the backup) before they are kept on disk.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            deadline: UPLOAD_DEADLINE,
        }
    }
}

/// How long one attempt to store `len` bytes may take: 30 s, plus 4 s per MiB (a store
/// slower than 256 KiB/s is treated as stalled).
pub fn attempt_limit(len: u64) -> Duration {
    Duration::from_secs(30) + Duration::from_millis(len.saturating_mul(4000) >> 20)
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        Backoff::new(self.first_delay, self.max_delay).delay(n)
    }
}

/// Where one file went.
#[derive(Clone, Debug, PartialEq)]
pub struct Uploaded {
    /// The object key.
    pub key: String,
    /// The object's URL.
    pub location: String,
    /// Whether it went to the backup store.
    pub backup: bool,
}

/// What the uploads came to.
#[derive(Clone, Debug, Default)]
pub struct UploadReport {
    /// The primary store (secret-free).
    pub store: String,
    /// Each local path uploaded and where it went (the latest upload per path).
    pub uploaded: BTreeMap<PathBuf, Uploaded>,
    /// Files that could not be uploaded anywhere: they stay on disk. With the last error.
    pub kept: Vec<(PathBuf, String)>,
    /// Whether any file went to the backup store.
    pub backup_used: bool,
    /// The primary store's last error, if it failed a file for good.
    pub primary_error: Option<String>,
    /// Failed attempts that were retried.
    pub retries: u32,
    /// Files queued while more than [`MAX_PENDING`] were waiting.
    pub overflows: u32,
    /// Most files waiting at once.
    pub high_water: usize,
    /// The worker stopped unexpectedly (a panic), with what it said: files it had not
    /// uploaded stay on disk.
    pub panicked: Option<String>,
}

impl UploadReport {
    /// The URL of a local file that was uploaded.
    pub fn location(&self, path: &Path) -> Option<&str> {
        self.uploaded.get(path).map(|u| u.location.as_str())
    }
}

enum Message {
    Job(Job),
    Finish,
}

struct Job {
    path: PathBuf,
    key: String,
    /// Upload the playlist snapshot with this number instead of the file's contents
    /// (skipped if a newer one of the same path is held by then).
    snapshot: Option<u64>,
    /// Delete the local file once uploaded.
    delete: bool,
}

/// The newest snapshot of each playlist: its number and bytes.
type Snapshots = Arc<Mutex<HashMap<PathBuf, (u64, Arc<Vec<u8>>)>>>;

/// A handle to queue files for upload; cheap to clone, never blocks.
#[derive(Clone)]
pub struct UploadQueue {
    tx: mpsc::Sender<Message>,
    pending: Arc<AtomicUsize>,
    overflows: Arc<AtomicUsize>,
    snapshots: Snapshots,
    next_snapshot: Arc<AtomicU64>,
    out_dir: PathBuf,
    prefix: String,
    store: String,
}

impl UploadQueue {
    /// The store the files go to, as reported (secret-free).
    pub fn store(&self) -> &str {
        &self.store
    }

    /// The object key of a local file: the prefix, then its path under the output
    /// directory.
    pub fn key_of(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.out_dir).unwrap_or(path);
        let rel = rel.to_string_lossy().replace('\\', "/");
        format!("{}{}", self.prefix, rel.trim_start_matches('/'))
    }

    fn send(&self, job: Job) {
        QUEUED.fetch_add(1, Ordering::AcqRel);
        let waiting = self.pending.fetch_add(1, Ordering::AcqRel) + 1;
        if waiting > MAX_PENDING {
            let n = self.overflows.fetch_add(1, Ordering::AcqRel);
            if n == 0 || n.is_multiple_of(16) {
                tracing::warn!(
                    store = %self.store,
                    waiting,
                    file = %job.path.display(),
                    "upload queue over its bound: the store is slower than the recording; \
                     files stay on disk until uploaded"
                );
            }
        }
        if self.tx.send(Message::Job(job)).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            QUEUED.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(store = %self.store, "upload queued after the uploader finished");
        }
    }

    /// Uploads the file (complete: a segment, an image, a finished recording), then
    /// deletes it locally.
    pub fn file(&self, path: &Path) {
        self.send(Job {
            path: path.to_owned(),
            key: self.key_of(path),
            snapshot: None,
            delete: true,
        });
    }

    /// Uploads `bytes` as the object of `path` (a playlist as just written). With `last`,
    /// the local file is deleted once this upload is confirmed.
    pub fn snapshot(&self, path: &Path, bytes: Vec<u8>, last: bool) {
        let n = self.next_snapshot.fetch_add(1, Ordering::AcqRel);
        self.snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_owned(), (n, Arc::new(bytes)));
        self.send(Job {
            path: path.to_owned(),
            key: self.key_of(path),
            snapshot: Some(n),
            delete: last,
        });
    }

    /// Drops the held snapshot of `path` once uploaded, unless a newer one replaced it.
    fn forget_snapshot(&self, path: &Path, n: Option<u64>) {
        let mut held = self
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if held.get(path).map(|(m, _)| Some(*m)) == Some(n) {
            held.remove(path);
        }
    }

    /// The bytes of snapshot `n` of `path`, unless a newer one replaced it.
    fn snapshot_bytes(&self, path: &Path, n: u64) -> Option<Arc<Vec<u8>>> {
        let held = self
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        held.get(path)
            .filter(|(m, _)| *m == n)
            .map(|(_, b)| b.clone())
    }
}

/// One store's upload worker.
pub struct Uploader {
    queue: UploadQueue,
    /// When the egress ended (set by [`Uploader::finish`]): the deadline counts from it.
    ended: Arc<Mutex<Option<Instant>>>,
    worker: std::thread::JoinHandle<UploadReport>,
}

enum Store {
    S3(S3Store),
    Gcs(GcsStore),
    Azure(AzureStore),
}

impl Store {
    fn open(spec: &StoreSpec) -> Result<Store, StorageError> {
        match spec {
            StoreSpec::S3(s) => Ok(Store::S3(S3Store::new(s)?)),
            StoreSpec::Gcs(g) => Ok(Store::Gcs(GcsStore::new(g)?)),
            StoreSpec::Azure(a) => Ok(Store::Azure(AzureStore::new(a)?)),
            StoreSpec::Local => Err(StorageError::Invalid {
                field: "storage".into(),
                reason: "local disk needs no uploader".into(),
            }),
        }
    }

    async fn put(&self, body: Body<'_>, key: &str) -> Result<String, StorageError> {
        match self {
            Store::S3(s) => s.put(body, key).await,
            Store::Gcs(g) => g.put(body, key).await,
            Store::Azure(a) => a.put(body, key).await,
        }
    }
}

impl Uploader {
    /// Starts the worker for `primary` (not local) with an optional `backup`. Keys are
    /// `prefix` + the file's path under `out_dir`.
    pub fn start(
        primary: &StoreSpec,
        backup: Option<&StoreSpec>,
        out_dir: &Path,
        prefix: &str,
        policy: RetryPolicy,
    ) -> Result<Uploader, StorageError> {
        let primary_store = Store::open(primary)?;
        let backup_store = backup
            .filter(|b| !b.is_local())
            .map(Store::open)
            .transpose()?;
        let (tx, rx) = mpsc::channel();
        let queue = UploadQueue {
            tx,
            pending: Arc::new(AtomicUsize::new(0)),
            overflows: Arc::new(AtomicUsize::new(0)),
            snapshots: Snapshots::default(),
            next_snapshot: Arc::new(AtomicU64::new(0)),
            out_dir: out_dir.to_owned(),
            prefix: prefix.to_owned(),
            store: primary.describe(),
        };
        let ended = Arc::new(Mutex::new(None));
        let worker = Worker {
            queue: queue.clone(),
            ended: ended.clone(),
            primary: primary_store,
            backup: backup_store,
            policy,
            pending: queue.pending.clone(),
            switched: false,
            down: [false; 2],
            report: UploadReport {
                store: primary.describe(),
                ..Default::default()
            },
            backup_name: backup.map(StoreSpec::describe).unwrap_or_default(),
        };
        let overflows = queue.overflows.clone();
        let worker = crate::async_thread::spawn("upload", move || async move {
            let mut worker = worker;
            worker.run(rx).await;
            worker.report.overflows = overflows.load(Ordering::Acquire) as u32;
            worker.report
        })
        .map_err(|source| StorageError::Io {
            path: "upload thread".into(),
            source,
        })?;
        Ok(Uploader {
            queue,
            ended,
            worker,
        })
    }

    /// A handle for the outputs to queue files with.
    pub fn queue(&self) -> UploadQueue {
        self.queue.clone()
    }

    /// Waits until every file queued so far is uploaded (or given up on) and returns the
    /// report.
    pub fn finish(self) -> UploadReport {
        *self.ended.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let _ = self.queue.tx.send(Message::Finish);
        let store = self.queue.store.clone();
        self.worker.join().unwrap_or_else(|p| {
            let text = crate::panics::message(p.as_ref());
            tracing::error!(store = %store, error = %text, "the upload worker stopped unexpectedly");
            UploadReport {
                store,
                panicked: Some(text),
                ..Default::default()
            }
        })
    }
}

struct Worker {
    /// The queue's shared state (held playlist snapshots).
    queue: UploadQueue,
    ended: Arc<Mutex<Option<Instant>>>,
    primary: Store,
    backup: Option<Store>,
    backup_name: String,
    policy: RetryPolicy,
    pending: Arc<AtomicUsize>,
    /// The primary failed a file for good: later files go to the backup.
    switched: bool,
    /// Stores that failed a file for good: until one succeeds again, their later files
    /// get one attempt each, not the whole policy.
    down: [bool; 2],
    report: UploadReport,
}

/// Uploads queued and not yet done, over every egress of the process (for metrics).
static QUEUED: AtomicUsize = AtomicUsize::new(0);
/// Failed upload attempts, over every egress of the process (for metrics).
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// Uploads queued in this process and not yet done.
#[cfg_attr(not(feature = "egress"), allow(dead_code))]
pub fn queue_depth() -> usize {
    QUEUED.load(Ordering::Acquire)
}

/// Failed upload attempts in this process so far (each retry counts).
#[cfg_attr(not(feature = "egress"), allow(dead_code))]
pub fn failed_attempts() -> u64 {
    FAILURES.load(Ordering::Relaxed)
}

impl Worker {
    async fn run(&mut self, rx: mpsc::Receiver<Message>) {
        let mut queue: VecDeque<Message> = VecDeque::new();
        loop {
            while let Ok(m) = rx.try_recv() {
                queue.push_back(m);
            }
            if queue.is_empty() {
                // Blocking here is fine: this thread has nothing else to do.
                match rx.recv() {
                    Ok(m) => queue.push_back(m),
                    Err(_) => return,
                }
            }
            let waiting = self.pending.load(Ordering::Acquire);
            self.report.high_water = self.report.high_water.max(waiting);
            match queue.pop_front() {
                Some(Message::Finish) | None => return,
                Some(Message::Job(job)) => {
                    let snapshot = job
                        .snapshot
                        .map(|n| self.queue.snapshot_bytes(&job.path, n));
                    match snapshot {
                        // A newer snapshot of this playlist is queued behind.
                        Some(None) => {}
                        Some(Some(bytes)) => {
                            self.upload(&job, Some(&bytes)).await;
                            self.queue.forget_snapshot(&job.path, job.snapshot);
                        }
                        None => self.upload(&job, None).await,
                    }
                    self.pending.fetch_sub(1, Ordering::AcqRel);
                    QUEUED.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// When a store's chances end: the primary `deadline` after the egress's end, the
    /// backup as long again; `None` while the egress runs.
    fn cutoff(&self, backup: bool) -> Option<Instant> {
        let ended = *self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        ended.map(|t| t + self.policy.deadline * (1 + backup as u32))
    }

    /// Resolves once the store's cutoff has passed (it may be set while waiting).
    async fn past_cutoff(&self, backup: bool) {
        loop {
            if self.cutoff(backup).is_some_and(|c| Instant::now() >= c) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn deadline_error(&self, name: &str) -> StorageError {
        StorageError::Store {
            store: name.to_owned(),
            reason: format!(
                "not stored within the upload deadline ({} s after the egress ended)",
                self.policy.deadline.as_secs_f64()
            ),
            retryable: false,
        }
    }

    /// One attempt, bounded by [`attempt_limit`] and the store's cutoff.
    async fn attempt(
        &self,
        backup: bool,
        job: &Job,
        bytes: Option<&[u8]>,
        name: &str,
    ) -> Result<String, StorageError> {
        let (body, len) = match bytes {
            Some(b) => (Body::Bytes(b), b.len() as u64),
            None => (
                Body::File(&job.path),
                std::fs::metadata(&job.path).map_or(0, |m| m.len()),
            ),
        };
        let store = if backup {
            self.backup.as_ref().expect("caller checked")
        } else {
            &self.primary
        };
        let limit = attempt_limit(len);
        tokio::select! {
            r = tokio::time::timeout(limit, store.put(body, &job.key)) => r.unwrap_or_else(|_| {
                Err(StorageError::Store {
                    store: name.to_owned(),
                    reason: format!("no answer within {} s", limit.as_secs()),
                    retryable: true,
                })
            }),
            () = self.past_cutoff(backup) => Err(self.deadline_error(name)),
        }
    }

    async fn try_store(
        &mut self,
        backup: bool,
        job: &Job,
        bytes: Option<&[u8]>,
        name: &str,
    ) -> Result<String, StorageError> {
        let mut last = None;
        let attempts = if self.down[backup as usize] {
            1
        } else {
            self.policy.attempts.max(1)
        };
        for attempt in 0..attempts {
            if self.cutoff(backup).is_some_and(|c| Instant::now() >= c) {
                self.down[backup as usize] = true;
                return Err(self.deadline_error(name));
            }
            match self.attempt(backup, job, bytes, name).await {
                Ok(location) => {
                    self.down[backup as usize] = false;
                    return Ok(location);
                }
                // The local file is gone or unreadable, or the store refused: retrying
                // cannot help.
                Err(e @ StorageError::Io { .. })
                | Err(
                    e @ StorageError::Store {
                        retryable: false, ..
                    },
                ) => {
                    self.down[backup as usize] |= matches!(e, StorageError::Store { .. });
                    return Err(e);
                }
                Err(e) => {
                    FAILURES.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(store = name, key = %job.key, attempt = attempt + 1,
                        error = %e, "upload failed; retrying");
                    last = Some(e);
                    if attempt + 1 < attempts {
                        self.report.retries += 1;
                        tokio::time::sleep(self.policy.delay(attempt)).await;
                    }
                }
            }
        }
        self.down[backup as usize] = true;
        Err(last.expect("at least one attempt"))
    }

    async fn upload(&mut self, job: &Job, bytes: Option<&[u8]>) {
        let primary_name = self.report.store.clone();
        let mut result = Err(None);
        if !self.switched {
            result = self
                .try_store(false, job, bytes, &primary_name)
                .await
                .map(|l| (l, false))
                .map_err(Some);
            if let Err(Some(e)) = &result {
                if matches!(e, StorageError::Io { .. }) {
                    self.keep(job, e.to_string());
                    return;
                }
                tracing::error!(store = %primary_name, key = %job.key, error = %e,
                    "upload failed for good");
                self.report.primary_error = Some(e.to_string());
                if self.backup.is_some() {
                    self.switched = true;
                    tracing::warn!(backup = %self.backup_name,
                        "later files of this egress go to the backup store");
                }
            }
        }
        if result.is_err() && self.backup.is_some() {
            let name = self.backup_name.clone();
            result = self
                .try_store(true, job, bytes, &name)
                .await
                .map(|l| (l, true))
                .map_err(Some);
        }
        match result {
            Ok((location, backup)) => {
                tracing::debug!(key = %job.key, %location, backup, "uploaded");
                self.report.backup_used |= backup;
                self.report.kept.retain(|(p, _)| p != &job.path);
                self.report.uploaded.insert(
                    job.path.clone(),
                    Uploaded {
                        key: job.key.clone(),
                        location,
                        backup,
                    },
                );
                if job.delete
                    && let Err(e) = std::fs::remove_file(&job.path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(file = %job.path.display(), error = %e,
                        "uploaded, but the local copy could not be deleted");
                }
            }
            Err(e) => {
                let reason = e.map_or_else(|| "not uploaded".to_owned(), |e| e.to_string());
                self.keep(job, reason);
            }
        }
    }

    fn keep(&mut self, job: &Job, reason: String) {
        tracing::error!(file = %job.path.display(), error = %reason,
            "file kept on local disk: no store took it");
        self.report.uploaded.remove(&job.path);
        self.report.kept.retain(|(p, _)| p != &job.path);
        self.report.kept.push((job.path.clone(), reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store at an address that accepts connections and never answers.
    fn stalled_store() -> (StoreSpec, std::thread::JoinHandle<()>, std::net::SocketAddr) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut held = Vec::new();
            // Holds every connection open without a byte of answer until told to stop.
            while let Ok((c, _)) = listener.accept() {
                if c.peer_addr().is_ok_and(|p| p.port() == 1) {
                    break;
                }
                held.push(c);
                if held.len() > 64 {
                    break;
                }
            }
        });
        let s3 = livekit_protocol::S3Upload {
            access_key: "AKID".into(),
            secret: "SECRETKEY".into(),
            region: "us-east-1".into(),
            bucket: "stalled".into(),
            endpoint: format!("http://{addr}"),
            force_path_style: true,
            ..Default::default()
        };
        let spec = super::super::spec::from_provider(
            &livekit_protocol::storage_config::Provider::S3(s3),
            "file.s3",
        )
        .unwrap();
        (spec, t, addr)
    }

    #[test]
    fn a_stalled_store_holds_one_copy_of_a_playlist_and_ends_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, _server, _) = stalled_store();
        let policy = RetryPolicy {
            deadline: Duration::from_millis(500),
            ..RetryPolicy::default()
        };
        let up = Uploader::start(&spec, None, dir.path(), "", policy).unwrap();
        let q = up.queue();
        let segment = dir.path().join("seg_00000.ts");
        std::fs::write(&segment, vec![7u8; 1000]).unwrap();
        q.file(&segment);
        let playlist = dir.path().join("index.m3u8");
        std::fs::write(&playlist, b"#EXTM3U\n").unwrap();
        // A long recording's worth of playlist rewrites while the first upload hangs.
        for i in 0..2000 {
            q.snapshot(&playlist, vec![b'#'; 10_000 + i], i == 1999);
        }
        let held = q.snapshots.lock().unwrap();
        assert_eq!(held.len(), 1, "one playlist copy held");
        assert_eq!(held[&playlist].1.len(), 10_000 + 1999, "the newest");
        drop(held);
        let report = up.finish();
        assert!(report.uploaded.is_empty());
        let kept: Vec<_> = report.kept.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(kept, [segment.clone(), playlist.clone()]);
        assert!(
            report.kept[0].1.contains("upload deadline"),
            "{:?}",
            report.kept
        );
        assert!(segment.exists() && playlist.exists(), "kept on disk");
    }

    #[test]
    fn an_attempt_is_bounded_by_the_size_of_what_it_stores() {
        assert_eq!(attempt_limit(0), Duration::from_secs(30));
        assert_eq!(attempt_limit(1 << 20), Duration::from_secs(34));
        assert_eq!(attempt_limit(1 << 30), Duration::from_secs(30 + 4096));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let waits: Vec<_> = (0..7).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(waits, vec![250, 500, 1000, 2000, 4000, 8000, 8000]);
        let total: Duration = (0..p.attempts - 1).map(|n| p.delay(n)).sum();
        assert!(total > Duration::from_secs(20) && total < Duration::from_secs(30));
    }
}
