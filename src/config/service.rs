//! The worker's settings: the configuration file read, empty keys filled from the
//! environment, and checked.

use std::time::Duration;

use super::{ConfigError, ConfigFile, CpuCost, Logging, RedisConfig, SessionLimits, TesseraKeys};
use crate::secret::Secret;
use crate::storage::StorageDefaults;

/// Whether `max_cpu_utilization` is one LiveKit's egress takes: in (0, 1].
fn utilization_in_range(u: f64) -> bool {
    u > 0.0 && u <= 1.0
}

/// The worker's settings, validated.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// API key (tokens for rooms; the standalone API's tokens are signed with it).
    pub api_key: String,
    /// API secret (never logged).
    pub api_secret: Secret,
    /// The LiveKit server's WebSocket URL.
    pub ws_url: String,
    /// Redis (absent: standalone mode).
    pub redis: Option<RedisConfig>,
    /// `/health` port (0: off).
    pub health_port: u16,
    /// `/metrics` port (0: off).
    pub prometheus_port: u16,
    /// psrpc topic of StartEgress (LiveKit's `cluster_id`).
    pub cluster_id: String,
    /// Logging.
    pub logging: Logging,
    /// Session limits.
    pub session_limits: SessionLimits,
    /// CPU costs.
    pub cpu_cost: CpuCost,
    /// How long IOInfo.CreateEgress may take.
    pub io_create_timeout: Duration,
    /// How long one IOInfo.UpdateEgress try may take.
    pub io_update_timeout: Duration,
    /// Storage defaults (`storage`, `backup`, `disallow_local_storage`).
    pub storage: StorageDefaults,
    /// tessera's own keys.
    pub tessera: TesseraKeys,
    /// What `tessera.lenient` changed in the file, for the log.
    pub adjustments: Vec<String>,
}

impl ServiceConfig {
    /// Parses the YAML text, then fills empty keys from the environment (`env`).
    pub fn parse(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServiceConfig, ConfigError> {
        ServiceConfig::from_file(ConfigFile::parse(text)?, env)
    }

    /// The settings of a parsed file, empty keys filled from the environment (`env`).
    pub fn from_file(
        f: ConfigFile,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServiceConfig, ConfigError> {
        let storage = f.storage_defaults()?;
        let or_env = |v: String, key: &str| {
            if v.is_empty() {
                env(key).unwrap_or_default()
            } else {
                v
            }
        };
        let c = ServiceConfig {
            api_key: or_env(f.api_key, "LIVEKIT_API_KEY"),
            api_secret: if f.api_secret.is_empty() {
                Secret::from(env("LIVEKIT_API_SECRET").unwrap_or_default())
            } else {
                f.api_secret
            },
            ws_url: or_env(f.ws_url, "LIVEKIT_WS_URL"),
            redis: f.redis.filter(RedisConfig::is_configured),
            health_port: f.health_port,
            prometheus_port: f.prometheus_port,
            cluster_id: f.cluster_id,
            logging: f.logging,
            session_limits: f.session_limits,
            cpu_cost: f.cpu_cost.unwrap_or_default(),
            io_create_timeout: f.io_create_timeout.map_or(Duration::from_secs(15), |d| d.0),
            io_update_timeout: f.io_update_timeout.map_or(Duration::from_secs(30), |d| d.0),
            storage,
            tessera: f.tessera,
            adjustments: Vec::new(),
        };
        let mut c = c;
        let u = c.cpu_cost.max_cpu_utilization;
        if c.tessera.lenient && !utilization_in_range(u) {
            // LiveKit's egress replaces a value outside (0, 1] with its default.
            let default = CpuCost::default().max_cpu_utilization;
            c.adjustments.push(format!(
                "cpu_cost.max_cpu_utilization: {u} is outside (0, 1]; using {default}, as LiveKit's egress does"
            ));
            c.cpu_cost.max_cpu_utilization = default;
        }
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: field.into(),
                reason: reason.into(),
            })
        };
        if self.api_key.is_empty() {
            return invalid("api_key", "is required (or LIVEKIT_API_KEY)");
        }
        if self.api_secret.is_empty() {
            return invalid("api_secret", "is required (or LIVEKIT_API_SECRET)");
        }
        if self.redis.is_none() && self.tessera.api_port == 0 {
            return invalid(
                "redis",
                "is required, unless tessera.api_port serves the standalone API",
            );
        }
        if self
            .tessera
            .cpu_cores
            .is_some_and(|c| !(c.is_finite() && c > 0.0))
        {
            return invalid("tessera.cpu_cores", "must be positive");
        }
        if !utilization_in_range(self.cpu_cost.max_cpu_utilization) {
            return invalid(
                "cpu_cost.max_cpu_utilization",
                "must be in (0, 1]: LiveKit's egress takes no more than 1 either (it silently uses 0.8 \
                 instead, as tessera does with tessera.lenient: true)",
            );
        }
        if let Some(r) = &self.redis
            && !r.sentinel_addresses.is_empty()
            && r.sentinel_master_name.is_empty()
        {
            return invalid(
                "redis.sentinel_master_name",
                "is required with sentinel_addresses",
            );
        }
        Ok(())
    }

    /// The shortest session limit among the outputs an egress has (LiveKit's rule).
    pub fn limit_for(
        &self,
        files: bool,
        streams: bool,
        segments: bool,
        images: bool,
    ) -> Option<Duration> {
        let l = &self.session_limits;
        [
            (files, l.file_output_max_duration),
            (streams, l.stream_output_max_duration),
            (segments, l.segment_output_max_duration),
            (images, l.image_output_max_duration),
        ]
        .into_iter()
        .filter_map(|(has, d)| if has { d.map(|d| d.0) } else { None })
        .filter(|d| !d.is_zero())
        .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compositor::BackendChoice;
    use crate::go_duration::parse_go_duration;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("5"), None);
        // Past Go's range: invalid, not a panic.
        assert_eq!(parse_go_duration("99999999999999999999h"), None);
        assert_eq!(parse_go_duration("2562048h"), None);
        assert!(parse_go_duration("2562047h").is_some());
        assert_eq!(parse_go_duration("5x"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn livekit_keys_and_env_are_read() {
        let text = "
api_key: key
ws_url: ws://127.0.0.1:7880
redis:
  address: 127.0.0.1:6379
  db: 2
health_port: 8080
session_limits:
  file_output_max_duration: 5s
  stream_output_max_duration: 2h
cpu_cost:
  room_composite_cpu_cost: 0.7
tessera:
  compositor: cpu
  drain_timeout: 30s
";
        let env = |k: &str| (k == "LIVEKIT_API_SECRET").then(|| "from-env".to_owned());
        let c = ServiceConfig::parse(text, env).unwrap();
        assert_eq!(c.api_key, "key");
        assert_eq!(c.api_secret.expose(), "from-env");
        assert_eq!(c.redis.as_ref().unwrap().db, 2);
        assert_eq!(c.health_port, 8080);
        assert_eq!(c.cpu_cost.room_composite_cpu_cost, 0.7);
        assert_eq!(c.cpu_cost.max_cpu_utilization, 0.8);
        assert_eq!(c.tessera.compositor, BackendChoice::Cpu);
        assert_eq!(c.tessera.drain_timeout.0, Duration::from_secs(30));
        assert_eq!(
            c.limit_for(true, true, false, false),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            c.limit_for(false, true, false, false),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(c.limit_for(false, false, true, true), None);
    }

    #[test]
    fn max_cpu_utilization_above_one_is_refused_unless_lenient() {
        let text = "api_key: k\napi_secret: s\nredis: {address: 'x:1'}\ncpu_cost: {max_cpu_utilization: 1.5}\n";
        let e = ServiceConfig::parse(text, |_| None).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("cpu_cost.max_cpu_utilization"), "{e}");
        assert!(e.contains("LiveKit"), "{e}");
        let lenient = format!("{text}tessera: {{lenient: true}}\n");
        let c = ServiceConfig::parse(&lenient, |_| None).unwrap();
        assert_eq!(c.cpu_cost.max_cpu_utilization, 0.8);
        assert_eq!(c.adjustments.len(), 1);
        assert!(c.adjustments[0].contains("1.5"), "{:?}", c.adjustments);
    }

    #[test]
    fn secrets_never_print() {
        let text = "api_key: k\napi_secret: the-api-secret\n\
                    redis: {address: 'x:1', password: the-redis-password, \
                    sentinel_password: the-sentinel-password}\n";
        let c = ServiceConfig::parse(text, |_| None).unwrap();
        let shown = format!("{c:?}");
        for secret in [
            "the-api-secret",
            "the-redis-password",
            "the-sentinel-password",
        ] {
            assert!(!shown.contains(secret), "{secret} printed: {shown}");
        }
        assert_eq!(c.redis.unwrap().password.expose(), "the-redis-password");
    }

    #[test]
    fn errors_name_the_key() {
        let e = ServiceConfig::parse("api_key: k\napi_secret: s\n", |_| None).unwrap_err();
        assert!(e.to_string().contains("redis"), "{e}");
        let e = ServiceConfig::parse(
            "api_key: k\napi_secret: s\nredis: {address: 'x:1'}\nsession_limits: {file_output_max_duration: soon}\n",
            |_| None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("soon"), "{e}");
        let e = ServiceConfig::parse(
            "api_key: k\napi_secret: s\ntessera: {api_port: 1, colour: red}\n",
            |_| None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
