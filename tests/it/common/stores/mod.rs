//! Real cloud-storage servers on loopback for the storage tests, each started on a free
//! 127.0.0.1 port in its own temporary directory, waited for until it answers, and
//! killed when dropped:
//!
//! - [`Minio`]: S3 (MinIO, built by `scripts/setup.sh` with `go install`), persistent data
//!   dir, `stop`/`restart` on the same port, STS session credentials.
//! - [`FakeGcs`]: Google Cloud Storage JSON API (fake-gcs-server, from PyPI), plus
//!   [`service_account_json`] and a tiny OAuth [`TokenServer`] for a client's JWT exchange.
//! - [`Azurite`]: Azure Blob Storage (Azurite, from npm), SharedKey-signed requests.
//! - [`Tinyproxy`]: an HTTP proxy (Debian's tinyproxy) with BasicAuth and a request log.
//!
//! The servers come from `${TESSERA_TOOLS:-$HOME/.cache/tessera-tools}/bin` (falling back to
//! `PATH`); the helpers talk to them with `curl` (S3 signing: `--aws-sigv4`), `python3`
//! (Azure SharedKey signing, stdlib only) and `openssl` — no SDK. Each server gets a
//! watchdog shell that kills it if the test process dies without running `Drop`.
//!
//! Part of the tests' `common` module (`common::stores`); depends on std, `tempfile`,
//! `serde_json` and `common::services`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Response headers, names lowercased; repeated headers joined with ", ".
pub type Headers = BTreeMap<String, String>;

/// One HTTP exchange's result.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

pub use super::services::free_tcp_port;

/// Where `scripts/setup.sh` installs the servers: `$TESSERA_TOOLS`, or
/// `$HOME/.cache/tessera-tools`.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os("TESSERA_TOOLS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/tessera-tools"),
    }
}

/// `tools_dir()/bin/{name}` if it exists, else `name` (looked up in `PATH`).
fn tool(name: &str) -> PathBuf {
    let p = tools_dir().join("bin").join(name);
    if p.exists() { p } else { PathBuf::from(name) }
}

/// A unique file name under `dir` (for request bodies and the like).
fn scratch(dir: &Path, what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    dir.join(format!("{what}-{}", N.fetch_add(1, Ordering::Relaxed)))
}

// ---------------------------------------------------------------------------------------
// Processes

/// A spawned server plus a watchdog shell that kills it if this test process dies
/// without dropping it (e.g. SIGKILL of the test binary). Drop kills both.
struct Server {
    child: Child,
    watchdog: Option<Child>,
    name: &'static str,
    log: PathBuf,
}

impl Server {
    /// Spawns `cmd` with stdout and stderr appended to `log`, and its watchdog.
    fn spawn(name: &'static str, mut cmd: Command, log: &Path) -> Server {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {name} ({:?}): {e}; run `bash scripts/setup.sh` \
                     (tools dir {})",
                    cmd.get_program(),
                    tools_dir().display()
                )
            });
        let (me, it) = (std::process::id(), child.id());
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {me} 2>/dev/null && kill -0 {it} 2>/dev/null; do sleep 1; done; \
                 kill -9 {it} 2>/dev/null"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        Server {
            child,
            watchdog,
            name,
            log: log.to_path_buf(),
        }
    }

    /// Polls `ready` until it holds (panicking with the server's log if the server exits
    /// or `timeout` passes).
    fn wait_until(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before answering; its log:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer within {timeout:?}; its log:\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(w) = &mut self.watchdog {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of a plain `GET path` on 127.0.0.1:port, or None if nothing answers.
fn probe(port: u16, path: &str) -> Option<u16> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while !got.contains(&b'\n') && got.len() < 64 {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&got);
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// curl

/// Runs `curl -sS -i <args>` and parses its output (status, headers, body). `head`: use
/// `-I` (a HEAD request) instead of `-i`. (No `-H "Expect:"` here: curl 7.88's
/// `--aws-sigv4` would sign that removed header as `expect` and break the signature; a
/// `100 Continue` is skipped when parsing instead.)
fn curl(args: &[String], head: bool) -> HttpResponse {
    let out = Command::new("curl")
        .args(["-sS", if head { "-I" } else { "-i" }])
        .args(["--max-time", "60"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_http(&out.stdout).unwrap_or_else(|| {
        panic!(
            "curl {args:?}: unparsable output {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Parses `HTTP/x status ...\r\nName: value\r\n...\r\n\r\nbody`, skipping 1xx responses.
fn parse_http(mut raw: &[u8]) -> Option<HttpResponse> {
    loop {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        raw = &raw[end + 4..];
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        if (100..200).contains(&status) {
            continue;
        }
        let mut headers = Headers::new();
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim().to_string();
                headers
                    .entry(k)
                    .and_modify(|old| {
                        old.push_str(", ");
                        old.push_str(&v)
                    })
                    .or_insert(v);
            }
        }
        return Some(HttpResponse {
            status,
            headers,
            body: raw.to_vec(),
        });
    }
}

/// Percent-encodes everything but the unreserved characters `A-Za-z0-9-_.~` (and `/` when
/// `keep_slash`): the encoding S3's SigV4, GCS object names and Azure paths all accept.
pub fn pct(s: &str, keep_slash: bool) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(b as char)
            }
            b'/' if keep_slash => o.push('/'),
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

/// A canonical query string: pairs sorted, names and values fully encoded, every pair with
/// `=` (curl 7.88's `--aws-sigv4` signs the query exactly as written, so it must already be
/// canonical: `?tagging` must be written `?tagging=`).
fn query(pairs: &[(&str, &str)]) -> String {
    let mut p: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (pct(k, false), pct(v, false)))
        .collect();
    p.sort();
    let q: Vec<String> = p.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// The text of every `<tag>...</tag>` in `xml`, XML-unescaped.
fn xml_all(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(xml_unescape(&rest[..j]));
        rest = &rest[j + close.len()..];
    }
    out
}

fn xml_first(xml: &str, tag: &str) -> Option<String> {
    xml_all(xml, tag).into_iter().next()
}

fn xml_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(j) = rest.find(';') else { break };
        let ent = &rest[1..j];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if ent.starts_with("#x") => u32::from_str_radix(&ent[2..], 16)
                .ok()
                .and_then(char::from_u32),
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[j + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

mod azurite;
mod gcs;
mod minio;
mod tinyproxy;

pub use azurite::Azurite;
pub use gcs::{FakeGcs, TokenServer, service_account_json};
pub use minio::Minio;
pub use tinyproxy::Tinyproxy;
