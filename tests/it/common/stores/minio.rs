//! S3: MinIO.

use super::*;

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
