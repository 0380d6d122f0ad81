//! What a valid tracked event is: the rules an event must pass before it is accepted.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use nexus_kernel::{Currency, Money};
use serde_json::{Map, Value};

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
}
