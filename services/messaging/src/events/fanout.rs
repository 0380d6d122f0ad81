//! Other services' public events as webhook messages: content's page events become messages of
//! the catalogue's `page.*` types, the ads scheduler's post and account events `post.*` and
//! `account.paused`, analytics' churn model `churn_risk.high`, for the workspace's endpoints. The message's event key is the
//! event id, and the consumer's inbox records it in the same transaction, so a redelivered event
//! makes no second message.

use nexus_platform::config::NatsConfig;
use nexus_platform::consumer::{ConsumerSpec, Event, EventHandler, HandleError};
use nexus_platform::grpc::from_ts;
use nexus_proto::events::{
    AdsAccountPaused, AdsPostFailed, AdsPostPublished, AdsPostScheduled, ChurnRiskHigh, PageLeadCaptured,
    PagePublished, PageUnpublished,
};
use serde_json::json;
use sqlx::PgConnection;

use crate::app::webhooks::publish;

/// The durable consumer of content's page events.
pub fn spec(nats: &NatsConfig) -> ConsumerSpec {
    ConsumerSpec::new("content", "messaging-webhooks-content", "nexus.content.page.>", nats)
}

/// The durable consumers of the ads service's public events: posts and accounts (one filter
/// each on JetStream 2.9; engagement readings and campaign internals are not received).
pub fn ads_specs(nats: &NatsConfig) -> [ConsumerSpec; 2] {
    [
        ConsumerSpec::new("ads", "messaging-webhooks-ads-posts", "nexus.ads.post.>", nats),
        ConsumerSpec::new("ads", "messaging-webhooks-ads-accounts", "nexus.ads.account.>", nats),
    ]
}

/// The durable consumer of analytics' churn-risk events (a retention playbook's trigger).
pub fn analytics_spec(nats: &NatsConfig) -> ConsumerSpec {
    ConsumerSpec::new("analytics", "messaging-webhooks-analytics-churn", "nexus.analytics.churn_risk.>", nats)
}

pub struct AnalyticsFanout;

#[async_trait::async_trait]
impl EventHandler for AnalyticsFanout {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.subject != "nexus.analytics.churn_risk.high" {
            return Ok(());
        }
        let e: ChurnRiskHigh = event.decode()?;
        let factors: Vec<serde_json::Value> = e
            .factors
            .iter()
            .map(|f| json!({"feature": f.feature, "value": f.value, "contribution": f.contribution}))
            .collect();
        let data = json!({"population": e.population, "subject": e.subject, "score": e.score,
            "threshold": e.threshold, "factors": factors, "model_trained_at": time(e.model_trained_at),
            "scored_at": time(e.scored_at)});
        fan_out(tx, event, "churn_risk.high", &data).await
    }
}

pub struct ContentFanout;

#[async_trait::async_trait]
impl EventHandler for ContentFanout {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let (event_type, data) = match event.subject.as_str() {
            "nexus.content.page.lead_captured" => {
                let e: PageLeadCaptured = event.decode()?;
                let data = json!({
                    "page_id": e.page_id, "lead_id": e.lead_id, "slug": e.slug, "language": e.language,
                    "name": e.name, "email": e.email, "phone": e.phone, "message": e.message, "consent": e.consent,
                });
                ("page.lead_captured", data)
            }
            "nexus.content.page.published" => {
                let e: PagePublished = event.decode()?;
                let data = json!({"page_id": e.page_id, "slug": e.slug, "version": e.version, "language": e.language});
                ("page.published", data)
            }
            "nexus.content.page.unpublished" => {
                let e: PageUnpublished = event.decode()?;
                ("page.unpublished", json!({"page_id": e.page_id, "slug": e.slug}))
            }
            // Not a public event type: nothing to send.
            _ => return Ok(()),
        };
        fan_out(tx, event, event_type, &data).await
    }
}

/// The message of `event` for the workspace's endpoints, once per event.
async fn fan_out(
    tx: &mut PgConnection,
    event: &Event,
    event_type: &str,
    data: &serde_json::Value,
) -> Result<(), HandleError> {
    let tenant = event.tenant.ok_or_else(|| HandleError::Permanent(format!("{event_type} without a workspace")))?;
    nexus_platform::db::enter_tenant(tx, tenant).await?;
    publish(tx, tenant, event_type, &format!("event:{}", event.event_id), data).await?;
    Ok(())
}

/// RFC 3339, or null when unset.
fn time(t: Option<prost_types::Timestamp>) -> serde_json::Value {
    t.as_ref().and_then(from_ts).map_or(serde_json::Value::Null, |t| json!(t.to_rfc3339()))
}

pub struct AdsFanout;

#[async_trait::async_trait]
impl EventHandler for AdsFanout {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let (event_type, data) = match event.subject.as_str() {
            "nexus.ads.post.scheduled" => {
                let e: AdsPostScheduled = event.decode()?;
                let data = json!({"post_id": e.post_id, "target_id": e.target_id, "provider": e.provider,
                    "platform": e.platform, "account": e.account, "scheduled_at": time(e.scheduled_at)});
                ("post.scheduled", data)
            }
            "nexus.ads.post.published" => {
                let e: AdsPostPublished = event.decode()?;
                let data = json!({"post_id": e.post_id, "target_id": e.target_id, "provider": e.provider,
                    "platform": e.platform, "account": e.account, "platform_post_id": e.platform_post_id,
                    "permalink": e.permalink, "scheduled_at": time(e.scheduled_at), "published_at": time(e.published_at)});
                ("post.published", data)
            }
            "nexus.ads.post.failed" => {
                let e: AdsPostFailed = event.decode()?;
                let data = json!({"post_id": e.post_id, "target_id": e.target_id, "provider": e.provider,
                    "platform": e.platform, "account": e.account, "error_code": e.error_code, "reason": e.reason});
                ("post.failed", data)
            }
            "nexus.ads.account.paused" => {
                let e: AdsAccountPaused = event.decode()?;
                (
                    "account.paused",
                    json!({"connection_id": e.connection_id, "provider": e.provider, "reason": e.reason}),
                )
            }
            // Not a public event type: nothing to send.
            _ => return Ok(()),
        };
        fan_out(tx, event, event_type, &data).await
    }
}
