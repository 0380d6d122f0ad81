//! Bearer secrets and second factors: random tokens and their stored hashes, recovery codes,
//! TOTP (RFC 6238) and its QR code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nexus_kernel::Error;
use sha2::{Digest, Sha256};

/// 32 random bytes, base64url, with a readable prefix saying what the token is.
pub fn random_token(prefix: &str) -> String {
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(raw))
}

/// What we store for a bearer secret: its SHA-256 (the secret has 256 bits of entropy, so a slow
/// hash adds nothing).
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Ten single-use recovery codes like `k7dq-m2xz-4p`.
pub fn recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..10)
        .map(|_| {
            let mut raw = [0u8; 10];
            rand::fill(&mut raw);
            let chars: String = raw.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
            format!("{}-{}-{}", &chars[..4], &chars[4..8], &chars[8..])
        })
        .collect()
}

/// Hash of a recovery code, salted with the user id so equal codes of two users differ.
pub fn recovery_hash(user_id: uuid::Uuid, code: &str) -> Vec<u8> {
    let normalized: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
    let mut h = Sha256::new();
    h.update(user_id.as_bytes());
    h.update(normalized.as_bytes());
    h.finalize().to_vec()
}

/// TOTP per RFC 6238 (SHA-1, 6 digits, 30 s, one step of clock skew either way).
pub fn totp(secret_b32: &str, account: &str) -> Result<totp_rs::Totp, Error> {
    let secret = totp_rs::Secret::try_from_base32(secret_b32)
        .map_err(|_| Error::internal("stored TOTP secret is not base32"))?;
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some("NexusOne"))
        .build()
        .map_err(|e| Error::internal(format!("totp: {e:?}")))
}

pub fn new_totp_secret() -> String {
    totp_rs::Secret::generate().to_base32()
}

/// Accepts a code only for a step after the last one used (RFC 6238 §5.2: no replay).
pub fn check_totp(secret_b32: &str, account: &str, code: &str, now: u64, last_step: u64) -> Result<Option<u64>, Error> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let t = totp(secret_b32, account)?;
    Ok(t.check(&code, now).filter(|step| *step > last_step))
}

/// SVG of a QR code: a frontend can show it inline without another request.
pub fn qr_svg(text: &str) -> Result<String, Error> {
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium)
        .map_err(|e| Error::internal(format!("qr: {e:?}")))?;
    let border = 4;
    let size = qr.size() + border * 2;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_distinct_and_hash_per_user() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(codes.iter().collect::<std::collections::HashSet<_>>().len(), 10);
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        assert_ne!(recovery_hash(a, &codes[0]), recovery_hash(b, &codes[0]));
        assert_eq!(recovery_hash(a, &codes[0]), recovery_hash(a, &codes[0].to_uppercase().replace('-', " ")));
    }

    #[test]
    fn totp_refuses_replays_and_malformed_codes() {
        let secret = new_totp_secret();
        let t = totp(&secret, "a@b.co").unwrap();
        let now = 1_800_000_000;
        let code = t.generate(now).to_string();
        let step = check_totp(&secret, "a@b.co", &code, now, 0).unwrap().expect("valid");
        assert_eq!(check_totp(&secret, "a@b.co", &code, now, step).unwrap(), None, "replay refused");
        assert_eq!(check_totp(&secret, "a@b.co", "12345", now, 0).unwrap(), None);
        assert_eq!(check_totp(&secret, "a@b.co", "abcdef", now, 0).unwrap(), None);
        assert!(qr_svg(&t.to_url().unwrap()).unwrap().starts_with("<svg"));
    }
}
