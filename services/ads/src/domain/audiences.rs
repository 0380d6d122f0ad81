//! Custom audience members, normalized and SHA-256 hashed as Meta and TikTok require: never
//! sent in clear. Emails: trimmed and lower-cased. Phones: digits only with the country code,
//! no leading zeros or `+` (a number without a country code cannot be matched and is refused).

use nexus_kernel::Error;
use sha2::{Digest, Sha256};

/// The most members one audience upload takes.
pub const MAX_MEMBERS: usize = 100_000;

pub fn normalize_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    (!local.is_empty() && domain.contains('.') && !e.chars().any(char::is_whitespace)).then_some(e)
}

/// `+52 1 55 1234 5678` -> `5215512345678`; `0034 600 111 222` -> `34600111222`.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let t = raw.trim();
    // An international prefix is what tells us the country code is there.
    if !(t.starts_with('+') || t.starts_with("00")) {
        return None;
    }
    if t.chars().any(|c| !(c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))) {
        return None;
    }
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_start_matches('0').to_owned();
    (8..=15).contains(&digits.len()).then_some(digits)
}

pub fn sha256_hex(normalized: &str) -> String {
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

/// Hashes of the members, deduplicated; how many inputs were dropped as unusable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hashed {
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub dropped: usize,
}

pub fn hash_members(emails: &[String], phones: &[String]) -> Result<Hashed, Error> {
    if emails.len() + phones.len() > MAX_MEMBERS {
        return Err(Error::invalid("ads.audience_too_large")
            .with_param("max", MAX_MEMBERS.to_string())
            .with_violation("members", "too_many"));
    }
    let mut out = Hashed::default();
    for e in emails {
        match normalize_email(e) {
            Some(n) => out.emails.push(sha256_hex(&n)),
            None => out.dropped += 1,
        }
    }
    for p in phones {
        match normalize_phone(p) {
            Some(n) => out.phones.push(sha256_hex(&n)),
            None => out.dropped += 1,
        }
    }
    out.emails.sort();
    out.emails.dedup();
    out.phones.sort();
    out.phones.dedup();
    if out.emails.is_empty() && out.phones.is_empty() {
        return Err(Error::invalid("ads.audience_empty").with_violation("members", "empty"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_normalized_before_hashing() {
        assert_eq!(normalize_email("  Ana.Perez@Example.COM ").as_deref(), Some("ana.perez@example.com"));
        assert_eq!(normalize_email("not-an-email"), None);
        assert_eq!(normalize_phone("+52 1 55 1234 5678").as_deref(), Some("5215512345678"));
        assert_eq!(normalize_phone("0034 600-111-222").as_deref(), Some("34600111222"));
        // Without a country code the number cannot be matched.
        assert_eq!(normalize_phone("600 111 222"), None);
        // Independently computed (Python hashlib) SHA-256 of the normalized values.
        assert_eq!(
            sha256_hex("ana.perez@example.com"),
            "3c6c5c25f4b64020ae299c05c0e540df807d9aed7457b04b118cc234a6a58c6a"
        );
        let h =
            hash_members(&["ANA.PEREZ@example.com".into(), "ana.perez@example.com".into(), "x".into()], &[]).unwrap();
        assert_eq!((h.emails.len(), h.dropped), (1, 1));
    }
}
