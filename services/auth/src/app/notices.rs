//! Mail auth sends because another service reported something: auth is where the people, their
//! addresses, roles and languages are, so the notices are written here, in the consumer's
//! transaction (the same one that records the event as handled).
//!
//! One mail per event: nothing here batches notices into digests yet.

use nexus_kernel::{Error, Locale};
use sqlx::PgConnection;
use uuid::Uuid;

use super::mail;
use crate::domain::mail::{NAME_MAX, REASON_MAX, platform_name, quoted, webhook_disabled_reason};
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
    let link = app_link(public_url, &format!("settings/webhooks/{}", disabled.endpoint_id));
    to_integration_admins(conn, "webhook_disabled", |locale| {
        let reason = webhook_disabled_reason(locale, disabled.reason);
        vec![("url", disabled.url.to_owned()), ("reason", reason), ("link", link.clone())]
    })
    .await
}

/// A social post the ads scheduler gave up on for one account. Platform, account and reason are
/// as the ads service reported them (the reason is the platform's own text).
#[derive(Debug, Clone)]
pub struct PostFailed<'a> {
    pub post_id: Uuid,
    pub platform: &'a str,
    pub account: &'a str,
    /// Ads' error code, quoted when the platform gave no reason.
    pub error_code: &'a str,
    pub reason: &'a str,
}

/// Queues one mail to each owner and admin of the transaction's workspace, in their language,
/// naming the platform, the account and the platform's reason, with a link to the post. Returns
/// how many.
pub async fn ads_post_failed(
    conn: &mut PgConnection,
    public_url: &str,
    failed: &PostFailed<'_>,
) -> Result<usize, Error> {
    // `post_` is the ads service's prefix for post ids, the form its links use.
    let link = app_link(public_url, &format!("posts/post_{}", failed.post_id.simple()));
    let reason = if failed.reason.trim().is_empty() { failed.error_code } else { failed.reason };
    let args = vec![
        ("platform", platform_name(failed.platform)),
        ("account", quoted(failed.account, NAME_MAX)),
        ("reason", quoted(reason, REASON_MAX)),
        ("link", link),
    ];
    to_integration_admins(conn, "ads_post_failed", |_| args.clone()).await
}

/// A connection whose publishing queue the ads scheduler paused because the platform refused
/// its token.
#[derive(Debug, Clone)]
pub struct AccountPaused<'a> {
    pub connection_id: Uuid,
    pub provider: &'a str,
    /// The platform's own text.
    pub reason: &'a str,
}

/// Queues one mail to each owner and admin of the transaction's workspace, in their language,
/// naming the provider and asking them to connect it again. Returns how many.
pub async fn ads_account_paused(
    conn: &mut PgConnection,
    public_url: &str,
    paused: &AccountPaused<'_>,
) -> Result<usize, Error> {
    // `conn_` is the ads service's prefix for connection ids.
    let link = app_link(public_url, &format!("connections/conn_{}", paused.connection_id.simple()));
    let args = vec![
        ("provider", platform_name(paused.provider)),
        ("reason", quoted(paused.reason, REASON_MAX)),
        ("link", link),
    ];
    to_integration_admins(conn, "ads_account_paused", |_| args.clone()).await
}

/// `path` in the app at `public_url`.
fn app_link(public_url: &str, path: &str) -> String {
    format!("{}/{path}", public_url.trim_end_matches('/'))
}

/// Queues mail `kind` to each owner and admin of the transaction's workspace, with their name
/// and the arguments `args` gives for their language. Returns how many.
async fn to_integration_admins<F>(conn: &mut PgConnection, kind: &str, args: F) -> Result<usize, Error>
where
    F: Fn(Locale) -> Vec<(&'static str, String)>,
{
    let recipients = repo::workspaces::integration_admins(conn).await?;
    for r in &recipients {
        let own = args(r.locale);
        let mut all: Vec<(&str, &str)> = vec![("name", r.name.as_str())];
        all.extend(own.iter().map(|(k, v)| (*k, v.as_str())));
        mail::enqueue(conn, &r.email, r.locale, kind, &all).await?;
    }
    Ok(recipients.len())
}
