//! Outbound webhooks: the rules of delivery — when to try again, what counts as delivered, when
//! an endpoint is given up on, and which event types an endpoint may subscribe to.

use std::time::Duration;

use nexus_kernel::Error;

/// Gaps before each attempt of a message: the first goes at once, then after 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h and 10 h (eight attempts over about 27.6 hours).
pub const SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// An answer must arrive within this to count.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(15);

/// An endpoint that has delivered nothing for this long while failing is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// How long delivery attempts (request, status, body excerpt, latency) are kept.
pub const ATTEMPTS_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

/// The part of a response body kept with an attempt.
pub const BODY_EXCERPT: usize = 1_024;

/// The previous secret keeps signing for this long after a rotation.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// The wait before attempt `n` (0-based) of a message; `None` when the schedule is spent.
pub fn gap_before(attempt: usize) -> Option<Duration> {
    SCHEDULE.get(attempt).copied()
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx within [`RESPONSE_TIMEOUT`].
    Delivered,
    /// Anything else: the reason is recorded with the attempt.
    Failed(FailReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The endpoint answered with a status outside 2xx (a redirect too: it is never followed,
    /// since the new location was not checked by the outbound rules).
    Status(u16),
    Timeout,
    /// Connection refused, reset, TLS failure, DNS failure.
    Network,
    /// The target resolved to an address the outbound rules refuse.
    Refused,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status(s) if (300..400).contains(&s) => "redirect",
            Self::Status(_) => "status",
            Self::Timeout => "timeout",
            Self::Network => "network",
            Self::Refused => "refused",
        }
    }
}

/// Classifies an answer by status code.
pub fn outcome(status: u16) -> Outcome {
    if (200..300).contains(&status) { Outcome::Delivered } else { Outcome::Failed(FailReason::Status(status)) }
}

/// Whether an endpoint failing since `failing_since` should be disabled at `now`.
pub fn should_disable(failing_since: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> bool {
    now.signed_duration_since(failing_since).to_std().is_ok_and(|d| d >= DISABLE_AFTER)
}

/// An event type a workspace's endpoint can subscribe to: the public events of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON Schema of the `data` of the message.
    pub schema: &'static str,
    /// What a test-send delivers.
    pub example: &'static str,
}

/// Checks an endpoint's subscription list against the catalogue: each name known or a
/// `prefix.*` wildcard over known names; no repeats; empty means "every type".
pub fn check_filter(types: &[String], catalogue: &[EventType]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        let t = t.trim();
        let known = match t.strip_suffix(".*") {
            Some(prefix) => catalogue.iter().any(|e| e.name.starts_with(&format!("{prefix}."))),
            None => catalogue.iter().any(|e| e.name == t),
        };
        if !known {
            return Err(Error::invalid("messaging.unknown_event_type")
                .with_param("type", t.chars().take(100).collect::<String>()));
        }
        if !out.iter().any(|x| x == t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

/// Whether an endpoint subscribed to `filter` receives `event`.
pub fn matches(filter: &[String], event: &str) -> bool {
    filter.is_empty()
        || filter.iter().any(|f| match f.strip_suffix(".*") {
            Some(prefix) => event.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')),
            None => f == event,
        })
}

/// Every event type an endpoint can subscribe to: the public events the platform emits. Contact
/// events come from this service's use cases (they publish in the transaction of the change);
/// page events are content's, consumed from the bus.
pub const CATALOGUE: &[EventType] = &[
    EventType {
        name: "contact.created",
        description: "A contact was added to the contact book (by hand, an import, a page lead or a channel).",
        schema: CONTACT_SCHEMA,
        example: r#"{"id":"0193a5e2-7c1d-7b4e-9a32-5f0c2d8e4b11","name":"Ana Souza","phone":"+5511987654321","email":"ana@example.com","language":"pt","tags":["vip"],"stage":"lead","source":"landing page","created_at":"2026-03-01T12:00:00Z","updated_at":"2026-03-01T12:00:00Z"}"#,
    },
    EventType {
        name: "contact.updated",
        description: "A contact's details, tags, stage or custom fields changed.",
        schema: CONTACT_SCHEMA,
        example: r#"{"id":"0193a5e2-7c1d-7b4e-9a32-5f0c2d8e4b11","name":"Ana Souza","phone":"+5511987654321","email":"ana@example.com","language":"pt","tags":["vip","customer"],"stage":"customer","source":"landing page","created_at":"2026-03-01T12:00:00Z","updated_at":"2026-03-02T09:30:00Z"}"#,
    },
    EventType {
        name: "contact.merged",
        description: "Two contacts were found to be one person: the merged one folded into the kept one.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["kept_id","merged_id"],"properties":{"kept_id":{"type":"string","format":"uuid"},"merged_id":{"type":"string","format":"uuid"}},"additionalProperties":false}"#,
        example: r#"{"kept_id":"0193a5e2-7c1d-7b4e-9a32-5f0c2d8e4b11","merged_id":"0193a5e3-0a44-7f10-8d2b-61e9c3a7d020"}"#,
    },
    EventType {
        name: "contact.anonymized",
        description: "A contact's personal data was erased; its activities stay without the person.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["id"],"properties":{"id":{"type":"string","format":"uuid"}},"additionalProperties":false}"#,
        example: r#"{"id":"0193a5e2-7c1d-7b4e-9a32-5f0c2d8e4b11"}"#,
    },
    EventType {
        name: "page.lead_captured",
        description: "A visitor left their details on a published landing page.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["page_id","lead_id","slug"],"properties":{"page_id":{"type":"string"},"lead_id":{"type":"string"},"slug":{"type":"string"},"language":{"type":"string","enum":["en","es","pt","he","ar",""]},"name":{"type":"string"},"email":{"type":"string"},"phone":{"type":"string"},"message":{"type":"string"},"consent":{"type":"boolean"}},"additionalProperties":false}"#,
        example: r#"{"page_id":"pg_0193a5e27c1d7b4e9a325f0c2d8e4b11","lead_id":"lead_0193a5e41b2c7d3e8f40a1b2c3d4e5f6","slug":"spring-sale","language":"es","name":"Lucía Pérez","email":"lucia@example.com","phone":"+34612345678","message":"¿Envían a Canarias?","consent":true}"#,
    },
    EventType {
        name: "page.published",
        description: "A landing page (or a new version of it) went live.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["page_id","slug","version"],"properties":{"page_id":{"type":"string"},"slug":{"type":"string"},"version":{"type":"integer","minimum":1},"language":{"type":"string"}},"additionalProperties":false}"#,
        example: r#"{"page_id":"pg_0193a5e27c1d7b4e9a325f0c2d8e4b11","slug":"spring-sale","version":3,"language":"en"}"#,
    },
    EventType {
        name: "page.unpublished",
        description: "A landing page was taken offline.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["page_id","slug"],"properties":{"page_id":{"type":"string"},"slug":{"type":"string"}},"additionalProperties":false}"#,
        example: r#"{"page_id":"pg_0193a5e27c1d7b4e9a325f0c2d8e4b11","slug":"spring-sale"}"#,
    },
    EventType {
        name: "message.received",
        description: "A contact sent a WhatsApp message to one of the workspace's numbers.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["message_id","contact_id","number_id","type"],"properties":{"message_id":{"type":"string","format":"uuid"},"contact_id":{"type":"string","format":"uuid"},"number_id":{"type":"string","format":"uuid"},"type":{"type":"string"}}}"#,
        example: r#"{"message_id":"0193a5e2-7c1d-7b4e-9a32-5f0c2d8e4b11","contact_id":"0193a5e3-0a44-7f10-8d2b-61e9c3a7d020","number_id":"0193a5e1-1111-7222-8333-944455566677","type":"text"}"#,
    },
    EventType {
        name: "message.sent",
        description: "WhatsApp accepted a message to a contact (one-off, bot or broadcast).",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["message_id","contact_id","number_id","type"],"properties":{"message_id":{"type":"string","format":"uuid"},"contact_id":{"type":"string","format":"uuid"},"number_id":{"type":"string","format":"uuid"},"type":{"type":"string"},"broadcast_id":{"type":"string"}}}"#,
        example: r#"{"message_id":"0193a5e2-7c1d-7b4e-9a32-5f0c2d8e4b11","contact_id":"0193a5e3-0a44-7f10-8d2b-61e9c3a7d020","number_id":"0193a5e1-1111-7222-8333-944455566677","type":"template","broadcast_id":""}"#,
    },
    EventType {
        name: "message.status_changed",
        description: "A sent WhatsApp message was delivered, read, or failed (with Meta's error code).",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["message_id","contact_id","status"],"properties":{"message_id":{"type":"string","format":"uuid"},"contact_id":{"type":"string","format":"uuid"},"status":{"type":"string","enum":["delivered","read","failed"]},"error_code":{"type":"integer"}}}"#,
        example: r#"{"message_id":"0193a5e2-7c1d-7b4e-9a32-5f0c2d8e4b11","contact_id":"0193a5e3-0a44-7f10-8d2b-61e9c3a7d020","status":"read","error_code":0}"#,
    },
    EventType {
        name: "broadcast.finished",
        description: "A WhatsApp broadcast ended: every recipient done, or canceled.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["broadcast_id","status","sent","failed"],"properties":{"broadcast_id":{"type":"string","format":"uuid"},"status":{"type":"string","enum":["finished","canceled"]},"sent":{"type":"integer"},"failed":{"type":"integer"},"unknown":{"type":"integer"},"credits_charged":{"type":"integer"}}}"#,
        example: r#"{"broadcast_id":"0193a5e2-7c1d-7b4e-9a32-5f0c2d8e4b11","status":"finished","sent":9980,"failed":20,"unknown":0,"credits_charged":9980}"#,
    },
    EventType {
        name: "bot.handoff",
        description: "A WhatsApp conversation went from the bot to a person, or back.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["number_id","contact_id","direction"],"properties":{"number_id":{"type":"string","format":"uuid"},"contact_id":{"type":"string","format":"uuid"},"direction":{"type":"string","enum":["to_human","to_bot"]},"assigned_to":{"type":"string","description":"to_human: the member (usr_…) the conversation is assigned to; empty when nobody could be"}}}"#,
        example: r#"{"number_id":"0193a5e1-1111-7222-8333-944455566677","contact_id":"0193a5e3-0a44-7f10-8d2b-61e9c3a7d020","direction":"to_human","assigned_to":"usr_0193a5e055557666877798889990001a"}"#,
    },
    EventType {
        name: "post.scheduled",
        description: "A social post was scheduled (or rescheduled) on one account.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["post_id","target_id","platform","account"],"properties":{"post_id":{"type":"string"},"target_id":{"type":"string"},"provider":{"type":"string","enum":["meta","tiktok","google","local"]},"platform":{"type":"string","enum":["instagram","facebook","tiktok","youtube"]},"account":{"type":"string"},"scheduled_at":{"type":["string","null"],"format":"date-time"}}}"#,
        example: r#"{"post_id":"post_0193a5e27c1d7b4e9a325f0c2d8e4b11","target_id":"pubn_0193a5e27c1d7b4e9a325f0c2d8e4b12","provider":"meta","platform":"instagram","account":"17841400000000000","scheduled_at":"2026-03-01T15:00:00+00:00"}"#,
    },
    EventType {
        name: "post.published",
        description: "A social post went out on one account (once per account), with its link.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["post_id","target_id","platform","account","platform_post_id"],"properties":{"post_id":{"type":"string"},"target_id":{"type":"string"},"provider":{"type":"string","enum":["meta","tiktok","google","local"]},"platform":{"type":"string","enum":["instagram","facebook","tiktok","youtube"]},"account":{"type":"string"},"platform_post_id":{"type":"string"},"permalink":{"type":"string"},"scheduled_at":{"type":["string","null"],"format":"date-time"},"published_at":{"type":["string","null"],"format":"date-time"}}}"#,
        example: r#"{"post_id":"post_0193a5e27c1d7b4e9a325f0c2d8e4b11","target_id":"pubn_0193a5e27c1d7b4e9a325f0c2d8e4b12","provider":"meta","platform":"instagram","account":"17841400000000000","platform_post_id":"17895695668004550","permalink":"https://www.instagram.com/p/C4x9ZkLxyz/","scheduled_at":"2026-03-01T15:00:00+00:00","published_at":"2026-03-01T15:00:02+00:00"}"#,
    },
    EventType {
        name: "post.failed",
        description: "A social post could not go out on one account; the platform's reason is included and it is not retried.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["post_id","target_id","platform","account","error_code"],"properties":{"post_id":{"type":"string"},"target_id":{"type":"string"},"provider":{"type":"string","enum":["meta","tiktok","google","local"]},"platform":{"type":"string","enum":["instagram","facebook","tiktok","youtube"]},"account":{"type":"string"},"error_code":{"type":"string"},"reason":{"type":"string"}}}"#,
        example: r#"{"post_id":"post_0193a5e27c1d7b4e9a325f0c2d8e4b11","target_id":"pubn_0193a5e27c1d7b4e9a325f0c2d8e4b12","provider":"tiktok","platform":"tiktok","account":"7001","error_code":"ads.post_rejected","reason":"video_pull_failed"}"#,
    },
    EventType {
        name: "account.paused",
        description: "A platform refused a connection's token while publishing: its posts wait, still scheduled, until the workspace connects again.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["connection_id","provider"],"properties":{"connection_id":{"type":"string"},"provider":{"type":"string","enum":["meta","tiktok","google","local"]},"reason":{"type":"string"}}}"#,
        example: r#"{"connection_id":"conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7","provider":"meta","reason":"Error validating access token: The session has been invalidated."}"#,
    },
    EventType {
        name: "churn_risk.high",
        description: "Analytics' churn model scored a subject at or above the high-risk threshold (once per crossing): a customer of the workspace (population customers, subject its tracked user id), or for operators a workspace of the platform. Top factors are signed contributions to the log-odds.",
        schema: r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["population","subject","score","threshold","factors"],"properties":{"population":{"type":"string","enum":["customers","platform"]},"subject":{"type":"string"},"score":{"type":"number","minimum":0,"maximum":1},"threshold":{"type":"number"},"factors":{"type":"array","items":{"type":"object","required":["feature","value","contribution"],"properties":{"feature":{"type":"string"},"value":{"type":"number"},"contribution":{"type":"number"}}}},"model_trained_at":{"type":["string","null"],"format":"date-time"},"scored_at":{"type":["string","null"],"format":"date-time"}}}"#,
        example: r#"{"population":"customers","subject":"c-42","score":0.82,"threshold":0.7,"factors":[{"feature":"days_since_last_event","value":21.0,"contribution":1.4},{"feature":"active_days_30d","value":0.69,"contribution":0.9}],"model_trained_at":"2026-12-07T03:00:00+00:00","scored_at":"2026-12-07T03:00:05+00:00"}"#,
    },
];

const CONTACT_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["id","name","tags","stage","created_at","updated_at"],"properties":{"id":{"type":"string","format":"uuid"},"name":{"type":"string"},"phone":{"type":["string","null"],"description":"E.164"},"email":{"type":["string","null"],"format":"email"},"language":{"type":["string","null"],"enum":["en","es","pt","he","ar",null]},"tags":{"type":"array","items":{"type":"string"}},"stage":{"type":"string","enum":["subscriber","lead","qualified","opportunity","customer","evangelist","other"]},"source":{"type":"string"},"created_at":{"type":"string","format":"date-time"},"updated_at":{"type":"string","format":"date-time"}}}"#;

/// A catalogue entry by name.
pub fn event_type(name: &str) -> Option<&'static EventType> {
    CATALOGUE.iter().find(|e| e.name == name)
}

/// Largest `data` of a message, serialized.
pub const PAYLOAD_MAX_BYTES: usize = 256 * 1024;

/// The body every attempt of a message sends (the Standard Webhooks payload shape): the same
/// bytes each time, so the `webhook-id` and signature describe one thing.
pub fn body(event_type: &str, created_at: chrono::DateTime<chrono::Utc>, data: &serde_json::Value) -> Vec<u8> {
    body_of_raw(event_type, created_at, &data.to_string())
}

/// [`body`] around `data` that is already JSON text (as stored), so a delivery never parses
/// and re-serializes the payload.
pub fn body_of_raw(event_type: &str, created_at: chrono::DateTime<chrono::Utc>, data: &str) -> Vec<u8> {
    let event_type = serde_json::to_string(event_type).unwrap_or_default();
    let timestamp = created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut out = Vec::with_capacity(data.len() + event_type.len() + 64);
    out.extend_from_slice(b"{\"type\":");
    out.extend_from_slice(event_type.as_bytes());
    out.extend_from_slice(b",\"timestamp\":\"");
    out.extend_from_slice(timestamp.as_bytes());
    out.extend_from_slice(b"\",\"data\":");
    out.extend_from_slice(data.as_bytes());
    out.push(b'}');
    out
}

/// The `webhook-id` of a message: stable across attempts and replays, so receivers dedupe by it.
pub fn webhook_id(message: uuid::Uuid) -> String {
    format!("msg_{}", message.simple())
}

/// At most [`BODY_EXCERPT`] bytes of a response, cut on a character boundary.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_EXCERPT + 4)]);
    let mut end = text.len().min(BODY_EXCERPT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Default deliveries per second of an endpoint.
pub const DEFAULT_RATE_LIMIT: u32 = 10;

/// Checks a rate limit: absent is the default, otherwise 1..=1000 per second.
pub fn check_rate_limit(raw: Option<u32>) -> Result<u32, Error> {
    match raw {
        None => Ok(DEFAULT_RATE_LIMIT),
        Some(n @ 1..=1000) => Ok(n),
        Some(_) => Err(Error::invalid("messaging.webhook_rate_limit_invalid")
            .with_param("min", "1")
            .with_param("max", "1000")
            .with_violation("rate_limit", "out_of_range")),
    }
}

/// Longest endpoint description.
pub const DESCRIPTION_MAX: usize = 500;

pub fn check_description(raw: &str) -> Result<String, Error> {
    let d = raw.trim();
    if d.chars().count() > DESCRIPTION_MAX || d.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid("messaging.webhook_description_invalid")
            .with_param("max", DESCRIPTION_MAX.to_string())
            .with_violation("description", "invalid"));
    }
    Ok(d.to_owned())
}

nexus_kernel::word_enum! {
    /// Where an endpoint stands: disabled endpoints receive nothing until enabled again.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum EndpointStatus: invalid "messaging.webhook_endpoint_status_invalid", param "status" {
        Enabled = "enabled",
        Disabled = "disabled",
    }
}

/// An endpoint as its owner sees it (never its secrets).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: uuid::Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub rate_limit: u32,
    pub status: EndpointStatus,
    pub disabled_reason: String,
    pub failing_since: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A message for the workspace's endpoints.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: uuid::Uuid,
    pub event_type: String,
    pub event_key: String,
    pub payload: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// One recorded attempt of a delivery.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: uuid::Uuid,
    pub delivery_id: uuid::Uuid,
    pub endpoint_id: uuid::Uuid,
    pub message_id: uuid::Uuid,
    pub attempt: i32,
    pub outcome: String,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub request_url: String,
    pub request_headers: serde_json::Value,
    pub request_sha256: String,
    pub response_body: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

/// What a worker reads the time from, so tests can move it instead of sleeping.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> chrono::DateTime<chrono::Utc>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOGUE: &[EventType] = &[
        EventType { name: "contact.created", description: "", schema: "{}", example: "{}" },
        EventType { name: "contact.updated", description: "", schema: "{}", example: "{}" },
        EventType { name: "page.lead_captured", description: "", schema: "{}", example: "{}" },
    ];

    #[test]
    fn the_schedule_is_the_documented_one() {
        let secs: Vec<u64> = SCHEDULE.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, vec![0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]);
        assert_eq!(gap_before(8), None);
    }

    #[test]
    fn only_2xx_delivers_and_redirects_fail() {
        assert_eq!(outcome(200), Outcome::Delivered);
        assert_eq!(outcome(204), Outcome::Delivered);
        assert_eq!(outcome(301), Outcome::Failed(FailReason::Status(301)));
        assert_eq!(FailReason::Status(302).as_str(), "redirect");
        assert_eq!(FailReason::Status(500).as_str(), "status");
    }

    #[test]
    fn endpoints_are_disabled_after_five_days_of_failure() {
        let t0 = chrono::Utc::now();
        assert!(!should_disable(t0, t0 + chrono::Duration::days(4)));
        assert!(should_disable(t0, t0 + chrono::Duration::days(5)));
        assert!(!should_disable(t0, t0 - chrono::Duration::days(6)));
    }

    #[test]
    fn the_catalogue_is_valid_json_with_examples_matching_their_schemas_keys() {
        for e in super::CATALOGUE {
            let schema: serde_json::Value = serde_json::from_str(e.schema).expect(e.name);
            let example: serde_json::Value = serde_json::from_str(e.example).expect(e.name);
            let props = schema["properties"].as_object().expect(e.name);
            for key in example.as_object().expect(e.name).keys() {
                assert!(props.contains_key(key), "{}: example key {key} not in the schema", e.name);
            }
            for req in schema["required"].as_array().expect(e.name) {
                assert!(example.get(req.as_str().unwrap()).is_some(), "{}: example lacks {req}", e.name);
            }
        }
        assert!(check_filter(&["contact.*".into(), "page.lead_captured".into()], super::CATALOGUE).is_ok());
    }

    #[test]
    fn rate_limits_and_excerpts() {
        assert_eq!(check_rate_limit(None).unwrap(), 10);
        assert_eq!(check_rate_limit(Some(1000)).unwrap(), 1000);
        for bad in [0, 1001] {
            assert_eq!(check_rate_limit(Some(bad)).unwrap_err().code(), "messaging.webhook_rate_limit_invalid");
        }
        let long = "é".repeat(700);
        let cut = excerpt(long.as_bytes());
        assert!(cut.len() <= BODY_EXCERPT && cut.chars().all(|c| c == 'é'));
        assert_eq!(webhook_id(uuid::Uuid::nil()), "msg_00000000000000000000000000000000");
    }

    #[test]
    fn filters_name_known_types_or_prefixes() {
        let f =
            check_filter(&["contact.*".into(), "page.lead_captured".into(), "contact.*".into()], CATALOGUE).unwrap();
        assert_eq!(f.len(), 2);
        assert!(matches(&f, "contact.updated"));
        assert!(matches(&f, "page.lead_captured"));
        assert!(!matches(&f, "contactx.created"));
        assert!(matches(&[], "anything"));
        assert_eq!(check_filter(&["order.*".into()], CATALOGUE).unwrap_err().code(), "messaging.unknown_event_type");
        assert!(check_filter(&["contact".into()], CATALOGUE).is_err());
    }
}
