//! The storage blocks of the configuration file (`storage`, `backup`), in LiveKit egress's
//! shape: one of `s3`, `alioss`, `gcp`, `azure` and a `prefix`, validated into a
//! [`StoreSpec`] by the same rules as a request's upload message.

use livekit_protocol::storage_config::Provider;
use livekit_protocol::{AliOssUpload, AzureBlobUpload, GcpUpload, ProxyConfig, S3Upload};
use serde::Deserialize;

use crate::secret::Secret;
use crate::storage::spec::from_provider;
use crate::storage::{StorageError, StoreSpec};

/// The worker configuration's storage keys, in LiveKit egress's YAML shape.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfigFile {
    /// Prefix added to every object key.
    pub prefix: String,
    /// S3 or S3-compatible.
    pub s3: Option<S3ConfigFile>,
    /// Ali OSS.
    pub alioss: Option<AliOssConfigFile>,
    /// Google Cloud Storage.
    pub gcp: Option<GcpConfigFile>,
    /// Azure Blob.
    pub azure: Option<AzureConfigFile>,
}

/// `storage.gcp` of the worker configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcpConfigFile {
    credentials_json: Secret,
    bucket: String,
    proxy_config: Option<ProxyConfigFile>,
}

/// `storage.azure` of the worker configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AzureConfigFile {
    account_name: String,
    account_key: Secret,
    container_name: String,
}

/// `storage.s3` of the worker configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3ConfigFile {
    access_key: String,
    secret: Secret,
    session_token: Secret,
    region: String,
    endpoint: String,
    bucket: String,
    force_path_style: bool,
    proxy_config: Option<ProxyConfigFile>,
}

/// `storage.alioss` of the worker configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AliOssConfigFile {
    access_key: String,
    secret: Secret,
    region: String,
    endpoint: String,
    bucket: String,
}

/// A proxy in the worker configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfigFile {
    url: String,
    username: String,
    password: Secret,
}

impl ProxyConfigFile {
    fn to_proto(&self) -> ProxyConfig {
        ProxyConfig {
            url: self.url.clone(),
            username: self.username.clone(),
            password: self.password.expose().to_owned(),
        }
    }
}

impl StorageConfigFile {
    /// The configured store; `field` is its key (`storage`, `backup`).
    pub fn spec(&self, field: &str) -> Result<StoreSpec, StorageError> {
        let set = [
            self.s3.is_some(),
            self.alioss.is_some(),
            self.gcp.is_some(),
            self.azure.is_some(),
        ];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err(StorageError::Invalid {
                field: field.to_owned(),
                reason: "give one of s3, alioss, gcp, azure".into(),
            });
        }
        let provider = if let Some(s) = &self.s3 {
            Provider::S3(S3Upload {
                access_key: s.access_key.clone(),
                secret: s.secret.expose().to_owned(),
                session_token: s.session_token.expose().to_owned(),
                region: s.region.clone(),
                endpoint: s.endpoint.clone(),
                bucket: s.bucket.clone(),
                force_path_style: s.force_path_style,
                proxy: s.proxy_config.as_ref().map(ProxyConfigFile::to_proto),
                ..Default::default()
            })
        } else if let Some(a) = &self.alioss {
            Provider::AliOss(AliOssUpload {
                access_key: a.access_key.clone(),
                secret: a.secret.expose().to_owned(),
                region: a.region.clone(),
                endpoint: a.endpoint.clone(),
                bucket: a.bucket.clone(),
            })
        } else if let Some(g) = &self.gcp {
            Provider::Gcp(GcpUpload {
                credentials: g.credentials_json.expose().to_owned(),
                bucket: g.bucket.clone(),
                proxy: g.proxy_config.as_ref().map(ProxyConfigFile::to_proto),
            })
        } else if let Some(a) = &self.azure {
            Provider::Azure(AzureBlobUpload {
                account_name: a.account_name.clone(),
                account_key: a.account_key.expose().to_owned(),
                container_name: a.container_name.clone(),
            })
        } else {
            return Ok(StoreSpec::Local);
        };
        from_provider(&provider, field).map_err(|e| match e {
            // The file's keys are lower case (`alioss`), the request's `aliOSS`.
            StorageError::Invalid { field: f, reason } => StorageError::Invalid {
                field: f.replace(".aliOSS", ".alioss"),
                reason,
            },
            e => e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_block_in_livekit_shape() {
        let yaml = "prefix: rec/\ns3:\n  access_key: k\n  secret: s\n  endpoint: http://127.0.0.1:9000\n  bucket: b\n  force_path_style: true\n  proxy_config:\n    url: http://127.0.0.1:3128\n";
        let file: StorageConfigFile = serde_yaml_ng::from_str(yaml).unwrap();
        let StoreSpec::S3(s) = file.spec("storage").unwrap() else {
            panic!("s3")
        };
        assert!(s.force_path_style && s.proxy.is_some());
        assert_eq!(file.prefix, "rec/");
        let bad: StorageConfigFile = serde_yaml_ng::from_str("alioss:\n  bucket: b\n").unwrap();
        match bad.spec("backup").unwrap_err() {
            StorageError::Invalid { field, .. } => assert_eq!(field, "backup.alioss.access_key"),
            e => panic!("not a field error: {e}"),
        }
        let two = "s3: {bucket: b}\ngcp: {bucket: b}\n";
        let two: StorageConfigFile = serde_yaml_ng::from_str(two).unwrap();
        assert!(
            two.spec("storage")
                .unwrap_err()
                .to_string()
                .contains("one of")
        );
    }
}
