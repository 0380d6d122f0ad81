//! What a valid email, password, name, avatar URL or time zone is.

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
}
