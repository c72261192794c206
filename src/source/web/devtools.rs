//! Chromium's DevTools over a pipe (`--remote-debugging-pipe`: the browser reads commands
//! from its fd 3 and writes answers and events to its fd 4, each message ended by a NUL),
//! so that no DevTools port listens where another local user could reach it.
//!
//! chromiumoxide speaks WebSocket only: a bridge hands it one on loopback at a path with
//! 128 random bits, takes exactly one connection on it (a wrong path is refused), stops
//! listening, then carries messages between that connection and the pipe until either
//! side ends.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tungstenite::Message;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};

/// How long chromiumoxide gets to connect to the bridge.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The browser's ends of the two pipes, and ours.
pub struct Pipes {
    /// Commands: the browser's fd 3 reads this pipe.
    browser_reads: OwnedFd,
    /// Answers and events: the browser's fd 4 writes this pipe.
    browser_writes: OwnedFd,
    commands: File,
    events: File,
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a two-int array pipe2(2) fills; on success both descriptors are new
    // and owned by nobody else, so wrapping them in OwnedFd is sound.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}

impl Pipes {
    /// Two new pipes (close-on-exec: only the browser gets its ends, as fds 3 and 4).
    pub fn new() -> std::io::Result<Pipes> {
        let (browser_reads, commands) = pipe()?;
        let (events, browser_writes) = pipe()?;
        Ok(Pipes {
            browser_reads,
            browser_writes,
            commands: File::from(commands),
            events: File::from(events),
        })
    }

    /// Makes `cmd` start with the browser's ends as its fds 3 and 4.
    pub fn give_to(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        let (r, w) = (
            self.browser_reads.as_raw_fd(),
            self.browser_writes.as_raw_fd(),
        );
        // SAFETY: runs in the child between fork and exec and only calls fcntl(2) and
        // dup2(2), which are async-signal-safe and allocate nothing. The ends are first
        // copied above 10 so that neither is overwritten by the other's dup2, and dup2
        // leaves the copies at 3 and 4 open across exec.
        unsafe {
            cmd.pre_exec(move || {
                let r2 = libc::fcntl(r, libc::F_DUPFD_CLOEXEC, 10);
                let w2 = libc::fcntl(w, libc::F_DUPFD_CLOEXEC, 10);
                if r2 < 0 || w2 < 0 || libc::dup2(r2, 3) < 0 || libc::dup2(w2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// Once the browser is started: our ends bridged to a one-time WebSocket; returns its
    /// URL for chromiumoxide. The browser's ends are closed here (the browser has them).
    pub fn bridge(self) -> std::io::Result<String> {
        let Pipes {
            commands, events, ..
        } = self;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let secret: [u8; 16] = rand::random();
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let path = format!("/devtools/browser/{hex}");
        let url = format!("ws://{}{path}", listener.local_addr()?);
        let span = tracing::Span::current();
        std::thread::Builder::new()
            .name("devtools-pipe".into())
            .spawn(move || {
                let _span = span.enter();
                if let Some(ws) = accept_one(&listener, &path) {
                    drop(listener);
                    carry(ws, commands, events);
                }
            })?;
        Ok(url)
    }
}

type Socket = tungstenite::WebSocket<std::net::TcpStream>;

/// The first connection that asks for `path` within the connect timeout; others refused.
// tungstenite's handshake callback returns its own (large) error response type.
#[allow(clippy::result_large_err)]
fn accept_one(listener: &TcpListener, path: &str) -> Option<Socket> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    listener.set_nonblocking(true).ok()?;
    while Instant::now() < deadline {
        let tcp = match listener.accept() {
            Ok((tcp, _)) => tcp,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(_) => return None,
        };
        let _ = tcp.set_nonblocking(false);
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
        let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            if req.uri().path() == path {
                Ok(resp)
            } else {
                let mut refused = ErrorResponse::new(None);
                *refused.status_mut() = tungstenite::http::StatusCode::NOT_FOUND;
                Err(refused)
            }
        };
        match tungstenite::accept_hdr(tcp, check) {
            Ok(ws) => return Some(ws),
            Err(e) => tracing::warn!(error = %e, "a DevTools connection was refused"),
        }
    }
    tracing::warn!("nothing connected to the browser's DevTools bridge");
    None
}

/// Carries messages both ways until the browser's pipe or the socket ends.
fn carry(mut ws: Socket, mut commands: File, events: File) {
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(events);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(0, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if buf.last() == Some(&0) {
                        buf.pop();
                    }
                    if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let _ = ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(5)));
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let mut bytes = t.as_bytes().to_vec();
                bytes.push(0);
                if commands.write_all(&bytes).is_err() {
                    break;
                }
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        loop {
            match rx.try_recv() {
                Ok(event) => {
                    if ws.send(Message::text(event)).is_err() {
                        return;
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                // The browser closed its end: it is gone.
                Err(mpsc::TryRecvError::Disconnected) => {
                    let _ = ws.close(None);
                    let _ = ws.flush();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridge_takes_one_connection_at_its_secret_path_then_stops_listening() {
        let url = Pipes::new().unwrap().bridge().unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        let base = format!(
            "ws://{}",
            parsed
                .host_str()
                .zip(parsed.port())
                .map(|(h, p)| format!("{h}:{p}"))
                .unwrap()
        );
        assert!(
            parsed.path().len() > "/devtools/browser/".len() + 30,
            "{url}"
        );
        // A guess at the path is refused.
        let guess = tungstenite::connect(format!("{base}/devtools/browser/0000"));
        assert!(guess.is_err());
        // The right one is taken; then nothing listens any more.
        let (ws, _) = tungstenite::connect(&url).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let after = std::net::TcpStream::connect(base.trim_start_matches("ws://"));
        assert!(after.is_err(), "still listening after the one connection");
        drop(ws);
    }
}
