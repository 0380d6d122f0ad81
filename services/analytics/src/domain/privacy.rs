//! How personal data is removed before anything is stored: salted hashes of emails and phones,
//! truncated IPs, scrubbed free text and URLs.

use std::net::IpAddr;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::event::ValidEvent;

/// The per-workspace secret mixed into every hash of personal data, so a hash cannot be matched
/// against a list of known addresses without it, nor across workspaces.
#[derive(Clone)]
pub struct Salt(pub [u8; 32]);

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt([redacted])")
    }
}

impl Salt {
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// `sha256(salt || normalized)` in hex.
    pub fn hash(&self, normalized: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.0);
        h.update(normalized.as_bytes());
        hex::encode(h.finalize())
    }

    pub fn hash_email(&self, email: &str) -> String {
        self.hash(&email.trim().to_lowercase())
    }

    pub fn hash_phone(&self, phone: &str) -> String {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        self.hash(&digits)
    }
}

/// IPv4 keeps its /24, IPv6 its /48: enough for coarse location, not enough to name a household.
pub fn truncate_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return truncate_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0])
        }
    }
}

/// Whether `s` is an email address (the whole string).
pub fn looks_like_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    if local.is_empty() || local.len() > 64 || domain.len() > 253 || s.chars().any(char::is_whitespace) {
        return false;
    }
    let Some((_, tld)) = domain.rsplit_once('.') else { return false };
    tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && domain.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'))
        && !local.contains('@')
}

/// Whether `s` is a phone number (the whole string): an international `+` number, or a
/// formatted national one with at least 9 digits. Bare digit runs (order ids) and dates are not.
pub fn looks_like_phone(s: &str) -> bool {
    let s = s.trim();
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c)) {
        return false;
    }
    let digits = s.chars().filter(char::is_ascii_digit).count();
    if let Some(rest) = s.strip_prefix('+') {
        return (7..=15).contains(&digits) && rest.starts_with(|c: char| c.is_ascii_digit() || c == '(' || c == ' ');
    }
    let formatted = s.contains(['(', ' ']) || s.matches('-').count() >= 2;
    formatted && (9..=15).contains(&digits) && !s.contains('+')
}

fn key_kind(key: &str) -> KeyKind {
    let k = key.to_ascii_lowercase();
    if k.contains("email") || k.contains("e_mail") {
        KeyKind::Email
    } else if k.contains("phone") || k.contains("mobile") || k.contains("msisdn") || k == "tel" {
        KeyKind::Phone
    } else if k == "ip" || k.ends_with("_ip") || k.starts_with("ip_") || k.ends_with("ip_address") {
        KeyKind::Ip
    } else {
        KeyKind::Other
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Email,
    Phone,
    Ip,
    Other,
}

/// Removes personal data from a JSON value in place: values under email/phone keys and values
/// that look like emails or phone numbers become salted hashes, IPs are truncated, and free text
/// has embedded addresses replaced.
pub fn scrub_json(value: &mut Value, salt: &Salt) {
    scrub_value(value, salt, KeyKind::Other);
}

fn scrub_value(value: &mut Value, salt: &Salt, kind: KeyKind) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                scrub_value(v, salt, key_kind(k));
            }
        }
        Value::Array(items) => {
            for v in items {
                scrub_value(v, salt, kind);
            }
        }
        Value::String(s) => {
            *s = match kind {
                KeyKind::Email if !s.is_empty() => salt.hash_email(s),
                KeyKind::Phone if !s.is_empty() => salt.hash_phone(s),
                KeyKind::Ip => match s.trim().parse::<IpAddr>() {
                    Ok(ip) => truncate_ip(ip).to_string(),
                    Err(_) => scrub_text_changed(s, salt).unwrap_or_else(|| std::mem::take(s)),
                },
                _ => scrub_text_changed(s, salt).unwrap_or_else(|| std::mem::take(s)),
            };
        }
        Value::Number(n) if kind == KeyKind::Phone => {
            *value = Value::String(salt.hash_phone(&n.to_string()));
        }
        _ => {}
    }
}

/// Scrubs one free-text string: a whole-string email, phone or IP, then addresses, `+` phone
/// numbers and IPs embedded in it.
pub fn scrub_text(s: &str, salt: &Salt) -> String {
    scrub_text_changed(s, salt).unwrap_or_else(|| s.to_owned())
}

/// [`scrub_text`], or None when the text has nothing to scrub (it is kept as it is, uncopied).
fn scrub_text_changed(s: &str, salt: &Salt) -> Option<String> {
    if looks_like_email(s) {
        return Some(salt.hash_email(s));
    }
    if looks_like_phone(s) {
        return Some(salt.hash_phone(s));
    }
    if let Ok(ip) = s.trim().parse::<IpAddr>() {
        return Some(truncate_ip(ip).to_string());
    }
    // Each pass only where it could change something (most URLs and text need neither): an
    // email token needs an '@', an IPv4 token a digit next to a dot, a phone run a '+'.
    let tokens = s.contains('@') || digit_by_dot(s);
    let phones = s.contains('+');
    match (tokens, phones) {
        (false, false) => None,
        (true, false) => Some(replace_tokens(s, salt)),
        (false, true) => Some(replace_plus_phones(s, salt)),
        (true, true) => Some(replace_plus_phones(&replace_tokens(s, salt), salt)),
    }
}

fn digit_by_dot(s: &str) -> bool {
    s.as_bytes().windows(2).any(|w| (w[0] == b'.' && w[1].is_ascii_digit()) || (w[1] == b'.' && w[0].is_ascii_digit()))
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || "/?&=#,;:<>()[]{}\"'|\\".contains(c)
}

/// Replaces email- and IP-shaped tokens (runs between separators).
fn replace_tokens(s: &str, salt: &Salt) -> String {
    let mut out = String::with_capacity(s.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if looks_like_email(token) {
            out.push_str(&salt.hash_email(token));
        } else if let Ok(ip) = token.parse::<std::net::Ipv4Addr>() {
            out.push_str(&truncate_ip(IpAddr::V4(ip)).to_string());
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in s.chars() {
        // ':' separates IPv6 groups too; IPv6 in free text is caught only as a whole string.
        if is_separator(c) {
            flush(&mut token, &mut out);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// Replaces `+<digits with spaces, dashes, dots or parentheses>` runs of 7 to 15 digits.
fn replace_plus_phones(s: &str, salt: &Salt) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i] == '+'
            && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit() || *c == '(')
            && (i == 0 || !chars[i - 1].is_alphanumeric());
        if starts {
            let mut j = i + 1;
            let mut digits = 0;
            let mut last_digit = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || " -().".contains(chars[j])) && digits < 15 {
                if chars[j].is_ascii_digit() {
                    digits += 1;
                    last_digit = j;
                }
                j += 1;
            }
            let at_boundary = chars.get(last_digit + 1).is_none_or(|c| !c.is_ascii_digit());
            if digits >= 7 && at_boundary {
                let number: String = chars[i..=last_digit].iter().collect();
                out.push_str(&salt.hash_phone(&number));
                i = last_digit + 1;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Scrubs a URL: no user info, sensitive query values hashed (also when percent-encoded), then
/// the text rules over the whole.
pub fn scrub_url(raw: &str, salt: &Salt) -> String {
    let Ok(mut url) = url::Url::parse(raw) else { return scrub_text(raw, salt) };
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = match key_kind(&k) {
                    KeyKind::Email if !v.is_empty() => salt.hash_email(&v),
                    KeyKind::Phone if !v.is_empty() => salt.hash_phone(&v),
                    KeyKind::Ip => {
                        v.parse::<IpAddr>().map_or_else(|_| scrub_text(&v, salt), |ip| truncate_ip(ip).to_string())
                    }
                    _ => scrub_text(&v, salt),
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let url = String::from(url);
    scrub_text_changed(&url, salt).unwrap_or(url)
}

/// An identity (user or anonymous id) that is itself an email or phone number is hashed.
pub fn scrub_identity(id: &str, salt: &Salt) -> String {
    if looks_like_email(id) {
        salt.hash_email(id)
    } else if looks_like_phone(id) {
        salt.hash_phone(id)
    } else {
        id.to_owned()
    }
}

/// A valid event made safe to store.
pub fn scrub_event(mut e: ValidEvent, salt: &Salt) -> ValidEvent {
    let mut props = Value::Object(std::mem::take(&mut e.properties));
    scrub_json(&mut props, salt);
    if let Value::Object(m) = props {
        e.properties = m;
    }
    e.anonymous_id = e.anonymous_id.map(|v| scrub_identity(&v, salt));
    e.user_id = e.user_id.map(|v| scrub_identity(&v, salt));
    e.page_url = e.page_url.map(|u| scrub_url(&u, salt));
    e.referrer = e.referrer.map(|u| scrub_url(&u, salt));
    for v in [&mut e.utm.source, &mut e.utm.medium, &mut e.utm.campaign, &mut e.utm.term, &mut e.utm.content]
        .into_iter()
        .flatten()
    {
        if let Some(scrubbed) = scrub_text_changed(v, salt) {
            *v = scrubbed;
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_truncated() {
        assert_eq!(truncate_ip("203.0.113.77".parse().unwrap()).to_string(), "203.0.113.0");
        assert_eq!(truncate_ip("2001:db8:abcd:12::1".parse().unwrap()).to_string(), "2001:db8:abcd::");
        assert_eq!(truncate_ip("::ffff:198.51.100.9".parse().unwrap()).to_string(), "198.51.100.0");
    }

    #[test]
    fn emails_and_phones_are_recognised_but_not_dates_or_ids() {
        for yes in ["ana@example.com", " Ana.Silva+x@Mail.Example.co "] {
            assert!(looks_like_email(yes), "{yes}");
        }
        for no in ["ana@", "@x.com", "ana at example.com", "a@b", "a@b.c1"] {
            assert!(!looks_like_email(no), "{no}");
        }
        for yes in ["+55 11 91234-5678", "+15551234567", "(555) 123-4567", "555-123-4567 "] {
            assert!(looks_like_phone(yes), "{yes}");
        }
        for no in ["2026-03-01", "123456789012", "12:30", "+1", "1.5"] {
            assert!(!looks_like_phone(no), "{no}");
        }
    }

    #[test]
    fn scrubbing_leaves_no_raw_personal_data() {
        let salt = Salt([7; 32]);
        let mut v = serde_json::json!({
            "email": "Ana@Example.com",
            "contact": {"phone": 5511912345678u64, "note": "call +55 11 91234-5678 or mail ana@example.com"},
            "ip": "203.0.113.77",
            "list": ["bob@example.org", "plain"],
            "plan": "pro",
            "when": "2026-03-01"
        });
        scrub_json(&mut v, &salt);
        let text = v.to_string();
        for raw in
            ["ana@example.com", "Ana@Example.com", "91234-5678", "5511912345678", "203.0.113.77", "bob@example.org"]
        {
            assert!(!text.contains(raw), "{raw} in {text}");
        }
        assert_eq!(v["email"], salt.hash_email("ana@example.com"));
        assert_eq!(v["contact"]["phone"], salt.hash_phone("+55 (11) 91234-5678"));
        assert_eq!(v["ip"], "203.0.113.0");
        assert_eq!(v["plan"], "pro");
        assert_eq!(v["when"], "2026-03-01");
        // Another workspace's salt gives another hash.
        assert_ne!(Salt([8; 32]).hash_email("ana@example.com"), salt.hash_email("ana@example.com"));
    }

    #[test]
    fn urls_lose_user_info_and_sensitive_query_values() {
        let salt = Salt([1; 32]);
        let u = scrub_url(
            "https://user:pw@shop.example.com/u/ana@example.com?email=ana%40example.com&tel=%2B15551234567&q=shoes",
            &salt,
        );
        assert!(!u.contains("ana@example.com") && !u.contains("ana%40example.com") && !u.contains("pw@"), "{u}");
        assert!(!u.contains("5551234567"), "{u}");
        assert!(u.contains("q=shoes"), "{u}");
    }

    #[test]
    fn text_passes_skipped_only_where_they_could_change_nothing() {
        let salt = Salt([3; 32]);
        // Untouched: no '@', no digit next to a dot, no '+'.
        for same in ["https://shop.example.com/products/42", "v1.beta", "a:b", "price 10.", "shop.example.com"] {
            assert_eq!(scrub_text(same, &salt), same);
        }
        // Each pass still runs where it applies, alone or together.
        assert_eq!(scrub_text("from 198.51.100.23 today", &salt), "from 198.51.100.0 today");
        let phone = scrub_text("call +55 11 91234-5678 now", &salt);
        assert_eq!(phone, format!("call {} now", salt.hash_phone("+55 11 91234-5678")));
        let both = scrub_text("ana@example.com:+55 11 91234-5678", &salt);
        assert!(!both.contains("ana@example.com") && !both.contains("91234-5678"), "{both}");
        let url = scrub_url("https://shop.example.com/p/10.0.0.7?ref=x", &salt);
        assert!(url.contains("/p/10.0.0.0") && url.contains("ref=x"), "{url}");
    }
}
