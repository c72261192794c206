//! Google Cloud Storage: fake-gcs-server, a service account and its token endpoint.

use super::*;

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
