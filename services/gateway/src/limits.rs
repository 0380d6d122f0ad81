//! Rate-limit budgets: GCRA (a steady rate with a burst of one minute's worth), kept in process by
//! default or in Redis when `rate_limit.redis_url` is set, so every gateway replica spends the same
//! budget. If Redis does not answer, a replica falls back to its own in-process budget for a few
//! seconds rather than refusing or waving everyone through.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::RateLimitConfig;

/// How long a replica uses its local budgets after Redis failed to answer.
const REDIS_BACKOFF: Duration = Duration::from_secs(5);
/// A limiter that waits long on Redis slows every request; past this the local budget decides.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// GCRA in one round trip. KEYS[1]: the budget's key. ARGV[1]: microseconds between requests at
/// the steady rate; ARGV[2]: the burst tolerance in microseconds. Returns 0 when the request may
/// pass (and records it), else the microseconds to wait. Redis's own clock is used so replicas
/// with skewed clocks agree.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - burst
if allow_at > now then return allow_at - now end
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return 0
";

/// The four budgets an edge request may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Authenticated requests, per user (every API key of a user shares it).
    User,
    /// Anonymous requests and failed credentials, per client address.
    Ip,
    /// `/v1/auth/*` (sign-up, login, reset), per client address.
    AuthIp,
    /// `/v1/track*`, per client address.
    TrackIp,
}

impl Budget {
    const fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Ip => "ip",
            Self::AuthIp => "auth_ip",
            Self::TrackIp => "track_ip",
        }
    }
}

struct Local {
    limiter: DefaultKeyedRateLimiter<String>,
    per_minute: u32,
}

impl Local {
    fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self { limiter: RateLimiter::keyed(Quota::per_minute(n)), per_minute: n.get() }
    }

    fn check(&self, key: &str) -> Result<(), Duration> {
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

struct Shared {
    conn: ConnectionManager,
    script: redis::Script,
    prefix: String,
    /// Set when Redis last failed: until then the local budgets decide.
    down_until: Mutex<Option<Instant>>,
}

struct Inner {
    user: Local,
    ip: Local,
    auth_ip: Local,
    track_ip: Local,
    shared: Option<Shared>,
}

/// The gateway's budgets; cheap to clone.
#[derive(Clone)]
pub struct RateLimits(Arc<Inner>);

impl RateLimits {
    /// Budgets from config. A Redis URL that does not parse was refused by config validation;
    /// should one get here anyway, the budgets stay in process and the error is logged.
    pub fn new(cfg: &RateLimitConfig) -> Self {
        let shared = if cfg.redis_url.is_empty() {
            None
        } else {
            match connect(cfg.redis_url.expose()) {
                Ok(conn) => Some(Shared {
                    conn,
                    script: redis::Script::new(GCRA),
                    prefix: cfg.redis_prefix.clone(),
                    down_until: Mutex::new(None),
                }),
                Err(e) => {
                    tracing::error!(error = %e, "rate_limit.redis_url unusable; budgets stay per replica");
                    None
                }
            }
        };
        Self(Arc::new(Inner {
            user: Local::new(cfg.per_user_per_minute),
            ip: Local::new(cfg.per_ip_per_minute),
            auth_ip: Local::new(cfg.auth_per_ip_per_minute),
            track_ip: Local::new(cfg.track_per_ip_per_minute),
            shared,
        }))
    }

    /// Whether the budgets are shared through Redis.
    pub fn is_shared(&self) -> bool {
        self.0.shared.is_some()
    }

    fn local(&self, budget: Budget) -> &Local {
        match budget {
            Budget::User => &self.0.user,
            Budget::Ip => &self.0.ip,
            Budget::AuthIp => &self.0.auth_ip,
            Budget::TrackIp => &self.0.track_ip,
        }
    }

    /// Spends one request of `key`'s `budget`: `Err(wait)` when it is spent.
    pub async fn check(&self, budget: Budget, key: &str) -> Result<(), Duration> {
        let local = self.local(budget);
        if let Some(shared) = &self.0.shared
            && shared.available()
        {
            match shared.check(budget, key, local.per_minute).await {
                Ok(verdict) => return verdict,
                Err(e) => {
                    tracing::warn!(error = %e, "shared rate limiter unreachable; using this replica's budgets");
                    metrics::counter!("nexus_rate_limit_redis_errors_total").increment(1);
                    shared.mark_down();
                }
            }
        }
        local.check(key)
    }

    pub async fn check_ip(&self, budget: Budget, ip: IpAddr) -> Result<(), Duration> {
        self.check(budget, &ip.to_string()).await
    }

    /// Forgets idle in-process keys so the maps stay bounded; run periodically.
    pub fn retain_recent(&self) {
        for local in [&self.0.user, &self.0.ip, &self.0.auth_ip, &self.0.track_ip] {
            local.limiter.retain_recent();
        }
    }
}

fn connect(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
        .set_number_of_retries(1);
    ConnectionManager::new_lazy_with_config(client, config)
}

impl Shared {
    fn available(&self) -> bool {
        let mut down = self.down_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match *down {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                *down = None;
                true
            }
            None => true,
        }
    }

    fn mark_down(&self) {
        *self.down_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Instant::now() + REDIS_BACKOFF);
    }

    async fn check(&self, budget: Budget, key: &str, per_minute: u32) -> redis::RedisResult<Result<(), Duration>> {
        let interval_us = 60_000_000 / u64::from(per_minute.max(1));
        let burst_us = interval_us * u64::from(per_minute.max(1));
        let mut conn = self.conn.clone();
        let wait_us: u64 = self
            .script
            .key(format!("{}{}:{key}", self.prefix, budget.name()))
            .arg(interval_us)
            .arg(burst_us)
            .invoke_async(&mut conn)
            .await?;
        Ok(if wait_us == 0 { Ok(()) } else { Err(Duration::from_micros(wait_us)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(per_minute: u32, redis_url: &str, prefix: &str) -> RateLimitConfig {
        RateLimitConfig {
            per_user_per_minute: per_minute,
            per_ip_per_minute: per_minute,
            auth_per_ip_per_minute: per_minute,
            track_per_ip_per_minute: per_minute,
            redis_url: nexus_platform::config::Secret::new(redis_url),
            redis_prefix: prefix.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_budget_allows_its_burst_then_says_how_long_to_wait() {
        let limits = RateLimits::new(&cfg(3, "", "t:"));
        for _ in 0..3 {
            limits.check(Budget::User, "u1").await.unwrap();
        }
        let wait = limits.check(Budget::User, "u1").await.unwrap_err();
        assert!(wait > Duration::from_secs(10) && wait <= Duration::from_secs(20), "{wait:?}");
        // Other keys and other budgets are untouched.
        limits.check(Budget::User, "u2").await.unwrap();
        limits.check(Budget::Ip, "u1").await.unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_redis_falls_back_to_the_local_budget() {
        // Nothing listens on port 1: every shared check fails, the local budget still limits.
        let limits = RateLimits::new(&cfg(2, "redis://127.0.0.1:1", "t:"));
        assert!(limits.is_shared());
        limits.check(Budget::User, "u").await.unwrap();
        limits.check(Budget::User, "u").await.unwrap();
        assert!(limits.check(Budget::User, "u").await.is_err());
    }
}
