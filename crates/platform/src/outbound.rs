//! The one HTTP client for URLs that a user or a provider chose (provider output downloads, OIDC
//! endpoints from a discovery document, avatars, customer webhooks).
//!
//! It refuses to reach anything inside our network: private (RFC 1918), shared (CGNAT
//! 100.64.0.0/10), unique-local (fc00::/7), loopback, link-local (169.254.0.0/16 with the cloud
//! metadata address, fe80::/10), unspecified, multicast, broadcast, documentation and other
//! reserved ranges, and IPv6 forms that embed such an IPv4 address (`::ffff:127.0.0.1`,
//! NAT64, 6to4). The check runs
//! - on the addresses a hostname resolves to (a DNS resolver that drops refused addresses, so
//!   `localhost` or a name pointing at 10.0.0.1 is refused and DNS cannot be used to sneak in),
//! - on IP literals in the URL (which never reach a resolver), and
//! - on every redirect (a custom policy with a bounded number of hops).
//!
//! Proxies from the environment are ignored (a proxy would resolve the name for us). Responses
//! are read as a stream up to a byte limit, and each fetch has a total time limit.
//!
//! `outbound.allow_private_cidrs` and `outbound.allow_hosts` lift the check for named networks
//! or hostnames: tests use them to reach their fakes on 127.0.0.1, an operator could use them for
//! a webhook receiver inside the cluster.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};

use nexus_kernel::{Error, ErrorKind};

/// `[outbound]` in every binary's config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct OutboundConfig {
    /// Hostnames (exact, case-insensitive) whose resolved addresses are not checked.
    #[serde(deserialize_with = "string_or_list")]
    pub allow_hosts: Vec<String>,
    /// Networks (`127.0.0.1/32`, `10.1.0.0/16`, `fd00::/8`) that may be reached although they
    /// are private, loopback or otherwise refused.
    #[serde(deserialize_with = "string_or_list")]
    pub allow_private_cidrs: Vec<String>,
    /// Total time of one fetch: connecting, redirects and reading the whole body.
    #[serde(with = "crate::config::humantime_secs")]
    pub timeout: Duration,
    #[serde(with = "crate::config::humantime_secs")]
    pub connect_timeout: Duration,
    /// Largest response body read, in bytes.
    pub max_response_bytes: u64,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            allow_private_cidrs: Vec::new(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_response_bytes: 10 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

/// A list given as TOML array or as one comma-separated string (`NEXUS_OUTBOUND__ALLOW_HOSTS=a,b`).
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        Raw::Many(v) => v.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
    })
}

/// Why a fetch did not happen or did not finish.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OutboundError {
    /// The destination is inside our network (or resolves only to such addresses).
    #[error("destination refused: {0}")]
    Blocked(String),
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("response larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// Connection refused or reset, TLS failure, a broken body: a fixed reason, nothing secret.
    #[error("fetch failed: {0}")]
    Transport(&'static str),
}

impl From<OutboundError> for Error {
    fn from(e: OutboundError) -> Self {
        let err = match &e {
            OutboundError::Blocked(_) | OutboundError::InvalidUrl(_) => {
                Error::new(ErrorKind::Unprocessable, "outbound.blocked")
            }
            OutboundError::TooLarge { limit } => {
                Error::new(ErrorKind::Unprocessable, "outbound.too_large").with_param("limit", limit.to_string())
            }
            OutboundError::Timeout(_) => Error::new(ErrorKind::DeadlineExceeded, "outbound.timeout"),
            OutboundError::TooManyRedirects(_) | OutboundError::Transport(_) => {
                Error::new(ErrorKind::Unavailable, "outbound.failed")
            }
        };
        err.with_source(e)
    }
}

/// An IP network, `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u128::from(u32::from(net)) << 96, u128::from(u32::from(ip)) << 96, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(u128::from(net), u128::from(ip), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(prefix.min(128)));
    a & mask == b & mask
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| format!("{s:?} is not an address or CIDR"))?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?}: bad prefix"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv6 address that carries an IPv4 one (mapped `::ffff:a.b.c.d`) becomes that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn v4_refused(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()            // 0.0.0.0
        || a == 0                  // "this network" 0/8
        || ip.is_private()         // 10/8, 172.16/12, 192.168/16
        || ip.is_loopback()        // 127/8
        || ip.is_link_local()      // 169.254/16, cloud metadata
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0)        // IETF protocol assignments 192.0.0/24
        || ip.is_documentation()   // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || (a == 198 && (b == 18 || b == 19))    // benchmarking 198.18/15
        || (a == 192 && b == 88 && c == 99)      // 6to4 relay anycast
        || ip.is_multicast()       // 224/4
        || a >= 240 // reserved 240/4 and broadcast 255.255.255.255
}

fn v6_refused(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    let bits = u128::from(ip);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_refused(v4);
    }
    // NAT64 64:ff9b::/96 carries an IPv4 address in its low 32 bits.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        return v4_refused(Ipv4Addr::from(bits as u32));
    }
    // 6to4 2002::/16 carries one in bits 16..48.
    if seg[0] == 0x2002 {
        return v4_refused(Ipv4Addr::from((bits >> 80) as u32));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || seg[0..6] == [0, 0, 0, 0, 0, 0]          // IPv4-compatible ::a.b.c.d (deprecated)
        || (seg[0] & 0xfe00) == 0xfc00               // unique local fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80               // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0               // site-local fec0::/10 (deprecated)
        || (seg[0] & 0xff00) == 0xff00               // multicast ff00::/8
        || (seg[0] == 0x2001 && seg[1] == 0x0db8)    // documentation 2001:db8::/32
        || (seg[0] == 0x3fff && seg[1] < 0x1000)     // documentation 3fff::/20
        || (seg[0] == 0x2001 && seg[1] < 0x0200)     // IETF protocol assignments 2001::/23 (Teredo, ORCHID)
        || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0]) // discard-only 100::/64
}

/// Whether `ip` lies in a range the client never reaches by default.
pub fn is_refused(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_refused(v4),
        IpAddr::V6(v6) => v6_refused(v6),
    }
}

/// The address check with the configured exceptions.
#[derive(Debug)]
struct Policy {
    allow_hosts: Vec<String>,
    allow_cidrs: Vec<Cidr>,
}

impl Policy {
    fn allows_ip(&self, ip: IpAddr) -> bool {
        !is_refused(ip) || self.allow_cidrs.iter().any(|c| c.contains(ip))
    }

    fn host_allowlisted(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.allow_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Scheme and IP-literal check of a URL (names are checked after resolution).
    fn check_url(&self, url: &url::Url) -> Result<(), OutboundError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::InvalidUrl(format!("scheme {:?} is not http or https", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::InvalidUrl("credentials in the URL".into()));
        }
        let ip = match url.host() {
            None => return Err(OutboundError::InvalidUrl("no host".into())),
            Some(url::Host::Domain(d)) => {
                // A bare number or other form some resolvers read as an address ("2130706433").
                match d.parse::<IpAddr>() {
                    Ok(ip) => ip,
                    Err(_) => return Ok(()),
                }
            }
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        };
        if self.allows_ip(ip) { Ok(()) } else { Err(OutboundError::Blocked(format!("{ip} is not a public address"))) }
    }
}

/// Resolves with the system resolver, then drops every refused address; a name left with none
/// fails with [`OutboundError::Blocked`].
struct FilteringResolver {
    policy: Arc<Policy>,
}

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowlisted = policy.host_allowlisted(&host);
            let addrs: Vec<SocketAddr> =
                resolved.iter().copied().filter(|a| allowlisted || policy.allows_ip(a.ip())).collect();
            if addrs.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(OutboundError::Blocked(format!("{host} resolves to no public address")));
                return Err(err);
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// A URL check as a plain function: `Err` carries the reason.
pub type UrlGuard = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Limits of one fetch; [`OutboundClient::limits`] gives the configured ones.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub timeout: Duration,
}

/// A finished fetch: status, headers and the whole (bounded) body.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

impl Fetched {
    /// The media type without parameters, lower-cased (`image/png`).
    pub fn content_type(&self) -> String {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }
}

/// The safe outbound client. Cheap to clone.
#[derive(Clone)]
pub struct OutboundClient {
    http: reqwest::Client,
    policy: Arc<Policy>,
    limits: Limits,
}

impl fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundClient").field("policy", &self.policy).field("limits", &self.limits).finish()
    }
}

/// Where a checked URL leads: see [`OutboundClient::check_destination`].
#[derive(Debug, Clone)]
pub struct Destination {
    pub url: url::Url,
    /// Reached only through the configured exceptions (an allowlisted host, or every address in
    /// an allowed network): a development or in-cluster target.
    pub allowlisted: bool,
}

impl OutboundClient {
    pub fn new(cfg: &OutboundConfig) -> Result<Self, crate::config::ConfigError> {
        Self::build(cfg, true)
    }

    /// A client that returns a redirect as the answer instead of following it (webhook
    /// deliveries: a 3xx is the receiver's answer, and its new location was never checked).
    pub fn without_redirects(cfg: &OutboundConfig) -> Result<Self, crate::config::ConfigError> {
        Self::build(cfg, false)
    }

    fn build(cfg: &OutboundConfig, follow_redirects: bool) -> Result<Self, crate::config::ConfigError> {
        crate::install_crypto_provider();
        let invalid = |key: &'static str, reason: String| crate::config::ConfigError::Invalid { key, reason };
        let allow_cidrs = cfg
            .allow_private_cidrs
            .iter()
            .map(|s| s.parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("outbound.allow_private_cidrs", e))?;
        if cfg.max_response_bytes == 0 {
            return Err(invalid("outbound.max_response_bytes", "must be > 0".into()));
        }
        if cfg.timeout.is_zero() {
            return Err(invalid("outbound.timeout", "must be > 0".into()));
        }
        let policy = Arc::new(Policy {
            allow_hosts: cfg.allow_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            allow_cidrs,
        });
        let redirect_policy = policy.clone();
        let max_redirects = cfg.max_redirects;
        let redirects = if follow_redirects {
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > max_redirects {
                    return attempt.error(OutboundError::TooManyRedirects(max_redirects));
                }
                match redirect_policy.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            })
        } else {
            reqwest::redirect::Policy::none()
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(FilteringResolver { policy: policy.clone() }))
            .redirect(redirects)
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            .user_agent(concat!("NexusOne/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid("outbound", format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, policy, limits: Limits { max_bytes: cfg.max_response_bytes, timeout: cfg.timeout } })
    }

    /// The underlying client, for provider clients that build their own requests (OIDC). Names
    /// are checked after resolution and every redirect is checked; IP literals in the first URL
    /// are not (no resolver sees them), so check those with [`OutboundClient::check_url`].
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Refuses a URL that is not http(s), carries credentials, or names a refused IP address.
    pub fn check_url(&self, raw: &str) -> Result<url::Url, OutboundError> {
        let url = url::Url::parse(raw).map_err(|e| OutboundError::InvalidUrl(e.to_string()))?;
        self.policy.check_url(&url)?;
        Ok(url)
    }

    /// [`OutboundClient::check_url`] and then the addresses the host resolves to, as a delivery
    /// would see them: for URLs stored now and fetched later (webhook endpoints), so a name that
    /// points at a refused address is refused when it is saved, not only when it is used. Every
    /// address must pass (a fetch might use any of them).
    pub async fn check_destination(&self, raw: &str) -> Result<Destination, OutboundError> {
        let url = self.check_url(raw)?;
        let port = url.port_or_known_default().unwrap_or(443);
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) => d.parse::<IpAddr>().ok(),
            None => None,
        };
        if let Some(ip) = ip {
            let allowlisted = is_refused(ip);
            return Ok(Destination { url, allowlisted });
        }
        let host = url.host_str().unwrap_or_default().trim_end_matches('.').to_owned();
        if self.policy.host_allowlisted(&host) {
            return Ok(Destination { url, allowlisted: true });
        }
        let resolved: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| OutboundError::Transport("name does not resolve"))?
            .map(|a| a.ip())
            .collect();
        if resolved.is_empty() {
            return Err(OutboundError::Transport("name does not resolve"));
        }
        if let Some(bad) = resolved.iter().find(|ip| !self.policy.allows_ip(**ip)) {
            return Err(OutboundError::Blocked(format!("{host} resolves to {bad}, not a public address")));
        }
        let allowlisted = resolved.iter().any(|ip| is_refused(*ip));
        Ok(Destination { url, allowlisted })
    }

    /// [`OutboundClient::check_url`] as a plain function, for provider clients that take a
    /// URL check (`nexus_providers::oidc::OidcClient::with_endpoint_guard`).
    pub fn url_guard(&self) -> UrlGuard {
        let policy = self.policy.clone();
        Arc::new(move |raw: &str| {
            let url = url::Url::parse(raw).map_err(|e| e.to_string())?;
            policy.check_url(&url).map_err(|e| e.to_string())
        })
    }

    /// GET `url` with the configured limits.
    pub async fn get(&self, url: &str) -> Result<Fetched, OutboundError> {
        self.get_with(url, self.limits).await
    }

    /// GET `url` with the given limits (a caller may only tighten what makes sense for it).
    pub async fn get_with(&self, url: &str, limits: Limits) -> Result<Fetched, OutboundError> {
        let url = self.check_url(url)?;
        self.execute(self.http.get(url), limits).await
    }

    /// Sends a request built on [`OutboundClient::http`] (a webhook POST), with the checks and
    /// limits of [`OutboundClient::get_with`].
    pub async fn send(&self, req: reqwest::RequestBuilder, limits: Limits) -> Result<Fetched, OutboundError> {
        let built = req.build().map_err(|e| OutboundError::InvalidUrl(e.to_string()))?;
        self.policy.check_url(built.url())?;
        self.execute_request(built, limits).await
    }

    /// GET `url` into the file at `path`, part by part (a large video is never held in memory),
    /// with the checks and limits of [`OutboundClient::get_with`]; the answer's status and the
    /// bytes written (none when the status is not a success).
    pub async fn download_to_file(
        &self,
        url: &str,
        limits: Limits,
        path: &std::path::Path,
    ) -> Result<(reqwest::StatusCode, u64), OutboundError> {
        use tokio::io::AsyncWriteExt as _;
        let url = self.check_url(url)?;
        let timed = |e: reqwest::Error| match classify(e) {
            OutboundError::Transport("timed out") => OutboundError::Timeout(limits.timeout),
            other => other,
        };
        let disk = |_: std::io::Error| OutboundError::Transport("local file");
        let work = async {
            let mut resp = self.http.get(url).timeout(limits.timeout).send().await.map_err(timed)?;
            let status = resp.status();
            if !status.is_success() {
                return Ok((status, 0));
            }
            if resp.content_length().is_some_and(|n| n > limits.max_bytes) {
                return Err(OutboundError::TooLarge { limit: limits.max_bytes });
            }
            let mut out = tokio::fs::File::create(path).await.map_err(disk)?;
            let mut written = 0u64;
            while let Some(chunk) = resp.chunk().await.map_err(timed)? {
                written += chunk.len() as u64;
                if written > limits.max_bytes {
                    return Err(OutboundError::TooLarge { limit: limits.max_bytes });
                }
                out.write_all(&chunk).await.map_err(disk)?;
            }
            out.flush().await.map_err(disk)?;
            Ok((status, written))
        };
        match tokio::time::timeout(limits.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(OutboundError::Timeout(limits.timeout)),
        }
    }

    async fn execute(&self, req: reqwest::RequestBuilder, limits: Limits) -> Result<Fetched, OutboundError> {
        let built = req.build().map_err(|e| OutboundError::InvalidUrl(e.to_string()))?;
        self.execute_request(built, limits).await
    }

    async fn execute_request(&self, mut req: reqwest::Request, limits: Limits) -> Result<Fetched, OutboundError> {
        *req.timeout_mut() = Some(limits.timeout);
        let timed = |e: reqwest::Error| match classify(e) {
            OutboundError::Transport("timed out") => OutboundError::Timeout(limits.timeout),
            other => other,
        };
        let work = async {
            let mut resp = self.http.execute(req).await.map_err(timed)?;
            if resp.content_length().is_some_and(|n| n > limits.max_bytes) {
                return Err(OutboundError::TooLarge { limit: limits.max_bytes });
            }
            let status = resp.status();
            let headers = std::mem::take(resp.headers_mut());
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(timed)? {
                if (body.len() + chunk.len()) as u64 > limits.max_bytes {
                    return Err(OutboundError::TooLarge { limit: limits.max_bytes });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Fetched { status, headers, body: body.into() })
        };
        match tokio::time::timeout(limits.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(OutboundError::Timeout(limits.timeout)),
        }
    }
}

/// Finds our own error in reqwest's cause chain (resolver, redirect policy), else a fixed reason.
pub fn classify(e: reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(ours) = s.downcast_ref::<OutboundError>() {
            return ours.clone();
        }
        source = s.source();
    }
    if e.is_timeout() {
        OutboundError::Transport("timed out")
    } else if e.is_connect() {
        OutboundError::Transport("connection failed")
    } else if e.is_redirect() {
        OutboundError::Transport("bad redirect")
    } else if e.is_body() || e.is_decode() {
        OutboundError::Transport("bad response body")
    } else {
        OutboundError::Transport("request failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refused_ranges() {
        for s in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.7",
            "198.18.0.1",
            "192.0.0.8",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
        ] {
            assert!(is_refused(ip(s)), "{s} should be refused");
        }
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(!is_refused(ip(s)), "{s} should be allowed");
        }
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c: Cidr = "127.0.0.1/32".parse().unwrap();
        assert!(c.contains(ip("127.0.0.1")));
        assert!(c.contains(ip("::ffff:127.0.0.1")));
        assert!(!c.contains(ip("127.0.0.2")));
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.200.1.1")) && !c.contains(ip("11.0.0.1")));
        let c: Cidr = "fd00::/8".parse().unwrap();
        assert!(c.contains(ip("fd12::1")) && !c.contains(ip("fe80::1")));
        let c: Cidr = "::1".parse().unwrap();
        assert!(c.contains(ip("::1")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense/8".parse::<Cidr>().is_err());
        let c: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(c.contains(ip("192.168.0.1")));
    }

    #[test]
    fn urls_checked_before_any_connection() {
        let client = OutboundClient::new(&OutboundConfig::default()).unwrap();
        for bad in [
            "http://127.0.0.1/x",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://0177.0.0.1/",
        ] {
            assert!(matches!(client.check_url(bad), Err(OutboundError::Blocked(_))), "{bad}");
        }
        for bad in ["ftp://example.com/", "file:///etc/passwd", "http://user:pw@example.com/", "not a url"] {
            assert!(matches!(client.check_url(bad), Err(OutboundError::InvalidUrl(_))), "{bad}");
        }
        client.check_url("https://example.com/image.png").unwrap();
        client.check_url("http://8.8.8.8/").unwrap();
    }

    #[tokio::test]
    async fn destinations_are_checked_after_resolution() {
        let strict = OutboundClient::new(&OutboundConfig::default()).unwrap();
        for bad in ["http://localhost:8080/hook", "http://127.0.0.1/", "https://10.0.0.1/"] {
            assert!(matches!(strict.check_destination(bad).await, Err(OutboundError::Blocked(_))), "{bad}");
        }
        let dest = strict.check_destination("https://8.8.8.8/hook").await.unwrap();
        assert!(!dest.allowlisted);
        let dev = OutboundClient::new(&OutboundConfig {
            allow_private_cidrs: vec!["127.0.0.0/8".into(), "::1/128".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(dev.check_destination("http://localhost:8080/hook").await.unwrap().allowlisted);
        assert!(dev.check_destination("http://127.0.0.1:9/").await.unwrap().allowlisted);
        assert!(matches!(dev.check_destination("http://10.0.0.1/").await, Err(OutboundError::Blocked(_))));
        let named =
            OutboundClient::new(&OutboundConfig { allow_hosts: vec!["localhost".into()], ..Default::default() })
                .unwrap();
        assert!(named.check_destination("http://LOCALHOST/x").await.unwrap().allowlisted);
    }

    #[test]
    fn config_lists_from_strings_and_errors_name_the_key() {
        let cfg: OutboundConfig = serde_json::from_value(serde_json::json!({
            "allow_hosts": "a.test, B.test",
            "allow_private_cidrs": ["127.0.0.1/32"],
        }))
        .unwrap();
        assert_eq!(cfg.allow_hosts, vec!["a.test", "B.test"]);
        assert_eq!(cfg.allow_private_cidrs, vec!["127.0.0.1/32"]);
        assert_eq!(cfg.max_redirects, 5);
        let bad = OutboundConfig { allow_private_cidrs: vec!["10.0.0.0/99".into()], ..Default::default() };
        let err = OutboundClient::new(&bad).unwrap_err();
        assert!(err.to_string().contains("outbound.allow_private_cidrs"), "{err}");
    }

    #[test]
    fn errors_map_to_kernel_codes() {
        let e: Error = OutboundError::Blocked("x".into()).into();
        assert_eq!(e.code(), "outbound.blocked");
        assert_eq!(e.kind(), ErrorKind::Unprocessable);
        let e: Error = OutboundError::TooLarge { limit: 5 }.into();
        assert_eq!((e.code(), e.param("limit")), ("outbound.too_large", Some("5")));
        let e: Error = OutboundError::Timeout(Duration::from_secs(1)).into();
        assert_eq!((e.code(), e.kind()), ("outbound.timeout", ErrorKind::DeadlineExceeded));
        let e: Error = OutboundError::Transport("connection failed").into();
        assert_eq!((e.code(), e.kind()), ("outbound.failed", ErrorKind::Unavailable));
    }
}
