//! Mail auth sends because another service reported something: auth is where the people, their
//! addresses, roles and languages are, so the notices are written here, in the consumer's
//! transaction (the same one that records the event as handled).

use nexus_kernel::Error;
use sqlx::PgConnection;
use uuid::Uuid;

use super::mail;
use crate::domain::mail::webhook_disabled_reason;
use crate::repo;

/// A webhook endpoint messaging gave up on.
#[derive(Debug, Clone)]
pub struct EndpointDisabled<'a> {
    pub endpoint_id: Uuid,
    pub url: &'a str,
    /// Messaging's reason code (`failing`).
    pub reason: &'a str,
}

/// Queues one mail to each owner and admin of the transaction's workspace, in their language,
/// naming the endpoint, why it stopped and where to turn it back on. Returns how many.
pub async fn webhook_endpoint_disabled(
    conn: &mut PgConnection,
    public_url: &str,
    disabled: &EndpointDisabled<'_>,
) -> Result<usize, Error> {
    let recipients = repo::workspaces::integration_admins(conn).await?;
    let link = format!("{}/settings/webhooks/{}", public_url.trim_end_matches('/'), disabled.endpoint_id);
    for r in &recipients {
        let reason = webhook_disabled_reason(r.locale, disabled.reason);
        let args = [("name", r.name.as_str()), ("url", disabled.url), ("reason", reason.as_str()), ("link", &link)];
        mail::enqueue(conn, &r.email, r.locale, "webhook_disabled", &args).await?;
    }
    Ok(recipients.len())
}
