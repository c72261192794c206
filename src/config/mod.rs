//! The worker's configuration file, read in one place: LiveKit egress's YAML keys where they
//! apply (`api_key`, `api_secret`, `ws_url`, `redis`, `health_port`, `prometheus_port`,
//! `cluster_id`, `logging`, `session_limits`, `storage`, `backup`, `disallow_local_storage`,
//! `cpu_cost`, the IO timeouts) and tessera's own under `tessera:` (compositor, cost
//! profile, drain bound, output directory, layouts, the standalone API port, upload
//! deadline).
//!
//! [`ConfigFile`] is the file's shape, parsed once with one strictness: keys of LiveKit's
//! that tessera does not use are ignored at the top level, while the blocks tessera reads
//! whole (`redis`, `storage`, `backup`, `tessera`) refuse keys they do not know, so a typo
//! is an error that names it. Every credential in it (API secret, Redis passwords,
//! storage keys) is a [`Secret`](crate::secret::Secret). [`ServiceConfig`] is what the
//! worker runs with (environment filled in, values checked); `tessera run --config` takes
//! only the storage settings ([`ConfigFile::storage_defaults`]).
//!
//! Environment: `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET`, `LIVEKIT_WS_URL` fill keys the
//! file leaves empty; `EGRESS_CONFIG_BODY` is the file's text when no file is given.

mod blocks;
mod service;
mod storage;

use serde::Deserialize;

pub use blocks::{CpuCost, Logging, RedisConfig, SessionLimits, TesseraKeys};
pub use service::ServiceConfig;
pub use storage::{
    AliOssConfigFile, AzureConfigFile, GcpConfigFile, ProxyConfigFile, S3ConfigFile,
    StorageConfigFile,
};

use crate::go_duration::GoDuration;
use crate::secret::Secret;
use crate::storage::{StorageDefaults, StorageError, spec::UPLOAD_DEADLINE};

/// What is wrong with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The YAML does not parse, or a key is unknown or has the wrong type (the message
    /// names the key and the line).
    #[error("config: {0}")]
    Parse(#[from] serde_yaml_ng::Error),
    /// A storage block is unusable (the error names the key, `storage.s3.bucket`).
    #[error("config: {0}")]
    Storage(#[from] StorageError),
    /// A value is out of range or missing.
    #[error("config: {field}: {reason}")]
    Invalid {
        /// The key.
        field: String,
        /// Why.
        reason: String,
    },
}

/// The whole file, as written (nothing filled in or checked beyond types and key names).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    /// LiveKit API key.
    pub api_key: String,
    /// LiveKit API secret.
    pub api_secret: Secret,
    /// The LiveKit server's WebSocket URL.
    pub ws_url: String,
    /// Redis (absent or empty: standalone mode).
    pub redis: Option<RedisConfig>,
    /// `/health` port.
    pub health_port: u16,
    /// `/metrics` port.
    pub prometheus_port: u16,
    /// psrpc topic of StartEgress.
    pub cluster_id: String,
    /// Logging.
    pub logging: Logging,
    /// Longest output of each kind.
    pub session_limits: SessionLimits,
    /// What each kind of egress costs (absent: tessera's defaults).
    pub cpu_cost: Option<CpuCost>,
    /// How long IOInfo.CreateEgress may take.
    pub io_create_timeout: Option<GoDuration>,
    /// How long one IOInfo.UpdateEgress try may take.
    pub io_update_timeout: Option<GoDuration>,
    /// The default store for outputs without their own.
    pub storage: Option<StorageConfigFile>,
    /// Where files go whose upload failed (LiveKit's key is `backup`; tessera's first name
    /// for it, `backup_storage`, stays).
    #[serde(alias = "backup_storage")]
    pub backup: Option<StorageConfigFile>,
    /// Refuse outputs that would stay on local disk.
    pub disallow_local_storage: bool,
    /// tessera's own keys.
    pub tessera: TesseraKeys,
}

impl ConfigFile {
    /// Parses the YAML text (empty text: every default).
    pub fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        if text.trim().is_empty() {
            return Ok(ConfigFile::default());
        }
        Ok(serde_yaml_ng::from_str(text)?)
    }

    /// The storage settings: `storage`, `backup`, `disallow_local_storage` and
    /// `tessera.upload_deadline`, validated.
    pub fn storage_defaults(&self) -> Result<StorageDefaults, ConfigError> {
        let store = |block: &Option<StorageConfigFile>, field: &str| {
            block
                .as_ref()
                .map(|s| s.spec(field))
                .transpose()
                .map(|s| s.filter(|s| !s.is_local()))
        };
        Ok(StorageDefaults {
            storage: store(&self.storage, "storage")?,
            prefix: self
                .storage
                .as_ref()
                .map(|s| s.prefix.clone())
                .unwrap_or_default(),
            backup: store(&self.backup, "backup")?,
            disallow_local: self.disallow_local_storage,
            upload_deadline: self
                .tessera
                .upload_deadline
                .map_or(UPLOAD_DEADLINE, |d| d.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StoreSpec;

    #[test]
    fn one_parse_gives_the_storage_settings() {
        let text = "
storage:
  prefix: rec/
  s3: {access_key: k, secret: the-s3-secret, endpoint: 'http://127.0.0.1:9000', bucket: b}
backup_storage:
  azure: {account_name: a, account_key: dGhlLWF6dXJlLWtleQ==, container_name: c}
disallow_local_storage: true
tessera: {upload_deadline: 2s}
";
        let f = ConfigFile::parse(text).unwrap();
        let d = f.storage_defaults().unwrap();
        assert!(matches!(d.storage, Some(StoreSpec::S3(_))));
        assert!(matches!(d.backup, Some(StoreSpec::Azure(_))));
        assert_eq!(d.prefix, "rec/");
        assert!(d.disallow_local);
        assert_eq!(d.upload_deadline, std::time::Duration::from_secs(2));
        let shown = format!("{f:?} {d:?}");
        for secret in ["the-s3-secret", "dGhlLWF6dXJlLWtleQ=="] {
            assert!(!shown.contains(secret), "{secret} printed: {shown}");
        }
    }

    #[test]
    fn blocks_refuse_unknown_keys_and_the_top_level_ignores_livekits_others() {
        // LiveKit's egress has keys tessera does not use (`template_base`, ...).
        assert!(ConfigFile::parse("template_base: http://x\ninsecure: true\n").is_ok());
        for (text, key) in [
            ("storage: {s3: {bukket: b}}\n", "bukket"),
            ("backup: {gcs: {bucket: b}}\n", "gcs"),
            ("tessera: {colour: red}\n", "colour"),
            ("redis: {adress: 'x:1'}\n", "adress"),
        ] {
            let e = ConfigFile::parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let e = ConfigFile::parse("storage: {gcp: {bucket: b}}\n")
            .unwrap()
            .storage_defaults()
            .unwrap_err()
            .to_string();
        assert!(e.contains("storage.gcp"), "{e}");
    }
}
