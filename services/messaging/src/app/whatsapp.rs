//! WhatsApp use cases: connecting numbers, the webhook (handshake and signed deliveries),
//! sending, and the local simulator.
//!
//! A send is checked here first (Meta's limits, the 24-hour window, opt-outs, consent), so a
//! message Meta would refuse never reaches Meta; then its credits are held, the message is
//! recorded as `sending`, Meta is called, and the answer is recorded with the settlement of the
//! hold in one transaction. A send whose answer never came (a timeout after the request left)
//! stays `sending`: it may have gone out, so it is never sent again by itself.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nexus_kernel::{Error, ErrorKind, Page, PageRequest, TenantId};
use nexus_platform::crypto::Sealer;
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use nexus_proto::events as ev;
use nexus_providers::whatsapp::{self as wa, LocalWhatsApp, Sender, WhatsApp as Provider};
use serde_json::{Value, json};
use sqlx::PgPool;
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use super::parse_id;
use crate::domain::consent::{Channel, Consent, ConsentStatus, KeywordAction, Purpose};
use crate::domain::contact::IdentityKind;
use crate::domain::templates::{Review, check_send};
use crate::domain::whatsapp::{self as domain, Content, Delivery, Status};
use crate::events::whatsapp as events;
use crate::repo::whatsapp::{self as repo, MessageRow, NumberRow};
use nexus_platform::credits::Credits;

/// The plan limit on connected numbers.
pub const NUMBERS_FEATURE: &str = "whatsapp_numbers";
/// How long a message's hold lives if its send never finishes.
pub(crate) const HOLD_TTL: Duration = Duration::from_secs(3600);

/// What the WhatsApp use cases need.
pub struct WhatsApp {
    pub pool: PgPool,
    pub sealer: Sealer,
    pub credits: Arc<dyn Credits>,
    /// Meta's Cloud API; `None` without one configured (only local numbers then).
    pub meta: Option<Arc<dyn Provider>>,
    pub local: Arc<LocalWhatsApp>,
    /// Whether local sandbox numbers may be connected and simulated (development only).
    pub allow_local: bool,
    /// Meta app secret: the key of `X-Hub-Signature-256`.
    pub app_secret: String,
    /// What Meta's handshake must present.
    pub verify_token: String,
    /// NATS, for the live inbox feed (`None`: no feed).
    pub bus: Option<nexus_platform::bus::Bus>,
    /// Cancelled when the process starts shutting down: live feeds end then.
    pub stopping: tokio_util::sync::CancellationToken,
    /// Content's agents, for bots' AI replies (`None`: unmatched messages wait for a person).
    pub agents: Option<Arc<dyn super::bots::BotAgent>>,
    /// Where inbound media is copied (`[storage]`).
    pub storage: Arc<nexus_platform::storage::Storage>,
}

impl std::fmt::Debug for WhatsApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsApp").field("allow_local", &self.allow_local).finish_non_exhaustive()
    }
}

/// A connected number as shown (never its token).
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub id: Uuid,
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub provider: String,
    pub quality_rating: String,
    pub messaging_tier: String,
    pub created_at: chrono::DateTime<Utc>,
    pub quality_checked_at: Option<chrono::DateTime<Utc>>,
}

fn number_view(n: NumberRow) -> Number {
    Number {
        id: n.id,
        waba_id: n.waba_id,
        phone_number_id: n.phone_number_id,
        display_phone_number: n.display_phone_number,
        provider: n.provider,
        quality_rating: n.quality_rating,
        messaging_tier: n.messaging_tier,
        created_at: n.created_at,
        quality_checked_at: n.quality_checked_at,
    }
}

/// A message as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: Uuid,
    pub number_id: Uuid,
    pub contact_id: Uuid,
    pub direction: String,
    pub kind: String,
    pub text: String,
    pub content: Value,
    pub status: String,
    pub wamid: String,
    pub error_code: Option<i64>,
    /// The i18n code explaining `error_code`.
    pub error: Option<&'static str>,
    pub provider: String,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
    /// Inbound media copied into storage: pending, stored or failed (empty without media).
    pub media_status: String,
    pub media_mime_type: String,
    pub media_size: i64,
    pub media_error: String,
}

fn message_view(m: MessageRow) -> Message {
    Message {
        id: m.id,
        number_id: m.number_id,
        contact_id: m.contact_id,
        direction: m.direction,
        kind: m.kind,
        text: m.content.0.get("summary").and_then(Value::as_str).unwrap_or_default().to_owned(),
        content: m.content.0,
        status: m.status,
        wamid: m.wamid.unwrap_or_default(),
        error: m.error_code.map(domain::meta_error_code),
        error_code: m.error_code,
        provider: m.provider,
        created_at: m.created_at,
        updated_at: m.updated_at,
        media_status: m.media_status.unwrap_or_default(),
        media_mime_type: m.media_mime.unwrap_or_default(),
        media_size: m.media_size.unwrap_or_default(),
        media_error: m.media_error.unwrap_or_default(),
    }
}

/// What connecting a number asks.
#[derive(Debug, Clone, Default)]
pub struct ConnectInput<'a> {
    pub waba_id: &'a str,
    pub phone_number_id: &'a str,
    pub display_phone_number: &'a str,
    pub access_token: &'a str,
}

/// What the provider is answered: an HTTP status, a content type and a body.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAnswer {
    pub status: u32,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl WebhookAnswer {
    fn json(status: u32, body: Value) -> Self {
        Self { status, content_type: "application/json", body: body.to_string().into_bytes() }
    }

    fn rejected(status: u32, code: &str) -> Self {
        let message = nexus_i18n::error_message(nexus_kernel::Locale::default(), code, &[], 400);
        Self::json(status, json!({"error": {"code": code, "message": message}}))
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn token_context(number: Uuid) -> String {
    format!("wa_number:{number}")
}

impl WhatsApp {
    /// Connects a business number: the token sealed at rest, the plan's limit on numbers held.
    #[tracing::instrument(skip_all, fields(workspace = %p.workspace_id))]
    pub async fn connect_number(&self, p: &Principal, input: &ConnectInput<'_>) -> Result<Number, Error> {
        p.require(Action::ManageApiKeys)?;
        if !digits(input.waba_id.trim()) {
            return Err(Error::invalid("messaging.whatsapp_invalid_id").with_param("field", "waba_id"));
        }
        if !digits(input.phone_number_id.trim()) {
            return Err(Error::invalid("messaging.whatsapp_invalid_id").with_param("field", "phone_number_id"));
        }
        let display = input.display_phone_number.trim();
        if display.is_empty() || display.chars().count() > 32 || display.chars().any(char::is_control) {
            return Err(Error::invalid("messaging.whatsapp_invalid_id").with_param("field", "display_phone_number"));
        }
        let token = input.access_token.trim();
        let provider = if token.is_empty() {
            if !self.allow_local {
                return Err(Error::invalid("messaging.whatsapp_token_required"));
            }
            "local"
        } else {
            if self.meta.is_none() || token.len() > 1_024 || token.chars().any(char::is_whitespace) {
                return Err(Error::invalid("messaging.whatsapp_token_required"));
            }
            "meta"
        };
        let phone_number_id = input.phone_number_id.trim();
        // Read once before anything is stored: a token or id Meta refuses connects nothing.
        let standing = if provider == "meta" {
            let meta = self.meta.as_ref().ok_or_else(|| Error::invalid("messaging.whatsapp_token_required"))?;
            meta.number_state(&Sender { phone_number_id, token }).await.map_err(connect_refused)?
        } else {
            self.local.number_state(&Sender { phone_number_id, token }).await.map_err(connect_refused)?
        };
        let quality = domain::quality_rating(&standing.quality_rating);
        let tier = domain::messaging_tier(&standing.messaging_limit_tier).unwrap_or_else(|| "TIER_250".into());
        // Asked before the transaction: a slow subscriptions service holds no lock here.
        let limit = self.credits.limit(NUMBERS_FEATURE).await?;
        let id = Uuid::now_v7();
        let sealed =
            if token.is_empty() { String::new() } else { self.sealer.seal(token.as_bytes(), &token_context(id)) };
        let tenant = p.workspace_id;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        repo::lock_numbers(&mut tx, tenant).await?;
        if repo::count_numbers(&mut tx).await? >= limit {
            return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.whatsapp_number_limit")
                .with_param("limit", limit.to_string()));
        }
        let new = repo::NewNumber {
            id,
            waba_id: input.waba_id.trim(),
            phone_number_id,
            display_phone_number: display,
            provider,
            token_sealed: &sealed,
            quality_rating: quality,
            messaging_tier: &tier,
        };
        if !repo::insert_number(&mut tx, tenant, &new).await? {
            return Err(Error::new(ErrorKind::Conflict, "messaging.whatsapp_number_taken"));
        }
        let row = repo::number(&mut tx, id).await?.ok_or_else(|| Error::internal("number vanished"))?;
        db::commit(tx).await?;
        Ok(number_view(row))
    }

    pub async fn numbers(&self, p: &Principal) -> Result<Vec<Number>, Error> {
        p.require(Action::Read)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let rows = repo::numbers(&mut tx).await?;
        db::commit(tx).await?;
        Ok(rows.into_iter().map(number_view).collect())
    }

    pub async fn number(&self, p: &Principal, id: &str) -> Result<Number, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, "messaging.whatsapp_number_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let row =
            repo::number(&mut tx, id).await?.ok_or_else(|| Error::not_found("messaging.whatsapp_number_not_found"))?;
        db::commit(tx).await?;
        Ok(number_view(row))
    }

    pub async fn messages(&self, p: &Principal, contact: &str, page: &PageRequest) -> Result<Page<Message>, Error> {
        p.require(Action::Read)?;
        let contact = parse_id(contact, "messaging.contact_not_found")?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        // An unknown contact (or another workspace's) is not found rather than an empty list.
        if !crate::repo::contacts::exists_live(&mut tx, contact).await? {
            return Err(Error::not_found("messaging.contact_not_found"));
        }
        let rows = repo::messages(&mut tx, contact, &keyset).await?;
        db::commit(tx).await?;
        Ok(Page { items: rows.items.into_iter().map(message_view).collect(), next_cursor: rows.next_cursor })
    }

    pub(crate) fn provider_for(&self, number: &NumberRow) -> Result<Arc<dyn Provider>, Error> {
        match number.provider.as_str() {
            "local" if self.allow_local => Ok(self.local.clone()),
            "meta" => self.meta.clone().ok_or_else(|| Error::unavailable("messaging.whatsapp_unavailable")),
            _ => Err(Error::unavailable("messaging.whatsapp_unavailable")),
        }
    }

    pub(crate) fn number_token(&self, number: &NumberRow) -> Result<String, Error> {
        if number.token_sealed.is_empty() {
            return Ok(String::new());
        }
        let raw = self.sealer.open(&number.token_sealed, &token_context(number.id)).map_err(Error::internal)?;
        String::from_utf8(raw).map_err(Error::internal)
    }

    /// Sends `content` to a contact from a number, refusing locally what Meta would refuse.
    #[tracing::instrument(skip_all, fields(workspace = %p.workspace_id))]
    pub async fn send(
        &self,
        p: &Principal,
        number: &str,
        contact: &str,
        content: &Content,
        purpose: Purpose,
    ) -> Result<Message, Error> {
        p.require(Action::Write)?;
        let number_id = parse_id(number, "messaging.whatsapp_number_not_found")?;
        let contact_id = parse_id(contact, "messaging.contact_not_found")?;
        content.check()?;
        let tenant = p.workspace_id;
        // The checks, read-only: a refusal changes nothing.
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let number = repo::number(&mut tx, number_id)
            .await?
            .ok_or_else(|| Error::not_found("messaging.whatsapp_number_not_found"))?;
        let c = crate::repo::contacts::get(&mut tx, contact_id)
            .await?
            .filter(|c| !c.anonymized)
            .ok_or_else(|| Error::not_found("messaging.contact_not_found"))?;
        let to = c
            .identities
            .iter()
            .find(|(k, _)| *k == IdentityKind::Whatsapp)
            .map(|(_, v)| v.clone())
            .or_else(|| c.phone.as_deref().map(|ph| ph.trim_start_matches('+').to_owned()))
            .ok_or_else(|| Error::new(ErrorKind::FailedPrecondition, "messaging.whatsapp_no_phone"))?;
        domain::check_consent(&c.consents, purpose, !content.is_free_form())?;
        if let Content::Template { name, language, params } = content {
            let t = repo::template_by_name(&mut tx, number.id, name, language)
                .await?
                .ok_or_else(|| Error::not_found("messaging.whatsapp_template_not_found"))?;
            let review: Review = t.status.parse().map_err(|_| Error::internal("stored template status"))?;
            check_send(review, usize::try_from(t.body_params).unwrap_or(0), params.len())?;
            // Marketing templates need marketing consent whatever the caller said.
            if t.category == "marketing" {
                domain::check_consent(&c.consents, Purpose::Marketing, true)?;
            }
        }
        if content.is_free_form() {
            let last = repo::last_inbound(&mut tx, number.id, contact_id).await?;
            if !domain::window_open(last, Utc::now()) {
                let names = repo::approved_template_names(&mut tx, number.id).await?;
                return Err(domain::window_closed(&names));
            }
        }
        db::commit(tx).await?;
        let provider = self.provider_for(&number)?;
        let token = self.number_token(&number)?;

        let id = Uuid::now_v7();
        let hold = self.credits.reserve(events::SEND_ACTION, 1, 0, &format!("whatsapp.message:{id}"), HOLD_TTL).await?;
        let stored = json!({"summary": content.summary(), "payload": content.payload(&to)});
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let new = repo::NewMessage {
            id,
            number_id: number.id,
            contact_id,
            direction: "out",
            kind: content.kind(),
            content: &stored,
            status: Status::Sending,
            wamid: None,
            provider: provider.name(),
            reservation: &hold.id,
            at: Utc::now(),
        };
        repo::insert_message(&mut tx, tenant, &new).await?;
        db::commit(tx).await?;

        let from = Sender { phone_number_id: &number.phone_number_id, token: &token };
        let result = provider.send(&from, &content.payload(&to)).await;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let outcome = match result {
            Ok(accepted) => {
                repo::record_send(&mut tx, id, Some(&accepted.wamid), Status::Sent, None).await?;
                events::settle_in(&mut tx, tenant, id, &hold.id, hold.amount).await?;
                let e = ev::WhatsAppMessageSent {
                    workspace_id: tenant.to_string(),
                    message_id: id.to_string(),
                    contact_id: contact_id.to_string(),
                    number_id: number.id.to_string(),
                    r#type: content.kind().to_owned(),
                    broadcast_id: String::new(),
                };
                events::message_sent(&mut tx, tenant, e).await?;
                record_activity(&mut tx, tenant, contact_id, id, "out", &content.summary()).await?;
                Ok(())
            }
            Err(e) if e.not_sent() => {
                let code = e.code();
                repo::record_send(&mut tx, id, None, Status::Failed, code).await?;
                events::settle_in(&mut tx, tenant, id, &hold.id, 0).await?;
                Err(refused(&e))
            }
            Err(e) => {
                // It may have gone out: leave it `sending` and its hold to expire; never resend.
                tracing::warn!(message = %id, error = %e, "whatsapp send outcome unknown");
                Err(Error::unavailable("messaging.whatsapp_unavailable").with_source(e))
            }
        };
        let row = repo::message(&mut tx, id).await?.ok_or_else(|| Error::internal("message vanished"))?;
        db::commit(tx).await?;
        outcome.map(|()| message_view(row))
    }

    // -----------------------------------------------------------------------------------------
    // The webhook

    /// Applies a request to `/webhooks/whatsapp`: the GET handshake, or a signed POST delivery.
    #[tracing::instrument(skip_all)]
    pub async fn deliver_webhook(
        &self,
        method: &str,
        query: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookAnswer, Error> {
        if method == "GET" {
            return Ok(self.handshake(query));
        }
        if method != "POST" {
            return Ok(WebhookAnswer::rejected(405, "webhooks.invalid_request"));
        }
        let signed = signature.is_some_and(|s| wa::verify_signature(&self.app_secret, body, s));
        if !signed {
            tracing::warn!("whatsapp webhook with a wrong signature");
            metrics::counter!("nexus_webhooks_rejected_total", "provider" => "whatsapp").increment(1);
            return Ok(WebhookAnswer::rejected(401, "webhooks.invalid_signature"));
        }
        let delivery = match domain::parse_delivery(body) {
            Ok(d) => d,
            Err(e) => return Ok(WebhookAnswer::rejected(400, e.code())),
        };
        let applied = self.apply(delivery).await?;
        metrics::counter!("nexus_webhooks_applied_total", "provider" => "whatsapp").increment(1);
        Ok(WebhookAnswer::json(200, json!({"received": true, "applied": applied})))
    }

    fn handshake(&self, query: &str) -> WebhookAnswer {
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let mode = params.get("hub.mode").map(String::as_str);
        let token = params.get("hub.verify_token").map(String::as_str).unwrap_or_default();
        let challenge = params.get("hub.challenge").cloned().unwrap_or_default();
        let token_ok =
            !self.verify_token.is_empty() && bool::from(token.as_bytes().ct_eq(self.verify_token.as_bytes()));
        if mode == Some("subscribe") && token_ok && !challenge.is_empty() && challenge.len() <= 256 {
            return WebhookAnswer { status: 200, content_type: "text/plain", body: challenge.into_bytes() };
        }
        WebhookAnswer::rejected(403, "webhooks.invalid_signature")
    }

    /// Stores what a delivery carries; answers how many messages and statuses changed something.
    async fn apply(&self, d: Delivery) -> Result<usize, Error> {
        let mut applied = 0;
        for m in d.messages {
            let Some(number) = self.number_for(&m.phone_number_id).await? else { continue };
            if let Some((contact, message)) = self.receive(&number, &m).await? {
                applied += 1;
                // Meta is answered 200 whatever the bot does; its failure is logged.
                let inbound =
                    super::bots::Inbound { contact, message, from: &m.from, text: &m.text, reply_id: &m.reply_id };
                if let Err(e) = self.run_bot(&number, &inbound).await {
                    tracing::warn!(error = ?e, "whatsapp bot");
                }
            }
        }
        for s in d.statuses {
            let Some(number) = self.number_for(&s.phone_number_id).await? else { continue };
            applied += usize::from(self.apply_status(&number, &s).await?);
        }
        for q in d.quality {
            applied += usize::from(self.apply_quality_update(&q).await?);
        }
        Ok(applied)
    }

    async fn number_for(&self, phone_number_id: &str) -> Result<Option<NumberRow>, Error> {
        let mut tx = db::system(&self.pool).await?;
        let n = repo::number_by_phone_id(&mut tx, phone_number_id).await?;
        db::commit(tx).await?;
        if n.is_none() {
            tracing::info!(phone_number_id, "whatsapp delivery for a number not connected here");
        }
        Ok(n)
    }

    /// Stores an inbound message once (by Meta's id), opens the window, and records it on the
    /// contact's timeline; an opt-out keyword withdraws the contact's WhatsApp consent.
    async fn receive(&self, number: &NumberRow, m: &domain::Inbound) -> Result<Option<(Uuid, Uuid)>, Error> {
        let tenant = TenantId::from_uuid(number.tenant_id);
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let (contact, _) =
            super::contacts::resolve_identity(&mut tx, tenant, IdentityKind::Whatsapp, &m.from, &m.name, "whatsapp")
                .await?;
        let id = Uuid::now_v7();
        let content = json!({"summary": m.text, "reply_id": m.reply_id, "raw": m.raw});
        let new = repo::NewMessage {
            id,
            number_id: number.id,
            contact_id: contact,
            direction: "in",
            kind: &m.kind,
            content: &content,
            status: Status::Received,
            wamid: Some(&m.wamid),
            provider: &number.provider,
            reservation: "",
            at: m.at,
        };
        if !repo::insert_message(&mut tx, tenant, &new).await? {
            return Ok(None);
        }
        repo::touch_conversation(&mut tx, tenant, number.id, contact, m.at).await?;
        if let Some(media) = &m.media {
            // Copied in at once by the media job: Meta's ids expire.
            repo::set_media_pending(&mut tx, id, &media.id, &media.mime_type).await?;
            events::media_pending(&mut tx, tenant, id).await?;
        }
        record_activity(&mut tx, tenant, contact, id, "in", &m.text).await?;
        if m.kind == "text"
            && let Some((KeywordAction::OptOut, _)) = crate::domain::consent::keyword(&m.text)
        {
            for purpose in [Purpose::Marketing, Purpose::Transactional] {
                let c = Consent {
                    channel: Channel::Whatsapp,
                    purpose,
                    status: ConsentStatus::Withdrawn,
                    source: "keyword".into(),
                    proof: m.text.chars().take(crate::domain::consent::PROOF_MAX).collect(),
                    changed_at: m.at,
                };
                crate::repo::contacts::set_consent(&mut tx, tenant, contact, &c, "system").await?;
                crate::events::consent_changed(&mut tx, tenant, contact, &c).await?;
            }
        }
        let e = ev::WhatsAppMessageReceived {
            workspace_id: tenant.to_string(),
            message_id: id.to_string(),
            contact_id: contact.to_string(),
            number_id: number.id.to_string(),
            r#type: m.kind.clone(),
            received_at: Some(nexus_platform::grpc::ts(m.at)),
        };
        events::message_received(&mut tx, tenant, e).await?;
        db::commit(tx).await?;
        Ok(Some((contact, id)))
    }

    /// Moves a sent message forward (never back), however often and in whatever order Meta
    /// delivers its statuses.
    async fn apply_status(&self, number: &NumberRow, s: &domain::StatusUpdate) -> Result<bool, Error> {
        let tenant = TenantId::from_uuid(number.tenant_id);
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let Some(msg) = repo::message_by_wamid_for_update(&mut tx, number.id, &s.wamid).await? else {
            return Ok(false);
        };
        let current: Status = msg.status.parse().map_err(|_| Error::internal("stored message status"))?;
        if !current.advances_to(s.status) {
            return Ok(false);
        }
        let code = if s.status == Status::Failed { s.error_code } else { None };
        repo::set_status(&mut tx, msg.id, s.status, code).await?;
        if s.status != Status::Sent {
            let e = ev::WhatsAppMessageStatusChanged {
                workspace_id: tenant.to_string(),
                message_id: msg.id.to_string(),
                contact_id: msg.contact_id.to_string(),
                status: s.status.as_str().to_owned(),
                error_code: code.unwrap_or(0),
            };
            events::status_changed(&mut tx, tenant, e).await?;
        }
        db::commit(tx).await?;
        Ok(true)
    }

    // -----------------------------------------------------------------------------------------
    // The simulator

    /// Plays Meta delivering `value` (an inbound message or a status) to a local number: signed
    /// with the app secret and passed through [`WhatsApp::deliver_webhook`] like Meta's own.
    pub async fn simulate(&self, p: &Principal, number: &str, event: Simulated) -> Result<(u32, String), Error> {
        p.require(Action::Write)?;
        let number_id = parse_id(number, "messaging.whatsapp_number_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let number = repo::number(&mut tx, number_id)
            .await?
            .ok_or_else(|| Error::not_found("messaging.whatsapp_number_not_found"))?;
        db::commit(tx).await?;
        if number.provider != "local" || !self.allow_local {
            return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.whatsapp_simulator_unavailable"));
        }
        let now = Utc::now().timestamp().to_string();
        let (value, id) = match event {
            Simulated::Inbound { from, name, text, message_id, reply_id, media } => {
                if !digits(&from) || text.chars().count() > domain::TEXT_MAX {
                    return Err(Error::invalid("messaging.whatsapp_invalid_id").with_param("field", "from"));
                }
                for (field, value) in [("name", &name), ("message_id", &message_id), ("reply_id", &reply_id)] {
                    if value.chars().count() > 200 {
                        return Err(Error::invalid("messaging.whatsapp_invalid_id").with_param("field", field));
                    }
                }
                let id =
                    if message_id.is_empty() { format!("wamid.sim.{}", Uuid::new_v4().simple()) } else { message_id };
                let msg = if let Some(m) = media {
                    domain::check_simulated_media(&m.kind, &m.mime_type, m.data.len())?;
                    // Kept by the sandbox the way Meta keeps a customer's file until it is fetched.
                    let (media_id, sha256) = self.local.attach_media(&m.mime_type, m.data.into());
                    let mut file = json!({"id": media_id, "mime_type": m.mime_type, "sha256": sha256});
                    if !text.is_empty() && m.kind != "audio" && m.kind != "sticker" {
                        file["caption"] = json!(text);
                    }
                    let mut msg = json!({"from": from, "id": id, "timestamp": now, "type": m.kind});
                    msg[m.kind.as_str()] = file;
                    msg
                } else if reply_id.is_empty() {
                    json!({"from": from, "id": id, "timestamp": now, "type": "text", "text": {"body": text}})
                } else {
                    json!({"from": from, "id": id, "timestamp": now, "type": "interactive",
                           "interactive": {"type": "button_reply", "button_reply": {"id": reply_id, "title": text}}})
                };
                (json!({"contacts": [{"profile": {"name": name}, "wa_id": from}], "messages": [msg]}), id)
            }
            Simulated::Status { wamid, status, error_code } => {
                if wamid.chars().count() > 200 {
                    return Err(Error::invalid("messaging.whatsapp_invalid_id").with_param("field", "wamid"));
                }
                // Only the statuses Meta reports; the others are this service's own.
                let st = match status.parse::<Status>() {
                    Ok(st @ (Status::Sent | Status::Delivered | Status::Read | Status::Failed)) => st,
                    _ => {
                        return Err(Error::invalid("messaging.whatsapp_invalid_status").with_param("status", status));
                    }
                };
                let mut s = json!({"id": wamid, "status": st.as_str(), "timestamp": now, "recipient_id": ""});
                if let Some(code) = error_code.filter(|_| st == Status::Failed) {
                    s["errors"] = json!([{"code": code, "title": "simulated"}]);
                }
                (json!({"statuses": [s]}), wamid)
            }
        };
        let body =
            domain::envelope(&number.waba_id, &number.phone_number_id, &number.display_phone_number, value).to_string();
        let signature = wa::signature(&self.app_secret, body.as_bytes());
        let answer = self.deliver_webhook("POST", "", Some(&signature), body.as_bytes()).await?;
        Ok((answer.status, id))
    }
}

/// What the simulator plays.
#[derive(Debug, Clone)]
pub enum Simulated {
    Inbound {
        from: String,
        name: String,
        text: String,
        message_id: String,
        reply_id: String,
        media: Option<SimulatedMedia>,
    },
    Status {
        wamid: String,
        status: String,
        error_code: Option<i64>,
    },
}

/// A file the simulator attaches to an inbound message.
#[derive(Debug, Clone)]
pub struct SimulatedMedia {
    pub kind: String,
    pub mime_type: String,
    pub data: Vec<u8>,
}

/// A refusal by Meta, as the caller sees it (the code explained in their language).
fn refused(e: &wa::WhatsAppError) -> Error {
    match e.code() {
        Some(code) if e.is_throttling() => {
            Error::new(ErrorKind::RateLimited, domain::meta_error_code(code)).with_param("code", code.to_string())
        }
        Some(code) => Error::new(ErrorKind::FailedPrecondition, domain::meta_error_code(code))
            .with_param("code", code.to_string()),
        None => Error::unavailable("messaging.whatsapp_unavailable"),
    }
}

/// Meta's answer to the standing read at connect, as the caller sees it: a token Meta refuses
/// (190) or a number it does not know or the token may not see (100) is the caller's to fix;
/// no answer is Meta being unavailable.
fn connect_refused(e: wa::WhatsAppError) -> Error {
    match e.code() {
        Some(wa::CODE_TOKEN) => Error::invalid("messaging.whatsapp_token_refused").with_source(e),
        Some(wa::CODE_INVALID_PARAMETER) => Error::invalid("messaging.whatsapp_number_unknown_to_meta").with_source(e),
        Some(code) => Error::new(ErrorKind::FailedPrecondition, domain::meta_error_code(code))
            .with_param("code", code.to_string())
            .with_source(e),
        None => Error::unavailable("messaging.whatsapp_unavailable").with_source(e),
    }
}

/// Every message is an activity of its contact (once, whatever is redelivered).
async fn record_activity(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    contact: Uuid,
    message: Uuid,
    direction: &str,
    summary: &str,
) -> Result<(), Error> {
    let key = format!("whatsapp:{message}");
    let body: String = summary.chars().take(2_000).collect();
    let a = crate::repo::activities::NewActivity {
        contact,
        kind: "message",
        body: &body,
        data: json!({"channel": "whatsapp", "direction": direction, "message_id": message.to_string()}),
        actor: "system",
        occurred_at: Utc::now(),
        source_key: Some(&key),
    };
    crate::repo::activities::insert(tx, tenant, &a).await?;
    Ok(())
}
