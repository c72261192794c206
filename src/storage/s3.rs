//! S3 and S3-compatible stores (MinIO, R2, Backblaze, Ali OSS's S3 API) with `aws-sdk-s3`:
//! one PUT up to [`MULTIPART_THRESHOLD`], a multipart upload beyond it, reading the file
//! one part at a time so memory stays bounded whatever the file's size.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::io::AsyncReadExt;

use super::spec::{ProxySpec, S3Spec};
use super::{StorageError, content_type, encode_key};

/// Files larger than this go up in parts.
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Size of each part of a multipart upload (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight at once (memory: this many parts).
pub const PARTS_IN_FLIGHT: usize = 4;

/// What one part's upload came to.
type PartResult = Result<
    aws_sdk_s3::operation::upload_part::UploadPartOutput,
    aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::upload_part::UploadPartError>,
>;

/// What to store: a file on disk, or bytes (a snapshot of a playlist as it was when queued).
#[derive(Clone, Debug)]
pub enum Body<'a> {
    /// The file's current contents.
    File(&'a Path),
    /// These bytes.
    Bytes(&'a [u8]),
}

/// The request's metadata, tags and content-disposition, as the SDK's builders take them.
struct ObjectAttributes {
    metadata: std::collections::HashMap<String, String>,
    tagging: Option<String>,
    content_disposition: Option<String>,
}

/// A connected S3 bucket.
pub struct S3Store {
    client: Client,
    spec: S3Spec,
}

fn proxied_client(p: &ProxySpec) -> Result<aws_sdk_s3::config::SharedHttpClient, String> {
    use aws_smithy_http_client::{Connector, proxy::ProxyConfig, tls};
    let mut config = ProxyConfig::all(p.url.as_str()).map_err(|e| e.to_string())?;
    if !p.username.is_empty() {
        config = config.with_basic_auth(p.username.clone(), p.password.expose().to_owned());
    }
    Ok(
        aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, _| {
            let mut b = Connector::builder().proxy_config(config.clone());
            if let Some(s) = settings {
                b = b.connector_settings(s.clone());
            }
            b.tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build()
        }),
    )
}

impl S3Store {
    /// A client for `spec` (no request is made yet). Retries are the uploader's (one
    /// documented policy), so the SDK's own are off; a dead endpoint fails within the
    /// connect timeout.
    pub fn new(spec: &S3Spec) -> Result<S3Store, StorageError> {
        let token =
            (!spec.session_token.is_empty()).then(|| spec.session_token.expose().to_owned());
        let credentials = Credentials::new(
            spec.access_key.clone(),
            spec.secret.expose().to_owned(),
            token,
            None,
            "tessera",
        );
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(spec.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(spec.force_path_style)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(300))
                    .build(),
            );
        if let Some(e) = &spec.endpoint {
            b = b.endpoint_url(e.clone());
        }
        if let Some(p) = &spec.proxy {
            b = b.http_client(proxied_client(p).map_err(|reason| StorageError::Invalid {
                field: "proxy.url".into(),
                reason,
            })?);
        }
        Ok(S3Store {
            client: Client::from_conf(b.build()),
            spec: spec.clone(),
        })
    }

    /// The object's URL: `endpoint/bucket/key` (path style), `scheme://bucket.host/key`
    /// (virtual-hosted), or AWS's regional URL.
    pub fn location(&self, key: &str) -> String {
        let key = encode_key(key);
        let bucket = &self.spec.bucket;
        match &self.spec.endpoint {
            Some(e) if self.spec.force_path_style => format!("{e}/{bucket}/{key}"),
            Some(e) => match e.split_once("://") {
                Some((scheme, host)) => format!("{scheme}://{bucket}.{host}/{key}"),
                None => format!("{e}/{bucket}/{key}"),
            },
            None => format!(
                "https://{bucket}.s3.{}.amazonaws.com/{key}",
                self.spec.region
            ),
        }
    }

    fn fail<E: std::error::Error + 'static>(
        &self,
        what: &str,
        e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StorageError {
        // A 4xx answer is a refusal (credentials, bucket, permissions), but for a timeout
        // or throttling; anything else (no answer, 5xx) may pass on a later try.
        let status = e.raw_response().map(|r| r.status().as_u16());
        let retryable =
            !matches!(status, Some(s) if (400..500).contains(&s) && s != 408 && s != 429);
        let mut error = self.describe_error(what, &DisplayErrorContext(&e).to_string());
        if let StorageError::Store { retryable: r, .. } = &mut error {
            *r = retryable;
        }
        error
    }

    fn describe_error(&self, what: &str, detail: &str) -> StorageError {
        let mut reason = format!("{what}: {detail}");
        let proxy_password = self.spec.proxy.as_ref().map(|p| &p.password);
        for secret in [&self.spec.secret, &self.spec.session_token]
            .into_iter()
            .chain(proxy_password)
        {
            reason = secret.mask_in(&reason);
        }
        StorageError::Store {
            store: format!("s3 bucket {:?}", self.spec.bucket),
            reason,
            retryable: true,
        }
    }

    /// Stores `body` as `key`; returns the object's URL.
    pub async fn put(&self, body: Body<'_>, key: &str) -> Result<String, StorageError> {
        let len = match body {
            Body::File(p) => std::fs::metadata(p).map_err(|source| io(p, source))?.len(),
            Body::Bytes(b) => b.len() as u64,
        };
        match body {
            Body::File(path) if len > MULTIPART_THRESHOLD => self.multipart(path, key).await?,
            Body::File(path) => {
                let stream = ByteStream::from_path(path)
                    .await
                    .map_err(|e| StorageError::Io {
                        path: path.display().to_string(),
                        source: std::io::Error::other(e),
                    })?;
                self.put_object(stream, key).await?
            }
            Body::Bytes(b) => self.put_object(ByteStream::from(b.to_vec()), key).await?,
        }
        Ok(self.location(key))
    }

    /// What every object of this store carries besides its content type.
    fn attributes(&self) -> ObjectAttributes {
        let s = &self.spec;
        let some = |v: &String| (!v.is_empty()).then(|| v.clone());
        ObjectAttributes {
            metadata: s.metadata.clone().into_iter().collect(),
            tagging: some(&s.tagging),
            content_disposition: some(&s.content_disposition),
        }
    }

    async fn put_object(&self, body: ByteStream, key: &str) -> Result<(), StorageError> {
        let (s, a) = (&self.spec, self.attributes());
        self.client
            .put_object()
            .bucket(&s.bucket)
            .key(key)
            .body(body)
            .content_type(content_type(key))
            .set_metadata(Some(a.metadata))
            .set_tagging(a.tagging)
            .set_content_disposition(a.content_disposition)
            .send()
            .await
            .map_err(|e| self.fail("PutObject", e))?;
        Ok(())
    }

    async fn multipart(&self, path: &Path, key: &str) -> Result<(), StorageError> {
        let (s, a) = (&self.spec, self.attributes());
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&s.bucket)
            .key(key)
            .content_type(content_type(key))
            .set_metadata(Some(a.metadata))
            .set_tagging(a.tagging)
            .set_content_disposition(a.content_disposition)
            .send()
            .await
            .map_err(|e| self.fail("CreateMultipartUpload", e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result = self.upload_parts(path, key, &upload_id).await;
        match result {
            Ok(parts) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&s.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| self.fail("CompleteMultipartUpload", e))?;
                Ok(())
            }
            Err(e) => {
                // Best effort: a store that is down will drop it by its own lifecycle rules.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&s.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }

    /// Reads the file a part at a time and keeps [`PARTS_IN_FLIGHT`] uploads going.
    async fn upload_parts(
        &self,
        path: &Path,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>, StorageError> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|source| io(path, source))?;
        let mut tasks = tokio::task::JoinSet::new();
        let mut parts = Vec::new();
        let mut number = 0i32;
        loop {
            let mut buf = vec![0u8; PART_SIZE];
            let mut filled = 0;
            while filled < PART_SIZE {
                let n = file
                    .read(&mut buf[filled..])
                    .await
                    .map_err(|source| io(path, source))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            buf.truncate(filled);
            number += 1;
            let request = self
                .client
                .upload_part()
                .bucket(&self.spec.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(buf));
            tasks.spawn(async move { (number, request.send().await) });
            while tasks.len() >= PARTS_IN_FLIGHT {
                parts.push(self.part_done(tasks.join_next().await)?);
            }
            if filled < PART_SIZE {
                break;
            }
        }
        while let Some(done) = tasks.join_next().await {
            parts.push(self.part_done(Some(done))?);
        }
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }

    fn part_done(
        &self,
        joined: Option<Result<(i32, PartResult), tokio::task::JoinError>>,
    ) -> Result<CompletedPart, StorageError> {
        let (number, sent) = joined
            .expect("a task was pending")
            .map_err(|e| self.describe_error("UploadPart", &e.to_string()))?;
        let out = sent.map_err(|e| self.fail("UploadPart", e))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag().map(str::to_owned))
            .build())
    }
}

fn io(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}
