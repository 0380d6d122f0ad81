//! Gateway configuration (see `config.default.toml`).

use std::net::SocketAddr;
use std::time::Duration;

use nexus_platform::config::{AdminConfig, ShutdownConfig, TelemetryConfig, humantime_secs};
use serde::{Deserialize, Serialize};

pub const DEFAULTS: &str = include_str!("../config.default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GatewayConfig {
    pub http: HttpConfig,
    pub admin: AdminConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
    pub rate_limit: RateLimitConfig,
    pub services: ServicesConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    pub body_limit: usize,
    #[serde(with = "humantime_secs")]
    pub request_timeout: Duration,
    pub cors_origins: Vec<String>,
    pub trust_forwarded_for: bool,
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
        for origin in &self.http.cors_origins {
            if origin != "*" && origin.parse::<http::HeaderValue>().is_err() {
                return Err(format!("http.cors_origins: {origin:?} is not a valid origin"));
            }
        }
        Ok(())
    }
}
