//! Standard Webhooks (standardwebhooks.com), the signing scheme of Replicate's deliveries and of
//! the webhooks we send to workspaces' own systems: `webhook-id`, `webhook-timestamp` (Unix
//! seconds) and `webhook-signature` (space-separated `v1,<base64 HMAC-SHA256>` entries) over
//! `"{id}.{timestamp}.{body}"`, keyed by the bytes of a `whsec_<base64>` secret.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

/// A signing secret. Not shown by `Debug`.
#[derive(Clone)]
pub struct SigningSecret {
    key: Vec<u8>,
    /// The HMAC key schedule, computed once: a worker signs many messages with one secret.
    hmac: ring::hmac::Key,
}

impl PartialEq for SigningSecret {
    fn eq(&self, other: &Self) -> bool {
        self.key.ct_eq(&other.key).into()
    }
}

impl Eq for SigningSecret {}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(…)")
    }
}

impl SigningSecret {
    /// Key length of the secrets we create (the scheme asks for 24 to 64 bytes).
    pub const GENERATED_BYTES: usize = 32;

    /// A new random secret.
    pub fn generate() -> SigningSecret {
        use ring::rand::SecureRandom as _;
        let mut key = vec![0u8; Self::GENERATED_BYTES];
        // The system RNG failing leaves the process unable to do any cryptography at all.
        ring::rand::SystemRandom::new().fill(&mut key).expect("system random source");
        SigningSecret::from_key(key)
    }

    /// Reads `whsec_<base64>` (the prefix may be left out).
    pub fn parse(s: &str) -> Result<SigningSecret, WebhookError> {
        let s = s.trim();
        let key = STANDARD.decode(s.strip_prefix("whsec_").unwrap_or(s)).map_err(|_| WebhookError::InvalidSecret)?;
        if key.is_empty() || key.len() > 64 {
            return Err(WebhookError::InvalidSecret);
        }
        Ok(SigningSecret::from_key(key))
    }

    fn from_key(key: Vec<u8>) -> SigningSecret {
        let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
        SigningSecret { key, hmac }
    }

    /// The `whsec_<base64>` form, shown to the endpoint's owner once and stored sealed.
    pub fn expose(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.key))
    }

    /// `v1,<base64>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(signature(&self.hmac, id, &timestamp.to_string(), body).as_ref()))
    }
}

/// The `webhook-signature` value for a message: one entry per secret (during a rotation both
/// the new and the old secret sign, so a receiver holding either accepts it).
pub fn signature_header(secrets: &[&SigningSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| s.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Header lookup by lower-case name, for the header shapes webhooks arrive in (an `http`
/// header map, or the name → value map the gateway forwards).
pub trait WebhookHeaders {
    fn header(&self, name: &str) -> Option<&str>;
}

impl WebhookHeaders for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

impl WebhookHeaders for HashMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
            .or_else(|| self.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
            .map(String::as_str)
    }
}

impl WebhookHeaders for BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
            .or_else(|| self.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
            .map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed webhook: {0}")]
    Malformed(&'static str),
    /// The configured secret is not `whsec_<base64>` (our configuration, not the sender).
    #[error("the webhook secret is not a whsec_ base64 key")]
    InvalidSecret,
    #[error("no v1 signature matches")]
    NoMatchingSignature,
    #[error("webhook timestamp outside the tolerance")]
    Expired,
    #[error("webhook body is not what the sender promised: {0}")]
    InvalidPayload(String),
}

impl From<WebhookError> for nexus_kernel::Error {
    /// A delivery we cannot authenticate is unauthenticated; a bad secret is our configuration.
    fn from(e: WebhookError) -> Self {
        use nexus_kernel::{Error, ErrorKind};
        match e {
            WebhookError::InvalidSecret => Error::internal(e),
            WebhookError::InvalidPayload(_) => Error::new(ErrorKind::InvalidArgument, "request.invalid").with_source(e),
            _ => Error::new(ErrorKind::Unauthenticated, "auth.unauthenticated").with_source(e),
        }
    }
}

/// Verifies a delivery: the signed content is
/// `"{webhook-id}.{webhook-timestamp}.{body}"`, the key is the base64 after `whsec_` in `secret`,
/// the signature `base64(HMAC-SHA256(key, content))`. `webhook-signature` holds space-separated
/// `v1,<base64>` entries; the delivery is authentic if any `v1` entry matches (constant-time
/// comparison; other versions are ignored). Then `webhook-timestamp` must lie within `tolerance`
/// of `now` (Unix seconds) either way.
pub fn verify<H: WebhookHeaders + ?Sized>(
    secret: &str,
    headers: &H,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let id = headers.header("webhook-id").map(str::trim).filter(|s| !s.is_empty());
    let id = id.ok_or(WebhookError::MissingHeader("webhook-id"))?;
    let ts = headers.header("webhook-timestamp").map(str::trim).filter(|s| !s.is_empty());
    let ts = ts.ok_or(WebhookError::MissingHeader("webhook-timestamp"))?;
    let sigs = headers.header("webhook-signature").map(str::trim).filter(|s| !s.is_empty());
    let sigs = sigs.ok_or(WebhookError::MissingHeader("webhook-signature"))?;
    let timestamp: i64 = ts.parse().map_err(|_| WebhookError::Malformed("timestamp is not a number"))?;

    let key = SigningSecret::parse(secret)?;
    let expected = signature(&key.hmac, id, ts, body);

    let mut matched = subtle::Choice::from(0);
    let mut seen = 0;
    for entry in sigs.split_whitespace() {
        let Some((version, sig)) = entry.split_once(',') else { continue };
        if version != "v1" {
            continue;
        }
        seen += 1;
        if let Ok(sig) = STANDARD.decode(sig) {
            matched |= sig.as_slice().ct_eq(expected.as_ref());
        }
    }
    if seen == 0 {
        return Err(WebhookError::Malformed("no v1 signature"));
    }
    if !bool::from(matched) {
        tracing::info!(signatures = seen, "webhook signature rejected");
        return Err(WebhookError::NoMatchingSignature);
    }
    let tol = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if timestamp < now.saturating_sub(tol) || timestamp > now.saturating_add(tol) {
        tracing::info!(timestamp, now, "webhook timestamp outside tolerance");
        return Err(WebhookError::Expired);
    }
    Ok(())
}

fn signature(key: &ring::hmac::Key, id: &str, ts: &str, body: &[u8]) -> ring::hmac::Tag {
    let mut ctx = ring::hmac::Context::with_key(key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(ts.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    ctx.sign()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: &str, ts: i64, sig: &str) -> HashMap<String, String> {
        [("webhook-id", id.to_owned()), ("webhook-timestamp", ts.to_string()), ("webhook-signature", sig.to_owned())]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    #[test]
    fn generated_secrets_round_trip_and_stay_out_of_logs() {
        let s = SigningSecret::generate();
        let shown = s.expose();
        assert!(shown.starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(&shown).unwrap(), s);
        assert_ne!(SigningSecret::generate(), s);
        assert!(!format!("{s:?}").contains(&shown[6..]));
        assert_eq!(
            SigningSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 65]))),
            Err(WebhookError::InvalidSecret)
        );
    }

    #[test]
    fn during_a_rotation_either_secret_verifies() {
        let (old, new) = (SigningSecret::generate(), SigningSecret::generate());
        let body = br#"{"type":"contact.created"}"#;
        let header = signature_header(&[&new, &old], "msg_2", 1_800_000_000, body);
        assert_eq!(header.split(' ').count(), 2);
        let h = headers("msg_2", 1_800_000_000, &header);
        let tol = Duration::from_secs(300);
        assert_eq!(verify(&old.expose(), &h, body, 1_800_000_000, tol), Ok(()));
        assert_eq!(verify(&new.expose(), &h, body, 1_800_000_100, tol), Ok(()));
        let other = SigningSecret::generate();
        assert_eq!(verify(&other.expose(), &h, body, 1_800_000_000, tol), Err(WebhookError::NoMatchingSignature));
        assert_eq!(verify(&new.expose(), &h, b"{}", 1_800_000_000, tol), Err(WebhookError::NoMatchingSignature));
        assert_eq!(verify(&new.expose(), &h, body, 1_800_000_301, tol), Err(WebhookError::Expired));
    }
}
