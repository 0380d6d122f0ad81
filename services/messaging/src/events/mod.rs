//! Events: what messaging emits (written to the outbox in the transaction of the change), the
//! webhook fan-out of other services' events, and the webhook delivery worker.

pub mod deliver;
pub mod fanout;

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use sqlx::PgConnection;
use uuid::Uuid;

/// Subject of [`events::WebhookEndpointDisabled`].
pub const ENDPOINT_DISABLED: &str = "nexus.messaging.webhook_endpoint.disabled";

/// `webhook_endpoint.disabled`: an endpoint was given up on. Mailing the workspace's owners
/// belongs to whoever consumes this.
pub async fn endpoint_disabled(
    conn: &mut PgConnection,
    tenant: TenantId,
    endpoint: Uuid,
    url: &str,
    reason: &str,
    failing_since: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    let event = events::WebhookEndpointDisabled {
        workspace_id: tenant.to_string(),
        endpoint_id: endpoint.to_string(),
        url: url.to_owned(),
        reason: reason.to_owned(),
        failing_since: failing_since.map(nexus_platform::grpc::ts),
    };
    enqueue(conn, ENDPOINT_DISABLED, Some(tenant), &event).await.db()?;
    Ok(())
}
