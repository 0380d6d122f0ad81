//! WhatsApp rules: what may be sent (Meta's limits on content), when (the 24-hour window), to
//! whom (opt-outs and consent), how statuses move (forward only), and the shape of Meta's
//! webhook deliveries.

use chrono::{DateTime, Duration, Utc};
use nexus_kernel::Error;
use serde_json::{Value, json};

use crate::domain::consent::{Channel, Consent, ConsentStatus, Purpose};

/// The customer-service window Meta opens with each inbound message.
pub const WINDOW_HOURS: i64 = 24;
pub const TEXT_MAX: usize = 4_096;
pub const CAPTION_MAX: usize = 1_024;
pub const LINK_MAX: usize = 2_000;
pub const BUTTONS_MAX: usize = 3;
pub const BUTTON_TITLE_MAX: usize = 20;
pub const ROWS_MAX: usize = 10;
pub const ROW_TITLE_MAX: usize = 24;
pub const ROW_DESCRIPTION_MAX: usize = 72;
pub const INTERACTIVE_BODY_MAX: usize = 1_024;
/// Meta's limit on one template body parameter.
pub const PARAM_MAX: usize = 1_024;

nexus_kernel::word_enum! {
    /// Where a message stands. Inbound messages are `received`; outbound ones move
    /// pending → sending → sent → delivered → read, or end `failed`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Status: invalid "messaging.whatsapp_invalid_status", param "status" {
        Received = "received",
        Pending = "pending",
        Sending = "sending",
        Sent = "sent",
        Delivered = "delivered",
        Read = "read",
        Failed = "failed",
    }
}

impl Status {
    fn rank(self) -> u8 {
        match self {
            Self::Received | Self::Pending => 0,
            Self::Sending => 1,
            Self::Sent => 2,
            Self::Delivered => 3,
            Self::Failed => 4,
            Self::Read => 5,
        }
    }

    /// Whether a status webhook saying `next` moves a message now at `self`. Statuses arrive in
    /// any order and more than once: only a later stage applies, so `read` never goes back to
    /// `delivered`, and a message read by the customer stays read even if a `failed` follows.
    pub fn advances_to(self, next: Status) -> bool {
        self != Self::Received && next.rank() > self.rank()
    }
}

/// Whether the window opened by the last inbound message is still open at `now`.
pub fn window_open(last_inbound: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_inbound.is_some_and(|t| now - t < Duration::hours(WINDOW_HOURS))
}

/// A reply button or list row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    pub title: String,
    pub description: String,
}

/// What an outbound message carries, checked against Meta's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Text(String),
    Template { name: String, language: String, params: Vec<String> },
    Media { kind: String, link: String, caption: String },
    Interactive { body: String, buttons: Vec<Choice>, list_button: String, rows: Vec<Choice> },
}

fn over(s: &str, max: usize) -> bool {
    s.chars().count() > max
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// An https address Meta can fetch: something after the scheme, no spaces or control characters,
/// at most `max` characters.
pub fn https_link(s: &str, max: usize) -> bool {
    s.strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(|c: char| c.is_whitespace() || c.is_control()))
        && !over(s, max)
}

/// No control characters but tabs and line breaks (`TEXT` of the API document).
pub fn plain_text(s: &str) -> bool {
    !s.contains(|c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// One line with something besides spaces and no control characters (`NAME` of the API document).
pub fn one_line(s: &str) -> bool {
    !s.contains(char::is_control) && s.contains(|c: char| !c.is_whitespace())
}

impl Content {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Template { .. } => "template",
            Self::Media { kind, .. } => match kind.as_str() {
                "video" => "video",
                "audio" => "audio",
                "document" => "document",
                _ => "image",
            },
            Self::Interactive { .. } => "interactive",
        }
    }

    /// Only templates may start a conversation; everything else needs the window open.
    pub fn is_free_form(&self) -> bool {
        !matches!(self, Self::Template { .. })
    }

    /// Meta's limits, checked before anything is stored or sent.
    pub fn check(&self) -> Result<(), Error> {
        match self {
            Self::Text(t) if blank(t) || over(t, TEXT_MAX) => {
                Err(Error::invalid("messaging.whatsapp_text_invalid").with_param("max", TEXT_MAX.to_string()))
            }
            Self::Template { name, language, params } => {
                let name_ok = !name.is_empty()
                    && name.len() <= 512
                    && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                let lang_ok =
                    (2..=7).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
                if !name_ok || !lang_ok {
                    return Err(Error::invalid("messaging.whatsapp_template_invalid"));
                }
                if params.iter().any(|p| blank(p) || over(p, PARAM_MAX) || p.contains('\n') || p.contains("    ")) {
                    return Err(Error::invalid("messaging.whatsapp_template_param_invalid")
                        .with_param("max", PARAM_MAX.to_string()));
                }
                Ok(())
            }
            Self::Media { kind, link, caption } => {
                let kind_ok = matches!(kind.as_str(), "image" | "video" | "audio" | "document");
                let link_ok = https_link(link, LINK_MAX);
                if !kind_ok || !link_ok || over(caption, CAPTION_MAX) || (kind == "audio" && !caption.is_empty()) {
                    return Err(Error::invalid("messaging.whatsapp_media_invalid"));
                }
                Ok(())
            }
            Self::Interactive { body, buttons, list_button, rows } => {
                if blank(body) || over(body, INTERACTIVE_BODY_MAX) {
                    return Err(Error::invalid("messaging.whatsapp_text_invalid")
                        .with_param("max", INTERACTIVE_BODY_MAX.to_string()));
                }
                if buttons.is_empty() == rows.is_empty() {
                    return Err(Error::invalid("messaging.whatsapp_interactive_invalid"));
                }
                if buttons.len() > BUTTONS_MAX
                    || buttons.iter().any(|b| blank(&b.id) || blank(&b.title) || over(&b.title, BUTTON_TITLE_MAX))
                {
                    return Err(
                        Error::invalid("messaging.whatsapp_buttons_invalid").with_param("max", BUTTONS_MAX.to_string())
                    );
                }
                if rows.len() > ROWS_MAX
                    || (!rows.is_empty() && (blank(list_button) || over(list_button, BUTTON_TITLE_MAX)))
                    || rows.iter().any(|r| {
                        blank(&r.id)
                            || blank(&r.title)
                            || over(&r.title, ROW_TITLE_MAX)
                            || over(&r.description, ROW_DESCRIPTION_MAX)
                    })
                {
                    return Err(
                        Error::invalid("messaging.whatsapp_rows_invalid").with_param("max", ROWS_MAX.to_string())
                    );
                }
                let mut ids: Vec<&str> = buttons.iter().chain(rows).map(|c| c.id.as_str()).collect();
                ids.sort_unstable();
                if ids.windows(2).any(|w| w[0] == w[1]) {
                    return Err(Error::invalid("messaging.whatsapp_interactive_invalid"));
                }
                Ok(())
            }
            Self::Text(_) => Ok(()),
        }
    }

    /// The Cloud API body to `to` (digits), without `messaging_product` (the client adds it).
    pub fn payload(&self, to: &str) -> Value {
        let mut body = json!({"recipient_type": "individual", "to": to, "type": self.kind()});
        let part = match self {
            Self::Text(t) => json!({"preview_url": false, "body": t}),
            Self::Template { name, language, params } => {
                let mut t = json!({"name": name, "language": {"code": language}});
                if !params.is_empty() {
                    let ps: Vec<Value> = params.iter().map(|p| json!({"type": "text", "text": p})).collect();
                    t["components"] = json!([{"type": "body", "parameters": ps}]);
                }
                t
            }
            Self::Media { link, caption, .. } => {
                if caption.is_empty() {
                    json!({"link": link})
                } else {
                    json!({"link": link, "caption": caption})
                }
            }
            Self::Interactive { body, buttons, list_button, rows } => {
                if rows.is_empty() {
                    let bs: Vec<Value> = buttons
                        .iter()
                        .map(|b| json!({"type": "reply", "reply": {"id": b.id, "title": b.title}}))
                        .collect();
                    json!({"type": "button", "body": {"text": body}, "action": {"buttons": bs}})
                } else {
                    let rs: Vec<Value> = rows
                        .iter()
                        .map(|r| {
                            if r.description.is_empty() {
                                json!({"id": r.id, "title": r.title})
                            } else {
                                json!({"id": r.id, "title": r.title, "description": r.description})
                            }
                        })
                        .collect();
                    json!({"type": "list", "body": {"text": body},
                           "action": {"button": list_button, "sections": [{"title": list_button, "rows": rs}]}})
                }
            }
        };
        body[self.kind()] = part;
        body
    }

    /// A one-line text for the inbox and the CRM timeline.
    pub fn summary(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Template { name, params, .. } => format!("[template {name}] {}", params.join(" · ")),
            Self::Media { kind, caption, .. } => format!("[{kind}] {caption}"),
            Self::Interactive { body, .. } => body.clone(),
        }
    }
}

/// Whether the contact may be messaged for `purpose`: an opt-out of WhatsApp (any purpose
/// withdrawn) refuses everything; a business-initiated message (a template) also needs consent
/// granted for the purpose (marketing for marketing; either for transactional).
pub fn check_consent(consents: &[Consent], purpose: Purpose, business_initiated: bool) -> Result<(), Error> {
    let wa: Vec<&Consent> = consents.iter().filter(|c| c.channel == Channel::Whatsapp).collect();
    if wa.iter().any(|c| c.status == ConsentStatus::Withdrawn) {
        return Err(Error::new(nexus_kernel::ErrorKind::FailedPrecondition, "messaging.whatsapp_opted_out"));
    }
    if !business_initiated {
        return Ok(());
    }
    let granted = wa
        .iter()
        .any(|c| c.status == ConsentStatus::Granted && (c.purpose == purpose || purpose == Purpose::Transactional));
    if granted {
        Ok(())
    } else {
        Err(Error::new(nexus_kernel::ErrorKind::FailedPrecondition, "messaging.whatsapp_no_consent")
            .with_param("purpose", purpose.as_str()))
    }
}

/// The refusal of a free-form message outside the window, naming the approved templates to send
/// instead.
pub fn window_closed(templates: &[String]) -> Error {
    let list = if templates.is_empty() { "—".to_owned() } else { templates.join(", ") };
    Error::new(nexus_kernel::ErrorKind::FailedPrecondition, "messaging.whatsapp_window_closed")
        .with_param("templates", list)
}

/// The error code explaining a Meta error code to people (the status of a failed message).
pub fn meta_error_code(code: i64) -> &'static str {
    match code {
        131_047 => "messaging.whatsapp_meta_reengagement",
        131_026 => "messaging.whatsapp_meta_undeliverable",
        131_049 => "messaging.whatsapp_meta_marketing_limit",
        130_429 | 131_056 | 131_048 => "messaging.whatsapp_meta_throttled",
        132_000 | 132_001 | 132_012 | 132_015 | 132_016 => "messaging.whatsapp_meta_template",
        190 => "messaging.whatsapp_meta_token",
        _ => "messaging.whatsapp_meta_failed",
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook deliveries

/// A message a customer sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub phone_number_id: String,
    pub wamid: String,
    pub from: String,
    pub name: String,
    pub kind: String,
    /// The text, caption, or the title of the chosen button or row.
    pub text: String,
    /// The id of the chosen button or row of an interactive reply.
    pub reply_id: String,
    pub at: DateTime<Utc>,
    pub raw: Value,
    /// The file an image, video, audio, document or sticker message carries (Meta's media id).
    pub media: Option<InboundMedia>,
}

/// Message types that carry a file.
pub const MEDIA_KINDS: &[&str] = &["image", "video", "audio", "document", "sticker"];

/// An inbound file as the webhook names it: Meta's media id, and the type and SHA-256 it
/// announces (the metadata call says them again; the bytes are checked against that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMedia {
    pub id: String,
    pub mime_type: String,
}

/// Why a media copy failed, stored as its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaFailure {
    /// The bytes do not have the SHA-256 Meta reported.
    Sha256Mismatch,
    /// Larger than the configured cap (announced or counted).
    TooLarge,
    /// Meta refused or no longer knows the media (expired id, 4xx).
    Gone,
    /// Passing failures until the job gave up.
    DownloadFailed,
}

impl MediaFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256Mismatch => "sha256_mismatch",
            Self::TooLarge => "too_large",
            Self::Gone => "media_gone",
            Self::DownloadFailed => "download_failed",
        }
    }

    /// Whether the job may try again (an operator replaying its dead letter): only passing
    /// failures.
    pub fn retryable(code: &str) -> bool {
        code == Self::DownloadFailed.as_str()
    }
}

/// The largest file the simulator attaches.
pub const SIMULATED_MEDIA_MAX: usize = 1024 * 1024;

/// A simulated attachment: a media kind, a `type/subtype` media type, 1 byte to 1 MiB.
pub fn check_simulated_media(kind: &str, mime_type: &str, len: usize) -> Result<(), Error> {
    let mime_ok = mime_type.len() <= 100
        && mime_type.split_once('/').is_some_and(|(a, b)| {
            let token = |s: &str| {
                !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-'))
            };
            token(a) && token(b)
        });
    if !MEDIA_KINDS.contains(&kind) || !mime_ok || len == 0 || len > SIMULATED_MEDIA_MAX {
        return Err(Error::invalid("messaging.whatsapp_simulated_media_invalid")
            .with_param("max", SIMULATED_MEDIA_MAX.to_string()));
    }
    Ok(())
}

/// The object key of a message's media: ids only, per workspace.
pub fn media_key(tenant: uuid::Uuid, message: uuid::Uuid) -> String {
    format!("whatsapp/{}/{}", tenant.simple(), message.simple())
}

/// A lowercase hex SHA-256 as Meta reports it.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A status of a message we sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub phone_number_id: String,
    pub wamid: String,
    pub status: Status,
    pub error_code: Option<i64>,
}

/// What one delivery carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    pub messages: Vec<Inbound>,
    pub statuses: Vec<StatusUpdate>,
    pub quality: Vec<QualityUpdate>,
}

/// Meta's `phone_number_quality_update`: the number named by its business account and display
/// number; `event` (DOWNGRADE, UPGRADE, FLAGGED, UNFLAGGED, THROUGHPUT_UPGRADE, …) says that
/// something changed, `current_limit` the tier now (empty when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityUpdate {
    pub waba_id: String,
    /// Digits only.
    pub display_digits: String,
    pub event: String,
    pub current_limit: String,
}

/// Meta's quality words; anything else is `UNKNOWN`.
pub fn quality_rating(s: &str) -> &'static str {
    match s.trim().to_ascii_uppercase().as_str() {
        "GREEN" => "GREEN",
        "YELLOW" => "YELLOW",
        "RED" => "RED",
        _ => "UNKNOWN",
    }
}

/// A messaging tier as Meta writes it (`TIER_250`, `TIER_1K`, `TIER_UNLIMITED`, …); `None` for
/// anything else (the stored tier is kept then).
pub fn messaging_tier(s: &str) -> Option<String> {
    let t = s.trim().to_ascii_uppercase();
    let rest = t.strip_prefix("TIER_")?;
    (!rest.is_empty() && rest.len() <= 16 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then_some(t)
}

fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Reads Meta's envelope. Unknown fields and kinds are kept as they come (`raw`); a body that is
/// not the envelope is an error.
pub fn parse_delivery(body: &[u8]) -> Result<Delivery, Error> {
    let v: Value = serde_json::from_slice(body).map_err(|_| Error::invalid("webhooks.invalid_request"))?;
    if v.get("object").and_then(Value::as_str) != Some("whatsapp_business_account") {
        return Err(Error::invalid("webhooks.invalid_request"));
    }
    let mut out = Delivery::default();
    let entries = v.get("entry").and_then(Value::as_array).cloned().unwrap_or_default();
    for entry in &entries {
        for change in entry.get("changes").and_then(Value::as_array).into_iter().flatten() {
            if change.get("field").and_then(Value::as_str) == Some("phone_number_quality_update") {
                let value = change.get("value").cloned().unwrap_or_default();
                let digits: String = s(&value, "display_phone_number").chars().filter(char::is_ascii_digit).collect();
                // `current_limit` is being replaced by `max_daily_conversations_per_business`.
                let mut limit = s(&value, "current_limit");
                if limit.is_empty() {
                    limit = s(&value, "max_daily_conversations_per_business");
                }
                if !digits.is_empty() {
                    out.quality.push(QualityUpdate {
                        waba_id: s(entry, "id"),
                        display_digits: digits,
                        event: s(&value, "event"),
                        current_limit: limit,
                    });
                }
                continue;
            }
            if change.get("field").and_then(Value::as_str) != Some("messages") {
                continue;
            }
            let Some(value) = change.get("value") else { continue };
            let phone = value.get("metadata").map(|m| s(m, "phone_number_id")).unwrap_or_default();
            let names: Vec<(String, String)> = value
                .get("contacts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| (s(c, "wa_id"), c.get("profile").map(|p| s(p, "name")).unwrap_or_default()))
                .collect();
            for m in value.get("messages").and_then(Value::as_array).into_iter().flatten() {
                let from = s(m, "from");
                let kind = s(m, "type");
                let (text, reply_id) = match kind.as_str() {
                    "text" => (m.get("text").map(|t| s(t, "body")).unwrap_or_default(), String::new()),
                    "interactive" => {
                        let i = m.get("interactive").cloned().unwrap_or_default();
                        let chosen = i.get("button_reply").or_else(|| i.get("list_reply")).cloned().unwrap_or_default();
                        (s(&chosen, "title"), s(&chosen, "id"))
                    }
                    "button" => {
                        let b = m.get("button").cloned().unwrap_or_default();
                        (s(&b, "text"), s(&b, "payload"))
                    }
                    "image" | "video" | "document" => {
                        (m.get(kind.as_str()).map(|x| s(x, "caption")).unwrap_or_default(), String::new())
                    }
                    _ => (String::new(), String::new()),
                };
                let at = s(m, "timestamp")
                    .parse::<i64>()
                    .ok()
                    .and_then(|t| DateTime::from_timestamp(t, 0))
                    .unwrap_or_else(Utc::now);
                let name = names.iter().find(|(id, _)| *id == from).map(|(_, n)| n.clone()).unwrap_or_default();
                let wamid = s(m, "id");
                if wamid.is_empty() || from.is_empty() {
                    continue;
                }
                let media = MEDIA_KINDS
                    .contains(&kind.as_str())
                    .then(|| m.get(kind.as_str()))
                    .flatten()
                    .map(|x| InboundMedia { id: s(x, "id"), mime_type: s(x, "mime_type") })
                    .filter(|x| !x.id.is_empty());
                out.messages.push(Inbound {
                    phone_number_id: phone.clone(),
                    wamid,
                    from,
                    name,
                    kind,
                    text,
                    reply_id,
                    at,
                    raw: m.clone(),
                    media,
                });
            }
            for st in value.get("statuses").and_then(Value::as_array).into_iter().flatten() {
                let Ok(status) = s(st, "status").parse::<Status>() else { continue };
                if !matches!(status, Status::Sent | Status::Delivered | Status::Read | Status::Failed) {
                    continue;
                }
                let error_code = st
                    .get("errors")
                    .and_then(Value::as_array)
                    .and_then(|e| e.first())
                    .and_then(|e| e.get("code"))
                    .and_then(Value::as_i64);
                out.statuses.push(StatusUpdate {
                    phone_number_id: phone.clone(),
                    wamid: s(st, "id"),
                    status,
                    error_code,
                });
            }
        }
    }
    Ok(out)
}

/// The envelope Meta would send for `value` on the number (the simulator's deliveries).
pub fn envelope(waba_id: &str, phone_number_id: &str, display: &str, value: Value) -> Value {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({"display_phone_number": display, "phone_number_id": phone_number_id});
    json!({"object": "whatsapp_business_account",
           "entry": [{"id": waba_id, "changes": [{"field": "messages", "value": value}]}]})
}

#[cfg(test)]
mod tests {
    #[test]
    fn quality_updates_are_read_by_business_account_and_display_number() {
        let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
            "changes": [{"field": "phone_number_quality_update", "value": {"display_phone_number": "+1 555-078-3881",
                "event": "DOWNGRADE", "current_limit": "TIER_250"}},
                {"field": "phone_number_quality_update", "value": {"display_phone_number": "15550783882",
                "event": "UPGRADE", "max_daily_conversations_per_business": "TIER_10K"}},
                {"field": "phone_number_quality_update", "value": {"event": "FLAGGED"}}]}]});
        let d = parse_delivery(body.to_string().as_bytes()).unwrap();
        assert_eq!(d.quality.len(), 2, "one without a number is skipped");
        assert_eq!(
            d.quality[0],
            QualityUpdate {
                waba_id: "102290129340398".into(),
                display_digits: "15550783881".into(),
                event: "DOWNGRADE".into(),
                current_limit: "TIER_250".into()
            }
        );
        assert_eq!(d.quality[1].current_limit, "TIER_10K");
        assert!(d.messages.is_empty() && d.statuses.is_empty());
    }

    #[test]
    fn ratings_and_tiers_are_meta_words_or_nothing() {
        assert_eq!(quality_rating("green"), "GREEN");
        assert_eq!(quality_rating("purple"), "UNKNOWN");
        assert_eq!(messaging_tier("tier_1k").as_deref(), Some("TIER_1K"));
        assert_eq!(messaging_tier("TIER_UNLIMITED").as_deref(), Some("TIER_UNLIMITED"));
        for bad in ["", "TIER_", "1K", "TIER_<b>", "TIER_123456789012345678"] {
            assert_eq!(messaging_tier(bad), None, "{bad}");
        }
    }

    use super::*;

    #[test]
    fn statuses_only_move_forward() {
        assert!(Status::Sent.advances_to(Status::Delivered));
        assert!(Status::Sent.advances_to(Status::Read));
        assert!(!Status::Read.advances_to(Status::Delivered));
        assert!(!Status::Delivered.advances_to(Status::Delivered));
        assert!(Status::Delivered.advances_to(Status::Failed));
        assert!(!Status::Read.advances_to(Status::Failed));
        assert!(Status::Sending.advances_to(Status::Sent));
        assert!(!Status::Received.advances_to(Status::Read));
    }

    #[test]
    fn the_window_lasts_24_hours() {
        let now = Utc::now();
        assert!(window_open(Some(now - Duration::hours(23)), now));
        assert!(!window_open(Some(now - Duration::hours(25)), now));
        assert!(!window_open(None, now));
    }

    fn choice(id: &str, title: &str) -> Choice {
        Choice { id: id.into(), title: title.into(), description: String::new() }
    }

    #[test]
    fn meta_limits_are_checked() {
        assert!(Content::Text("hi".into()).check().is_ok());
        assert_eq!(Content::Text(" ".into()).check().unwrap_err().code(), "messaging.whatsapp_text_invalid");
        assert!(Content::Text("x".repeat(4097)).check().is_err());
        let buttons = |n: usize| Content::Interactive {
            body: "Pick".into(),
            buttons: (0..n).map(|i| choice(&format!("b{i}"), "ok")).collect(),
            list_button: String::new(),
            rows: vec![],
        };
        assert!(buttons(3).check().is_ok());
        assert_eq!(buttons(4).check().unwrap_err().code(), "messaging.whatsapp_buttons_invalid");
        let rows = |n: usize| Content::Interactive {
            body: "Pick".into(),
            buttons: vec![],
            list_button: "Menu".into(),
            rows: (0..n).map(|i| choice(&format!("r{i}"), "row")).collect(),
        };
        assert!(rows(10).check().is_ok());
        assert_eq!(rows(11).check().unwrap_err().code(), "messaging.whatsapp_rows_invalid");
        let t = |name: &str, p: &str| Content::Template {
            name: name.into(),
            language: "en_US".into(),
            params: vec![p.into()],
        };
        assert!(t("order_update", "John").check().is_ok());
        assert!(t("Order Update", "John").check().is_err());
        assert_eq!(t("order_update", "a\nb").check().unwrap_err().code(), "messaging.whatsapp_template_param_invalid");
        let media = |link: &str| Content::Media { kind: "image".into(), link: link.into(), caption: String::new() };
        assert!(media("https://x.test/a.png").check().is_ok());
        assert!(media("http://x.test/a.png").check().is_err());
    }

    #[test]
    fn payloads_follow_the_cloud_api() {
        let p =
            Content::Template { name: "order_update".into(), language: "en_US".into(), params: vec!["John".into()] }
                .payload("15551234567");
        assert_eq!(p["type"], "template");
        assert_eq!(p["template"]["components"][0]["parameters"][0]["text"], "John");
        let p = Content::Text("Hi".into()).payload("1555");
        assert_eq!(p["text"]["body"], "Hi");
    }

    #[test]
    fn deliveries_are_read_from_the_envelope() {
        let value = json!({
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "15550001111"}],
            "messages": [{"from": "15550001111", "id": "wamid.1", "timestamp": "1750857384", "type": "text", "text": {"body": "hola"}}],
            "statuses": [{"id": "wamid.9", "status": "read", "timestamp": "1750857384", "recipient_id": "1555"},
                         {"id": "wamid.8", "status": "failed", "errors": [{"code": 131047}]}]
        });
        let body = envelope("1", "106540352242922", "+1 555", value).to_string();
        let d = parse_delivery(body.as_bytes()).unwrap();
        assert_eq!(d.messages.len(), 1);
        assert_eq!(d.messages[0].name, "Ana");
        assert_eq!(d.messages[0].text, "hola");
        assert_eq!(d.messages[0].phone_number_id, "106540352242922");
        assert_eq!(d.statuses[0].status, Status::Read);
        assert_eq!(d.statuses[1].error_code, Some(131_047));
        assert!(parse_delivery(b"{}").is_err());
        assert!(parse_delivery(b"not json").is_err());
    }
}
