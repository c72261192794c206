//! A web page as a room source: Chromium on a virtual display (Xvfb) of the output's
//! size with a PulseAudio server of its own, the display captured at the output frame
//! rate and the sink's monitor recorded, one full-frame picture and a stereo sound for
//! the compositor and mixer. Every egress has its own display, sound server and browser
//! profile, so web egresses on one machine never see or hear each other.

pub(crate) mod browser;
mod capture;
mod devtools;
mod guard;
pub(crate) mod processes;
pub(crate) mod xauth;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use browser::{BrowserCommand, PageState};
use capture::{Capture, CaptureSpec};
use processes::EgressDir;

use crate::request::page_policy::PagePolicy;
use crate::request::select::Channel;
use crate::secret::Secret;
use crate::source::{AUDIO_RATE, ParticipantInfo, RoomSource, SourceEnd, VideoFrame};

/// The most the recording may trail the page: it starts at the page's load or start
/// signal even though the egress's pipeline starts a little later (the pictures and sound
/// in between are queued), unless that is longer ago than this.
const MAX_LAG: Duration = Duration::from_millis(2500);
/// How long the display and sound server get to start.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the first captured picture.
const FIRST_PICTURE_TIMEOUT: Duration = Duration::from_secs(5);
/// The PulseAudio sink Chromium plays into.
const SINK: &str = "tessera";
/// LiveKit's `EgressInfo.error` for a start signal that never came.
pub const NO_START_SIGNAL: &str = "Start signal not received";

/// The room a custom template joins, for `UpdateLayout` (the egress participant's
/// metadata is set through the server's RoomService, as livekit-server does it).
#[derive(Clone, Debug)]
pub struct TemplateRoom {
    /// The server's `ws(s)://` URL.
    pub ws_url: String,
    /// API key.
    pub api_key: String,
    /// API secret.
    pub api_secret: Secret,
    /// The room.
    pub room_name: String,
}

/// What to record.
#[derive(Clone, Debug)]
pub struct WebOptions {
    /// The egress id: the egress's directory name (and a template's participant identity).
    pub egress_id: String,
    /// The page, as the browser opens it.
    pub url: String,
    /// Display size (the output size).
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Output frame rate (the capture rate).
    pub fps: u32,
    /// Capture pictures.
    pub video: bool,
    /// Capture sound.
    pub audio: bool,
    /// Start at the page's `START_RECORDING` (else once loaded).
    pub await_start_signal: bool,
    /// How long to wait for it.
    pub start_timeout: Duration,
    /// A template's room (for `UpdateLayout`).
    pub template: Option<TemplateRoom>,
    /// The addresses the page may reach.
    pub policy: PagePolicy,
}

/// Why a web source could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The display, sound server, browser or capture could not be started.
    #[error("{0}")]
    Launch(String),
    /// The page did not load (DNS, refused connection, TLS, an HTTP error status) or the
    /// browser went away before recording started.
    #[error("{0}")]
    Load(String),
    /// `await_start_signal` and no `START_RECORDING` within the timeout.
    #[error("{NO_START_SIGNAL}")]
    NoStartSignal,
    /// Stopped before recording started.
    #[error("stopped before the page started recording")]
    Stopped,
}

/// A page being recorded.
pub struct WebPage {
    opts: WebOptions,
    origin: Instant,
    /// Media time 0 on the session clock (set by `start`).
    offset: Duration,
    /// Nothing before this is recorded (the load or the start signal).
    floor: Duration,
    /// The newest session time the egress has asked for.
    latest: Duration,
    current: Option<VideoFrame>,
    capture: Option<Capture>,
    state: Arc<Mutex<PageState>>,
    commands: Option<tokio::sync::mpsc::UnboundedSender<BrowserCommand>>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: Option<EgressDir>,
}

impl WebPage {
    /// Starts the display, sound server and browser, loads the page, waits for its start
    /// signal when asked to, and starts capturing. Whatever was started is stopped again
    /// on an error.
    pub fn open(opts: WebOptions, stop: &AtomicBool) -> Result<WebPage, WebError> {
        let root = processes::root();
        let reaped = processes::reap_leftovers(&root);
        if reaped > 0 {
            tracing::info!(reaped, "cleaned up web egresses an earlier run left behind");
        }
        let dir = EgressDir::create(&root, &opts.egress_id)
            .map_err(|e| WebError::Launch(format!("{}: {e}", root.display())))?;
        let origin = Instant::now();
        let mut page = WebPage {
            opts,
            origin,
            offset: Duration::ZERO,
            floor: Duration::ZERO,
            latest: Duration::ZERO,
            current: None,
            capture: None,
            state: Default::default(),
            commands: None,
            thread: None,
            dir: Some(dir),
        };
        page.launch(stop)?;
        Ok(page)
    }

    fn dir(&self) -> &EgressDir {
        self.dir
            .as_ref()
            .expect("the directory lives as long as the page")
    }

    fn launch(&mut self, stop: &AtomicBool) -> Result<(), WebError> {
        let (w, h) = (self.opts.width, self.opts.height);
        let display = start_display(self.dir(), w, h)?;
        let pulse = start_pulse(self.dir())?;
        let ws_url =
            browser::launch(self.dir(), &display, &pulse, w, h).map_err(WebError::Launch)?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.commands = Some(tx);
        let (state, url, origin) = (self.state.clone(), self.opts.url.clone(), self.origin);
        let policy = self.opts.policy;
        let thread = crate::async_thread::spawn("web-browser", move || {
            browser::drive(ws_url, url, policy, origin, state, rx)
        })
        .map_err(|e| WebError::Launch(e.to_string()))?;
        self.thread = Some(thread);

        // Loaded, or why not (the browser thread bounds the load).
        self.wait_for(Some(stop), None, WebError::Load, |p| {
            p.state
                .lock()
                .expect("page state lock")
                .load
                .clone()
                .map(|l| l.map_err(WebError::Load))
        })?;
        let spec = CaptureSpec {
            display: self.opts.video.then_some(display.as_str()),
            width: w,
            height: h,
            fps: self.opts.fps,
            pulse: self.opts.audio.then_some((pulse.as_str(), SINK)),
        };
        self.capture = Some(Capture::start(&spec, self.origin).map_err(WebError::Launch)?);
        self.floor = if self.opts.await_start_signal {
            tracing::info!(
                timeout_s = self.opts.start_timeout.as_secs_f64(),
                "waiting for the page's START_RECORDING"
            );
            let deadline = (
                Instant::now() + self.opts.start_timeout,
                WebError::NoStartSignal,
            );
            self.wait_for(Some(stop), Some(deadline), WebError::Load, |p| {
                p.state.lock().expect("page state lock").started.map(Ok)
            })?
        } else {
            self.origin.elapsed()
        };
        if self.opts.video {
            let deadline = (
                Instant::now() + FIRST_PICTURE_TIMEOUT,
                WebError::Launch("no picture captured from the page's display".into()),
            );
            self.wait_for(None, Some(deadline), WebError::Launch, |p| {
                (p.captured(|c| c.picture_count) > 0).then_some(Ok(()))
            })?;
        }
        Ok(())
    }

    /// Polls `ready` every 10 ms until it answers; the page going away ends the wait with
    /// `gone(why)`, a `stop` with [`WebError::Stopped`], the `deadline` with its error.
    fn wait_for<T>(
        &self,
        stop: Option<&AtomicBool>,
        deadline: Option<(Instant, WebError)>,
        gone: fn(String) -> WebError,
        mut ready: impl FnMut(&Self) -> Option<Result<T, WebError>>,
    ) -> Result<T, WebError> {
        loop {
            if let Some(answer) = ready(self) {
                return answer;
            }
            if let Some(why) = self.gone() {
                return Err(gone(why));
            }
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Err(WebError::Stopped);
            }
            if deadline
                .as_ref()
                .is_some_and(|(at, _)| Instant::now() > *at)
            {
                return Err(deadline.map(|(_, e)| e).expect("a deadline passed"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn captured<T>(&self, f: impl FnOnce(&mut capture::Captured) -> T) -> T {
        let capture = self.capture.as_ref().expect("capture started");
        f(&mut capture.captured.lock().expect("capture lock"))
    }

    /// Why the page can no longer be recorded: a process exited, the DevTools connection
    /// closed, or the capture failed.
    fn gone(&self) -> Option<String> {
        if let Some((name, status)) = self.dir().exited() {
            return Some(match name.as_str() {
                "browser" => format!("the browser exited ({status})"),
                "display" => format!("the virtual display exited ({status})"),
                _ => format!("the sound server exited ({status})"),
            });
        }
        if let Some(why) = &self.state.lock().expect("page state lock").disconnected {
            return Some(why.clone());
        }
        self.capture.as_ref().and_then(Capture::error)
    }

    fn session_sample(&self, media_sample: u64) -> u64 {
        let offset = self.offset.as_nanos() as u64 * AUDIO_RATE as u64 / 1_000_000_000;
        offset + media_sample
    }
}

impl Drop for WebPage {
    fn drop(&mut self) {
        self.capture = None;
        self.commands = None;
        // The processes go first: the browser thread ends when its connection closes.
        self.dir = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts Xvfb on a free display number (`-displayfd`); returns `:N`.
fn start_display(dir: &EgressDir, width: u32, height: u32) -> Result<String, WebError> {
    let root = dir.path().parent().unwrap_or(dir.path());
    let auth = xauth::ensure(root)
        .map_err(|e| WebError::Launch(format!("the displays' authority file: {e}")))?;
    let mut cmd = Command::new("Xvfb");
    cmd.arg("-auth")
        .arg(&auth)
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            &format!("{width}x{height}x24"),
            "-nolisten",
            "tcp",
            "-noreset",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(dir.log("xvfb.log"));
    dir.spawn("display", &mut cmd)
        .map_err(|e| WebError::Launch(format!("starting Xvfb: {e}")))?;
    let stdout = dir
        .take("display", |c| c.stdout.take())
        .expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(HELPER_TIMEOUT) {
        Ok(line) if line.trim().parse::<u32>().is_ok() => {
            let name = format!(":{}", line.trim());
            tracing::info!(display = %name, width, height, "virtual display started");
            Ok(name)
        }
        _ => Err(WebError::Launch(match dir.exited() {
            Some((_, status)) => format!("Xvfb exited ({status}); see xvfb.log"),
            None => "Xvfb did not report its display".into(),
        })),
    }
}

/// Starts a PulseAudio server of the egress's own (socket in its directory, one null
/// sink at 48 kHz stereo float); returns the `PULSE_SERVER` value.
fn start_pulse(dir: &EgressDir) -> Result<String, WebError> {
    let home = dir.path().join("pulse");
    std::fs::create_dir_all(&home).map_err(|e| WebError::Launch(e.to_string()))?;
    let socket = home.join("native");
    let mut cmd = Command::new("pulseaudio");
    cmd.args([
        "-n",
        "--daemonize=no",
        "--exit-idle-time=-1",
        "--use-pid-file=no",
        "--disable-shm=yes",
        &format!(
            "--load=module-native-protocol-unix auth-anonymous=1 socket={}",
            socket.display()
        ),
        &format!(
            "--load=module-null-sink sink_name={SINK} rate={AUDIO_RATE} channels=2 format=float32le"
        ),
    ])
    .env("HOME", &home)
    .env("XDG_RUNTIME_DIR", &home)
    .env("XDG_CONFIG_HOME", &home)
    .env_remove("PULSE_SERVER")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(dir.log("pulse.log"));
    dir.spawn("sound", &mut cmd)
        .map_err(|e| WebError::Launch(format!("starting pulseaudio: {e}")))?;
    let deadline = Instant::now() + HELPER_TIMEOUT;
    while !socket.exists() {
        if let Some((_, status)) = dir.exited() {
            return Err(WebError::Launch(format!(
                "pulseaudio exited ({status}); see pulse.log"
            )));
        }
        if Instant::now() > deadline {
            return Err(WebError::Launch(
                "pulseaudio did not open its socket".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    tracing::info!(socket = %socket.display(), "sound server started");
    Ok(format!("unix:{}", socket.display()))
}

impl RoomSource for WebPage {
    fn room_id(&self) -> String {
        String::new()
    }

    fn participants(&self) -> Vec<ParticipantInfo> {
        let mut page = ParticipantInfo::new("web", "");
        if !self.opts.audio {
            return vec![page];
        }
        // The page's stereo: its left channel on the page, its right on an unseen second.
        page.channel = Some(Channel::Left);
        let mut right = ParticipantInfo::new("web:right", "");
        right.drawn = false;
        right.channel = Some(Channel::Right);
        vec![page, right]
    }

    fn start(&mut self, clock: Instant) {
        let now = clock.saturating_duration_since(self.origin);
        self.offset = now.saturating_sub(MAX_LAG).max(self.floor);
        tracing::debug!(
            offset_ms = self.offset.as_millis() as u64,
            "web capture mapped onto the egress clock"
        );
    }

    fn ended(&self) -> Option<SourceEnd> {
        // END_RECORDING ends the recording at the moment it was logged.
        if let Some(end) = self.state.lock().expect("page state lock").end_signal
            && self.latest >= end
        {
            return Some(SourceEnd::Closed);
        }
        self.gone().map(SourceEnd::Failed)
    }

    fn advance_video(&mut self, at: Duration) {
        let session = self.offset + at;
        self.latest = self.latest.max(session);
        let first = self.current.is_none();
        let floor = self.floor;
        let due = self.captured(|c| {
            if first {
                // Nothing from before the start: the first picture is the first after it.
                c.pictures.drop_before(floor);
                c.pictures
                    .take_due(session)
                    .or_else(|| c.pictures.take_first())
            } else {
                c.pictures.take_due(session)
            }
        });
        if let Some(f) = due {
            self.current = Some(f);
        }
    }

    fn video(&self, index: usize) -> Option<&VideoFrame> {
        (index == 0).then_some(self.current.as_ref()).flatten()
    }

    fn mix_audio_into(&mut self, index: usize, first_sample: u64, out: &mut [f32]) {
        if !self.opts.audio || index > 1 {
            return;
        }
        let at = self.session_sample(first_sample);
        let end = Duration::from_nanos((at + out.len() as u64) * 1_000_000_000 / AUDIO_RATE as u64);
        self.latest = self.latest.max(end);
        self.captured(|c| c.sound[index].mix_into(at, out));
    }

    fn update_layout(&mut self, layout: &str, reply: &Sender<Result<String, String>>) -> bool {
        let Some(room) = &self.opts.template else {
            let _ = reply.send(Err(
                "a web egress records its page as it is: it has no layout".into(),
            ));
            return true;
        };
        let request = match layout_request(room, &self.opts.egress_id, layout) {
            Ok(r) => r,
            Err(e) => {
                let _ = reply.send(Err(e));
                return true;
            }
        };
        let Some(tx) = &self.commands else {
            let _ = reply.send(Err("the browser is gone".into()));
            return true;
        };
        let (endpoint, token, body) = request;
        let command = BrowserCommand::SetMetadata {
            endpoint,
            token,
            body,
            layout: layout.to_owned(),
            reply: reply.clone(),
        };
        if tx.send(command).is_err() {
            let _ = reply.send(Err("the browser is gone".into()));
        }
        true
    }
}

/// The X authority file that admits this process to the egresses' virtual displays (what
/// `XAUTHORITY` names for the capture), under the web root (`TESSERA_WEB_DIR`, else
/// `$TMPDIR/tessera-web`).
pub fn xauthority() -> std::path::PathBuf {
    xauth::path(&processes::root())
}

/// LiveKit's `UpdateLayout` for a template, as livekit-server carries it out: the
/// RoomService's `UpdateParticipant` on the egress participant with metadata
/// `{"layout": NAME}`. Returns the endpoint, an admin token and the JSON body.
fn layout_request(
    room: &TemplateRoom,
    egress_id: &str,
    layout: &str,
) -> Result<(String, Secret, String), String> {
    let http = if let Some(rest) = room.ws_url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = room.ws_url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        room.ws_url.clone()
    };
    let endpoint = format!(
        "{}/twirp/livekit.RoomService/UpdateParticipant",
        http.trim_end_matches('/')
    );
    let token = crate::source::livekit::admin_token(
        &room.api_key,
        room.api_secret.expose(),
        &room.room_name,
    )
    .map(Secret::from)
    .map_err(|e| e.to_string())?;
    let metadata = serde_json::json!({ "layout": layout }).to_string();
    let body = serde_json::json!({
        "room": room.room_name,
        "identity": egress_id,
        "metadata": metadata,
    })
    .to_string();
    Ok((endpoint, token, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_change_is_the_egress_participants_metadata() {
        let room = TemplateRoom {
            ws_url: "ws://127.0.0.1:7880/".into(),
            api_key: "devkey".into(),
            api_secret: "secret-secret-secret-secret-secret".into(),
            room_name: "r1".into(),
        };
        let (endpoint, token, body) = layout_request(&room, "EG_abc", "grid-light").unwrap();
        assert_eq!(
            endpoint,
            "http://127.0.0.1:7880/twirp/livekit.RoomService/UpdateParticipant"
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["room"], "r1");
        assert_eq!(v["identity"], "EG_abc");
        assert_eq!(v["metadata"], r#"{"layout":"grid-light"}"#);
        let claims = livekit_api::access_token::TokenVerifier::with_api_key(
            "devkey",
            "secret-secret-secret-secret-secret",
        )
        .verify(token.expose())
        .unwrap();
        assert!(claims.video.room_admin);
        assert_eq!(claims.video.room, "r1");
    }
}
