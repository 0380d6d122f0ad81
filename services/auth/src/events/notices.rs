//! Consumer `auth-webhook-notices`: messaging's `webhook_endpoint.disabled` becomes a mail to
//! the workspace's owner and admins; consumers `auth-ads-post-failed` and `auth-ads-account-paused` do the same for the ads
//! scheduler's `post.failed` and `account.paused`. The platform inbox records the event id in the
//! transaction that queues the mail, so a redelivered event mails nobody twice.

use nexus_kernel::ids::parse_prefixed;
use nexus_platform::config::NatsConfig;
use nexus_platform::consumer::{ConsumerSpec, Event, EventHandler, HandleError};
use nexus_proto::events::{AdsAccountPaused, AdsPostFailed, WebhookEndpointDisabled};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::app::notices::{self, AccountPaused, EndpointDisabled, PostFailed};

/// Messaging's subject (its crate is not a dependency of auth's; the proto is the contract).
pub const ENDPOINT_DISABLED: &str = "nexus.messaging.webhook_endpoint.disabled";

pub const DURABLE: &str = "auth-webhook-notices";

pub fn spec(nats: &NatsConfig) -> ConsumerSpec {
    ConsumerSpec::new("messaging", DURABLE, ENDPOINT_DISABLED, nats)
}

pub struct EndpointDisabledHandler {
    /// Where links in mail point (`auth.public_url`).
    pub public_url: String,
}

#[async_trait::async_trait]
impl EventHandler for EndpointDisabledHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let e: WebhookEndpointDisabled = event.decode()?;
        // The consumer opened a tenant transaction for the envelope's workspace (and checked the
        // payload names the same one): the owners read are that workspace's.
        if event.tenant.is_none() {
            return Err(HandleError::Permanent("an endpoint without a workspace".into()));
        }
        let endpoint_id = Uuid::parse_str(&e.endpoint_id)
            .map_err(|_| HandleError::Permanent(format!("endpoint id {:?} is not a uuid", e.endpoint_id)))?;
        let disabled = EndpointDisabled { endpoint_id, url: &e.url, reason: &e.reason };
        let sent = notices::webhook_endpoint_disabled(tx, &self.public_url, &disabled).await?;
        tracing::info!(endpoint = %endpoint_id, recipients = sent, "webhook endpoint disabled: owners notified");
        Ok(())
    }
}

/// The ads service's subjects (its crate is not a dependency of auth's either).
pub const POST_FAILED: &str = "nexus.ads.post.failed";
pub const ACCOUNT_PAUSED: &str = "nexus.ads.account.paused";

/// The durable consumer of one of ads' notice subjects. One consumer each (a JetStream 2.9
/// consumer takes one filter): a consumer of `nexus.ads.>` would also receive, and record in
/// its inbox, every other ads event (engagement readings arrive all day).
pub fn ads_durable(subject: &str) -> &'static str {
    if subject == POST_FAILED { "auth-ads-post-failed" } else { "auth-ads-account-paused" }
}

pub fn ads_specs(nats: &NatsConfig) -> [ConsumerSpec; 2] {
    [POST_FAILED, ACCOUNT_PAUSED].map(|subject| ConsumerSpec::new("ads", ads_durable(subject), subject, nats))
}

pub struct AdsNoticesHandler {
    /// Where links in mail point (`auth.public_url`).
    pub public_url: String,
}

#[async_trait::async_trait]
impl EventHandler for AdsNoticesHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        // As above: the transaction is the envelope's workspace's, so are the recipients.
        let notice = matches!(event.subject.as_str(), POST_FAILED | ACCOUNT_PAUSED);
        if notice && event.tenant.is_none() {
            return Err(HandleError::Permanent(format!("{} without a workspace", event.subject)));
        }
        match event.subject.as_str() {
            POST_FAILED => {
                let e: AdsPostFailed = event.decode()?;
                let post_id = ads_id(&e.post_id, "post")?;
                let failed = PostFailed {
                    post_id,
                    platform: &e.platform,
                    account: &e.account,
                    error_code: &e.error_code,
                    reason: &e.reason,
                };
                let sent = notices::ads_post_failed(tx, &self.public_url, &failed).await?;
                tracing::info!(post = %post_id, recipients = sent, "social post failed: owners notified");
            }
            ACCOUNT_PAUSED => {
                let e: AdsAccountPaused = event.decode()?;
                let connection_id = ads_id(&e.connection_id, "conn")?;
                let paused = AccountPaused { connection_id, provider: &e.provider, reason: &e.reason };
                let sent = notices::ads_account_paused(tx, &self.public_url, &paused).await?;
                tracing::info!(connection = %connection_id, recipients = sent, "account paused: owners notified");
            }
            // Ads' other events mail nobody.
            _ => {}
        }
        Ok(())
    }
}

/// An ads id (`post_…`, `conn_…`): parsed, so only an id goes into a link.
fn ads_id(id: &str, prefix: &'static str) -> Result<Uuid, HandleError> {
    parse_prefixed(id, prefix).map_err(|_| HandleError::Permanent(format!("{prefix} id {id:?} is not valid")))
}
