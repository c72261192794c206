//! Storage settings, validated: LiveKit's upload messages (or the worker's configured
//! default) into a [`StoreSpec`], with errors that name the field. Pure: no IO.

use std::collections::BTreeMap;
use std::time::Duration;

use livekit_protocol::storage_config::Provider;
use livekit_protocol::{AliOssUpload, AzureBlobUpload, GcpUpload, ProxyConfig, S3Upload};
use serde::Deserialize;

use super::StorageError;

/// How long an upload may take in all, retries included (the default
/// `RetryPolicy::deadline`, `tessera.upload_deadline`).
pub const UPLOAD_DEADLINE: Duration = Duration::from_secs(600);

pub use crate::secret::Secret;

/// An HTTP(S) proxy for a store's requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySpec {
    /// `http://host:port` (or https).
    pub url: String,
    /// Basic-auth user, if any.
    pub username: String,
    /// Basic-auth password, if any.
    pub password: Secret,
}

/// Which S3 dialect: Amazon's (and every S3-compatible store) or Ali OSS's S3-compatible API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3Flavour {
    /// AWS S3, MinIO, R2, Backblaze, ...
    S3,
    /// Alibaba Cloud OSS through its S3-compatible API (virtual-hosted buckets).
    AliOss,
}

/// A validated S3 (or S3-compatible) destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Spec {
    /// Amazon's S3 or Ali OSS.
    pub flavour: S3Flavour,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret: Secret,
    /// Session token of temporary credentials (empty: none).
    pub session_token: Secret,
    /// Region (signing region; `us-east-1` when only an endpoint is given).
    pub region: String,
    /// Endpoint URL of an S3-compatible store (`None`: AWS for the region).
    pub endpoint: Option<String>,
    /// Bucket.
    pub bucket: String,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-hosted.
    pub force_path_style: bool,
    /// User metadata set on every object (`x-amz-meta-*`).
    pub metadata: BTreeMap<String, String>,
    /// Object tags, URL-query encoded (`k1=v1&k2=v2`).
    pub tagging: String,
    /// `Content-Disposition` set on every object (empty: none).
    pub content_disposition: String,
    /// Proxy for the store's requests.
    pub proxy: Option<ProxySpec>,
}

/// A validated Google Cloud Storage destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcsSpec {
    /// The service account's e-mail (the JWT issuer).
    pub client_email: String,
    /// Its PEM private key.
    pub private_key: Secret,
    /// Where the signed JWT is exchanged for an access token.
    pub token_uri: String,
    /// Bucket.
    pub bucket: String,
    /// `https://storage.googleapis.com`, or an emulator's URL from `STORAGE_EMULATOR_HOST`
    /// (the variable Google's own client libraries honour).
    pub endpoint: String,
    /// Proxy for the store's requests.
    pub proxy: Option<ProxySpec>,
}

/// A validated Azure Blob destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureSpec {
    /// Storage account.
    pub account_name: String,
    /// Its shared key.
    pub account_key: Secret,
    /// Container.
    pub container_name: String,
    /// An emulator's URL (Azurite) from `AZURITE_BLOB_STORAGE_URL`; `None`: Azure.
    pub emulator: Option<String>,
}

/// Where an output's files go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    /// Kept on the local disk, under the output directory.
    Local,
    /// An S3 or S3-compatible bucket.
    S3(Box<S3Spec>),
    /// A Google Cloud Storage bucket.
    Gcs(Box<GcsSpec>),
    /// An Azure Blob container.
    Azure(Box<AzureSpec>),
}

impl StoreSpec {
    /// A secret-free name for logs and errors: kind and bucket.
    pub fn describe(&self) -> String {
        match self {
            StoreSpec::Local => "local disk".into(),
            StoreSpec::S3(s) => match s.flavour {
                S3Flavour::S3 => format!("s3 bucket {:?}", s.bucket),
                S3Flavour::AliOss => format!("ali oss bucket {:?}", s.bucket),
            },
            StoreSpec::Gcs(g) => format!("gcs bucket {:?}", g.bucket),
            StoreSpec::Azure(a) => format!(
                "azure container {:?} of account {:?}",
                a.container_name, a.account_name
            ),
        }
    }

    /// Whether files stay on the local disk.
    pub fn is_local(&self) -> bool {
        matches!(self, StoreSpec::Local)
    }
}

/// The worker's storage settings (LiveKit egress's `storage`, `backup_storage` and
/// `disallow_local_storage` configuration keys).
#[derive(Clone, Debug, PartialEq)]
pub struct StorageDefaults {
    /// Where outputs without their own storage go (`None`: local disk).
    pub storage: Option<StoreSpec>,
    /// Prefix added to every object key.
    pub prefix: String,
    /// Where files go whose primary upload failed.
    pub backup: Option<StoreSpec>,
    /// Refuse outputs that would stay on the local disk.
    pub disallow_local: bool,
    /// How long after an egress's end its files may still try the primary store (and as
    /// long again the backup) before they stay on disk (`tessera.upload_deadline`).
    pub upload_deadline: Duration,
}

impl Default for StorageDefaults {
    fn default() -> Self {
        StorageDefaults {
            storage: None,
            prefix: String::new(),
            backup: None,
            disallow_local: false,
            upload_deadline: UPLOAD_DEADLINE,
        }
    }
}

/// The storage of one output: its own upload settings, else the worker's default, else
/// local disk (refused when the worker disallows local storage). `field` is the output's
/// field (`file_outputs[0]`).
#[cfg(test)]
pub fn resolve(
    own: Option<&Provider>,
    field: &str,
    defaults: &StorageDefaults,
) -> Result<StoreSpec, StorageError> {
    let own = own.map(|p| from_provider(p, field)).transpose()?;
    effective(own.as_ref(), field, defaults)
}

/// The storage of one output whose own upload settings (if any) are already validated: its
/// own, else the worker's default, else local disk (refused when the worker disallows
/// local storage). `field` is the output's field (`file_outputs[0]`).
#[cfg_attr(not(feature = "egress"), allow(dead_code))]
pub fn effective(
    own: Option<&StoreSpec>,
    field: &str,
    defaults: &StorageDefaults,
) -> Result<StoreSpec, StorageError> {
    let spec = own
        .cloned()
        .or_else(|| defaults.storage.clone())
        .unwrap_or(StoreSpec::Local);
    if spec.is_local() && defaults.disallow_local {
        return Err(invalid(
            field,
            "this worker does not keep files on local disk: give the output s3, gcp, azure \
             or aliOSS storage",
        ));
    }
    Ok(spec)
}

/// One of LiveKit's upload messages, validated.
pub fn from_provider(p: &Provider, field: &str) -> Result<StoreSpec, StorageError> {
    match p {
        Provider::S3(s) => s3(s, &format!("{field}.s3")),
        Provider::AliOss(a) => ali_oss(a, &format!("{field}.aliOSS")),
        Provider::Gcp(g) => gcs(g, &format!("{field}.gcp")),
        Provider::Azure(a) => azure(a, &format!("{field}.azure")),
    }
}

/// The fields of a service-account key file that signing needs.
#[derive(Default, Deserialize)]
#[serde(default)]
struct ServiceAccount {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    private_key: String,
    token_uri: String,
}

fn gcs(g: &GcpUpload, field: &str) -> Result<StoreSpec, StorageError> {
    let bucket = required(&g.bucket, &format!("{field}.bucket"))?;
    let cred_field = format!("{field}.credentials");
    // Empty: the worker's application default credentials file, as Google's libraries.
    let text = if g.credentials.trim().is_empty() {
        let path = std::env::var("GOOGLE_APPLICATION_CREDENTIALS").map_err(|_| {
            invalid(
                &cred_field,
                "is required (or GOOGLE_APPLICATION_CREDENTIALS in the worker's environment)",
            )
        })?;
        std::fs::read_to_string(&path).map_err(|e| {
            invalid(
                &cred_field,
                format!("GOOGLE_APPLICATION_CREDENTIALS={path}: {e}"),
            )
        })?
    } else {
        g.credentials.clone()
    };
    // serde_json's message names the line and column, never the content.
    let account: ServiceAccount = serde_json::from_str(&text).map_err(|e| {
        invalid(
            &cred_field,
            format!("is not a service-account key (JSON): {e}"),
        )
    })?;
    if account.kind != "service_account" {
        return Err(invalid(
            &cred_field,
            format!(
                "must be a service-account key (\"type\": \"service_account\"), got {:?}",
                account.kind
            ),
        ));
    }
    if account.client_email.is_empty() {
        return Err(invalid(&cred_field, "has no client_email"));
    }
    if jsonwebtoken::EncodingKey::from_rsa_pem(account.private_key.as_bytes()).is_err() {
        return Err(invalid(
            &cred_field,
            "has no usable private_key (an RSA key in PEM)",
        ));
    }
    let token_uri = match account.token_uri.trim() {
        "" => "https://oauth2.googleapis.com/token".to_owned(),
        t => http_url(t, &format!("{cred_field}.token_uri"))?,
    };
    let endpoint = match std::env::var("STORAGE_EMULATOR_HOST") {
        Ok(h) if !h.trim().is_empty() => {
            let h = h.trim().trim_end_matches('/');
            if h.contains("://") {
                h.to_owned()
            } else {
                format!("http://{h}")
            }
        }
        _ => "https://storage.googleapis.com".to_owned(),
    };
    Ok(StoreSpec::Gcs(Box::new(GcsSpec {
        client_email: account.client_email,
        private_key: Secret::from(account.private_key),
        token_uri,
        bucket,
        endpoint,
        proxy: proxy(g.proxy.as_ref(), &format!("{field}.proxy"))?,
    })))
}

fn azure(a: &AzureBlobUpload, field: &str) -> Result<StoreSpec, StorageError> {
    let account_name = required(&a.account_name, &format!("{field}.account_name"))?;
    let container_name = required(&a.container_name, &format!("{field}.container_name"))?;
    let key = required(&a.account_key, &format!("{field}.account_key"))?;
    let valid_key = key.len() % 4 == 0
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
    if !valid_key {
        return Err(invalid(
            &format!("{field}.account_key"),
            "must be the account's base64 shared key",
        ));
    }
    let emulator = std::env::var("AZURITE_BLOB_STORAGE_URL")
        .ok()
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty());
    Ok(StoreSpec::Azure(Box::new(AzureSpec {
        account_name,
        account_key: Secret::from(key),
        container_name,
        emulator,
    })))
}

fn invalid(field: &str, reason: impl Into<String>) -> StorageError {
    StorageError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn required(value: &str, field: &str) -> Result<String, StorageError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(field, "is required"));
    }
    Ok(v.to_owned())
}

fn http_url(value: &str, field: &str) -> Result<String, StorageError> {
    let v = value.trim().trim_end_matches('/');
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or_else(|| invalid(field, "must start with https:// or http://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid(field, "has no host"));
    }
    Ok(v.to_owned())
}

fn proxy(p: Option<&ProxyConfig>, field: &str) -> Result<Option<ProxySpec>, StorageError> {
    let Some(p) = p.filter(|p| !p.url.trim().is_empty()) else {
        return Ok(None);
    };
    Ok(Some(ProxySpec {
        url: http_url(&p.url, &format!("{field}.url"))?,
        username: p.username.clone(),
        password: Secret::from(p.password.clone()),
    }))
}

/// Access key and secret from the request, else from `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` (the worker's environment).
fn credentials(
    access_key: &str,
    secret: &str,
    token: &str,
    field: &str,
) -> Result<(String, Secret, Secret), StorageError> {
    if access_key.is_empty() && secret.is_empty() {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        return match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(k), Some(s)) => Ok((
                k,
                Secret::from(s),
                Secret::from(env("AWS_SESSION_TOKEN").unwrap_or_default()),
            )),
            _ => Err(invalid(
                &format!("{field}.access_key"),
                "is required (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the worker's \
                 environment)",
            )),
        };
    }
    let key = required(access_key, &format!("{field}.access_key"))?;
    if secret.is_empty() {
        return Err(invalid(&format!("{field}.secret"), "is required"));
    }
    Ok((
        key,
        Secret::from(secret.to_owned()),
        Secret::from(token.to_owned()),
    ))
}

fn s3(s: &S3Upload, field: &str) -> Result<StoreSpec, StorageError> {
    let bucket = required(&s.bucket, &format!("{field}.bucket"))?;
    if !s.assume_role_arn.is_empty() {
        return Err(invalid(
            &format!("{field}.assume_role_arn"),
            "AssumeRole is not supported by this version of tessera; give access_key and secret",
        ));
    }
    let endpoint = if s.endpoint.trim().is_empty() {
        None
    } else {
        Some(http_url(&s.endpoint, &format!("{field}.endpoint"))?)
    };
    let region = match (s.region.trim(), &endpoint) {
        ("", None) => {
            return Err(invalid(
                &format!("{field}.region"),
                "is required when endpoint is empty",
            ));
        }
        ("", Some(_)) => "us-east-1".to_owned(),
        (r, _) => r.to_owned(),
    };
    let (access_key, secret, session_token) =
        credentials(&s.access_key, &s.secret, &s.session_token, field)?;
    check_tagging(&s.tagging, &format!("{field}.tagging"))?;
    for k in s.metadata.keys() {
        if k.is_empty()
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            return Err(invalid(
                &format!("{field}.metadata"),
                format!("key {k:?} must be letters, digits, '-' or '_'"),
            ));
        }
    }
    Ok(StoreSpec::S3(Box::new(S3Spec {
        flavour: S3Flavour::S3,
        access_key,
        secret,
        session_token,
        region,
        endpoint,
        bucket,
        force_path_style: s.force_path_style,
        metadata: s
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        tagging: s.tagging.clone(),
        content_disposition: s.content_disposition.clone(),
        proxy: proxy(s.proxy.as_ref(), &format!("{field}.proxy"))?,
    })))
}

/// Ali OSS through its S3-compatible API: `endpoint` defaults to
/// `https://oss-{region}.aliyuncs.com`, buckets are virtual-hosted (OSS refuses path style).
fn ali_oss(a: &AliOssUpload, field: &str) -> Result<StoreSpec, StorageError> {
    let bucket = required(&a.bucket, &format!("{field}.bucket"))?;
    let access_key = required(&a.access_key, &format!("{field}.access_key"))?;
    let secret = required(&a.secret, &format!("{field}.secret"))?;
    let endpoint = match (a.endpoint.trim(), a.region.trim()) {
        ("", "") => {
            return Err(invalid(
                &format!("{field}.region"),
                "is required when endpoint is empty",
            ));
        }
        ("", r) => format!("https://oss-{}.aliyuncs.com", r.trim_start_matches("oss-")),
        (e, _) => http_url(e, &format!("{field}.endpoint"))?,
    };
    let region = match a.region.trim() {
        "" => "oss".to_owned(),
        r => r.trim_start_matches("oss-").to_owned(),
    };
    Ok(StoreSpec::S3(Box::new(S3Spec {
        flavour: S3Flavour::AliOss,
        access_key,
        secret: Secret::from(secret),
        session_token: Secret::default(),
        region,
        endpoint: Some(endpoint),
        bucket,
        force_path_style: false,
        metadata: BTreeMap::new(),
        tagging: String::new(),
        content_disposition: String::new(),
        proxy: None,
    })))
}

fn check_tagging(tagging: &str, field: &str) -> Result<(), StorageError> {
    if tagging.is_empty() {
        return Ok(());
    }
    for pair in tagging.split('&') {
        let (k, _) = pair.split_once('=').unwrap_or((pair, ""));
        if k.is_empty() {
            return Err(invalid(
                field,
                format!("{pair:?} is not key=value (tags are written k1=v1&k2=v2)"),
            ));
        }
    }
    Ok(())
}

/// What a redacted secret reads as in a stored request.
pub const REDACTED: &str = "<redacted>";

fn redact(v: &mut String) {
    if !v.is_empty() {
        *v = REDACTED.to_owned();
    }
}

/// Blanks the secrets of an upload message (for `EgressInfo.request` and the manifest):
/// keys, secrets, session tokens, service-account credentials, proxy passwords.
pub fn redact_provider(p: &mut Provider) {
    match p {
        Provider::S3(s) => {
            redact(&mut s.access_key);
            redact(&mut s.secret);
            redact(&mut s.session_token);
            redact(&mut s.assume_role_external_id);
            if let Some(p) = &mut s.proxy {
                redact(&mut p.password);
            }
        }
        Provider::Gcp(g) => {
            redact(&mut g.credentials);
            if let Some(p) = &mut g.proxy {
                redact(&mut p.password);
            }
        }
        Provider::Azure(a) => redact(&mut a.account_key),
        Provider::AliOss(a) => {
            redact(&mut a.access_key);
            redact(&mut a.secret);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3_upload() -> S3Upload {
        S3Upload {
            access_key: "AKID".into(),
            secret: "SECRETKEY".into(),
            region: "eu-west-1".into(),
            bucket: "rec".into(),
            ..Default::default()
        }
    }

    fn field_of(e: StorageError) -> String {
        match e {
            StorageError::Invalid { field, .. } => field,
            e => panic!("not a field error: {e}"),
        }
    }

    #[test]
    fn bad_s3_fields_are_named() {
        let cases: Vec<(S3Upload, &str)> = vec![
            (
                S3Upload {
                    bucket: " ".into(),
                    ..s3_upload()
                },
                "file_outputs[0].s3.bucket",
            ),
            (
                S3Upload {
                    endpoint: "minio:9000".into(),
                    ..s3_upload()
                },
                "file_outputs[0].s3.endpoint",
            ),
            (
                S3Upload {
                    region: "".into(),
                    ..s3_upload()
                },
                "file_outputs[0].s3.region",
            ),
            (
                S3Upload {
                    secret: "".into(),
                    ..s3_upload()
                },
                "file_outputs[0].s3.secret",
            ),
            (
                S3Upload {
                    tagging: "=x".into(),
                    ..s3_upload()
                },
                "file_outputs[0].s3.tagging",
            ),
            (
                S3Upload {
                    proxy: Some(ProxyConfig {
                        url: "socks5://p:1080".into(),
                        ..Default::default()
                    }),
                    ..s3_upload()
                },
                "file_outputs[0].s3.proxy.url",
            ),
        ];
        for (upload, field) in cases {
            let e = from_provider(&Provider::S3(upload), "file_outputs[0]").unwrap_err();
            assert_eq!(field_of(e), field);
        }
    }

    #[test]
    fn endpoint_alone_signs_for_us_east_1() {
        let spec = from_provider(
            &Provider::S3(S3Upload {
                region: "".into(),
                endpoint: "http://127.0.0.1:9000/".into(),
                ..s3_upload()
            }),
            "f",
        )
        .unwrap();
        let StoreSpec::S3(s) = spec else { panic!("s3") };
        assert_eq!(s.region, "us-east-1");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    }

    #[test]
    fn precedence_output_then_default_then_local() {
        let default = from_provider(&Provider::S3(s3_upload()), "storage").unwrap();
        let mut defaults = StorageDefaults {
            storage: Some(default.clone()),
            ..Default::default()
        };
        let own = Provider::S3(S3Upload {
            bucket: "own".into(),
            ..s3_upload()
        });
        let got = resolve(Some(&own), "f", &defaults).unwrap();
        assert!(got.describe().contains("\"own\""));
        assert_eq!(resolve(None, "f", &defaults).unwrap(), default);
        defaults.storage = None;
        assert_eq!(resolve(None, "f", &defaults).unwrap(), StoreSpec::Local);
        defaults.disallow_local = true;
        assert_eq!(
            field_of(resolve(None, "segment_outputs[0]", &defaults).unwrap_err()),
            "segment_outputs[0]"
        );
    }

    #[test]
    fn ali_oss_defaults_its_endpoint_from_the_region() {
        let spec = from_provider(
            &Provider::AliOss(AliOssUpload {
                access_key: "k".into(),
                secret: "s".into(),
                region: "oss-cn-hangzhou".into(),
                endpoint: "".into(),
                bucket: "b".into(),
            }),
            "f",
        )
        .unwrap();
        let StoreSpec::S3(s) = spec else { panic!("s3") };
        assert_eq!(
            s.endpoint.as_deref(),
            Some("https://oss-cn-hangzhou.aliyuncs.com")
        );
        assert_eq!(
            (s.region.as_str(), s.force_path_style),
            ("cn-hangzhou", false)
        );
    }

    #[test]
    fn secrets_never_print() {
        let spec = from_provider(
            &Provider::S3(S3Upload {
                session_token: "TOKEN123".into(),
                proxy: Some(ProxyConfig {
                    url: "http://127.0.0.1:8888".into(),
                    username: "u".into(),
                    password: "PROXYPASS".into(),
                }),
                ..s3_upload()
            }),
            "f",
        )
        .unwrap();
        let shown = format!("{spec:?} {}", spec.describe());
        for secret in ["SECRETKEY", "TOKEN123", "PROXYPASS"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
