//! Google Cloud Storage through its JSON API: a service-account JWT (RS256) exchanged for
//! an access token at the key's `token_uri` (cached until a minute before it expires), a
//! single-request media upload up to [`RESUMABLE_THRESHOLD`], a resumable upload in
//! [`CHUNK_SIZE`] chunks beyond it (memory: one chunk).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::AsyncReadExt;

use super::s3::Body;
use super::spec::GcsSpec;
use super::{StorageError, content_type, encode_key};

/// Files larger than this use a resumable upload.
pub const RESUMABLE_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Chunk of a resumable upload (a multiple of 256 KiB, as GCS requires).
pub const CHUNK_SIZE: usize = 8 * 1024 * 1024;
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// A connected bucket.
pub struct GcsStore {
    http: reqwest::Client,
    spec: GcsSpec,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
}

fn is_retryable(status: reqwest::StatusCode) -> bool {
    !(status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429)
}

impl GcsStore {
    /// A client for `spec` (no request yet).
    pub fn new(spec: &GcsSpec) -> Result<GcsStore, StorageError> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(300));
        if let Some(p) = &spec.proxy {
            let mut proxy =
                reqwest::Proxy::all(p.url.as_str()).map_err(|e| StorageError::Invalid {
                    field: "proxy.url".into(),
                    reason: e.to_string(),
                })?;
            if !p.username.is_empty() {
                proxy = proxy.basic_auth(&p.username, p.password.expose());
            }
            b = b.proxy(proxy);
        }
        let http = b.build().map_err(|e| StorageError::Invalid {
            field: "gcp".into(),
            reason: e.to_string(),
        })?;
        Ok(GcsStore {
            http,
            spec: spec.clone(),
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The object's URL.
    pub fn location(&self, key: &str) -> String {
        format!(
            "{}/{}/{}",
            self.spec.endpoint,
            self.spec.bucket,
            encode_key(key)
        )
    }

    fn fail(&self, what: &str, reason: String, retryable: bool) -> StorageError {
        let mut reason = format!("{what}: {reason}");
        if let Some(p) = &self.spec.proxy {
            reason = p.password.mask_in(&reason);
        }
        StorageError::Store {
            store: format!("gcs bucket {:?}", self.spec.bucket),
            reason,
            retryable,
        }
    }

    fn net(&self, what: &str, e: reqwest::Error) -> StorageError {
        // Without the URL: a resumable session URL is a bearer capability.
        self.fail(what, e.without_url().to_string(), true)
    }

    async fn refused(&self, what: &str, r: reqwest::Response) -> StorageError {
        let status = r.status();
        let body = super::error_body(r).await;
        let body: String = body.chars().take(300).collect();
        self.fail(
            what,
            format!("HTTP {status}: {}", body.trim()),
            is_retryable(status),
        )
    }

    async fn access_token(&self) -> Result<String, StorageError> {
        let mut cached = self.token.lock().await;
        if let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            iss: &self.spec.client_email,
            scope: SCOPE,
            aud: &self.spec.token_uri,
            iat: now,
            exp: now + 3600,
        };
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(self.spec.private_key.expose().as_bytes())
                .map_err(|e| self.fail("signing", e.to_string(), false))?;
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .map_err(|e| self.fail("signing", e.to_string(), false))?;
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}"
        );
        let r = self
            .http
            .post(&self.spec.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| self.net("token", e))?;
        if !r.status().is_success() {
            return Err(self.refused("token", r).await);
        }
        let bytes = r.bytes().await.map_err(|e| self.net("token", e))?;
        let answer: TokenAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| self.fail("token", format!("unreadable answer: {e}"), true))?;
        let life = Duration::from_secs(answer.expires_in.max(120) - 60);
        *cached = Some((answer.access_token.clone(), Instant::now() + life));
        Ok(answer.access_token)
    }

    fn upload_url(&self, kind: &str, key: &str) -> String {
        let name: String = encode_key(key).replace('/', "%2F");
        format!(
            "{}/upload/storage/v1/b/{}/o?uploadType={kind}&name={name}",
            self.spec.endpoint, self.spec.bucket
        )
    }

    /// Stores `body` as `key`; returns the object's URL.
    pub async fn put(&self, body: Body<'_>, key: &str) -> Result<String, StorageError> {
        let token = self.access_token().await?;
        match body {
            Body::File(path) => {
                let len = std::fs::metadata(path).map_err(|e| io(path, e))?.len();
                if len > RESUMABLE_THRESHOLD {
                    self.resumable(path, len, key, &token).await?;
                } else {
                    let bytes = tokio::fs::read(path).await.map_err(|e| io(path, e))?;
                    self.media(bytes, key, &token).await?;
                }
            }
            Body::Bytes(b) => self.media(b.to_vec(), key, &token).await?,
        }
        Ok(self.location(key))
    }

    async fn media(&self, bytes: Vec<u8>, key: &str, token: &str) -> Result<(), StorageError> {
        let r = self
            .http
            .post(self.upload_url("media", key))
            .bearer_auth(token)
            .header("content-type", content_type(key))
            .body(bytes)
            .send()
            .await
            .map_err(|e| self.net("upload", e))?;
        if !r.status().is_success() {
            return Err(self.refused("upload", r).await);
        }
        Ok(())
    }

    async fn resumable(
        &self,
        path: &Path,
        len: u64,
        key: &str,
        token: &str,
    ) -> Result<(), StorageError> {
        let r = self
            .http
            .post(self.upload_url("resumable", key))
            .bearer_auth(token)
            .header("content-type", "application/json; charset=UTF-8")
            .header("x-upload-content-type", content_type(key))
            .header("x-upload-content-length", len.to_string())
            .body(serde_json::json!({ "name": key, "contentType": content_type(key) }).to_string())
            .send()
            .await
            .map_err(|e| self.net("resumable upload start", e))?;
        if !r.status().is_success() {
            return Err(self.refused("resumable upload start", r).await);
        }
        let session = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.fail("resumable upload start", "no session URL".into(), true))?
            .to_owned();
        let mut file = tokio::fs::File::open(path).await.map_err(|e| io(path, e))?;
        let mut sent = 0u64;
        while sent < len {
            let n = CHUNK_SIZE.min((len - sent) as usize);
            let mut chunk = vec![0u8; n];
            file.read_exact(&mut chunk).await.map_err(|e| io(path, e))?;
            let r = self
                .http
                .put(&session)
                .header("content-type", content_type(key))
                .header(
                    "content-range",
                    format!("bytes {sent}-{}/{len}", sent + n as u64 - 1),
                )
                .body(chunk)
                .send()
                .await
                .map_err(|e| self.net("resumable upload", e))?;
            sent += n as u64;
            let status = r.status().as_u16();
            let done = sent == len;
            // 308: chunk stored, more expected; 200/201: the object is complete.
            if !(status == 308 && !done || (200..300).contains(&status) && done) {
                return Err(self.refused("resumable upload", r).await);
            }
        }
        Ok(())
    }
}

fn io(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}
