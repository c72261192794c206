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

// ---------------------------------------------------------------------------------------
// S3: MinIO

const MINIO_USER: &str = "tessera-minio";
const MINIO_SECRET: &str = "tessera-minio-secret";

/// MinIO (single drive) on 127.0.0.1, data in a temporary directory that outlives
/// `stop()`/`restart()`. Root credentials `access_key()`/`secret()`, region `us-east-1`;
/// path-style URLs `endpoint()/bucket/key`.
pub struct Minio {
    dir: tempfile::TempDir,
    port: u16,
    server: Option<Server>,
}

impl Minio {
    pub fn start() -> Minio {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let mut m = Minio {
            dir,
            port: free_tcp_port(),
            server: None,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let mut cmd = Command::new(tool("minio"));
        cmd.current_dir(d)
            .env("MINIO_ROOT_USER", MINIO_USER)
            .env("MINIO_ROOT_PASSWORD", MINIO_SECRET)
            .env("MINIO_BROWSER", "off")
            .env("MINIO_UPDATE", "off")
            .arg("server")
            .arg("--address")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--console-address")
            .arg(format!("127.0.0.1:{}", free_tcp_port()))
            .arg("--certs-dir")
            .arg(d.join("certs"))
            .arg("--quiet")
            .arg(d.join("data"));
        let mut server = Server::spawn("minio", cmd, &d.join("minio.log"));
        let port = self.port;
        server.wait_until(Duration::from_secs(30), || {
            probe(port, "/minio/health/live") == Some(200)
        });
        // /minio/health/ready can answer 200 while S3 requests still get 503
        // XMinioServerNotInitialized: wait for a signed ListBuckets to succeed
        server.wait_until(Duration::from_secs(30), || {
            self.request("GET", "", "", &[], &[], None).status == 200
        });
        self.server = Some(server);
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn access_key(&self) -> &str {
        MINIO_USER
    }

    pub fn secret(&self) -> &str {
        MINIO_SECRET
    }

    pub fn region(&self) -> &str {
        "us-east-1"
    }

    /// The directory MinIO keeps its data in (kept across `stop`/`restart`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Kills the server (SIGKILL, as a crash or a lost host would); the data stays.
    pub fn stop(&mut self) {
        self.server = None;
    }

    pub fn is_running(&self) -> bool {
        self.server.is_some()
    }

    /// Stops the server if it runs, then starts it again on the same port and data dir,
    /// returning once it answers.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// A SigV4-signed request with the root credentials (or `creds`: access key, secret,
    /// session token) to `/{bucket}/{key}` (`key` may be empty; both are percent-encoded
    /// here), with query `pairs`, extra headers and an optional body.
    #[allow(clippy::too_many_arguments)]
    pub fn request_as(
        &self,
        creds: Option<(&str, &str, &str)>,
        method: &str,
        bucket: &str,
        key: &str,
        pairs: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpResponse {
        let (ak, sk, token) = creds.unwrap_or((MINIO_USER, MINIO_SECRET, ""));
        let mut path = String::from("/");
        if !bucket.is_empty() {
            path.push_str(&pct(bucket, false));
            if !key.is_empty() {
                path.push('/');
                path.push_str(&pct(key, true));
            }
        }
        let url = format!("{}{path}{}", self.endpoint(), query(pairs));
        self.signed_curl("s3", ak, sk, token, method, &url, headers, body)
    }

    /// [`Minio::request_as`] with the root credentials.
    pub fn request(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        pairs: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpResponse {
        self.request_as(None, method, bucket, key, pairs, headers, body)
    }

    /// [`Minio::signed_curl_once`], retried for up to 15 s while MinIO answers 503
    /// XMinioServerNotInitialized (it does for a moment after start, IAM/STS included).
    #[allow(clippy::too_many_arguments)]
    fn signed_curl(
        &self,
        service: &str,
        ak: &str,
        sk: &str,
        token: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpResponse {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = self.signed_curl_once(service, ak, sk, token, method, url, headers, body);
            let initializing = r.status == 503
                && (r.text().contains("XMinioServerNotInitialized")
                    || r.header("x-minio-server-status").is_some());
            if !initializing || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn signed_curl_once(
        &self,
        service: &str,
        ak: &str,
        sk: &str,
        token: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpResponse {
        let mut args: Vec<String> = vec![
            "--aws-sigv4".into(),
            format!("aws:amz:{}:{service}", self.region()),
            "--user".into(),
            format!("{ak}:{sk}"),
        ];
        if !token.is_empty() {
            args.extend(["-H".into(), format!("x-amz-security-token: {token}")]);
        }
        for (k, v) in headers {
            args.extend(["-H".into(), format!("{k}: {v}")]);
        }
        let mut tmp = None;
        if let Some(b) = body {
            let f = scratch(self.dir.path(), "body");
            std::fs::write(&f, b).unwrap();
            if method == "PUT" {
                args.extend(["-T".into(), f.display().to_string()]);
            } else {
                args.extend(["--data-binary".into(), format!("@{}", f.display())]);
            }
            tmp = Some(f);
        }
        args.extend(["-X".into(), method.into(), url.into()]);
        let head = method == "HEAD";
        if head {
            // -I makes the HEAD request itself; -X HEAD would wait for a body
            args.truncate(args.len() - 3);
            args.push(url.into());
        }
        let r = curl(&args, head);
        if let Some(f) = tmp {
            let _ = std::fs::remove_file(f);
        }
        r
    }

    pub fn create_bucket(&self, name: &str) {
        let r = self.request("PUT", name, "", &[], &[], None);
        assert_eq!(r.status, 200, "create bucket {name}: {}", r.text());
    }

    /// Puts an object (headers e.g. `Content-Type`, `x-amz-meta-*`, `x-amz-tagging`).
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8], headers: &[(&str, &str)]) {
        let r = self.request("PUT", bucket, key, &[], headers, Some(body));
        assert_eq!(r.status, 200, "put {bucket}/{key}: {}", r.text());
    }

    /// The object's bytes, or None if there is no such object.
    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let r = self.request("GET", bucket, key, &[], &[], None);
        match r.status {
            200 => Some(r.body),
            404 => None,
            s => panic!("get {bucket}/{key}: {s} {}", r.text()),
        }
    }

    /// The keys under `prefix`, in S3's (lexicographic) order.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut pairs = vec![("list-type", "2"), ("prefix", prefix)];
            if let Some(t) = &token {
                pairs.push(("continuation-token", t));
            }
            let r = self.request("GET", bucket, "", &pairs, &[], None);
            assert_eq!(r.status, 200, "list {bucket}/{prefix}: {}", r.text());
            let xml = r.text();
            keys.extend(xml_all(&xml, "Key"));
            match xml_first(&xml, "NextContinuationToken") {
                Some(t) if xml.contains("<IsTruncated>true</IsTruncated>") => token = Some(t),
                _ => return keys,
            }
        }
    }

    /// The headers of a HEAD of the object (`content-type`, `content-disposition`,
    /// `x-amz-meta-*`, `content-length`, `etag`, ...), or None if there is no such object.
    pub fn head(&self, bucket: &str, key: &str) -> Option<Headers> {
        let r = self.request("HEAD", bucket, key, &[], &[], None);
        match r.status {
            200 => Some(r.headers),
            404 => None,
            s => panic!("head {bucket}/{key}: {s}"),
        }
    }

    /// The object's tags (GET ?tagging), in the order the server lists them. Panics if
    /// there is no such object.
    pub fn tagging(&self, bucket: &str, key: &str) -> Vec<(String, String)> {
        let r = self.request("GET", bucket, key, &[("tagging", "")], &[], None);
        assert_eq!(r.status, 200, "tagging {bucket}/{key}: {}", r.text());
        let xml = r.text();
        xml_all(&xml, "Tag")
            .iter()
            .map(|t| {
                (
                    xml_first(t, "Key").unwrap_or_default(),
                    xml_first(t, "Value").unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Temporary credentials from MinIO's STS AssumeRole (signed with the root user),
    /// valid for an hour: (access key, secret, session token). Requests made with them
    /// must carry `x-amz-security-token: <session token>`.
    pub fn session_credentials(&self) -> (String, String, String) {
        let r = self.signed_curl(
            "sts",
            MINIO_USER,
            MINIO_SECRET,
            "",
            "POST",
            &format!("{}/", self.endpoint()),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(b"Action=AssumeRole&DurationSeconds=3600&Version=2011-06-15"),
        );
        assert_eq!(r.status, 200, "AssumeRole: {}", r.text());
        let xml = r.text();
        let get = |t| xml_first(&xml, t).unwrap_or_else(|| panic!("no {t} in {xml}"));
        (
            get("AccessKeyId"),
            get("SecretAccessKey"),
            get("SessionToken"),
        )
    }
}

// ---------------------------------------------------------------------------------------
// GCS: fake-gcs-server

/// fake-gcs-server (memory backend) on 127.0.0.1, serving the GCS JSON API at
/// `endpoint()/storage/v1/...`, uploads at `endpoint()/upload/storage/v1/...` and
/// downloads at `endpoint()/download/storage/v1/...`. It accepts any (or no)
/// `Authorization` header.
pub struct FakeGcs {
    dir: tempfile::TempDir,
    port: u16,
    _server: Server,
}

impl FakeGcs {
    pub fn start() -> FakeGcs {
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let mut cmd = Command::new(tool("fake-gcs-server"));
        cmd.current_dir(dir.path())
            .args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-backend",
                "memory",
            ])
            .args(["-log-level", "warn"])
            .arg("-port")
            .arg(port.to_string())
            .arg("-public-host")
            .arg(format!("127.0.0.1:{port}"))
            // the Location of resumable uploads (default: the bind address)
            .arg("-external-url")
            .arg(format!("http://127.0.0.1:{port}"));
        let mut server = Server::spawn("fake-gcs-server", cmd, &dir.path().join("gcs.log"));
        server.wait_until(Duration::from_secs(20), || {
            probe(port, "/storage/v1/b") == Some(200)
        });
        FakeGcs {
            dir,
            port,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn get(&self, path_and_query: &str) -> HttpResponse {
        curl(&[format!("{}{path_and_query}", self.endpoint())], false)
    }

    pub fn create_bucket(&self, name: &str) {
        let r = curl(
            &[
                "-X".into(),
                "POST".into(),
                "-H".into(),
                "Content-Type: application/json".into(),
                "--data-binary".into(),
                serde_json::json!({ "name": name }).to_string(),
                format!("{}/storage/v1/b", self.endpoint()),
            ],
            false,
        );
        assert_eq!(r.status, 200, "create bucket {name}: {}", r.text());
    }

    /// Uploads an object through the JSON API (`uploadType=media`).
    pub fn put_object(&self, bucket: &str, name: &str, body: &[u8], content_type: &str) {
        let f = scratch(self.dir.path(), "body");
        std::fs::write(&f, body).unwrap();
        let r = curl(
            &[
                "-X".into(),
                "POST".into(),
                "-H".into(),
                format!("Content-Type: {content_type}"),
                "--data-binary".into(),
                format!("@{}", f.display()),
                format!(
                    "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
                    self.endpoint(),
                    pct(bucket, false),
                    pct(name, false)
                ),
            ],
            false,
        );
        let _ = std::fs::remove_file(f);
        assert_eq!(r.status, 200, "put {bucket}/{name}: {}", r.text());
    }

    /// The object's bytes, or None if there is no such object.
    pub fn get_object(&self, bucket: &str, name: &str) -> Option<Vec<u8>> {
        let r = self.get(&format!(
            "/download/storage/v1/b/{}/o/{}?alt=media",
            pct(bucket, false),
            pct(name, false)
        ));
        match r.status {
            200 => Some(r.body),
            404 => None,
            s => panic!("get {bucket}/{name}: {s} {}", r.text()),
        }
    }

    /// The object names under `prefix`, sorted.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut q = format!("prefix={}", pct(prefix, false));
            if let Some(p) = &page {
                q.push_str(&format!("&pageToken={}", pct(p, false)));
            }
            let r = self.get(&format!("/storage/v1/b/{}/o?{q}", pct(bucket, false)));
            assert_eq!(r.status, 200, "list {bucket}/{prefix}: {}", r.text());
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            for item in v["items"].as_array().into_iter().flatten() {
                names.push(item["name"].as_str().unwrap().to_string());
            }
            match v["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => page = Some(t.to_string()),
                _ => break,
            }
        }
        names.sort();
        names
    }

    /// The object's JSON resource (`contentType`, `size`, `metadata`, `contentDisposition`,
    /// `md5Hash`, ...). Panics if there is no such object.
    pub fn metadata(&self, bucket: &str, name: &str) -> serde_json::Value {
        let r = self.get(&format!(
            "/storage/v1/b/{}/o/{}",
            pct(bucket, false),
            pct(name, false)
        ));
        assert_eq!(r.status, 200, "metadata {bucket}/{name}: {}", r.text());
        serde_json::from_slice(&r.body).unwrap()
    }
}

/// A syntactically valid service-account credentials JSON (what a user downloads from
/// Google Cloud) with a freshly generated 2048-bit RSA key (PKCS#8 PEM), so a client can
/// sign its JWT; `token_uri` is where the client will exchange it (see [`TokenServer`]).
pub fn service_account_json(token_uri: &str) -> String {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .stderr(Stdio::null())
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl genpkey failed");
    let key = String::from_utf8(out.stdout).unwrap();
    let mut id = [0u8; 20];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut id))
        .unwrap();
    let key_id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let email = "tessera-test@tessera-test.iam.gserviceaccount.com";
    serde_json::to_string_pretty(&serde_json::json!({
        "type": "service_account",
        "project_id": "tessera-test",
        "private_key_id": key_id,
        "private_key": key,
        "client_email": email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": format!(
            "https://www.googleapis.com/robot/v1/metadata/x509/{}", pct(email, false)),
        "universe_domain": "googleapis.com",
    }))
    .unwrap()
}

/// A minimal OAuth2 token endpoint on 127.0.0.1 for a service-account client: answers
/// every request with `{"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}`
/// and records each request's body (the form with `grant_type` and `assertion`, the JWT).
/// It checks nothing (fake-gcs-server checks no token either). Stops on Drop.
pub struct TokenServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    pub const TOKEN: &'static str = "tessera-test-access-token";

    pub fn start() -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (reqs, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = conn else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let body = read_http_request_body(&mut s);
                reqs.lock().unwrap().push(body);
                let json = serde_json::json!({
                    "access_token": TokenServer::TOKEN,
                    "expires_in": 3600,
                    "token_type": "Bearer",
                })
                .to_string();
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
                    json.len()
                );
            }
        });
        TokenServer {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/token`
    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The bodies of the requests received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP/1.1 request (headers, then Content-Length bytes) and returns its body.
fn read_http_request_body(s: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while data.len() < end + 4 + len {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
            }
            let body = &data[end + 4..data.len().min(end + 4 + len)];
            return String::from_utf8_lossy(body).into_owned();
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return String::new(),
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Azure: Azurite

const AZURE_ACCOUNT: &str = "devstoreaccount1";
/// The Azure Storage emulator's well-known account key (public, in Microsoft's docs).
const AZURE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Signs an Azure Blob request with SharedKey and makes it (Python stdlib only).
/// usage: azreq.py METHOD URL ACCOUNT KEY [-H 'Name: value']... [-d FILE]
/// prints {"status": N, "headers": {lowercased: value}, "body_hex": "..."}
const AZURE_SIGNER: &str = r#"
import binascii, base64, datetime, hashlib, hmac, json, sys, urllib.error, urllib.parse, urllib.request

method, url, account, key = sys.argv[1:5]
headers, body, args = {}, None, sys.argv[5:]
for i in range(0, len(args), 2):
    if args[i] == "-H":
        name, _, value = args[i + 1].partition(":")
        headers[name.strip()] = value.strip()
    elif args[i] == "-d":
        with open(args[i + 1], "rb") as f:
            body = f.read()
if body is None and method in ("PUT", "POST"):
    body = b""
headers["x-ms-date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
headers.setdefault("x-ms-version", "2021-12-02")
if body is not None:
    headers["Content-Length"] = str(len(body))
    # urllib adds a form Content-Type to a request with a body: sign the one sent
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/octet-stream"
low = {k.lower(): v for k, v in headers.items()}
u = urllib.parse.urlsplit(url)
canon = "".join(f"{k}:{low[k]}\n" for k in sorted(low) if k.startswith("x-ms-"))
res = f"/{account}{u.path}"
q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
for k in sorted(q, key=str.lower):
    res += f"\n{k.lower()}:{','.join(sorted(q[k]))}"
length = low.get("content-length", "")
fields = [method, low.get("content-encoding", ""), low.get("content-language", ""),
          "" if length == "0" else length, low.get("content-md5", ""), low.get("content-type", ""),
          "", low.get("if-modified-since", ""), low.get("if-match", ""), low.get("if-none-match", ""),
          low.get("if-unmodified-since", ""), low.get("range", "")]
to_sign = "\n".join(fields) + "\n" + canon + res
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
headers["Authorization"] = f"SharedKey {account}:{sig}"
req = urllib.request.Request(url, data=body, method=method, headers=headers)
try:
    resp = urllib.request.urlopen(req, timeout=60)
    status, rh, data = resp.status, resp.headers, resp.read()
except urllib.error.HTTPError as e:
    status, rh, data = e.code, e.headers, e.read()
hs = {}
for k, v in rh.items():
    k = k.lower()
    hs[k] = hs[k] + ", " + v if k in hs else v
print(json.dumps({"status": status, "headers": hs, "body_hex": binascii.hexlify(data).decode()}))
"#;

/// Azurite's Blob service on 127.0.0.1 (path-style: `endpoint()` is
/// `http://127.0.0.1:PORT/devstoreaccount1`), account `devstoreaccount1` with the
/// emulator's well-known key, data in a temporary directory.
pub struct Azurite {
    dir: tempfile::TempDir,
    port: u16,
    signer: PathBuf,
    _server: Server,
}

impl Azurite {
    pub fn start() -> Azurite {
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let signer = dir.path().join("azreq.py");
        std::fs::write(&signer, AZURE_SIGNER).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let mut cmd = Command::new(tool("azurite-blob"));
        cmd.current_dir(dir.path())
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(dir.path().join("data"))
            .args(["--skipApiVersionCheck", "--disableTelemetry"]);
        let mut server = Server::spawn("azurite-blob", cmd, &dir.path().join("azurite.log"));
        // any HTTP answer (400 for "/") means it listens
        server.wait_until(Duration::from_secs(30), || probe(port, "/").is_some());
        Azurite {
            dir,
            port,
            signer,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT/devstoreaccount1`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURE_ACCOUNT}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn account(&self) -> &str {
        AZURE_ACCOUNT
    }

    /// The account key (base64).
    pub fn key(&self) -> &str {
        AZURE_KEY
    }

    /// A connection string for Azure SDKs.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};AccountKey={AZURE_KEY};\
             BlobEndpoint={};",
            self.endpoint()
        )
    }

    /// A SharedKey-signed request to `endpoint()` + `path_and_query` (e.g.
    /// `/container/blob%20name?comp=metadata`: already percent-encoded).
    pub fn request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpResponse {
        let mut cmd = Command::new("python3");
        cmd.arg(&self.signer)
            .arg(method)
            .arg(format!("{}{path_and_query}", self.endpoint()))
            .arg(AZURE_ACCOUNT)
            .arg(AZURE_KEY);
        for (k, v) in headers {
            cmd.arg("-H").arg(format!("{k}: {v}"));
        }
        let mut tmp = None;
        if let Some(b) = body {
            let f = scratch(self.dir.path(), "body");
            std::fs::write(&f, b).unwrap();
            cmd.arg("-d").arg(&f);
            tmp = Some(f);
        }
        let out = cmd.output().expect("python3 (for Azure SharedKey signing)");
        if let Some(f) = tmp {
            let _ = std::fs::remove_file(f);
        }
        assert!(
            out.status.success(),
            "azure {method} {path_and_query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let hex = v["body_hex"].as_str().unwrap().as_bytes();
        let body = hex
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect();
        let headers = v["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        HttpResponse {
            status: v["status"].as_u64().unwrap() as u16,
            headers,
            body,
        }
    }

    fn blob_path(container: &str, name: &str) -> String {
        format!("/{}/{}", pct(container, false), pct(name, true))
    }

    pub fn create_container(&self, name: &str) {
        let r = self.request(
            "PUT",
            &format!("/{}?restype=container", pct(name, false)),
            &[],
            None,
        );
        assert_eq!(r.status, 201, "create container {name}: {}", r.text());
    }

    /// Puts a block blob (headers e.g. `Content-Type`, `x-ms-meta-*`,
    /// `x-ms-blob-content-disposition`).
    pub fn put_blob(&self, container: &str, name: &str, body: &[u8], headers: &[(&str, &str)]) {
        let mut h = vec![("x-ms-blob-type", "BlockBlob")];
        h.extend_from_slice(headers);
        let r = self.request("PUT", &Self::blob_path(container, name), &h, Some(body));
        assert_eq!(r.status, 201, "put {container}/{name}: {}", r.text());
    }

    /// The blob's bytes, or None if there is no such blob.
    pub fn get_blob(&self, container: &str, name: &str) -> Option<Vec<u8>> {
        let r = self.request("GET", &Self::blob_path(container, name), &[], None);
        match r.status {
            200 => Some(r.body),
            404 => None,
            s => panic!("get {container}/{name}: {s} {}", r.text()),
        }
    }

    /// The blob names under `prefix`, in the service's (lexicographic) order.
    pub fn list(&self, container: &str, prefix: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut marker = String::new();
        loop {
            let mut q = format!(
                "/{}?restype=container&comp=list&prefix={}",
                pct(container, false),
                pct(prefix, false)
            );
            if !marker.is_empty() {
                q.push_str(&format!("&marker={}", pct(&marker, false)));
            }
            let r = self.request("GET", &q, &[], None);
            assert_eq!(r.status, 200, "list {container}/{prefix}: {}", r.text());
            let xml = r.text();
            for blob in xml_all(&xml, "Blob") {
                names.extend(xml_first(&blob, "Name"));
            }
            match xml_first(&xml, "NextMarker") {
                Some(m) if !m.is_empty() => marker = m,
                _ => return names,
            }
        }
    }

    /// The headers of Get Blob Properties (`content-type`, `content-disposition`,
    /// `x-ms-meta-*`, `content-length`, `x-ms-blob-type`, ...), or None if there is no
    /// such blob.
    pub fn properties(&self, container: &str, name: &str) -> Option<Headers> {
        let r = self.request("HEAD", &Self::blob_path(container, name), &[], None);
        match r.status {
            200 => Some(r.headers),
            404 => None,
            s => panic!("properties {container}/{name}: {s}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Proxy: tinyproxy

/// tinyproxy on 127.0.0.1 requiring BasicAuth `user`/`password` (no credentials: 407;
/// wrong ones: tinyproxy 1.11 answers 401), allowing clients from 127.0.0.1 only, logging
/// each request line (LogLevel Info) to a file read by `log()`. Plain-HTTP proxying and
/// CONNECT to any port.
pub struct Tinyproxy {
    dir: tempfile::TempDir,
    port: u16,
    user: String,
    password: String,
    _server: Server,
}

impl Tinyproxy {
    /// `user` and `password`: no whitespace, quotes or `:` (tinyproxy's config syntax).
    pub fn start(user: &str, password: &str) -> Tinyproxy {
        for s in [user, password] {
            assert!(
                !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '"' || c == ':'),
                "tinyproxy credentials cannot hold whitespace, quotes or ':': {s:?}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let log = dir.path().join("tinyproxy.log");
        let conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 120\nMaxClients 50\n\
             LogFile \"{}\"\nLogLevel Info\nAllow 127.0.0.1\nBasicAuth {user} {password}\n",
            log.display()
        );
        let conf_path = dir.path().join("tinyproxy.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut cmd = Command::new("tinyproxy");
        cmd.current_dir(dir.path())
            .arg("-d")
            .arg("-c")
            .arg(&conf_path);
        let mut server = Server::spawn("tinyproxy", cmd, &dir.path().join("stderr.log"));
        server.wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Tinyproxy {
            dir,
            port,
            user: user.into(),
            password: password.into(),
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT`
    pub fn url_with_credentials(&self) -> String {
        format!(
            "http://{}:{}@127.0.0.1:{}",
            self.user, self.password, self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The log so far: one `CONNECT ... Request (file descriptor N): GET http://... HTTP/1.1`
    /// line per request (also for refused ones), then `Established connection to host`
    /// for each one forwarded.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }
}
