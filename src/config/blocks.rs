//! The blocks of the configuration file: LiveKit egress's (`logging`, `session_limits`,
//! `cpu_cost`, `redis`) and tessera's own (`tessera:`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::compositor::BackendChoice;
use crate::go_duration::GoDuration;
use crate::secret::Secret;

/// LiveKit's `session_limits`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SessionLimits {
    /// Longest file output.
    pub file_output_max_duration: Option<GoDuration>,
    /// Longest stream output.
    pub stream_output_max_duration: Option<GoDuration>,
    /// Longest segment (HLS) output.
    pub segment_output_max_duration: Option<GoDuration>,
    /// Longest image output.
    pub image_output_max_duration: Option<GoDuration>,
}

/// LiveKit's `logging`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Logging {
    /// `debug`, `info`, `warn`, `error`.
    pub level: String,
    /// JSON lines instead of text.
    pub json: bool,
}

/// LiveKit's `cpu_cost`: what each kind of egress costs, in CPU cores, when no measured
/// cost profile covers it; and the share of the node's CPUs egresses may take.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct CpuCost {
    /// Share of the node's cores that may be committed (LiveKit: 0.8).
    pub max_cpu_utilization: f64,
    /// Room composite with video.
    pub room_composite_cpu_cost: f64,
    /// Audio-only room composite.
    pub audio_room_composite_cpu_cost: f64,
    /// Web egress with video.
    pub web_cpu_cost: f64,
    /// Audio-only web egress.
    pub audio_web_cpu_cost: f64,
    /// Participant egress.
    pub participant_cpu_cost: f64,
    /// Track composite.
    pub track_composite_cpu_cost: f64,
    /// Track egress (no transcoding).
    pub track_cpu_cost: f64,
}

impl Default for CpuCost {
    /// tessera's own defaults, from BENCHMARKS.md on a 2-core x86 node with the CPU
    /// compositor (rounded up: 720p30 room composite 0.27 cores, web egress 0.91): a
    /// measured cost profile (`tessera.cost_profile`) replaces them for composites.
    fn default() -> Self {
        CpuCost {
            max_cpu_utilization: 0.8,
            room_composite_cpu_cost: 0.5,
            audio_room_composite_cpu_cost: 0.1,
            web_cpu_cost: 1.0,
            audio_web_cpu_cost: 0.3,
            participant_cpu_cost: 0.3,
            track_composite_cpu_cost: 0.3,
            track_cpu_cost: 0.05,
        }
    }
}

/// tessera's own keys (`tessera:`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TesseraKeys {
    /// `auto`, `gpu` or `cpu`.
    pub compositor: BackendChoice,
    /// The GPU adapter to composite on (a substring of its name, as `TESSERA_GPU`).
    pub gpu: Option<String>,
    /// The capacity harness's `cost-profile.json` (admission by measured cost).
    pub cost_profile: Option<PathBuf>,
    /// How long a drain (SIGTERM) lets running egresses go on before stopping them.
    pub drain_timeout: GoDuration,
    /// Where local files are written.
    pub out_dir: PathBuf,
    /// Extra layout templates.
    pub layouts: Option<PathBuf>,
    /// Serve LiveKit's Egress API over Twirp on this port (standalone mode; 0: off).
    pub api_port: u16,
    /// How long a participant, track or start signal may take before ABORTED.
    pub await_timeout: GoDuration,
    /// Address the HTTP servers bind (default loopback).
    pub bind_address: String,
    /// Address the health port binds, if not `bind_address`.
    pub health_bind_address: Option<String>,
    /// Address the metrics port binds, if not `bind_address`.
    pub prometheus_bind_address: Option<String>,
    /// Address the standalone API port binds, if not `bind_address`.
    pub api_bind_address: Option<String>,
    /// Cores egresses may use (default: every core of the machine); for a worker that
    /// shares its node.
    pub cpu_cores: Option<f64>,
    /// How long after an egress's end its uploads may go on (read with the storage
    /// keys, `storage::StorageDefaults::upload_deadline`).
    pub upload_deadline: Option<GoDuration>,
    /// Web pages may not reach loopback or private addresses either (link-local and cloud
    /// metadata addresses are always refused: `request::page_policy`).
    pub refuse_private_pages: bool,
    /// Read requests (and `cpu_cost.max_cpu_utilization`) as leniently as LiveKit's egress
    /// does instead of refusing them (`service::lenient`); off by default.
    pub lenient: bool,
}

impl Default for TesseraKeys {
    fn default() -> Self {
        TesseraKeys {
            compositor: BackendChoice::Auto,
            gpu: None,
            cost_profile: None,
            drain_timeout: GoDuration(Duration::from_secs(3600)),
            out_dir: PathBuf::from("out"),
            layouts: None,
            api_port: 0,
            await_timeout: GoDuration(crate::source::livekit::AWAIT_TIMEOUT),
            bind_address: "127.0.0.1".into(),
            health_bind_address: None,
            prometheus_bind_address: None,
            api_bind_address: None,
            cpu_cores: None,
            upload_deadline: None,
            refuse_private_pages: false,
            lenient: false,
        }
    }
}

/// LiveKit's `redis` configuration block.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `host:port` of a single server.
    pub address: String,
    /// ACL user name.
    pub username: String,
    /// Password (never logged, not even by `Debug`).
    pub password: Secret,
    /// Database number.
    pub db: i64,
    /// TLS to the server.
    pub use_tls: bool,
    /// Sentinel: the master's name.
    pub sentinel_master_name: String,
    /// Sentinel: user name for the sentinels.
    pub sentinel_username: String,
    /// Sentinel: password for the sentinels (never logged, not even by `Debug`).
    pub sentinel_password: Secret,
    /// Sentinel: `host:port` of each sentinel.
    pub sentinel_addresses: Vec<String>,
    /// Cluster: `host:port` of the seed nodes.
    pub cluster_addresses: Vec<String>,
    /// Cluster: most redirects to follow (accepted, as LiveKit's key; redis-rs follows its own).
    pub max_redirects: Option<u32>,
}

impl RedisConfig {
    /// Whether any server is configured.
    pub fn is_configured(&self) -> bool {
        !self.address.is_empty()
            || !self.sentinel_addresses.is_empty()
            || !self.cluster_addresses.is_empty()
    }
}

impl std::fmt::Display for RedisConfig {
    /// Where, without secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.cluster_addresses.is_empty() {
            write!(f, "cluster {}", self.cluster_addresses.join(","))
        } else if !self.sentinel_addresses.is_empty() {
            write!(
                f,
                "sentinel {} ({})",
                self.sentinel_master_name,
                self.sentinel_addresses.join(",")
            )
        } else {
            write!(f, "{} db {}", self.address, self.db)
        }
    }
}
