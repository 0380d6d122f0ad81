//! Rules of identity with no I/O: what a valid email, password, name or token is, and the small
//! algorithms (TOTP, recovery codes, device names) the use cases apply.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nexus_kernel::Error;
use sha2::{Digest, Sha256};

pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 128;
pub const PASSWORD_MIN_DISTINCT: usize = 5;
pub const NAME_MAX: usize = 100;
pub const EMAIL_MAX: usize = 254;

/// An email address, trimmed and lower-cased, so one person has one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, Error> {
        let bad = || Error::invalid("auth.invalid_email").with_violation("email", "invalid");
        let s = raw.trim().to_lowercase();
        if s.len() > EMAIL_MAX || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let domain_ok = domain.len() >= 3
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && !local.starts_with('.')
            && !local.ends_with('.');
        if !(domain_ok && local_ok) {
            return Err(bad());
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For throttle keys and events: never the address itself.
    pub fn hash_hex(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

/// Passwords that pass every length and variety rule yet are guessed first.
const COMMON: &[&str] = &[
    "password123",
    "password1234",
    "qwertyuiop",
    "1234567890",
    "123456789012",
    "iloveyou123",
    "welcome123",
    "letmein1234",
    "administrator",
    "passw0rd123",
    "qwerty12345",
    "abc123456789",
    "1q2w3e4r5t",
    "zaq12wsxcde",
    "contraseña123",
    "senha123456",
    "sunshine123",
    "football123",
    "princess123",
    "monkey12345",
];

/// OWASP-style password rules: length rather than composition, no common or email-derived
/// passwords, some variety. Each failure names its rule so the message can explain it.
pub fn check_password(password: &str, email: &Email) -> Result<(), Error> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN {
        return Err(Error::invalid("auth.password_too_short")
            .with_param("min", PASSWORD_MIN.to_string())
            .with_violation("password", "too_short"));
    }
    if chars > PASSWORD_MAX {
        return Err(Error::invalid("auth.password_too_long")
            .with_param("max", PASSWORD_MAX.to_string())
            .with_violation("password", "too_long"));
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err(Error::invalid("auth.password_too_common").with_violation("password", "too_common"));
    }
    let local = email.as_str().split('@').next().unwrap_or("");
    if local.len() >= 4 && lower.contains(local) {
        return Err(Error::invalid("auth.password_contains_email").with_violation("password", "contains_email"));
    }
    let distinct: std::collections::HashSet<char> = password.chars().collect();
    if distinct.len() < PASSWORD_MIN_DISTINCT {
        return Err(Error::invalid("auth.password_too_simple")
            .with_param("distinct", PASSWORD_MIN_DISTINCT.to_string())
            .with_violation("password", "too_simple"));
    }
    Ok(())
}

/// A display name: trimmed, non-empty, bounded.
pub fn check_name(raw: &str) -> Result<String, Error> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Error::invalid("auth.name_required").with_violation("name", "required"));
    }
    if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(Error::invalid("auth.field_too_long")
            .with_param("field", "name")
            .with_param("max", NAME_MAX.to_string())
            .with_violation("name", "too_long"));
    }
    Ok(name.to_owned())
}

/// Avatar URLs must be https (they are shown to other members).
pub fn check_avatar_url(raw: &str) -> Result<Option<String>, Error> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match url::Url::parse(raw) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() && raw.len() <= 2048 => Ok(Some(raw.to_owned())),
        _ => Err(Error::invalid("auth.invalid_url").with_violation("avatar_url", "invalid")),
    }
}

pub fn check_timezone(raw: &str) -> Result<String, Error> {
    raw.parse::<chrono_tz::Tz>().map(|tz| tz.name().to_owned()).map_err(|_| {
        Error::invalid("auth.invalid_timezone").with_param("timezone", raw.chars().take(64).collect::<String>())
    })
}

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

/// A short device description from a User-Agent, for the session list.
pub fn device_name(user_agent: &str) -> String {
    let ua = user_agent.to_lowercase();
    let browser = if ua.contains("edg/") {
        "Edge"
    } else if ua.contains("chrome/") && !ua.contains("chromium") {
        "Chrome"
    } else if ua.contains("firefox/") {
        "Firefox"
    } else if ua.contains("safari/") {
        "Safari"
    } else if ua.contains("curl/") {
        "curl"
    } else {
        "Unknown browser"
    };
    let os = if ua.contains("iphone") || ua.contains("ipad") {
        "iOS"
    } else if ua.contains("android") {
        "Android"
    } else if ua.contains("windows") {
        "Windows"
    } else if ua.contains("mac os") {
        "macOS"
    } else if ua.contains("linux") {
        "Linux"
    } else {
        "unknown OS"
    };
    format!("{browser} on {os}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("Ana.Silva@Example.com").unwrap()
    }

    #[test]
    fn emails_are_normalized_and_validated() {
        assert_eq!(email().as_str(), "ana.silva@example.com");
        for bad in [
            "",
            "no-at",
            "a@b",
            "a@.com",
            "a@b..com",
            "a b@c.com",
            "@x.com",
            "a@b.com.",
            &format!("{}@x.com", "a".repeat(65)),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse("josé@correo.es").is_ok());
    }

    #[test]
    fn password_rules_name_the_rule_that_failed() {
        let e = email();
        let code = |p: &str| check_password(p, &e).err().map(|e| e.code().to_owned());
        assert_eq!(code("short1!"), Some("auth.password_too_short".into()));
        assert_eq!(code(&"x1".repeat(70)), Some("auth.password_too_long".into()));
        assert_eq!(code("Password123"), Some("auth.password_too_common".into()));
        assert_eq!(code("ana.silva-2026!"), Some("auth.password_contains_email".into()));
        assert_eq!(code("aaaabbbbaaaabbbb"), Some("auth.password_too_simple".into()));
        assert_eq!(code("correct horse battery staple"), None);
        assert_eq!(code("ñandú-crece-rápido"), None);
    }

    #[test]
    fn names_urls_and_timezones() {
        assert_eq!(check_name("  Ana  ").unwrap(), "Ana");
        assert!(check_name("   ").is_err());
        assert!(check_name(&"n".repeat(101)).is_err());
        assert!(check_avatar_url("http://x.com/a.png").is_err());
        assert!(check_avatar_url("javascript:alert(1)").is_err());
        assert_eq!(
            check_avatar_url("https://cdn.example.com/a.png").unwrap().as_deref(),
            Some("https://cdn.example.com/a.png")
        );
        assert_eq!(check_timezone("America/Sao_Paulo").unwrap(), "America/Sao_Paulo");
        assert!(check_timezone("Mars/Olympus").is_err());
    }

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

    #[test]
    fn devices_are_named_from_user_agents() {
        assert_eq!(
            device_name(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
            ),
            "Chrome on Windows"
        );
        assert_eq!(device_name("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"), "Safari on iOS");
        assert_eq!(device_name(""), "Unknown browser on unknown OS");
    }
}
