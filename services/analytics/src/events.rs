//! Domain events of every service into `analytics_events`, and their audit events into
//! `system_logs`. One durable consumer per producing service (`analytics-domain-<service>`,
//! filter `nexus.<service>.>`: NATS 2.9 allows one filter per consumer), each idempotent through
//! the platform inbox and, underneath, the tables' own unique keys.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use nexus_kernel::TenantId;
use nexus_platform::consumer::{Event, EventHandler, HandleError};
use nexus_proto::events as ev;
use prost::{Message, Name};
use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::domain::{self, Salt};
use crate::store::{SYSTEM_TENANT, Store};

pub struct DomainHandler {
    pub store: Arc<Store>,
}

/// An unreachable database is held through (not counted toward the dead-letter bound); other
/// failures are retried within the bound.
fn retry(e: nexus_kernel::Error) -> HandleError {
    HandleError::from(e)
}

/// `nexus.auth.user.signed_up` -> `auth.user.signed_up`.
pub fn event_name(subject: &str) -> &str {
    subject.strip_prefix("nexus.").unwrap_or(subject)
}

fn occurred(event: &Event) -> DateTime<Utc> {
    event
        .envelope
        .occurred_at
        .as_ref()
        .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .unwrap_or_else(Utc::now)
        .trunc_subsecs(6)
}

/// What a known event contributes to its row: properties, the user it is about, revenue.
#[derive(Default)]
struct Mapped {
    properties: serde_json::Map<String, Value>,
    user_id: Option<String>,
    revenue: Option<(i64, String)>,
}

fn obj(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Decodes the payload as `M` when the envelope says it is one.
fn decode<M: Message + Default + Name>(event: &Event) -> Option<M> {
    (event.envelope.event_type == M::full_name()).then(|| M::decode(event.envelope.payload.as_slice()).ok()).flatten()
}

/// Properties of the events NexusOne knows; an unknown type (a newer service) maps to nothing
/// and is still stored under its subject's name.
fn map_known(event: &Event) -> Option<Mapped> {
    let t = event.envelope.event_type.as_str();
    let m = match t {
        _ if t == ev::UserSignedUp::full_name() => {
            let e: ev::UserSignedUp = decode(event)?;
            Mapped {
                properties: obj(json!({"email": e.email, "locale": e.locale})),
                user_id: non_empty(e.user_id),
                revenue: None,
            }
        }
        _ if t == ev::UserLoggedIn::full_name() => {
            let e: ev::UserLoggedIn = decode(event)?;
            Mapped {
                properties: obj(json!({"method": e.method, "session_id": e.session_id, "ip": e.ip})),
                user_id: non_empty(e.user_id),
                revenue: None,
            }
        }
        _ if t == ev::UserLocked::full_name() => {
            let e: ev::UserLocked = decode(event)?;
            Mapped {
                properties: obj(json!({"minutes": e.minutes, "factor": e.factor})),
                user_id: non_empty(e.user_id),
                revenue: None,
            }
        }
        _ if t == ev::MfaEnabled::full_name() => {
            let e: ev::MfaEnabled = decode(event)?;
            Mapped { user_id: non_empty(e.user_id), ..Mapped::default() }
        }
        _ if t == ev::SessionRevoked::full_name() => {
            let e: ev::SessionRevoked = decode(event)?;
            Mapped {
                properties: obj(json!({"session_id": e.session_id, "reason": e.reason})),
                user_id: non_empty(e.user_id),
                revenue: None,
            }
        }
        _ if t == ev::ApiKeyCreated::full_name() => {
            let e: ev::ApiKeyCreated = decode(event)?;
            Mapped { properties: obj(json!({"key_id": e.key_id, "scopes": e.scopes})), ..Mapped::default() }
        }
        _ if t == ev::ApiKeyRevoked::full_name() => {
            let e: ev::ApiKeyRevoked = decode(event)?;
            Mapped { properties: obj(json!({"key_id": e.key_id})), ..Mapped::default() }
        }
        _ if t == ev::MemberInvited::full_name() => {
            let e: ev::MemberInvited = decode(event)?;
            Mapped { properties: obj(json!({"invitation_id": e.invitation_id, "role": e.role})), ..Mapped::default() }
        }
        _ if t == ev::MemberJoined::full_name() => {
            let e: ev::MemberJoined = decode(event)?;
            Mapped { properties: obj(json!({"role": e.role})), user_id: non_empty(e.user_id), revenue: None }
        }
        _ if t == ev::MemberRemoved::full_name() => {
            let e: ev::MemberRemoved = decode(event)?;
            Mapped { user_id: non_empty(e.user_id), ..Mapped::default() }
        }
        _ if t == ev::AccountDeletionRequested::full_name() => {
            let e: ev::AccountDeletionRequested = decode(event)?;
            Mapped { user_id: non_empty(e.user_id), ..Mapped::default() }
        }
        _ if t == ev::SubscriptionChanged::full_name() => {
            let e: ev::SubscriptionChanged = decode(event)?;
            Mapped {
                properties: obj(
                    json!({"plan": e.plan_code, "previous_plan": e.previous_plan_code, "status": e.status}),
                ),
                ..Mapped::default()
            }
        }
        _ if t == ev::CreditsLow::full_name() => {
            let e: ev::CreditsLow = decode(event)?;
            Mapped {
                properties: obj(
                    json!({"available": e.available, "period_grant": e.period_grant, "percent_used": e.percent_used}),
                ),
                ..Mapped::default()
            }
        }
        _ if t == ev::CreditsExhausted::full_name() => Mapped::default(),
        _ if t == ev::InvoicePaid::full_name() => {
            let e: ev::InvoicePaid = decode(event)?;
            let valid = e.currency.parse::<nexus_kernel::Currency>().is_ok();
            Mapped {
                properties: obj(json!({"invoice_id": e.invoice_id})),
                revenue: valid.then_some((e.amount_minor, e.currency)),
                ..Mapped::default()
            }
        }
        _ if t == ev::PaymentFailed::full_name() => {
            let e: ev::PaymentFailed = decode(event)?;
            Mapped { properties: obj(json!({"invoice_id": e.invoice_id})), ..Mapped::default() }
        }
        _ if t == ev::CreditsCharged::full_name() => {
            let e: ev::CreditsCharged = decode(event)?;
            Mapped {
                properties: obj(json!({"reservation_id": e.reservation_id, "action": e.action, "credits": e.credits})),
                ..Mapped::default()
            }
        }
        _ if t == ev::ContentGenerated::full_name() => {
            let e: ev::ContentGenerated = decode(event)?;
            Mapped {
                properties: obj(json!({"generation_id": e.generation_id, "kind": e.kind, "language": e.language,
                    "provider": e.provider, "model": e.model, "total_tokens": e.total_tokens, "credits": e.credits,
                    "status": e.status})),
                ..Mapped::default()
            }
        }
        _ if t == ev::PagePublished::full_name() => {
            let e: ev::PagePublished = decode(event)?;
            Mapped {
                properties: obj(
                    json!({"page_id": e.page_id, "slug": e.slug, "version": e.version, "language": e.language}),
                ),
                ..Mapped::default()
            }
        }
        _ if t == ev::PageUnpublished::full_name() => {
            let e: ev::PageUnpublished = decode(event)?;
            Mapped { properties: obj(json!({"page_id": e.page_id, "slug": e.slug})), ..Mapped::default() }
        }
        _ if t == ev::PageLeadCaptured::full_name() => {
            let e: ev::PageLeadCaptured = decode(event)?;
            // The visitor's name and message are personal free text: only whether they were
            // given is kept. Email and phone are hashed by their keys.
            Mapped {
                properties: obj(json!({"page_id": e.page_id, "lead_id": e.lead_id, "slug": e.slug,
                    "language": e.language, "email": e.email, "phone": e.phone, "consent": e.consent,
                    "has_name": !e.name.is_empty(), "has_message": !e.message.is_empty()})),
                ..Mapped::default()
            }
        }
        _ if t == ev::AgentReplied::full_name() => {
            let e: ev::AgentReplied = decode(event)?;
            Mapped {
                properties: obj(json!({"agent_id": e.agent_id, "conversation_id": e.conversation_id,
                    "provider": e.provider, "credits": e.credits})),
                ..Mapped::default()
            }
        }
        _ if t == ev::MeteredJobFinished::full_name() => {
            let e: ev::MeteredJobFinished = decode(event)?;
            Mapped {
                properties: obj(json!({"reservation_id": e.reservation_id, "succeeded": e.succeeded,
                    "credits": e.credits, "job": e.job})),
                ..Mapped::default()
            }
        }
        _ => return None,
    };
    Some(m)
}

#[async_trait::async_trait]
impl EventHandler for DomainHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.envelope.event_type == ev::AuditRecorded::full_name() {
            return self.audit(tx, event).await;
        }
        // Facts of no workspace (failed logins of unknown addresses) have no place in a
        // workspace's analytics.
        let Some(tenant) = event.tenant else { return Ok(()) };
        let salt = self.store.settings(tenant).await.map_err(retry)?.salt;
        let name = event_name(&event.subject).to_owned();
        let source = name.split('.').next().unwrap_or("").to_owned();
        let at = occurred(event);
        let mapped = map_known(event).unwrap_or_default();
        let mut props = Value::Object(mapped.properties);
        domain::scrub_json(&mut props, &salt);
        if event.envelope.event_type == ev::SubscriptionChanged::full_name() {
            let plan = props["plan"].as_str().unwrap_or_default().to_owned();
            self.set_plan(tx, tenant, &plan, at).await?;
        }
        if event.envelope.event_type == ev::CreditsCharged::full_name()
            && let Value::Object(m) = &mut props
        {
            m.insert("plan".into(), Value::String(self.plan_of(tx, tenant).await?));
        }
        let actor = &event.envelope.actor_id;
        let user = mapped.user_id.or_else(|| actor.starts_with("usr_").then(|| actor.clone()));
        let user = user.map(|u| domain::scrub_identity(&u, &salt));
        self.store.ensure_partitions([at]).await.map_err(retry)?;
        sqlx::query(
            "INSERT INTO analytics_events (tenant_id, client_event_id, name, source, occurred_at, received_at, \
                    user_id, properties, revenue_minor, currency) \
             VALUES ($1, $2, $3, $4, $5, now(), $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_uuid())
        .bind(event.event_id.to_string())
        .bind(&name)
        .bind(&source)
        .bind(at)
        .bind(user)
        .bind(&props)
        .bind(mapped.revenue.as_ref().map(|r| r.0))
        .bind(mapped.revenue.map(|r| r.1))
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

impl DomainHandler {
    async fn set_plan(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        plan: &str,
        at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        // Only a newer fact moves the plan: redelivered old events cannot roll it back.
        sqlx::query(
            "INSERT INTO workspace_plans (tenant_id, plan_code, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET plan_code = excluded.plan_code, updated_at = excluded.updated_at \
             WHERE workspace_plans.updated_at <= excluded.updated_at",
        )
        .bind(tenant.as_uuid())
        .bind(plan)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn plan_of(&self, tx: &mut PgConnection, tenant: TenantId) -> Result<String, HandleError> {
        let plan: Option<String> = sqlx::query_scalar("SELECT plan_code FROM workspace_plans WHERE tenant_id = $1")
            .bind(tenant.as_uuid())
            .fetch_optional(&mut *tx)
            .await?;
        Ok(plan.unwrap_or_else(|| "unknown".into()))
    }

    async fn audit(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let a: ev::AuditRecorded = event.decode()?;
        let salt: Salt = self.store.settings(event.tenant.unwrap_or(SYSTEM_TENANT)).await.map_err(retry)?.salt;
        let json = |s: &str| -> Option<Value> {
            if s.is_empty() {
                return None;
            }
            let mut v: Value = serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()));
            if v.is_null() {
                return None;
            }
            domain::scrub_json(&mut v, &salt);
            Some(v)
        };
        let ip = a.client_ip.parse::<std::net::IpAddr>().ok().map(|ip| domain::truncate_ip(ip).to_string());
        let actor = if a.actor_id.is_empty() { event.envelope.actor_id.clone() } else { a.actor_id.clone() };
        let service = if event.envelope.source.is_empty() { a.schema.clone() } else { event.envelope.source.clone() };
        sqlx::query(
            "INSERT INTO system_logs (id, tenant_id, at, actor, action, service, resource_type, resource_id, before, after, \
                    ip, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::inet, $12) ON CONFLICT (id) DO NOTHING",
        )
        .bind(event.event_id)
        .bind(event.tenant.map(|t| t.as_uuid()))
        .bind(occurred(event))
        .bind(domain::scrub_identity(&actor, &salt))
        .bind(a.operation.to_lowercase())
        .bind(service)
        .bind(format!("{}.{}", a.schema, a.table))
        .bind(&a.row_id)
        .bind(json(&a.before_json))
        .bind(json(&a.after_json))
        .bind(ip)
        .bind(if a.request_id.is_empty() { &event.envelope.request_id } else { &a.request_id })
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_the_namespace() {
        assert_eq!(event_name("nexus.auth.user.signed_up"), "auth.user.signed_up");
        assert_eq!(event_name("other"), "other");
    }
}
