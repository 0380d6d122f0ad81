//! Signed, expiring links to stored files (video's downloads, avatars and thumbnails; ads' post
//! media), and the byte ranges they are read in. A token reads `<id>.<expires>.<key id>.<mac>`:
//! the MAC is HMAC-SHA256 over `<id>.<expires>` under the key named by the key id, base64url.
//! The id is a typed id (`vid_…`, `pmed_…`), so one service's token never names another kind
//! of file. Keys rotate by adding one at the front of the configured list: new links are signed
//! with the first key, and every listed key still verifies (links signed with a removed key stop
//! working). Nothing in a link is trusted before its MAC checks out.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};

/// The keys, the first of which signs.
#[derive(Clone)]
pub struct LinkKeys {
    keys: Vec<(String, ring::hmac::Key)>,
}

impl std::fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkKeys").field("ids", &self.keys.iter().map(|k| &k.0).collect::<Vec<_>>()).finish()
    }
}

/// Why a token was refused (for logs; callers answer one error for all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    Malformed,
    UnknownKey,
    BadSignature,
    Expired,
}

impl LinkKeys {
    /// `kid:base64(≥ 32 bytes)` entries, comma-separated; key ids are letters, digits, `-`, `_`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kid, b64) = entry.split_once(':').ok_or_else(|| format!("{entry:?} is not kid:base64"))?;
            if kid.is_empty()
                || kid.len() > 32
                || !kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!("key id {kid:?}: 1-32 letters, digits, - or _"));
            }
            let bytes = STANDARD.decode(b64).map_err(|_| format!("key {kid}: not base64"))?;
            if bytes.len() < 32 {
                return Err(format!("key {kid}: at least 32 bytes"));
            }
            if keys.iter().any(|(k, _)| k == kid) {
                return Err(format!("key id {kid} listed twice"));
            }
            keys.push((kid.to_owned(), ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes)));
        }
        if keys.is_empty() {
            return Err("no key".into());
        }
        Ok(Self { keys })
    }

    /// A token for a typed id (`vid_…`, `avt_…`) valid until `expires`.
    pub fn sign_id(&self, id: &str, expires: DateTime<Utc>) -> String {
        let (kid, key) = &self.keys[0];
        let payload = format!("{id}.{}", expires.timestamp());
        let mac = URL_SAFE_NO_PAD.encode(ring::hmac::sign(key, payload.as_bytes()).as_ref());
        format!("{payload}.{kid}.{mac}")
    }

    /// The typed id a token is for, if it is ours, intact and not expired at `now`.
    pub fn verify_id(&self, token: &str, now: DateTime<Utc>) -> Result<String, LinkError> {
        if token.len() > 256 {
            return Err(LinkError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(id), Some(expires), Some(kid), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Malformed);
        };
        let key = self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key).ok_or(LinkError::UnknownKey)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| LinkError::Malformed)?;
        ring::hmac::verify(key, format!("{id}.{expires}").as_bytes(), &mac).map_err(|_| LinkError::BadSignature)?;
        let expires: i64 = expires.parse().map_err(|_| LinkError::Malformed)?;
        if expires <= now.timestamp() {
            return Err(LinkError::Expired);
        }
        Ok(id.to_owned())
    }
}

/// A byte range of a file, as HTTP `Range: bytes=…` asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `start-` or `start-end` (inclusive).
    From { start: u64, end: Option<u64> },
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The range a download request asks for: none, the last `suffix` bytes (when not 0), or
    /// `start`..=`end` (to the end of the file when `end` is absent).
    pub fn requested(has_range: bool, start: u64, end: Option<u64>, suffix: u64) -> Option<Self> {
        match (has_range, suffix) {
            (false, _) => None,
            (true, n) if n > 0 => Some(Self::Suffix(n)),
            (true, _) => Some(Self::From { start, end }),
        }
    }

    /// The inclusive range of a file of `size` bytes, `None` when it cannot be served (416).
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        if size == 0 {
            return None;
        }
        match self {
            Self::From { start, end } if start < size => {
                let end = end.unwrap_or(size - 1).min(size - 1);
                (end >= start).then_some((start, end))
            }
            Self::From { .. } => None,
            Self::Suffix(0) => None,
            Self::Suffix(n) => Some((size.saturating_sub(n), size - 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:bmV4dXMtZGV2ZWxvcG1lbnQtdmlkZW8tbGlua3MtMzI=";
    const K2: &str = "k2:c2Vjb25kLWtleS1mb3ItdmlkZW8tbGlua3MtMzItYnl0ZQ==";
    const ID: &str = "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d7";

    #[test]
    fn links_verify_until_they_expire() {
        let keys = LinkKeys::parse(K1).unwrap();
        let now = Utc::now();
        let token = keys.sign_id(ID, now + chrono::Duration::minutes(5));
        assert_eq!(keys.verify_id(&token, now), Ok(ID.to_owned()));
        assert_eq!(keys.verify_id(&token, now + chrono::Duration::minutes(6)), Err(LinkError::Expired));
    }

    #[test]
    fn tampered_links_are_refused() {
        let keys = LinkKeys::parse(K1).unwrap();
        let now = Utc::now();
        let token = keys.sign_id(ID, now + chrono::Duration::minutes(5));
        let parts: Vec<&str> = token.split('.').collect();
        let other = "vid_0192f0c5c2b87c31a1f1e4f2b1a0c9d8";
        let later = (now + chrono::Duration::days(9)).timestamp().to_string();
        for forged in [
            format!("{other}.{}.{}.{}", parts[1], parts[2], parts[3]),
            format!("{}.{later}.{}.{}", parts[0], parts[2], parts[3]),
            format!("{}.{}.k9.{}", parts[0], parts[1], parts[3]),
            format!("{}.{}.{}.AAAA", parts[0], parts[1], parts[2]),
            format!("{token}.x"),
            "junk".into(),
        ] {
            assert!(keys.verify_id(&forged, now).is_err(), "{forged}");
        }
    }

    #[test]
    fn rotation_keeps_old_links_until_their_key_is_removed() {
        let old = LinkKeys::parse(K1).unwrap();
        let rotated = LinkKeys::parse(&format!("{K2},{K1}")).unwrap();
        let now = Utc::now();
        let before = old.sign_id(ID, now + chrono::Duration::minutes(5));
        assert_eq!(rotated.verify_id(&before, now), Ok(ID.to_owned()));
        assert!(rotated.sign_id(ID, now + chrono::Duration::minutes(5)).contains(".k2."));
        assert_eq!(LinkKeys::parse(K2).unwrap().verify_id(&before, now), Err(LinkError::UnknownKey));
        assert!(LinkKeys::parse("k:c2hvcnQ=").is_err() && LinkKeys::parse("").is_err());
    }

    #[test]
    fn ranges_resolve_like_http() {
        assert_eq!(ByteRange::From { start: 0, end: Some(99) }.resolve(1000), Some((0, 99)));
        assert_eq!(ByteRange::From { start: 900, end: None }.resolve(1000), Some((900, 999)));
        assert_eq!(ByteRange::From { start: 900, end: Some(5000) }.resolve(1000), Some((900, 999)));
        assert_eq!(ByteRange::Suffix(10).resolve(1000), Some((990, 999)));
        assert_eq!(ByteRange::Suffix(5000).resolve(1000), Some((0, 999)));
        assert_eq!(ByteRange::From { start: 1000, end: None }.resolve(1000), None);
        assert_eq!(ByteRange::From { start: 5, end: Some(4) }.resolve(1000), None);
        assert_eq!(ByteRange::requested(false, 5, None, 9), None);
        assert_eq!(ByteRange::requested(true, 5, None, 9), Some(ByteRange::Suffix(9)));
        assert_eq!(ByteRange::requested(true, 5, Some(7), 0), Some(ByteRange::From { start: 5, end: Some(7) }));
    }
}
