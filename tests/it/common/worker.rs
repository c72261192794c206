//! The worker service under test: Redis on loopback, `tessera serve` processes, a webhook
//! receiver, and LiveKit's Egress API called through the official Python client
//! (scripts/lk-egress.py).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::livekit::{API_KEY, API_SECRET};
use super::services::{free_tcp_port, wait_for_port};
use super::stores::tools_dir;

/// `redis-server` (Debian's, installed by scripts/setup.sh) on a free loopback port, no
/// persistence.
pub struct Redis {
    child: Child,
    /// Its working directory: a replica's full sync writes `dump.rdb` there, which a
    /// later server started in the same place would load.
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_args(&[])
    }

    /// With extra `redis-server` arguments (`--replicaof HOST PORT`).
    pub fn start_args(args: &[&str]) -> Redis {
        let port = free_tcp_port();
        let dir = tempfile::tempdir().unwrap();
        Redis {
            child: Self::spawn(port, dir.path(), args),
            dir,
            port,
        }
    }

    fn spawn(port: u16, dir: &Path, args: &[&str]) -> Child {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (installed by scripts/setup.sh)");
        wait_for_port(port, Duration::from_secs(10), "redis-server");
        child
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        signal(self.child.id(), "-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.id(), "-CONT");
    }

    /// Kills the server and starts an empty one on the same port (no persistence: every
    /// key is gone).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Empty again: nothing in its directory to load.
        let _ = std::fs::remove_file(self.dir.path().join("dump.rdb"));
        self.child = Self::spawn(self.port, self.dir.path(), &[]);
    }

    /// `redis-cli` ARGS against this server, its output.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis Sentinel on loopback watching `master` under the name `name` (one vote
/// decides; a master unanswered for 2 s is down).
pub struct Sentinel {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl Sentinel {
    pub fn start(name: &str, master: &Redis) -> Sentinel {
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nsentinel monitor {name} 127.0.0.1 {} 1\n\
                 sentinel down-after-milliseconds {name} 2000\nsentinel failover-timeout {name} 10000\n",
                master.port
            ),
        )
        .unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel");
        wait_for_port(port, Duration::from_secs(10), "redis-sentinel");
        Sentinel {
            child,
            _dir: dir,
            port,
        }
    }

    /// `redis-cli` ARGS against the sentinel, its output.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `redis-cli -p PORT ARGS`, its output.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

fn tessera() -> &'static str {
    env!("CARGO_BIN_EXE_tessera")
}

/// One `tessera serve`, its log in its directory; SIGTERMed (then killed) when dropped.
pub struct Worker {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub health_port: u16,
    pub api_port: u16,
}

impl Worker {
    /// Starts a worker with `yaml` (the health port, and the output directory unless it
    /// names one) and waits until it is ready.
    pub fn start(yaml: &str) -> Worker {
        let dir = tempfile::tempdir().unwrap();
        let health_port = free_tcp_port();
        let api_port = if yaml.contains("api_port: AUTO") {
            free_tcp_port()
        } else {
            0
        };
        let yaml = yaml.replace("api_port: AUTO", &format!("api_port: {api_port}"));
        let out = dir.path().join("out");
        let config =
            format!("health_port: {health_port}\nprometheus_port: {health_port}\n{yaml}\n",);
        let config = if config.contains("out_dir:") {
            config
        } else if config.contains("tessera:") {
            config.replace(
                "tessera:\n",
                &format!("tessera:\n  out_dir: {}\n", out.display()),
            )
        } else {
            format!("{config}tessera:\n  out_dir: {}\n", out.display())
        };
        let path = dir.path().join("worker.yaml");
        std::fs::write(&path, &config).unwrap();
        let log = std::fs::File::create(dir.path().join("worker.log")).unwrap();
        let child = Command::new(tessera())
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info,chromiumoxide=error")
            .env_remove("LIVEKIT_API_KEY")
            .env_remove("LIVEKIT_API_SECRET")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tessera serve");
        let w = Worker {
            child: Some(child),
            dir,
            health_port,
            api_port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !w.log().contains("egress worker ready") {
            assert!(
                Instant::now() < deadline,
                "the worker did not start:\n{}\n{config}",
                w.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        w
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("worker.log")).unwrap_or_default()
    }

    pub fn out_dir(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// `GET /health` (status code, JSON).
    pub fn health(&self) -> (u16, Value) {
        let (code, body) = http("GET", self.health_port, "/health", &[], b"");
        (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// `GET /metrics`.
    pub fn metrics(&self) -> String {
        String::from_utf8(http("GET", self.health_port, "/metrics", &[], b"").1).unwrap()
    }

    /// The egress ids the worker runs (from `/health`).
    pub fn active(&self) -> Vec<String> {
        let (_, h) = self.health();
        h["active"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// SIGTERM (drain).
    pub fn term(&self) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
    }

    /// SIGKILL, and reaped.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let c = self.child.as_mut()?;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                self.child = None;
                return s.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A plain HTTP/1.1 request to 127.0.0.1:`port`; (status, body).
pub fn http(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (code, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

/// A local HTTP server receiving livekit-server's webhooks (JSON `WebhookEvent`s).
pub struct Webhooks {
    pub port: u16,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Webhooks {
    pub fn start() -> Webhooks {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let ev = events.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut r = BufReader::new(stream);
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.trim().to_ascii_lowercase();
                    if let Some(v) = l.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if l.is_empty() {
                        break;
                    }
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                if let Ok(v) = serde_json::from_slice(&body) {
                    ev.lock().unwrap().push(v);
                }
                let _ = r.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Webhooks { port, events }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The egress events received for `egress_id`: (event, status).
    pub fn of(&self, egress_id: &str) -> Vec<(String, String)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["egressInfo"]["egressId"] == egress_id)
            .map(|e| {
                (
                    e["event"].as_str().unwrap_or_default().to_owned(),
                    // proto3 JSON leaves the zero value out: STARTING.
                    e["egressInfo"]["status"]
                        .as_str()
                        .unwrap_or("EGRESS_STARTING")
                        .to_owned(),
                )
            })
            .collect()
    }

    /// The last event `event` for `egress_id`.
    pub fn last(&self, egress_id: &str, event: &str) -> Option<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|e| e["egressInfo"]["egressId"] == egress_id && e["event"] == event)
            .cloned()
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lk-egress.py")
}

fn egress_command(url: &str, key: &str, secret: &str) -> Command {
    let mut c = Command::new(tools_dir().join("lk-venv/bin/python"));
    c.arg(script())
        .args(["--url", url, "--api-key", key, "--api-secret", secret]);
    c
}

/// One Egress API call through the Python client at `url` (livekit-server's or tessera's
/// own HTTP address): the response JSON, or the error text; and the call's latency (ms).
pub fn egress_api_as(
    url: &str,
    key: &str,
    secret: &str,
    method: &str,
    body: &Value,
) -> (Result<Value, String>, f64) {
    let out = egress_command(url, key, secret)
        .args(["call", method, &body.to_string()])
        .output()
        .expect("the LiveKit Python SDK (installed by scripts/setup.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let ms = stderr
        .lines()
        .find_map(|l| l.strip_prefix("elapsed_ms="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let line = stdout.lines().last().unwrap_or_default().to_owned();
    if let Some(e) = line.strip_prefix("error: ") {
        return (Err(e.to_owned()), ms);
    }
    match serde_json::from_str(&line) {
        Ok(v) => (Ok(v), ms),
        Err(_) => (Err(format!("no response: {stdout}{stderr}")), ms),
    }
}

/// [`egress_api_as`] with the test server's key.
pub fn egress_api(url: &str, method: &str, body: &Value) -> Result<Value, String> {
    egress_api_as(url, API_KEY, API_SECRET, method, body).0
}

/// RoomService.CreateRoom.
pub fn create_room(url: &str, body: &Value) -> Value {
    let out = egress_command(url, API_KEY, API_SECRET)
        .args(["create-room", &body.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls `f` every 200 ms until it returns `Some`, at most `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
