//! Rules of analytics that need no database or wire format: what a valid tracked event is, and
//! how personal data is removed before anything is stored.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use nexus_kernel::{Currency, Money};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// An event as received, before validation. Empty strings mean "not given".
#[derive(Debug, Clone, Default)]
pub struct RawEvent {
    pub name: String,
    pub client_event_id: String,
    pub timestamp: String,
    pub anonymous_id: String,
    pub user_id: String,
    pub properties_json: String,
    pub revenue: Option<(i64, String)>,
    pub utm: Utm,
    pub page_url: String,
    pub referrer: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Utm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
}

/// A valid event, not yet stripped of personal data.
#[derive(Debug, Clone)]
pub struct ValidEvent {
    pub client_event_id: String,
    pub name: String,
    pub occurred_at: DateTime<Utc>,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub properties: Map<String, Value>,
    pub revenue: Option<Money>,
    pub utm: Utm,
    pub page_url: Option<String>,
    pub referrer: Option<String>,
}

/// Why an event was refused: a dotted error code, the field, and the message's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub field: &'static str,
    pub params: Vec<(String, String)>,
}

impl Rejection {
    fn new(code: &'static str, field: &'static str) -> Self {
        Self { code, field, params: Vec::new() }
    }

    fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.params.push((key.to_owned(), value.into()));
        self
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_properties_bytes: usize,
    pub max_clock_skew: Duration,
    /// Events older than this would be purged at once: refused instead.
    pub retention_days: u32,
}

pub const MAX_NAME: usize = 200;
pub const MAX_ID: usize = 128;
pub const MAX_IDENTITY: usize = 200;
pub const MAX_UTM: usize = 200;
pub const MAX_URL: usize = 2048;

fn printable(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

fn optional(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Checks one event. `now` is the time of receipt (also the event's time when it has none).
pub fn validate(raw: &RawEvent, now: DateTime<Utc>, limits: &Limits) -> Result<ValidEvent, Rejection> {
    let name = raw.name.trim();
    if name.is_empty() {
        return Err(Rejection::new("analytics.event_name_required", "name"));
    }
    if name.chars().count() > MAX_NAME || !printable(name) {
        return Err(Rejection::new("analytics.invalid_event_name", "name").with("max", MAX_NAME.to_string()));
    }

    let client_event_id = if raw.client_event_id.is_empty() {
        uuid::Uuid::now_v7().to_string()
    } else {
        let id = raw.client_event_id.as_str();
        // Visible ASCII only: the id travels in a NATS header and in reports.
        if id.len() > MAX_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                Rejection::new("analytics.invalid_client_event_id", "client_event_id").with("max", MAX_ID.to_string())
            );
        }
        id.to_owned()
    };

    // Microseconds: what Postgres keeps, so a replay compares equal to the stored row.
    let occurred_at = if raw.timestamp.trim().is_empty() {
        now.trunc_subsecs(6)
    } else {
        let t = DateTime::parse_from_rfc3339(raw.timestamp.trim())
            .map_err(|_| Rejection::new("analytics.invalid_timestamp", "timestamp"))?
            .with_timezone(&Utc)
            .trunc_subsecs(6);
        let skew = chrono::Duration::from_std(limits.max_clock_skew).unwrap_or_default();
        let oldest = now - chrono::Duration::days(i64::from(limits.retention_days));
        if t > now + skew || t < oldest {
            return Err(Rejection::new("analytics.timestamp_out_of_range", "timestamp")
                .with("days", limits.retention_days.to_string()));
        }
        t
    };

    let anonymous_id = optional(&raw.anonymous_id);
    let user_id = optional(&raw.user_id);
    if anonymous_id.is_none() && user_id.is_none() {
        return Err(Rejection::new("analytics.identity_required", "anonymous_id"));
    }
    for (field, v) in [("anonymous_id", &anonymous_id), ("user_id", &user_id)] {
        if v.as_ref().is_some_and(|v| v.chars().count() > MAX_IDENTITY || !printable(v)) {
            let field = if field == "user_id" { "user_id" } else { "anonymous_id" };
            return Err(Rejection::new("analytics.invalid_identity", field).with("max", MAX_IDENTITY.to_string()));
        }
    }

    let properties = if raw.properties_json.trim().is_empty() {
        Map::new()
    } else {
        if raw.properties_json.len() > limits.max_properties_bytes {
            return Err(Rejection::new("analytics.properties_too_large", "properties")
                .with("max", limits.max_properties_bytes.to_string()));
        }
        match serde_json::from_str::<Value>(&raw.properties_json) {
            Ok(Value::Object(m)) => m,
            _ => return Err(Rejection::new("analytics.invalid_properties", "properties")),
        }
    };

    let revenue = match &raw.revenue {
        None => None,
        Some((amount, currency)) => {
            let c: Currency = currency.trim().parse().map_err(|_| {
                Rejection::new("money.unsupported_currency", "revenue.currency").with("currency", currency.clone())
            })?;
            Some(Money::new(*amount, c))
        }
    };

    let mut utm = Utm::default();
    for (field, src, dst) in [
        ("utm.source", &raw.utm.source, &mut utm.source),
        ("utm.medium", &raw.utm.medium, &mut utm.medium),
        ("utm.campaign", &raw.utm.campaign, &mut utm.campaign),
        ("utm.term", &raw.utm.term, &mut utm.term),
        ("utm.content", &raw.utm.content, &mut utm.content),
    ] {
        if let Some(v) = src.as_deref().and_then(optional) {
            if v.chars().count() > MAX_UTM || !printable(&v) {
                return Err(Rejection::new("analytics.invalid_utm", field).with("max", MAX_UTM.to_string()));
            }
            *dst = Some(v);
        }
    }

    let mut urls = [None, None];
    for (i, (field, v)) in [("page_url", &raw.page_url), ("referrer", &raw.referrer)].into_iter().enumerate() {
        if let Some(u) = optional(v) {
            if u.len() > MAX_URL || url::Url::parse(&u).is_err() {
                return Err(Rejection::new("analytics.invalid_url", field).with("max", MAX_URL.to_string()));
            }
            urls[i] = Some(u);
        }
    }
    let [page_url, referrer] = urls;

    Ok(ValidEvent {
        client_event_id,
        name: name.to_owned(),
        occurred_at,
        anonymous_id,
        user_id,
        properties,
        revenue,
        utm,
        page_url,
        referrer,
    })
}

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

/// Report time buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
    Week,
    Month,
}

impl Interval {
    pub fn parse(s: &str, allowed: &[Interval]) -> Option<Interval> {
        let i = match s {
            "hour" => Interval::Hour,
            "day" => Interval::Day,
            "week" => Interval::Week,
            "month" => Interval::Month,
            _ => return None,
        };
        allowed.contains(&i).then_some(i)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
    }

    /// Approximate length, for bounding how many buckets a range may have.
    pub fn approx(self) -> chrono::Duration {
        match self {
            Interval::Hour => chrono::Duration::hours(1),
            Interval::Day => chrono::Duration::days(1),
            Interval::Week => chrono::Duration::weeks(1),
            Interval::Month => chrono::Duration::days(28),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_properties_bytes: 1024, max_clock_skew: Duration::from_secs(3600), retention_days: 30 }
    }

    fn raw() -> RawEvent {
        RawEvent { name: "page.viewed".into(), anonymous_id: "anon-1".into(), ..Default::default() }
    }

    #[test]
    fn a_minimal_event_is_valid_and_gets_an_id_and_time() {
        let now = Utc::now();
        let e = validate(&raw(), now, &limits()).unwrap();
        assert!(!e.client_event_id.is_empty());
        assert_eq!(e.occurred_at, now.trunc_subsecs(6));
    }

    #[test]
    fn each_rule_names_its_field() {
        let now = Utc::now();
        let cases: Vec<(RawEvent, &str, &str)> = vec![
            (RawEvent { name: " ".into(), ..raw() }, "analytics.event_name_required", "name"),
            (RawEvent { name: "x".repeat(201), ..raw() }, "analytics.invalid_event_name", "name"),
            (RawEvent { anonymous_id: String::new(), ..raw() }, "analytics.identity_required", "anonymous_id"),
            (
                RawEvent { client_event_id: "a b".into(), ..raw() },
                "analytics.invalid_client_event_id",
                "client_event_id",
            ),
            (RawEvent { timestamp: "yesterday".into(), ..raw() }, "analytics.invalid_timestamp", "timestamp"),
            (
                RawEvent { timestamp: (now + chrono::Duration::hours(2)).to_rfc3339(), ..raw() },
                "analytics.timestamp_out_of_range",
                "timestamp",
            ),
            (
                RawEvent { timestamp: (now - chrono::Duration::days(31)).to_rfc3339(), ..raw() },
                "analytics.timestamp_out_of_range",
                "timestamp",
            ),
            (RawEvent { properties_json: "[1]".into(), ..raw() }, "analytics.invalid_properties", "properties"),
            (
                RawEvent { properties_json: format!("{{\"a\":\"{}\"}}", "x".repeat(2000)), ..raw() },
                "analytics.properties_too_large",
                "properties",
            ),
            (
                RawEvent { revenue: Some((100, "XYZ".into())), ..raw() },
                "money.unsupported_currency",
                "revenue.currency",
            ),
            (RawEvent { page_url: "not a url".into(), ..raw() }, "analytics.invalid_url", "page_url"),
        ];
        for (r, code, field) in cases {
            let err = validate(&r, now, &limits()).unwrap_err();
            assert_eq!((err.code, err.field), (code, field), "{r:?}");
        }
    }

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
