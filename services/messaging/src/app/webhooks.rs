//! Outbound webhooks: endpoint management, the event catalogue, publishing messages (in the
//! caller's transaction), test-sends, replays and the logs of messages and attempts.
//!
//! Endpoints are integration settings that send the workspace's data to a URL of the caller's
//! choice, so changing them takes an admin ([`Action::ManageApiKeys`]); reading them, a viewer.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, Page, PageRequest, TenantId};
use nexus_platform::crypto::Sealer;
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use nexus_platform::outbound::{OutboundClient, OutboundError};
use nexus_providers::standard_webhooks::SigningSecret;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::parse_id;
use crate::domain::webhooks::{
    self as rules, ATTEMPTS_KEPT, CATALOGUE, Clock, Endpoint, EventType, Message, ROTATION_OVERLAP,
};
use crate::repo;
use crate::repo::webhooks::{EndpointChange, NewEndpoint};

const ENDPOINT_NOT_FOUND: &str = "messaging.webhook_endpoint_not_found";
const MESSAGE_NOT_FOUND: &str = "messaging.webhook_message_not_found";
const URL_MAX: usize = 2048;

/// The sealing context of an endpoint's secrets: a sealed value copied to another row or
/// column does not open.
pub(crate) fn secret_context(column: &str, endpoint: Uuid) -> String {
    format!("webhook_endpoints.{column}:{endpoint}")
}

/// The webhook use cases and what they need beyond the pool.
#[derive(Clone)]
pub struct Webhooks {
    pub pool: PgPool,
    /// Seals endpoint secrets at rest.
    pub sealer: Sealer,
    /// Checks endpoint URLs with the rules deliveries are sent under.
    pub outbound: OutboundClient,
    /// Plain `http://` endpoints allowed (development); allowlisted targets may always use it.
    pub allow_http: bool,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").field("allow_http", &self.allow_http).finish_non_exhaustive()
    }
}

/// A new endpoint as asked for.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    /// `None`: the default.
    pub rate_limit: Option<u32>,
}

/// The fields an update may name in its mask.
const MASKABLE: [&str; 4] = ["url", "description", "event_types", "rate_limit"];

impl Webhooks {
    /// The event types endpoints can subscribe to, each with its schema and an example.
    pub fn event_types(&self, p: &Principal) -> Result<&'static [EventType], Error> {
        p.require(Action::Read)?;
        Ok(CATALOGUE)
    }

    /// Creates an endpoint; the answer carries its `whsec_` secret, shown this once.
    #[tracing::instrument(skip_all)]
    pub async fn create_endpoint(&self, p: &Principal, input: &EndpointInput) -> Result<(Endpoint, String), Error> {
        p.require(Action::ManageApiKeys)?;
        let description = rules::check_description(&input.description)?;
        let event_types = rules::check_filter(&input.event_types, CATALOGUE)?;
        let rate_limit = rules::check_rate_limit(input.rate_limit)?;
        let url = self.check_url(&input.url).await?;
        let id = Uuid::now_v7();
        let secret = SigningSecret::generate();
        let sealed = self.sealer.seal(secret.expose().as_bytes(), &secret_context("secret", id));
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let new = NewEndpoint {
            url: &url,
            description: &description,
            event_types: &event_types,
            rate_limit,
            secret_sealed: &sealed,
        };
        let endpoint = repo::webhooks::insert_endpoint(&mut tx, p.workspace_id, id, &new).await?;
        db::commit(tx).await?;
        Ok((endpoint, secret.expose()))
    }

    #[tracing::instrument(skip_all, fields(endpoint = %id))]
    pub async fn endpoint(&self, p: &Principal, id: &str) -> Result<Endpoint, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, ENDPOINT_NOT_FOUND)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let found =
            repo::webhooks::get_endpoint(&mut tx, id).await?.ok_or_else(|| Error::not_found(ENDPOINT_NOT_FOUND))?;
        db::commit(tx).await?;
        Ok(found)
    }

    #[tracing::instrument(skip_all)]
    pub async fn endpoints(&self, p: &Principal, page: &PageRequest) -> Result<Page<Endpoint>, Error> {
        p.require(Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let found = repo::webhooks::list_endpoints(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(found)
    }

    /// Changes the fields named in `mask` (every field when it is empty and `input` is given);
    /// `enable` re-enables a disabled endpoint.
    #[tracing::instrument(skip_all, fields(endpoint = %id))]
    pub async fn update_endpoint(
        &self,
        p: &Principal,
        id: &str,
        input: Option<&EndpointInput>,
        mask: &[String],
        enable: bool,
    ) -> Result<Endpoint, Error> {
        p.require(Action::ManageApiKeys)?;
        let id = parse_id(id, ENDPOINT_NOT_FOUND)?;
        let mask: Vec<&str> = mask.iter().map(|m| m.trim()).filter(|m| !m.is_empty()).collect();
        if let Some(bad) = mask.iter().find(|m| !MASKABLE.contains(m)) {
            return Err(Error::invalid("messaging.webhook_update_mask_invalid")
                .with_param("field", bad.chars().take(40).collect::<String>())
                .with_violation("update_mask", "unknown"));
        }
        let mut change = EndpointChange { enable, ..Default::default() };
        if let Some(input) = input {
            let named = |f: &str| mask.is_empty() || mask.contains(&f);
            if named("description") {
                change.description = Some(rules::check_description(&input.description)?);
            }
            if named("event_types") {
                change.event_types = Some(rules::check_filter(&input.event_types, CATALOGUE)?);
            }
            if named("rate_limit") {
                change.rate_limit = Some(rules::check_rate_limit(input.rate_limit)?);
            }
            if named("url") {
                change.url = Some(self.check_url(&input.url).await?);
            }
        } else if !mask.is_empty() {
            return Err(Error::invalid("messaging.webhook_update_mask_invalid").with_violation("endpoint", "required"));
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let updated = repo::webhooks::update_endpoint(&mut tx, id, &change)
            .await?
            .ok_or_else(|| Error::not_found(ENDPOINT_NOT_FOUND))?;
        db::commit(tx).await?;
        Ok(updated)
    }

    /// Deletes an endpoint with its pending deliveries and attempts log.
    #[tracing::instrument(skip_all, fields(endpoint = %id))]
    pub async fn delete_endpoint(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(Action::ManageApiKeys)?;
        let id = parse_id(id, ENDPOINT_NOT_FOUND)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if !repo::webhooks::delete_endpoint(&mut tx, id).await? {
            return Err(Error::not_found(ENDPOINT_NOT_FOUND));
        }
        db::commit(tx).await
    }

    /// A new secret, shown once; the current one keeps signing (as well) for 24 hours, so
    /// receivers can switch without losing a delivery.
    #[tracing::instrument(skip_all, fields(endpoint = %id))]
    pub async fn rotate_secret(&self, p: &Principal, id: &str) -> Result<(Endpoint, String), Error> {
        p.require(Action::ManageApiKeys)?;
        let id = parse_id(id, ENDPOINT_NOT_FOUND)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let current = repo::webhooks::secret_for_rotation(&mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found(ENDPOINT_NOT_FOUND))?;
        let old = self.sealer.open(&current, &secret_context("secret", id)).map_err(Error::internal)?;
        let previous = self.sealer.seal(&old, &secret_context("previous_secret", id));
        let secret = SigningSecret::generate();
        let sealed = self.sealer.seal(secret.expose().as_bytes(), &secret_context("secret", id));
        let expires = self.clock.now() + chrono::Duration::from_std(ROTATION_OVERLAP).map_err(Error::internal)?;
        let endpoint = repo::webhooks::rotate_secret(&mut tx, id, &sealed, &previous, expires)
            .await?
            .ok_or_else(|| Error::not_found(ENDPOINT_NOT_FOUND))?;
        db::commit(tx).await?;
        Ok((endpoint, secret.expose()))
    }

    /// Delivers the catalogue's example of `event_type` to one endpoint (whatever it
    /// subscribes to), like any message: signed, retried, logged.
    #[tracing::instrument(skip_all, fields(endpoint = %endpoint))]
    pub async fn send_test(&self, p: &Principal, endpoint: &str, event_type: &str) -> Result<Message, Error> {
        p.require(Action::ManageApiKeys)?;
        let endpoint = parse_id(endpoint, ENDPOINT_NOT_FOUND)?;
        let kind = rules::event_type(event_type.trim()).ok_or_else(|| {
            Error::invalid("messaging.unknown_event_type")
                .with_param("type", event_type.chars().take(100).collect::<String>())
                .with_violation("event_type", "unknown")
        })?;
        let example: serde_json::Value = serde_json::from_str(kind.example).map_err(Error::internal)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let target = repo::webhooks::get_endpoint(&mut tx, endpoint)
            .await?
            .ok_or_else(|| Error::not_found(ENDPOINT_NOT_FOUND))?;
        ensure_enabled(&target)?;
        let id = Uuid::now_v7();
        let key = format!("test:{id}");
        let message = repo::webhooks::insert_message(&mut tx, p.workspace_id, id, kind.name, &key, &example)
            .await?
            .ok_or_else(|| Error::internal("a fresh test key collided"))?;
        repo::webhooks::schedule(&mut tx, p.workspace_id, endpoint, message.id).await?;
        db::commit(tx).await?;
        Ok(message)
    }

    /// Sends one message (`message` given) or every message since `since` that the endpoint
    /// subscribes to, again, whatever became of earlier attempts. Answers how many.
    #[tracing::instrument(skip_all, fields(endpoint = %endpoint))]
    pub async fn replay(
        &self,
        p: &Principal,
        endpoint: &str,
        message: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<u64, Error> {
        p.require(Action::ManageApiKeys)?;
        let endpoint = parse_id(endpoint, ENDPOINT_NOT_FOUND)?;
        let message = if message.trim().is_empty() { None } else { Some(parse_id(message, MESSAGE_NOT_FOUND)?) };
        let now = self.clock.now();
        if message.is_none() {
            let oldest = now - chrono::Duration::from_std(ATTEMPTS_KEPT).map_err(Error::internal)?;
            match since {
                Some(s) if s >= oldest && s <= now => {}
                _ => {
                    return Err(Error::invalid("messaging.webhook_replay_since_invalid")
                        .with_param("days", (ATTEMPTS_KEPT.as_secs() / 86_400).to_string())
                        .with_violation("since", "out_of_range"));
                }
            }
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let target = repo::webhooks::get_endpoint(&mut tx, endpoint)
            .await?
            .ok_or_else(|| Error::not_found(ENDPOINT_NOT_FOUND))?;
        ensure_enabled(&target)?;
        let scheduled = match (message, since) {
            (Some(m), _) => {
                repo::webhooks::get_message(&mut tx, m).await?.ok_or_else(|| Error::not_found(MESSAGE_NOT_FOUND))?;
                repo::webhooks::schedule(&mut tx, p.workspace_id, endpoint, m).await?;
                1
            }
            (None, Some(since)) => repo::webhooks::schedule_since(&mut tx, p.workspace_id, endpoint, since).await?,
            (None, None) => 0,
        };
        db::commit(tx).await?;
        Ok(scheduled)
    }

    #[tracing::instrument(skip_all)]
    pub async fn messages(&self, p: &Principal, event_type: &str, page: &PageRequest) -> Result<Page<Message>, Error> {
        p.require(Action::Read)?;
        let keyset = Keyset::new(page)?;
        let event_type = Some(event_type.trim()).filter(|t| !t.is_empty());
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let found = repo::webhooks::list_messages(&mut tx, event_type, &keyset).await?;
        db::commit(tx).await?;
        Ok(found)
    }

    /// An endpoint's attempts (of one message when `message` is not empty), newest first.
    #[tracing::instrument(skip_all)]
    pub async fn attempts(
        &self,
        p: &Principal,
        endpoint: &str,
        message: &str,
        page: &PageRequest,
    ) -> Result<Page<rules::Attempt>, Error> {
        p.require(Action::Read)?;
        let endpoint = parse_id(endpoint, ENDPOINT_NOT_FOUND)?;
        let message = if message.trim().is_empty() { None } else { Some(parse_id(message, MESSAGE_NOT_FOUND)?) };
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::webhooks::get_endpoint(&mut tx, endpoint).await?.ok_or_else(|| Error::not_found(ENDPOINT_NOT_FOUND))?;
        let found = repo::webhooks::list_attempts(&mut tx, endpoint, message, &keyset).await?;
        db::commit(tx).await?;
        Ok(found)
    }

    /// An endpoint URL as deliveries will see it: http(s) without credentials, at most 2 KiB,
    /// resolving only to addresses the outbound rules allow, and https unless plain http is
    /// allowed here (development) or the target is an allowlisted one.
    async fn check_url(&self, raw: &str) -> Result<String, Error> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > URL_MAX {
            return Err(Error::invalid("messaging.webhook_url_invalid")
                .with_param("max", URL_MAX.to_string())
                .with_violation("url", "invalid"));
        }
        let dest = self.outbound.check_destination(raw).await.map_err(|e| match e {
            OutboundError::Blocked(_) => {
                Error::new(ErrorKind::Unprocessable, "messaging.webhook_url_refused").with_violation("url", "refused")
            }
            OutboundError::Transport(_) => Error::new(ErrorKind::Unprocessable, "messaging.webhook_url_unresolvable")
                .with_violation("url", "unresolvable"),
            _ => Error::invalid("messaging.webhook_url_invalid")
                .with_param("max", URL_MAX.to_string())
                .with_violation("url", "invalid"),
        })?;
        if dest.url.scheme() != "https" && !(self.allow_http || dest.allowlisted) {
            return Err(Error::invalid("messaging.webhook_https_required").with_violation("url", "https_required"));
        }
        let url = dest.url.to_string();
        if url.len() > URL_MAX {
            return Err(Error::invalid("messaging.webhook_url_invalid")
                .with_param("max", URL_MAX.to_string())
                .with_violation("url", "invalid"));
        }
        Ok(url)
    }
}

fn ensure_enabled(e: &Endpoint) -> Result<(), Error> {
    if e.status == rules::EndpointStatus::Disabled {
        return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.webhook_endpoint_disabled"));
    }
    Ok(())
}

/// [`publish`] of many messages of one type, `(event key, payload)`, in two statements (a bulk
/// write such as an import). Answers how many deliveries were scheduled.
pub async fn publish_many(
    conn: &mut PgConnection,
    workspace: TenantId,
    event_type: &str,
    items: &[(String, serde_json::Value)],
) -> Result<u64, Error> {
    let kind = rules::event_type(event_type).ok_or_else(|| {
        Error::invalid("messaging.unknown_event_type")
            .with_param("type", event_type.chars().take(100).collect::<String>())
    })?;
    let mut messages = Vec::with_capacity(items.len());
    for (key, payload) in items {
        if key.is_empty() || key.len() > 200 {
            return Err(Error::internal(format!("webhook event key of {} bytes", key.len())));
        }
        if serde_json::to_vec(payload).map_err(Error::internal)?.len() > rules::PAYLOAD_MAX_BYTES {
            return Err(Error::new(ErrorKind::PayloadTooLarge, "messaging.webhook_payload_too_large")
                .with_param("limit", rules::PAYLOAD_MAX_BYTES.to_string()));
        }
        messages.push((Uuid::now_v7(), key.clone(), payload.clone()));
    }
    if messages.is_empty() {
        return Ok(0);
    }
    let inserted = repo::webhooks::insert_messages(conn, workspace, kind.name, &messages).await?;
    let fanned = repo::webhooks::fan_out_many(conn, workspace, &inserted, kind.name).await?;
    tracing::debug!(
        messages = inserted.len(),
        event_type = kind.name,
        deliveries = fanned,
        "webhook messages published"
    );
    Ok(fanned)
}

/// Makes a message of `event_type` for the workspace's endpoints, inside the caller's
/// transaction, so the change it announces and its deliveries commit together (or not at all).
/// `event_key` names the source event: the same key twice makes one message, so a consumer
/// handling an event again, or a use case retried, sends nothing twice. Answers the message,
/// or `None` when the key was used before.
pub async fn publish(
    conn: &mut PgConnection,
    workspace: TenantId,
    event_type: &str,
    event_key: &str,
    payload: &serde_json::Value,
) -> Result<Option<Message>, Error> {
    let kind = rules::event_type(event_type).ok_or_else(|| {
        Error::invalid("messaging.unknown_event_type")
            .with_param("type", event_type.chars().take(100).collect::<String>())
    })?;
    if event_key.is_empty() || event_key.len() > 200 {
        return Err(Error::internal(format!("webhook event key of {} bytes", event_key.len())));
    }
    if serde_json::to_vec(payload).map_err(Error::internal)?.len() > rules::PAYLOAD_MAX_BYTES {
        return Err(Error::new(ErrorKind::PayloadTooLarge, "messaging.webhook_payload_too_large")
            .with_param("limit", rules::PAYLOAD_MAX_BYTES.to_string()));
    }
    let Some(message) =
        repo::webhooks::insert_message(conn, workspace, Uuid::now_v7(), kind.name, event_key, payload).await?
    else {
        return Ok(None);
    };
    let fanned = repo::webhooks::fan_out(conn, workspace, message.id, kind.name).await?;
    tracing::debug!(message = %message.id, event_type = kind.name, deliveries = fanned, "webhook message published");
    Ok(Some(message))
}
