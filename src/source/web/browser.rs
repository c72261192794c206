//! Chromium: launched on the egress's own display and sound server with a profile of its
//! own, then driven over the DevTools protocol (chromiumoxide, no browser download):
//! open the page, tell a failed load from a loaded one, and hear the page's
//! `START_RECORDING` / `END_RECORDING` console messages (LiveKit's convention).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::Browser;
use chromiumoxide::cdp::browser_protocol::network::{
    EventLoadingFailed, EventResponseReceived, ResourceType,
};
use chromiumoxide::cdp::js_protocol::runtime::EventConsoleApiCalled;
use futures_util::StreamExt;

use super::devtools::Pipes;
use super::guard::{self, Blocked};
use super::processes::EgressDir;
use crate::request::page_policy::PagePolicy;
use crate::request::web::redact_page_secrets;
use crate::secret::Secret;

/// The console message that starts the recording (with `await_start_signal`).
pub const START_RECORDING: &str = "START_RECORDING";
/// The console message that ends it.
pub const END_RECORDING: &str = "END_RECORDING";
/// How long the page gets to load.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The browser binary: `TESSERA_CHROMIUM`, else the first of `chromium`,
/// `chromium-browser`, `google-chrome` on `PATH`.
pub fn chromium_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TESSERA_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Chromium's command line (docs/architecture.md explains each group).
pub fn flags(profile: &Path, width: u32, height: u32, as_root: bool) -> Vec<String> {
    let mut f: Vec<String> = vec![
        // Isolation: a profile of its own, deleted with the egress.
        format!("--user-data-dir={}", profile.display()),
        // The page fills the display: no window decorations, tabs or bars. Without a
        // window manager Chromium makes a window of the display's exact size one pixel
        // narrower and shorter (a dark line at the right and bottom of every frame); one
        // pixel larger, it covers the display (the page's last column and row are off
        // screen).
        "--kiosk".into(),
        "--window-position=0,0".into(),
        format!("--window-size={},{}", width + 1, height + 1),
        "--hide-scrollbars".into(),
        // Media and WebAudio play without a user gesture (there is none).
        "--autoplay-policy=no-user-gesture-required".into(),
        // Nothing calls home or pops up: no first-run UI, sync, updates, translation,
        // crash uploads, background networking.
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--disable-sync".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-default-apps".into(),
        "--disable-extensions".into(),
        "--disable-breakpad".into(),
        "--disable-features=Translate,MediaRouter,OptimizationHints,DialMediaRouteProvider,IsolateOrigins,site-per-process".into(),
        // Frames stay in the page's own process, where the page policy's request
        // interception (`guard`) sees their requests too.
        "--disable-site-isolation-trials".into(),
        "--password-store=basic".into(),
        // A page in the background still renders and plays at full rate.
        "--disable-background-timer-throttling".into(),
        "--disable-backgrounding-occluded-windows".into(),
        "--disable-renderer-backgrounding".into(),
        // Software rendering: the display is virtual.
        "--disable-gpu".into(),
        // DevTools over fds 3 and 4 (`devtools.rs`): no port any local user could reach.
        "--remote-debugging-pipe".into(),
    ];
    if as_root {
        // Chromium refuses to start its sandbox as root.
        f.push("--no-sandbox".into());
    }
    f.push("about:blank".into());
    f
}

/// Starts Chromium on `display` with sound to `pulse_server`, its profile and log in
/// `dir`; returns the DevTools WebSocket URL of the bridge to its pipe.
pub fn launch(
    dir: &EgressDir,
    display: &str,
    pulse_server: &str,
    width: u32,
    height: u32,
) -> Result<String, String> {
    let binary = chromium_path().ok_or_else(|| {
        "no Chromium found: install Debian's chromium or set TESSERA_CHROMIUM".to_owned()
    })?;
    // SAFETY: geteuid(2) has no preconditions and touches no memory.
    let as_root = unsafe { libc::geteuid() } == 0;
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    let pipes = Pipes::new().map_err(|e| format!("the DevTools pipes: {e}"))?;
    let mut cmd = Command::new(&binary);
    cmd.args(flags(&dir.path().join("profile"), width, height, as_root))
        .env("DISPLAY", display)
        .env(
            "XAUTHORITY",
            super::xauth::path(dir.path().parent().unwrap_or(dir.path())),
        )
        .env("PULSE_SERVER", pulse_server)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    pipes.give_to(&mut cmd);
    let pid = dir
        .spawn("browser", &mut cmd)
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    tracing::info!(pid, binary = %binary.display(), "browser started");
    let stderr = dir
        .take("browser", |c| c.stderr.take())
        .expect("stderr is piped");
    let log_path = dir.path().join("chromium.log");
    // Chromium writes its log to stderr all its life: a pipe nobody reads would block it.
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("chromium-log".into())
        .spawn(move || {
            // The egress's span (its id) on this thread's lines too.
            let _span = span.enter();
            let mut log = std::fs::File::create(&log_path).ok();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(f) = log.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
            }
        })
        .map_err(|e| e.to_string())?;
    if dir.exited().is_some() {
        return Err(exit_text(dir, "the browser exited at once"));
    }
    pipes
        .bridge()
        .map_err(|e| format!("the DevTools bridge: {e}"))
}

fn exit_text(dir: &EgressDir, what: &str) -> String {
    match dir.exited() {
        Some((_, status)) => format!("{what} ({status})"),
        None => what.to_owned(),
    }
}

/// What the page has said so far, shared with the egress thread.
#[derive(Debug, Default)]
pub struct PageState {
    /// The page loaded (or why it did not).
    pub load: Option<Result<(), String>>,
    /// When `START_RECORDING` arrived (on the session clock).
    pub started: Option<Duration>,
    /// When `END_RECORDING` arrived (on the session clock).
    pub end_signal: Option<Duration>,
    /// The DevTools connection ended (the browser is gone).
    pub disconnected: Option<String>,
}

/// A request to the browser thread.
pub enum BrowserCommand {
    /// LiveKit's `UpdateLayout` for a template: the egress participant's metadata set to
    /// `{"layout": ...}` through the server's RoomService.
    SetMetadata {
        /// The server's Twirp endpoint (`http(s)://host/twirp/livekit.RoomService/UpdateParticipant`).
        endpoint: String,
        /// A token with `roomAdmin` for the room.
        token: Secret,
        /// The request body (`UpdateParticipantRequest` as JSON).
        body: String,
        /// The layout name, echoed in the answer.
        layout: String,
        /// Where the answer goes.
        reply: std::sync::mpsc::Sender<Result<String, String>>,
    },
}

/// Connects to the browser, opens `url` and reports into `state` until the browser goes
/// or `commands` closes. Runs on the web source's own thread.
pub async fn drive(
    ws_url: String,
    url: String,
    policy: PagePolicy,
    origin: Instant,
    state: Arc<Mutex<PageState>>,
    mut commands: tokio::sync::mpsc::UnboundedReceiver<BrowserCommand>,
) {
    let set = |f: &dyn Fn(&mut PageState)| f(&mut state.lock().expect("page state lock"));
    // chromiumoxide ignores certificate errors unless told otherwise: a page with a bad
    // certificate must fail like any other page that does not load.
    // Interception on: every request the page makes waits for the page policy's verdict
    // (`guard`).
    let config = chromiumoxide::handler::HandlerConfig {
        ignore_https_errors: false,
        request_intercept: true,
        ..Default::default()
    };
    let (mut browser, mut handler) = match Browser::connect_with_config(ws_url, config).await {
        Ok(b) => b,
        Err(e) => {
            let why = format!("cannot reach the browser's DevTools: {e}");
            set(&|s| s.load = Some(Err(why.clone())));
            return;
        }
    };
    let watch = state.clone();
    let handler_task = tokio::spawn(async move {
        while let Some(event) = handler.next().await {
            if let Err(e) = event {
                tracing::debug!(error = %e, "devtools event");
            }
        }
        watch.lock().expect("page state lock").disconnected =
            Some("the browser's DevTools connection closed".into());
    });
    let opened = tokio::time::timeout(LOAD_TIMEOUT, open(&mut browser, &url, policy)).await;
    let result = match opened {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the page did not load within {} s",
            LOAD_TIMEOUT.as_secs()
        )),
    };
    let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
    set(&|s| s.load = Some(outcome.clone()));
    // Without a loaded page there are no signals: `next_signal` then waits for ever.
    let mut signals = result.ok();
    let http = reqwest::Client::new();
    loop {
        tokio::select! {
            c = commands.recv() => match c {
                None => break,
                Some(BrowserCommand::SetMetadata { endpoint, token, body, layout, reply }) => {
                    let answer = set_metadata(&http, &endpoint, token.expose(), body).await.map(|()| layout);
                    let _ = reply.send(answer);
                }
            },
            e = next_signal(&mut signals) => match e {
                Some(text) => {
                    let now = origin.elapsed();
                    tracing::info!(signal = %text, "page signal");
                    if text == START_RECORDING {
                        set(&|s| { s.started.get_or_insert(now); });
                    } else {
                        set(&|s| { s.end_signal.get_or_insert(now); });
                    }
                }
                None => signals = None,
            },
        }
    }
    handler_task.abort();
}

type ConsoleEvents = chromiumoxide::listeners::EventStream<EventConsoleApiCalled>;

/// The next `START_RECORDING` or `END_RECORDING` logged by the page (`None` when the
/// stream ends; pending for ever without one).
async fn next_signal(events: &mut Option<ConsoleEvents>) -> Option<String> {
    let Some(stream) = events.as_mut() else {
        return std::future::pending().await;
    };
    while let Some(e) = stream.next().await {
        // Any argument may be the signal, as LiveKit's egress reads them.
        for arg in &e.args {
            if let Some(serde_json::Value::String(s)) = &arg.value
                && (s == START_RECORDING || s == END_RECORDING)
            {
                return Some(s.clone());
            }
        }
    }
    None
}

/// Opens `url` in the browser's tab: `Err` with the network error (DNS, refused, TLS) or
/// the HTTP status of a main document that is not 2xx/3xx. Neither the log nor the error
/// shows the URL's secrets (a template's recorder token).
async fn open(
    browser: &mut Browser,
    url: &str,
    policy: PagePolicy,
) -> Result<ConsoleEvents, String> {
    if let Ok(parsed) = url::Url::parse(url) {
        guard::check(policy, &parsed)
            .await
            .map_err(|r| r.to_string())?;
    }
    let blocked = Blocked::default();
    let console = load(browser, url, policy, &blocked).await.map_err(|e| {
        match blocked.lock().map(|b| b.clone()) {
            // The page (or a redirect of it) was refused: say so, not Chromium's
            // ERR_BLOCKED_BY_CLIENT.
            Ok(Some(refused)) => refused.to_string(),
            _ => redact_page_secrets(&e, url),
        }
    })?;
    tracing::info!(url = %redact_page_secrets(url, url), "page loaded");
    Ok(console)
}

async fn load(
    browser: &mut Browser,
    url: &str,
    policy: PagePolicy,
    blocked: &Blocked,
) -> Result<ConsoleEvents, String> {
    let page = browser
        .new_page("about:blank")
        .await
        .map_err(|e| format!("opening a tab: {e}"))?;
    tracing::debug!("tab open");
    // Ends with the page's event stream (the browser's end).
    let _guard = guard::watch(&page, policy, blocked.clone()).await?;
    let console = page
        .event_listener::<EventConsoleApiCalled>()
        .await
        .map_err(|e| format!("listening to the console: {e}"))?;
    let responses = page
        .event_listener::<EventResponseReceived>()
        .await
        .map_err(|e| format!("listening to responses: {e}"))?;
    let failures = page
        .event_listener::<EventLoadingFailed>()
        .await
        .map_err(|e| format!("listening to failed loads: {e}"))?;
    page.enable_runtime()
        .await
        .map_err(|e| format!("enabling the runtime: {e}"))?;
    page.goto(url).await.map_err(|e| match e {
        chromiumoxide::error::CdpError::ChromeMessage(m) => format!("{m} loading {url}"),
        other => format!("{other} loading {url}"),
    })?;
    // The main document's fate: its response (an error status fails it), or its failure
    // (Chromium shows an error page of its own without failing the navigation for some
    // errors, a TLS handshake refused among them). Every event of the navigation has
    // arrived by now; the wait only bounds a lost one.
    let mut events = futures_util::stream::select(
        responses.map(|r| Ok((r.r#type.clone(), r))),
        failures.map(|f| Err((f.r#type.clone(), f))),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(Ok((ResourceType::Document, r)))) => {
                let status = r.response.status;
                if status >= 400 {
                    let text = r.response.status_text.trim();
                    return Err(format!(
                        "HTTP {status}{}{text} loading {}",
                        if text.is_empty() { "" } else { " " },
                        r.response.url
                    ));
                }
                break;
            }
            Ok(Some(Err((ResourceType::Document, f)))) => {
                return Err(format!("{} loading {url}", f.error_text));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Err(format!("no response loading {url}")),
        }
    }
    Ok(console)
}

async fn set_metadata(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    body: String,
) -> Result<(), String> {
    let r = http
        .post(endpoint)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("updating the egress participant's metadata: {e}"))?;
    if r.status().is_success() {
        return Ok(());
    }
    let status = r.status();
    let text = crate::storage::error_body(r).await;
    let text: String = text.chars().take(300).collect();
    Err(format!(
        "updating the egress participant's metadata: {status} {}",
        text.trim()
    ))
}
