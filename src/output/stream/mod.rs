//! Stream outputs (RTMP, RTMPS, SRT), each URL isolated in a pipeline of its own.
//!
//! The main pipeline hands the encoded H.264 and AAC to two app sinks; their callbacks
//! copy each buffer (a reference, not the bytes) into every live stream's app sources,
//! which are leaky: a dead, slow or rejecting endpoint drops its own oldest data and never
//! blocks the encode, the files or the other streams. A stream joins at a key frame (one
//! is requested from the encoder) with its time rebased to zero. Errors arrive on the
//! stream's own bus; the retry policy is [`MAX_ATTEMPTS`] attempts in a row, spaced by
//! [`BACKOFF`], after which the stream is FAILED. Stream keys appear only in the sink's
//! location: results and logs carry the redacted URL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use livekit_protocol::{StreamInfo, stream_info::Status};

use crate::backoff::Backoff;
use crate::encode::{EncodeError, make};
use crate::info::now_ns;
use crate::request::stream_url::{StreamKind, StreamUrl, parse_stream_url, redact_url};

/// Connection attempts in a row before a stream is FAILED (the first and two retries).
pub const MAX_ATTEMPTS: u32 = 3;
/// Wait before retry `n` (1-based): 1 s, then 2 s.
pub const BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(2));
/// A stream that has run this long without an error starts its attempt count afresh.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(30);
mod feed;

use feed::{Feed, Sender, app_sink};

/// Data each stream may buffer before it drops its oldest.
const STREAM_BUFFER_BYTES: u64 = 8 << 20;
/// How long a finishing stream may take to flush its muxer.
const FINISH_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a stream update was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamError {
    /// The egress has no stream output to update.
    #[error("egress has no stream output")]
    NoStreamOutput,
    /// The URL cannot be used.
    #[error("add_output_urls: {0}")]
    BadUrl(String),
    /// The URL is already streaming.
    #[error("add_output_urls: {0} is already an output")]
    Duplicate(String),
    /// The URL is not one of the egress's streams.
    #[error("remove_output_urls: {0} is not an active output")]
    NotFound(String),
    /// The egress would stream to more URLs at once, or over its life, than it takes.
    #[error("add_output_urls: {0}")]
    TooMany(String),
}

/// Most URLs an egress streams to at once (as many as a request may ask for).
pub const MAX_ACTIVE: usize = crate::request::outputs::MAX_OUTPUTS;
/// Most URLs an egress streams to over its life (each keeps its `StreamInfo`).
pub const MAX_EVER: usize = 128;

/// Whether an update that removes `removing` of `active` streams and adds `adding` keeps
/// within [`MAX_ACTIVE`] at once and [`MAX_EVER`] over the egress's life (`ever` so far).
fn check_room(
    active: usize,
    removing: usize,
    adding: usize,
    ever: usize,
) -> Result<(), StreamError> {
    let after = active.saturating_sub(removing) + adding;
    if after > MAX_ACTIVE {
        return Err(StreamError::TooMany(format!(
            "{after} streams at once; an egress streams to at most {MAX_ACTIVE}"
        )));
    }
    if ever + adding > MAX_EVER {
        return Err(StreamError::TooMany(format!(
            "an egress streams to at most {MAX_EVER} URLs over its life"
        )));
    }
    Ok(())
}

/// A requested stream's info before anything is known of it: ACTIVE since `now`, its key
/// redacted.
fn active_info(url: &StreamUrl, now: i64) -> StreamInfo {
    StreamInfo {
        url: redact_url(&url.url),
        started_at: now,
        status: Status::Active as i32,
        ..Default::default()
    }
}

/// The results of an egress's requested streams at its start (LiveKit lists every one
/// from the start, so a client polling `ListEgress` sees them before the first update).
pub fn requested_infos(urls: &[StreamUrl], now: i64) -> Vec<StreamInfo> {
    urls.iter().map(|u| active_info(u, now)).collect()
}

enum State {
    Running {
        pipeline: gst::Pipeline,
        sender: Arc<Sender>,
        since: Instant,
    },
    Waiting {
        until: Instant,
    },
    Done,
}

struct Entry {
    url: StreamUrl,
    info: StreamInfo,
    state: State,
    /// Failed attempts in a row.
    failures: u32,
}

/// Every stream of one egress.
pub struct Streams {
    feed: Arc<Feed>,
    entries: Vec<Entry>,
    has_video: bool,
    has_audio: bool,
    /// Sink pad of the video app sink: key-frame requests go upstream from here.
    video_pad: Option<gst::Pad>,
    next_id: AtomicU64,
    enabled: bool,
}

/// Builds one stream's pipeline: app sources → parsers → FLV or MPEG-TS → network sink.
fn stream_pipeline(
    url: &StreamUrl,
    id: u64,
    video: bool,
    audio: bool,
) -> Result<(gst::Pipeline, Sender), EncodeError> {
    let pipeline = gst::Pipeline::with_name(&format!("stream-{id}"));
    let (mux, sink) = match url.kind {
        StreamKind::Rtmp => {
            let mux = make("flvmux")?;
            mux.set_property("streamable", true);
            let sink = make("rtmp2sink")?;
            sink.set_property("location", &url.url);
            (mux, sink)
        }
        StreamKind::Srt => {
            let mux = make("mpegtsmux")?;
            mux.set_property("alignment", 7i32);
            let sink = make("srtsink")?;
            sink.set_property("uri", &url.url);
            sink.set_property("wait-for-connection", false);
            (mux, sink)
        }
    };
    sink.set_property("sync", false);
    pipeline.add_many([&mux, &sink]).expect("fresh elements");
    mux.link(&sink).expect("muxer links to sink");
    let source = |name: &str,
                  parser: &'static str,
                  format: gst::Caps,
                  pad: &str|
     -> Result<gst_app::AppSrc, EncodeError> {
        let src = gst_app::AppSrc::builder()
            .name(name)
            .format(gst::Format::Time)
            // Live: the muxer sends what it has on its own clock rather than waiting to
            // interleave (a non-live MPEG-TS muxer held everything until the end).
            .is_live(true)
            .block(false)
            .max_bytes(STREAM_BUFFER_BYTES)
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .build();
        let parse = make(parser)?;
        let filter = make("capsfilter")?;
        filter.set_property("caps", &format);
        let queue = make("queue")?;
        pipeline
            .add_many([src.upcast_ref(), &parse, &filter, &queue])
            .expect("fresh elements");
        gst::Element::link_many([src.upcast_ref(), &parse, &filter, &queue]).expect("source chain");
        let mux_pad = mux
            .request_pad_simple(pad)
            .ok_or(EncodeError::MissingElement("stream muxer pad"))?;
        queue
            .static_pad("src")
            .expect("queue src")
            .link(&mux_pad)
            .map_err(|_| EncodeError::MissingElement("stream muxer pad link"))?;
        Ok(src)
    };
    // FLV carries AVC and raw AAC; MPEG-TS carries byte-stream H.264 and ADTS.
    let (vpad, apad, h264, aac) = match url.kind {
        StreamKind::Rtmp => ("video", "audio", "avc", "raw"),
        StreamKind::Srt => ("sink_%d", "sink_%d", "byte-stream", "adts"),
    };
    let h264 = gst::Caps::builder("video/x-h264")
        .field("stream-format", h264)
        .field("alignment", "au")
        .build();
    let aac = gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", aac)
        .build();
    let video = video
        .then(|| source("video", "h264parse", h264, vpad))
        .transpose()?;
    let audio = audio
        .then(|| source("audio", "aacparse", aac, apad))
        .transpose()?;
    Ok((
        pipeline.clone(),
        Sender {
            id,
            video,
            audio,
            offset: Mutex::new(None),
            audio_until: Mutex::new(None),
            pipeline: pipeline.clone(),
        },
    ))
}

/// Stops a stream's pipeline off the caller's thread (a sink may block while closing).
fn stop_pipeline(
    pipeline: gst::Pipeline,
    sender: Option<Arc<Sender>>,
    flush: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        if flush && let Some(s) = &sender {
            for src in [&s.video, &s.audio].into_iter().flatten() {
                let _ = src.end_of_stream();
            }
            if let Some(bus) = pipeline.bus() {
                let _ = bus.timed_pop_filtered(
                    gst::ClockTime::from_nseconds(FINISH_TIMEOUT.as_nanos() as u64),
                    &[gst::MessageType::Eos, gst::MessageType::Error],
                );
            }
        }
        let _ = pipeline.set_state(gst::State::Null);
    })
}

impl Streams {
    /// Hooks the stream feed onto the encode's tees (H.264 `video_tee`, AAC `audio_tee`)
    /// when the egress has a stream output; the URLs start with [`Streams::start`].
    pub fn new(
        pipeline: &gst::Pipeline,
        enabled: bool,
        video_tee: Option<&gst::Element>,
        audio_tee: Option<&gst::Element>,
    ) -> Result<Streams, EncodeError> {
        let feed = Arc::new(Feed::default());
        let mut video_pad = None;
        if enabled {
            if let Some(tee) = video_tee {
                video_pad = Some(app_sink(pipeline, tee, feed.clone(), true)?);
            }
            if let Some(tee) = audio_tee {
                app_sink(pipeline, tee, feed.clone(), false)?;
            }
        }
        Ok(Streams {
            feed,
            entries: Vec::new(),
            has_video: video_tee.is_some(),
            has_audio: audio_tee.is_some(),
            video_pad,
            next_id: AtomicU64::new(1),
            enabled,
        })
    }

    fn connect(&mut self, i: usize) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let e = &mut self.entries[i];
        let shown = redact_url(&e.url.url);
        match stream_pipeline(&e.url, id, self.has_video, self.has_audio) {
            Ok((pipeline, sender)) => {
                let sender = Arc::new(sender);
                self.feed
                    .senders
                    .lock()
                    .expect("feed lock")
                    .push(sender.clone());
                let p = pipeline.clone();
                // SRT callers connect while starting: never on the egress's thread.
                std::thread::spawn(move || {
                    let _ = p.set_state(gst::State::Playing);
                });
                e.state = State::Running {
                    pipeline,
                    sender,
                    since: Instant::now(),
                };
                tracing::info!(url = %shown, "stream connecting");
                if let Some(pad) = &self.video_pad {
                    let event = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                        .all_headers(true)
                        .build();
                    pad.push_event(event);
                }
            }
            Err(err) => self.fail(i, err.to_string()),
        }
    }

    /// Starts the request's URLs.
    pub fn start(&mut self, urls: &[StreamUrl]) {
        for u in urls {
            self.add_entry(u.clone());
        }
    }

    fn add_entry(&mut self, url: StreamUrl) {
        self.entries.push(Entry {
            info: active_info(&url, now_ns()),
            url,
            state: State::Done,
            failures: 0,
        });
        self.connect(self.entries.len() - 1);
    }

    fn detach(&mut self, i: usize, flush: bool) -> Option<std::thread::JoinHandle<()>> {
        let state = std::mem::replace(&mut self.entries[i].state, State::Done);
        if let State::Running {
            pipeline, sender, ..
        } = state
        {
            self.feed
                .senders
                .lock()
                .expect("feed lock")
                .retain(|s| s.id != sender.id);
            return Some(stop_pipeline(pipeline, Some(sender), flush));
        }
        None
    }

    /// Records a failed attempt: retries after a backoff, or marks the stream FAILED.
    fn fail(&mut self, i: usize, error: String) {
        self.detach(i, false);
        let e = &mut self.entries[i];
        e.failures += 1;
        let shown = redact_url(&e.url.url);
        // Error texts can quote the location: redact it there too.
        let error = error.replace(&e.url.url, &shown);
        e.info.error = error.clone();
        if e.failures < MAX_ATTEMPTS {
            let wait = BACKOFF.delay(e.failures - 1);
            tracing::warn!(url = %shown, %error, retry_in_ms = wait.as_millis() as u64, "stream failed; retrying");
            e.state = State::Waiting {
                until: Instant::now() + wait,
            };
        } else {
            tracing::error!(url = %shown, %error, attempts = e.failures, "stream failed");
            e.info.status = Status::Failed as i32;
            e.info.ended_at = now_ns();
            e.info.duration = e.info.ended_at - e.info.started_at;
            e.state = State::Done;
        }
    }

    /// Reads each stream's bus, retries streams whose backoff is over. Call every tick.
    /// True when a stream's info changed (it failed, or a retry began).
    pub fn poll(&mut self) -> bool {
        let mut changed = false;
        for i in 0..self.entries.len() {
            let mut error = None;
            match &self.entries[i].state {
                State::Running {
                    pipeline, since, ..
                } => {
                    if let Some(bus) = pipeline.bus()
                        && let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error])
                        && let gst::MessageView::Error(err) = msg.view()
                    {
                        error = Some(err.error().to_string());
                    } else if since.elapsed() > HEALTHY_AFTER {
                        self.entries[i].failures = 0;
                    }
                }
                State::Waiting { until } if Instant::now() >= *until => {
                    let e = &mut self.entries[i];
                    e.info.retries += 1;
                    e.info.last_retry_at = now_ns();
                    self.connect(i);
                    changed = true;
                }
                _ => {}
            }
            if let Some(error) = error {
                self.fail(i, error);
                changed = true;
            }
        }
        changed
    }

    /// `UpdateStream`: adds and removes URLs while the egress runs.
    pub fn update(&mut self, add: &[String], remove: &[String]) -> Result<(), StreamError> {
        if !self.enabled {
            return Err(StreamError::NoStreamOutput);
        }
        let mut to_add = Vec::new();
        for u in add {
            let url = parse_stream_url(u).map_err(StreamError::BadUrl)?;
            if self
                .entries
                .iter()
                .any(|e| e.url.url == url.url && e.info.status == Status::Active as i32)
                || to_add.iter().any(|a: &StreamUrl| a.url == url.url)
            {
                return Err(StreamError::Duplicate(redact_url(&url.url)));
            }
            to_add.push(url);
        }
        let mut to_remove = Vec::new();
        for u in remove {
            let given = u.trim();
            let expanded = parse_stream_url(given).map(|p| p.url).unwrap_or_default();
            let found = self.entries.iter().position(|e| {
                e.info.status == Status::Active as i32
                    && (e.url.given == given || e.url.url == given || e.url.url == expanded)
            });
            match found {
                Some(i) => to_remove.push(i),
                None => return Err(StreamError::NotFound(redact_url(given))),
            }
        }
        let active = self
            .entries
            .iter()
            .filter(|e| e.info.status == Status::Active as i32)
            .count();
        check_room(active, to_remove.len(), to_add.len(), self.entries.len())?;
        for i in to_remove {
            self.finish(i);
        }
        for u in to_add {
            self.add_entry(u);
        }
        Ok(())
    }

    fn finish(&mut self, i: usize) -> Option<std::thread::JoinHandle<()>> {
        let handle = self.detach(i, true);
        let e = &mut self.entries[i];
        if e.info.status == Status::Active as i32 {
            e.info.status = Status::Finished as i32;
            e.info.ended_at = now_ns();
            e.info.duration = e.info.ended_at - e.info.started_at;
            tracing::info!(url = %e.info.url, "stream finished");
        }
        handle
    }

    /// Whether the egress has streams and every one has failed.
    pub fn all_failed(&self) -> bool {
        !self.entries.is_empty()
            && self
                .entries
                .iter()
                .all(|e| e.info.status == Status::Failed as i32)
    }

    /// Whether the egress has streams and none is active any more (each removed or
    /// failed).
    pub fn all_ended(&self) -> bool {
        !self.entries.is_empty()
            && self
                .entries
                .iter()
                .all(|e| e.info.status != Status::Active as i32)
    }

    /// Each stream's info so far.
    pub fn infos(&self) -> Vec<StreamInfo> {
        self.entries.iter().map(|e| e.info.clone()).collect()
    }

    /// Ends every stream (flushing its muxer, a few seconds at most); returns the results.
    pub fn finish_all(&mut self) -> Vec<StreamInfo> {
        let handles: Vec<_> = (0..self.entries.len())
            .filter_map(|i| self.finish(i))
            .collect();
        for h in handles {
            let _ = h.join();
        }
        self.infos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_bounded_at_once_and_over_a_life() {
        assert!(check_room(15, 0, 1, 15).is_ok());
        assert!(matches!(
            check_room(16, 0, 1, 16),
            Err(StreamError::TooMany(_))
        ));
        // Swapping one for another at the bound is fine.
        assert!(check_room(16, 1, 1, 16).is_ok());
        assert!(check_room(2, 0, 1, MAX_EVER - 1).is_ok());
        let e = check_room(2, 0, 1, MAX_EVER).unwrap_err();
        assert!(e.to_string().starts_with("add_output_urls: "), "{e}");
    }

    #[test]
    fn requested_streams_are_listed_active_and_redacted() {
        let url = crate::request::stream_url::parse_stream_url("rtmp://h/live/secret-key").unwrap();
        let infos = requested_infos(&[url], 7);
        assert_eq!(infos.len(), 1);
        assert_eq!(infos[0].status, Status::Active as i32);
        assert_eq!(infos[0].started_at, 7);
        assert!(!infos[0].url.contains("secret-key"), "{}", infos[0].url);
    }
}
