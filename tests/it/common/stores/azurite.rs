//! Azure Blob Storage: Azurite.

use super::*;

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
