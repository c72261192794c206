//! A real LiveKit room as a [`RoomSource`]: the egress joins as a hidden recorder
//! (livekit-signaling), answers the server's subscriber offers with str0m, subscribes to
//! the tracks it shows, decodes them with GStreamer and keeps the pictures and sound on one
//! session clock until the egress's clock asks for them.
//!
//! Threads: the session (signaling, WebRTC, depacketized frames into decoders) runs on its
//! own thread with a small tokio runtime; decoders deliver on GStreamer's threads into
//! [`Shared`]; the egress reads from it at each tick.

mod connection;
pub(crate) mod decode;
mod error;
pub(crate) mod media;
mod options;
pub(crate) mod roster;
pub(crate) mod sdp;
mod session;
mod shown;
mod state;
pub(crate) mod sync;
pub(crate) mod tap;
mod token;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{
    AUDIO_RATE, ParticipantInfo, PictureSizes, RoomSource, SourceEnd, Transcript, VideoFrame,
};
pub use error::{AwaitError, LiveKitError};
pub use options::{AWAIT_TIMEOUT, ConnectOptions, DEPARTURE_TIMEOUT};
pub use shown::Published;
pub(crate) use shown::Shown;
pub(crate) use state::RoomEnd;
use state::{Shared, State};
pub use token::{admin_token, recorder_token, template_token_ttl};

/// The longest wait after joining for the cameras' first pictures.
const FIRST_PICTURES_WAIT: Duration = Duration::from_secs(5);
/// A joined LiveKit room.
pub struct LiveKitRoom {
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    /// Egress media time 0 on the session clock.
    offset: Duration,
    /// Who `participants()` last listed (indices refer to it).
    listed: RefCell<Vec<Shown>>,
    cameras: HashMap<String, VideoFrame>,
    screens: HashMap<String, VideoFrame>,
    /// A track egress's tap takes the frames: no pictures to wait for.
    tapped: bool,
    /// Media reach the egress this long after they arrive (transcriptions are placed
    /// with the speech they transcribe).
    playout_delay: Duration,
}

impl LiveKitRoom {
    /// Joins the room and waits until the media path is up (or `connect_timeout`).
    pub fn connect(opts: ConnectOptions) -> Result<LiveKitRoom, LiveKitError> {
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            state: Mutex::new(State::default()),
        });
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let timeout = opts.connect_timeout;
        // A room composite starts once its cameras show; a participant or track egress
        // waits for its subject first (`await_subject`); a tap decodes no pictures.
        let tapped = opts.tap.is_some();
        let playout_delay = opts.playout_delay;
        let wait_pictures = opts.selection.is_room() && !tapped;
        let session_shared = shared.clone();
        let thread = crate::async_thread::spawn("livekit-session", move || {
            session::run(opts, session_shared, ready_tx, stop_rx)
        })?;
        let mut room = LiveKitRoom {
            shared,
            stop,
            thread: Some(thread),
            offset: Duration::ZERO,
            listed: RefCell::new(Vec::new()),
            cameras: HashMap::new(),
            screens: HashMap::new(),
            tapped,
            playout_delay,
        };
        match ready_rx.recv_timeout(timeout) {
            Ok(Ok(())) => {
                if wait_pictures {
                    room.wait_first_pictures();
                }
                Ok(room)
            }
            Ok(Err(e)) => {
                room.close();
                Err(e)
            }
            Err(_) => {
                room.close();
                Err(LiveKitError::Timeout {
                    what: "joining the room",
                    after: timeout,
                })
            }
        }
    }

    /// Start with every camera shown live rather than a few frames of placeholders: waits
    /// (boundedly) for each one's first picture to be due.
    fn wait_first_pictures(&self) {
        let deadline = Instant::now() + FIRST_PICTURES_WAIT;
        while Instant::now() < deadline && !self.first_pictures_due() {
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::info!(
            waited_ms = self.shared.epoch.elapsed().as_millis() as u64,
            "room ready"
        );
    }

    /// Waits until what a participant or track egress records is in the room (the
    /// participant with a track, or a named track; at once for a room composite), then
    /// for its first pictures. Gives up after `timeout`, when `stop` is set, or when the
    /// room ends.
    pub fn await_subject(&self, timeout: Duration, stop: &AtomicBool) -> Result<(), AwaitError> {
        let deadline = Instant::now() + timeout;
        let mut logged = false;
        loop {
            if let Some(end) = self.ended() {
                return Err(AwaitError::Ended(end));
            }
            let ready = self
                .shared
                .lock()
                .ready
                .clone()
                .unwrap_or(Err("the room's participants".into()));
            match ready {
                Ok(()) => break,
                Err(missing) => {
                    if stop.load(Ordering::Relaxed) {
                        return Err(AwaitError::Stopped);
                    }
                    if Instant::now() >= deadline {
                        return Err(AwaitError::NotFound(missing));
                    }
                    if !logged {
                        tracing::info!(waiting_for = %missing, "waiting for the participant or track");
                        logged = true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !self.tapped {
            self.wait_first_pictures();
        }
        Ok(())
    }

    /// A track published in the room now.
    pub fn published(&self, sid: &str) -> Option<Published> {
        self.shared.lock().published.get(sid).cloned()
    }

    /// Whether a participant or track egress's subject has been gone for longer than
    /// [`DEPARTURE_TIMEOUT`].
    fn subject_departed(&self) -> bool {
        self.shared
            .lock()
            .subject_gone_since
            .is_some_and(|t| t.elapsed() >= DEPARTURE_TIMEOUT)
    }

    /// Leaves the room (idempotent).
    pub fn close(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Whether every unmuted camera of the participants shown has a picture due now.
    fn first_pictures_due(&self) -> bool {
        let now = self.shared.epoch.elapsed();
        let state = self.shared.lock();
        state
            .shown
            .iter()
            .filter_map(|s| s.camera.as_ref())
            .filter(|(_, muted)| !muted)
            .all(|(sid, _)| state.pictures.get(sid).is_some_and(|q| q.has_due(now)))
    }

    fn session_time(&self, egress: Duration) -> Duration {
        egress + self.offset
    }
}

impl Drop for LiveKitRoom {
    fn drop(&mut self) {
        self.close();
    }
}

impl RoomSource for LiveKitRoom {
    fn room_id(&self) -> String {
        self.shared.lock().room_sid.clone()
    }

    fn requested_layout(&mut self) -> Option<String> {
        self.shared.lock().layout_request.take()
    }

    fn participants(&self) -> Vec<ParticipantInfo> {
        let shown = self.shared.lock().shown.clone();
        let infos = shown
            .iter()
            .map(|s| ParticipantInfo {
                identity: s.identity.clone(),
                name: s.name.clone(),
                drawn: s.drawn,
                agent: s.agent,
                channel: s.channel,
            })
            .collect();
        *self.listed.borrow_mut() = shown;
        infos
    }

    fn publisher_identity(&self) -> Option<String> {
        self.shared.lock().publisher.clone()
    }

    fn start(&mut self, clock: Instant) {
        self.offset = clock.saturating_duration_since(self.shared.epoch);
    }

    fn picture_sizes(&mut self, sizes: &PictureSizes) {
        let listed = self.listed.borrow();
        let mut state = self.shared.lock();
        for (i, s) in listed.iter().enumerate() {
            if let (Some((sid, _)), Some(Some(size))) = (&s.camera, sizes.cameras.get(i)) {
                state.wanted_sizes.insert(sid.clone(), *size);
            }
        }
        if let Some(size) = sizes.screen_share
            && let Some((sid, _)) = listed.iter().find_map(|s| s.screen.as_ref())
        {
            state.wanted_sizes.insert(sid.clone(), size);
        }
    }

    fn advance_video(&mut self, at: Duration) {
        let at = self.session_time(at);
        let listed = self.listed.borrow();
        let mut state = self.shared.lock();
        for s in listed.iter() {
            for (track, current) in [
                (&s.camera, &mut self.cameras),
                (&s.screen, &mut self.screens),
            ] {
                match track {
                    Some((sid, _)) => {
                        if let Some(f) = state.pictures.get_mut(sid).and_then(|q| q.take_due(at)) {
                            current.insert(s.sid.clone(), f);
                        }
                    }
                    None => {
                        current.remove(&s.sid);
                    }
                }
            }
        }
        let present: Vec<&str> = listed.iter().map(|s| s.sid.as_str()).collect();
        self.cameras.retain(|k, _| present.contains(&k.as_str()));
        self.screens.retain(|k, _| present.contains(&k.as_str()));
    }

    fn video(&self, index: usize) -> Option<&VideoFrame> {
        let listed = self.listed.borrow();
        let s = listed.get(index)?;
        match &s.camera {
            Some((_, false)) => self.cameras.get(&s.sid),
            _ => None,
        }
    }

    fn screen_share(&self) -> Option<(usize, &VideoFrame)> {
        let listed = self.listed.borrow();
        listed
            .iter()
            .enumerate()
            .find_map(|(i, s)| match &s.screen {
                Some((_, false)) => self.screens.get(&s.sid).map(|f| (i, f)),
                _ => None,
            })
    }

    fn mix_audio_into(&mut self, index: usize, first_sample: u64, out: &mut [f32]) {
        let listed = self.listed.borrow();
        let Some(s) = listed.get(index) else { return };
        let first =
            first_sample + self.offset.as_nanos() as u64 * AUDIO_RATE as u64 / 1_000_000_000;
        let mut state = self.shared.lock();
        for t in &s.audio {
            if let Some(ring) = state.sound.get_mut(t) {
                ring.mix_into(first, out);
            }
        }
    }

    fn transcripts(&mut self) -> Vec<Transcript> {
        let heard = std::mem::take(&mut self.shared.lock().transcripts);
        heard
            .into_iter()
            .map(|t| Transcript {
                at: (t.at + self.playout_delay).saturating_sub(self.offset),
                ..t
            })
            .collect()
    }

    fn ended(&self) -> Option<SourceEnd> {
        if self.subject_departed() {
            return Some(SourceEnd::Closed);
        }
        match self.shared.lock().end.as_ref()? {
            RoomEnd::Closed => Some(SourceEnd::Closed),
            RoomEnd::Stopped => None,
            RoomEnd::Failed(e) => Some(SourceEnd::Failed(e.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectOptions;
    use super::state::layout_in_metadata;

    #[test]
    fn a_layout_is_read_from_participant_metadata() {
        assert_eq!(
            layout_in_metadata(r#"{"layout":"speaker-dark"}"#).as_deref(),
            Some("speaker-dark")
        );
        assert_eq!(layout_in_metadata(r#"{"layout":""}"#), None);
        assert_eq!(layout_in_metadata("plain text"), None);
        assert_eq!(layout_in_metadata(""), None);
    }

    #[test]
    fn the_api_secret_never_prints() {
        let o = ConnectOptions::new(
            "ws://127.0.0.1:7880",
            "devkey",
            &"s3cr3t-value".into(),
            "room",
        );
        let shown = format!("{o:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(
            shown.contains("devkey") && shown.contains("api_secret: \"***\""),
            "{shown}"
        );
    }
}
