//! A real LiveKit server on loopback and real WebRTC publishers (LiveKit's Python SDK,
//! scripts/lk-publish.py), started by the room tests and stopped when dropped. Installed
//! by scripts/setup.sh into the tools directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use super::services::{free_tcp_port, free_udp_port, wait_for_port};
use super::stores::tools_dir;

pub const API_KEY: &str = "devkey";
pub const API_SECRET: &str = "secret";

/// `livekit-server --dev` on free loopback ports; media stays on 127.0.0.1.
pub struct LiveKit {
    child: Child,
    pub port: u16,
    /// The server's media (ICE) port.
    pub udp_port: u16,
    dir: tempfile::TempDir,
}

impl LiveKit {
    pub fn start() -> LiveKit {
        LiveKit::start_with("")
    }

    /// With `extra` YAML appended to the configuration (`redis:`, `webhook:`).
    pub fn start_with(extra: &str) -> LiveKit {
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let udp_port = free_udp_port();
        let config = format!(
            "port: {port}\n\
             bind_addresses: [\"127.0.0.1\"]\n\
             rtc:\n  tcp_port: {}\n  udp_port: {}\n  use_external_ip: false\n  \
             enable_loopback_candidate: true\n  interfaces:\n    includes: [lo]\n\
             logging:\n  level: warn\n{extra}",
            free_tcp_port(),
            udp_port,
        );
        let path = dir.path().join("livekit.yaml");
        std::fs::write(&path, config).unwrap();
        let child = spawn_server(dir.path(), port);
        LiveKit {
            child,
            port,
            udp_port,
            dir,
        }
    }

    /// Kills the server and starts it again on the same ports (every room is gone).
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn_server(self.dir.path(), self.port);
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The server's HTTP address (its Twirp APIs).
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `tessera run` arguments that record a room on this server.
    pub fn run_args(&self) -> Vec<String> {
        vec![
            "--url".into(),
            self.url(),
            "--api-key".into(),
            API_KEY.into(),
            "--api-secret".into(),
            API_SECRET.into(),
        ]
    }

    /// Stops the server abruptly (SIGKILL), as a crash or a lost machine would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Deletes `room` (RoomService.DeleteRoom).
    pub fn delete_room(&self, room: &str) {
        let out = publisher_command(&self.url(), room, &["--delete-room"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn spawn_server(dir: &Path, port: u16) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("livekit.log"))
        .unwrap();
    let child = Command::new(tools_dir().join("bin/livekit-server"))
        .args(["--dev", "--node-ip", "127.0.0.1", "--config"])
        .arg(dir.join("livekit.yaml"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("livekit-server (installed by scripts/setup.sh)");
    wait_for_port(port, Duration::from_secs(20), "livekit-server");
    child
}

impl Drop for LiveKit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lk-publish.py")
}

fn publisher_command(url: &str, room: &str, args: &[&str]) -> Command {
    let mut c = Command::new(tools_dir().join("lk-venv/bin/python"));
    c.arg(script())
        .args(["--url", url, "--room", room, "--api-key", API_KEY])
        .args(["--api-secret", API_SECRET])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// One synthetic participant publishing a camera and a microphone.
pub struct Publisher {
    child: Child,
    lines: Receiver<String>,
    /// `action NAME` → unix ms, as they happened (and `caption:SEGMENT` for each
    /// transcription sent).
    pub actions: Vec<(String, i64)>,
    /// When the tracks were published (unix ms).
    pub published_ms: i64,
    /// Track name (`camera`, `microphone`, `screen`) → sid, as published (the latest).
    pub tracks: std::collections::HashMap<String, String>,
}

impl Publisher {
    /// Joins and publishes (returns once the tracks are published).
    pub fn start(lk: &LiveKit, room: &str, identity: &str, args: &[&str]) -> Publisher {
        let mut child = publisher_command(&lk.url(), room, &["--identity", identity])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the LiveKit Python SDK (installed by scripts/setup.sh)");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Publisher {
            child,
            lines,
            actions: Vec::new(),
            published_ms: 0,
            tracks: Default::default(),
        };
        loop {
            match p.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(l) if l.starts_with("published unix_ms=") => {
                    p.published_ms = l["published unix_ms=".len()..].parse().unwrap();
                    return p;
                }
                Ok(l) if p.track_line(&l) => {}
                other => panic!("publisher {identity} did not publish: {other:?}"),
            }
        }
    }

    /// Records a `track NAME sid=TR_…` line; whether it was one.
    fn track_line(&mut self, line: &str) -> bool {
        if let Some(rest) = line.strip_prefix("track ")
            && let Some((name, sid)) = rest.split_once(" sid=")
        {
            self.tracks.insert(name.to_owned(), sid.to_owned());
            return true;
        }
        false
    }

    /// A published track's sid (`camera`, `microphone`, `screen`).
    pub fn track(&mut self, name: &str) -> String {
        self.poll_actions();
        self.tracks
            .get(name)
            .unwrap_or_else(|| panic!("no {name} track in {:?}", self.tracks))
            .clone()
    }

    /// Collects the actions (and tracks) reported so far.
    pub fn poll_actions(&mut self) -> &[(String, i64)] {
        while let Ok(line) = self.lines.try_recv() {
            if self.track_line(&line) {
                continue;
            }
            // Transcriptions sent are listed as `caption:SEGMENT`.
            let named = match line.strip_prefix("caption ") {
                Some(rest) => Some(("caption:", rest)),
                None => line.strip_prefix("action ").map(|rest| ("", rest)),
            };
            if let Some((kind, rest)) = named
                && let Some((name, ms)) = rest.split_once(" unix_ms=")
            {
                self.actions
                    .push((format!("{kind}{name}"), ms.parse().unwrap()));
            }
        }
        &self.actions
    }

    /// When action `name` happened (unix ms).
    pub fn action_ms(&mut self, name: &str) -> i64 {
        self.poll_actions();
        self.actions
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no action {name} in {:?}", self.actions))
            .1
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // SIGTERM first: the SDK leaves the room cleanly.
        super::send_signal(&self.child, "TERM");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The unix time (ms) at which the egress's media time 0 was composed, from its log.
pub fn media_clock_start_ms(stderr: &str) -> i64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("media clock started"))
        .expect("the egress logs its media clock start");
    let at = line.find("unix_ms=").expect("unix_ms on the line") + "unix_ms=".len();
    line[at..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}
