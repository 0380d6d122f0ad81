//! Domain events of every service into `analytics_events`, and their audit events into
//! `system_logs`. One durable consumer per producing service (`analytics-domain-<service>`,
//! filter `nexus.<service>.>`: NATS 2.9 allows one filter per consumer), each idempotent through
//! the platform inbox and, underneath, the tables' own unique keys.

pub mod mapping;

use std::sync::Arc;

use nexus_kernel::TenantId;
use nexus_platform::consumer::{Event, EventHandler, HandleError};
use nexus_proto::events as ev;
use prost::Name;
use serde_json::Value;
use sqlx::PgConnection;

use self::mapping::{event_name, map_known, occurred};
use crate::app::Analytics;
use crate::domain::workspace::SYSTEM_TENANT;
use crate::domain::{self, Salt, rollup};
use crate::repo;

pub struct DomainHandler {
    pub app: Arc<Analytics>,
}

#[async_trait::async_trait]
impl EventHandler for DomainHandler {
    // Errors: an unreachable database is held through (not counted toward the dead-letter
    // bound); other failures are retried within the bound.
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.envelope.event_type == ev::AuditRecorded::full_name() {
            return self.audit(tx, event).await;
        }
        // Facts of no workspace (failed logins of unknown addresses) have no place in a
        // workspace's analytics.
        let Some(tenant) = event.tenant else { return Ok(()) };
        let salt = self.app.settings(tenant).await?.salt;
        let name = event_name(&event.subject);
        let source = name.split('.').next().unwrap_or("");
        let at = occurred(event);
        let mapped = map_known(event).unwrap_or_default();
        let mut props = Value::Object(mapped.properties);
        domain::scrub_json(&mut props, &salt);
        if event.envelope.event_type == ev::SubscriptionChanged::full_name() {
            let plan = props["plan"].as_str().unwrap_or_default();
            repo::plans::set(tx, tenant, plan, at).await?;
        }
        if event.envelope.event_type == ev::CreditsCharged::full_name()
            && let Value::Object(m) = &mut props
        {
            m.insert("plan".into(), Value::String(plan_of(tx, tenant).await?));
        }
        let actor = &event.envelope.actor_id;
        let user = mapped.user_id.or_else(|| actor.starts_with("usr_").then(|| actor.clone()));
        let user_id = user.map(|u| domain::scrub_identity(&u, &salt));
        self.app.ensure_partitions([at]).await?;
        let stored = repo::events::insert_domain(
            tx,
            repo::events::DomainEvent {
                tenant,
                event_id: event.event_id.to_string(),
                name,
                source,
                occurred_at: at,
                user_id: user_id.clone(),
                properties: &props,
                revenue: mapped.revenue.clone(),
            },
        )
        .await?;
        // Its rollups in the same transaction; a redelivered event was not stored again.
        if stored {
            let fact = rollup::Fact {
                tenant: tenant.as_uuid(),
                at,
                name,
                user_id: user_id.as_deref(),
                anonymous_id: None,
                revenue: mapped.revenue.as_ref().map(|(a, c)| (*a, c.as_str())),
                feature: (name == rollup::FEATURE_EVENT).then(|| rollup::Feature::from_properties(&props)),
            };
            repo::rollups::append(tx, &rollup::aggregate([fact])).await?;
        }
        Ok(())
    }
}

async fn plan_of(tx: &mut PgConnection, tenant: TenantId) -> Result<String, HandleError> {
    Ok(repo::plans::get(tx, tenant).await?.unwrap_or_else(|| "unknown".into()))
}

impl DomainHandler {
    async fn audit(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let a: ev::AuditRecorded = event.decode()?;
        let salt: Salt = self.app.settings(event.tenant.unwrap_or(SYSTEM_TENANT)).await?.salt;
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
        let actor = if a.actor_id.is_empty() { &event.envelope.actor_id } else { &a.actor_id };
        let service = if event.envelope.source.is_empty() { &a.schema } else { &event.envelope.source };
        let resource_type = format!("{}.{}", a.schema, a.table);
        repo::audit::insert(
            tx,
            repo::audit::NewEntry {
                id: event.event_id,
                tenant: event.tenant,
                at: occurred(event),
                actor: &domain::scrub_identity(actor, &salt),
                action: &a.operation.to_lowercase(),
                service,
                resource_type: &resource_type,
                resource_id: &a.row_id,
                before: json(&a.before_json),
                after: json(&a.after_json),
                ip,
                request_id: if a.request_id.is_empty() { &event.envelope.request_id } else { &a.request_id },
            },
        )
        .await?;
        Ok(())
    }
}
