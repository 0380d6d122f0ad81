//! Layered configuration: embedded defaults, then an optional TOML file, then `NEXUS_*`
//! environment variables (`NEXUS_DATABASE__URL` sets `database.url`). A variable ending in `_FILE`
//! names a file whose contents become the value (`NEXUS_DATABASE__URL_FILE=/run/secrets/db`), so
//! secrets never sit in the environment. A bad value stops start-up with the key named.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Defaults every binary shares; a service adds its own table on top.
const PLATFORM_DEFAULTS: &str = include_str!("../config.default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {key}: cannot read secret file {path}: {source}")]
    SecretFile { key: String, path: String, source: std::io::Error },
    #[error("configuration: {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("configuration: environment = production refuses development settings: {0}")]
    Production(String),
}

/// A value that must not appear in logs or debug output.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"[redacted]\"" })
    }
}

/// Connection strings carry passwords; this prints them without.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DatabaseConfig {
    /// Runtime connection, as the service's own login role (RLS applies to it).
    pub url: Secret,
    /// Used by `migrate` only: creates the database, schema and role, and owns the tables.
    pub admin_url: Secret,
    /// The service's schema; empty means the service name.
    #[serde(default)]
    pub schema: String,
    /// The service's login role; empty means `nexus_<service>`.
    #[serde(default)]
    pub role: String,
    /// Password given to the role by `migrate` (production); empty leaves it unchanged.
    #[serde(default)]
    pub role_password: Secret,
    pub max_connections: u32,
    pub min_connections: u32,
    #[serde(with = "humantime_secs")]
    pub acquire_timeout: Duration,
    #[serde(with = "humantime_secs")]
    pub statement_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NatsConfig {
    pub url: String,
    /// Prefix for every subject and stream, so tests (or tenants of a shared NATS) stay apart.
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub credentials: Secret,
    /// Deliveries of one message before it goes to the dead-letter subject.
    pub max_deliveries: u32,
    #[serde(with = "humantime_secs")]
    pub ack_wait: Duration,
    /// JetStream de-duplication window: a re-published outbox row inside it is dropped.
    #[serde(with = "humantime_secs")]
    pub duplicate_window: Duration,
    #[serde(with = "humantime_secs")]
    pub stream_max_age: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GrpcConfig {
    pub addr: SocketAddr,
    #[serde(with = "humantime_secs")]
    pub request_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AdminConfig {
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// `tracing` filter directives, e.g. `info,sqlx=warn`.
    pub log_level: String,
    /// OTLP/gRPC collector endpoint; empty disables export (trace ids still propagate).
    #[serde(default)]
    pub otlp_endpoint: String,
    /// Fraction of traces exported, 0.0..=1.0.
    pub sample_ratio: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ShutdownConfig {
    /// How long in-flight requests get after SIGTERM before the process stops anyway.
    #[serde(with = "humantime_secs")]
    pub grace: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct IdentityConfig {
    /// gRPC URL of the auth service, whose JWKS every service verifies tokens against.
    pub auth_url: String,
    /// How far back revocation events are replayed at start (at least the access-token TTL).
    #[serde(with = "humantime_secs")]
    pub revocation_window: Duration,
    /// This service's credential, exchanged at auth for service tokens (`ServiceTokens`). The
    /// default is a development credential (`nexus-dev-service-secret:<service>`); production
    /// sets `NEXUS_IDENTITY__SERVICE_SECRET_FILE`.
    #[serde(default)]
    pub service_secret: Secret,
}

/// Which rules a binary runs under. Development allows the conveniences that make `make run` work
/// with no secrets (built-in keys, local mail, local billing, local providers); production refuses
/// to start on any of them, naming the key. The built-in default is production, so a binary
/// started without saying otherwise fails closed; `make run`, `make test` and the dev overlay set
/// `NEXUS_ENVIRONMENT=development`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    #[default]
    Production,
}

impl Environment {
    pub const fn is_production(self) -> bool {
        matches!(self, Self::Production)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

/// A setting whose current value is a development convenience: the key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevelopmentOnly {
    pub key: String,
    pub reason: String,
}

impl DevelopmentOnly {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { key: key.into(), reason: reason.into() }
    }
}

/// A binary's configuration as start-up sees it: which of its values production must refuse.
pub trait DevelopmentDefaults {
    fn environment(&self) -> Environment;

    /// Every value that is only acceptable in development (empty when the config is production-fit).
    fn development_only(&self) -> Vec<DevelopmentOnly>;

    /// In production, an error naming every development-only value; in development, a warning each.
    fn check_environment(&self) -> Result<(), ConfigError> {
        let found = self.development_only();
        if !self.environment().is_production() {
            for d in &found {
                tracing::warn!(key = %d.key, "development setting: {}", d.reason);
            }
            return Ok(());
        }
        if found.is_empty() {
            return Ok(());
        }
        let list = found.iter().map(|d| format!("{}: {}", d.key, d.reason)).collect::<Vec<_>>().join("; ");
        Err(ConfigError::Production(list))
    }
}

impl IdentityConfig {
    /// The service credential, when it is the built-in development one.
    pub fn development_only(&self) -> Vec<DevelopmentOnly> {
        if crate::identity::is_dev_service_secret(self.service_secret.expose()) {
            vec![DevelopmentOnly::new(
                "identity.service_secret",
                "the built-in development credential is public; set NEXUS_IDENTITY__SERVICE_SECRET_FILE",
            )]
        } else {
            Vec::new()
        }
    }
}

/// The sections every binary has.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CommonConfig {
    /// `development` or `production` (`NEXUS_ENVIRONMENT`); see [`Environment`].
    #[serde(default)]
    pub environment: Environment,
    pub database: DatabaseConfig,
    pub nats: NatsConfig,
    pub grpc: GrpcConfig,
    pub admin: AdminConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
    pub identity: IdentityConfig,
    /// Fetches of URLs that users or providers chose (see [`crate::outbound`]).
    #[serde(default)]
    pub outbound: crate::outbound::OutboundConfig,
}

impl CommonConfig {
    /// Development-only values among the common sections.
    pub fn development_only(&self) -> Vec<DevelopmentOnly> {
        self.identity.development_only()
    }

    /// Checks what serde cannot; called by [`load`] so a bad value never reaches `serve`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| Err(ConfigError::Invalid { key, reason: reason.to_owned() });
        if !self.database.url.expose().starts_with("postgres") {
            return invalid("database.url", "must be a postgres:// URL");
        }
        if self.database.max_connections == 0 || self.database.min_connections > self.database.max_connections {
            return invalid("database.max_connections", "must be > 0 and >= database.min_connections");
        }
        if !self.nats.url.starts_with("nats://") && !self.nats.url.starts_with("tls://") {
            return invalid("nats.url", "must be a nats:// or tls:// URL");
        }
        if self.nats.max_deliveries == 0 {
            return invalid("nats.max_deliveries", "must be at least 1");
        }
        if !self.nats.prefix.is_empty() && !self.nats.prefix.ends_with('.') {
            return invalid("nats.prefix", "must end with '.'");
        }
        if !(0.0..=1.0).contains(&self.telemetry.sample_ratio) {
            return invalid("telemetry.sample_ratio", "must be between 0 and 1");
        }
        Ok(())
    }
}

/// Loads `T` for `service`: platform defaults, the service's own defaults (TOML with the
/// placeholder `{service}` replaced), an optional file, then the environment.
pub fn load<T: DeserializeOwned>(service: &str, service_defaults: &str, file: Option<&Path>) -> Result<T, ConfigError> {
    load_from_env(service, service_defaults, file, std::env::vars())
}

/// [`load`] with an explicit environment, for tests.
pub fn load_from_env<T: DeserializeOwned>(
    service: &str,
    service_defaults: &str,
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let defaults = PLATFORM_DEFAULTS.replace("{service}", service);
    let own = service_defaults.replace("{service}", service);
    let mut fig = Figment::from(Toml::string(&defaults)).merge(Toml::string(&own));
    if let Some(path) = file {
        fig = fig.merge(Toml::file_exact(path));
    }
    let env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with("NEXUS_")).collect();
    // Plain variables first, then `_FILE` ones, so a secret file wins over a stray plain value.
    // Values parse like figment's own Env provider ("9" is a number, "true" a bool).
    for (k, v) in env.iter().filter(|(k, _)| !k.ends_with("_FILE") && k != "NEXUS_CONFIG") {
        let key = env_key(k);
        let value: figment::value::Value = v.parse().unwrap_or_else(|_| v.as_str().into());
        fig = fig.merge(Serialized::global(&key, value));
    }
    for (k, path) in env.iter().filter(|(k, _)| k.ends_with("_FILE")) {
        let key = env_key(k.trim_end_matches("_FILE"));
        let value = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
            key: key.clone(),
            path: path.clone(),
            source,
        })?;
        fig = fig.merge(Serialized::global(&key, value.trim_end_matches(['\n', '\r']).to_owned()));
    }
    fig.extract().map_err(|e| ConfigError::Load(Box::new(e)))
}

/// `NEXUS_DATABASE__ADMIN_URL` -> `database.admin_url`.
fn env_key(var: &str) -> String {
    var.trim_start_matches("NEXUS_").to_lowercase().replace("__", ".")
}

/// Durations in config are whole seconds or strings like "500ms", "30s", "5m", "2h".
pub mod humantime_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if d.subsec_millis() != 0 {
            s.serialize_str(&format!("{}ms", d.as_millis()))
        } else {
            s.serialize_str(&format!("{}s", d.as_secs()))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(Duration::from_secs(n)),
            Raw::Text(t) => {
                parse(&t).ok_or_else(|| D::Error::custom(format!("invalid duration {t:?}; use e.g. 500ms, 30s, 5m")))
            }
        }
    }

    pub fn parse(t: &str) -> Option<Duration> {
        let t = t.trim();
        let split = t.find(|c: char| !c.is_ascii_digit())?;
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().ok()?;
        match unit {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
            "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
            "d" => Some(Duration::from_secs(n.checked_mul(86_400)?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Cfg {
        #[serde(flatten)]
        common: CommonConfig,
        feature: Feature,
    }

    #[derive(Debug, Deserialize)]
    struct Feature {
        limit: u32,
    }

    const OWN: &str = "[feature]\nlimit = 3\n";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_then_env_override() {
        let cfg: Cfg = load_from_env(
            "auth",
            OWN,
            None,
            env(&[("NEXUS_GRPC__ADDR", "127.0.0.1:7000"), ("NEXUS_FEATURE__LIMIT", "9")]),
        )
        .unwrap();
        assert_eq!(cfg.common.grpc.addr.port(), 7000);
        assert_eq!(cfg.feature.limit, 9);
        assert!(cfg.common.database.url.expose().contains("nexus_auth"));
        cfg.common.validate().unwrap();
    }

    #[test]
    fn file_layer_sits_between_defaults_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[feature]\nlimit = 5\n[admin]\naddr = \"127.0.0.1:9999\"\n").unwrap();
        let cfg: Cfg = load_from_env("auth", OWN, Some(&path), env(&[("NEXUS_FEATURE__LIMIT", "6")])).unwrap();
        assert_eq!(cfg.feature.limit, 6);
        assert_eq!(cfg.common.admin.addr.port(), 9999);
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::write(&path, "postgres://svc:hunter2@db:5432/nexus\n").unwrap();
        let cfg: Cfg =
            load_from_env("auth", OWN, None, env(&[("NEXUS_DATABASE__URL_FILE", path.to_str().unwrap())])).unwrap();
        assert_eq!(cfg.common.database.url.expose(), "postgres://svc:hunter2@db:5432/nexus");
        assert!(!format!("{cfg:?}").contains("hunter2"));
        assert_eq!(redact_url(cfg.common.database.url.expose()), "postgres://svc:***@db:5432/nexus");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = load_from_env::<Cfg>("auth", OWN, None, env(&[("NEXUS_GRPC__ADDR", "not-an-address")])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("grpc.addr") || msg.contains("addr"), "{msg}");

        let err = load_from_env::<Cfg>("auth", OWN, None, env(&[("NEXUS_FEATURE__LIMIT", "lots")])).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");

        let missing = load_from_env::<Cfg>("auth", OWN, None, env(&[("NEXUS_DATABASE__URL_FILE", "/nonexistent/x")]))
            .unwrap_err();
        assert!(missing.to_string().contains("database.url"), "{missing}");

        let cfg: Cfg = load_from_env("auth", OWN, None, env(&[("NEXUS_NATS__PREFIX", "t1")])).unwrap();
        let err = cfg.common.validate().unwrap_err();
        assert!(err.to_string().contains("nats.prefix"), "{err}");
    }

    #[test]
    fn durations_parse_in_several_units() {
        assert_eq!(humantime_secs::parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(humantime_secs::parse("5m"), Some(Duration::from_secs(300)));
        assert_eq!(humantime_secs::parse("5 parsecs"), None);
        assert_eq!(humantime_secs::parse("s"), None);
    }
}
