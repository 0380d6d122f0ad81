//! Gateway configuration (see `config.default.toml`).

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use nexus_platform::config::{
    AdminConfig, DevelopmentDefaults, DevelopmentOnly, Environment, IdentityConfig, Secret, ShutdownConfig,
    TelemetryConfig, humantime_secs,
};
use serde::{Deserialize, Serialize};

pub const DEFAULTS: &str = include_str!("../config.default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GatewayConfig {
    /// `development` or `production` (`NEXUS_ENVIRONMENT`); see `nexus_platform::config::Environment`.
    #[serde(default)]
    pub environment: Environment,
    pub http: HttpConfig,
    pub admin: AdminConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
    pub rate_limit: RateLimitConfig,
    pub services: ServicesConfig,
    /// The gateway's own service credential (`identity.service_secret`), for the calls it makes
    /// as itself (the admin listener's local mailbox). Auth is reached at `services.auth`.
    pub identity: IdentityConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    pub body_limit: usize,
    #[serde(with = "humantime_secs")]
    pub request_timeout: Duration,
    pub cors_origins: Vec<String>,
    pub trust_forwarded_for: bool,
    /// Peers whose `X-Forwarded-For` is believed (CIDRs, e.g. the ingress's pod range). The client
    /// is the first hop, from the right, that is not one of them.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    #[serde(with = "humantime_secs")]
    pub upstream_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RateLimitConfig {
    pub per_user_per_minute: u32,
    pub per_ip_per_minute: u32,
    pub auth_per_ip_per_minute: u32,
    /// Tracking (`/v1/track*`) is anonymous and chatty: its own per-IP budget.
    pub track_per_ip_per_minute: u32,
    /// `redis://host:6379`: budgets shared by every gateway replica. Empty: in-process limits,
    /// which only hold for a single replica.
    #[serde(default)]
    pub redis_url: Secret,
    /// Prefix of the Redis keys (replicas of one deployment share it).
    #[serde(default = "default_redis_prefix")]
    pub redis_prefix: String,
}

fn default_redis_prefix() -> String {
    "nexus:rl:".to_owned()
}

/// gRPC URLs of the services behind the gateway.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServicesConfig {
    pub auth: String,
    pub subscriptions: String,
    pub content: String,
    pub video: String,
    pub messaging: String,
    pub ads: String,
    pub commerce: String,
    pub analytics: String,
}

impl nexus_platform::app::HttpBinaryConfig for GatewayConfig {
    fn validate(&self) -> Result<(), String> {
        GatewayConfig::validate(self).map_err(|e| format!("configuration: {e}"))
    }

    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }

    fn admin_addr(&self) -> std::net::SocketAddr {
        self.admin.addr
    }
}

impl DevelopmentDefaults for GatewayConfig {
    fn environment(&self) -> Environment {
        self.environment
    }

    fn development_only(&self) -> Vec<DevelopmentOnly> {
        let mut found = self.identity.development_only();
        if self.http.trust_forwarded_for && self.http.trusted_proxies.is_empty() {
            found.push(DevelopmentOnly::new(
                "http.trust_forwarded_for",
                "set without http.trusted_proxies, so any client could choose its address",
            ));
        }
        found
    }
}

impl GatewayConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.http.body_limit < 1024 {
            return Err("http.body_limit: must be at least 1024 bytes".into());
        }
        for (key, v) in [
            ("rate_limit.per_user_per_minute", self.rate_limit.per_user_per_minute),
            ("rate_limit.per_ip_per_minute", self.rate_limit.per_ip_per_minute),
            ("rate_limit.auth_per_ip_per_minute", self.rate_limit.auth_per_ip_per_minute),
            ("rate_limit.track_per_ip_per_minute", self.rate_limit.track_per_ip_per_minute),
        ] {
            if v == 0 {
                return Err(format!("{key}: must be at least 1"));
            }
        }
        let redis = self.rate_limit.redis_url.expose();
        if !redis.is_empty() && redis::Client::open(redis).is_err() {
            return Err("rate_limit.redis_url: must be a redis:// or rediss:// URL".into());
        }
        for origin in &self.http.cors_origins {
            if origin != "*" && origin.parse::<http::HeaderValue>().is_err() {
                return Err(format!("http.cors_origins: {origin:?} is not a valid origin"));
            }
        }
        Ok(())
    }
}
