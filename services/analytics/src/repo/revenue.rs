//! Revenue inputs read from stored domain events: subscription changes (each workspace is one
//! customer of the platform) and credits charged per month.

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

use crate::domain::mrr::{Change, counts_for_mrr};

/// Every `subscriptions.subscription.changed` before `to` that carries its monthly amount, of
/// every workspace the transaction can see (the operator's report runs in a system
/// transaction), in time order. A status that does not bill counts as 0. Events from before the
/// amount travelled with the change are left out: their price is unknown.
pub async fn subscription_changes(conn: &mut PgConnection, to: DateTime<Utc>) -> Result<Vec<Change>, Error> {
    let rows: Vec<(uuid::Uuid, DateTime<Utc>, String, String, i64)> = sqlx::query_as(
        "SELECT tenant_id, occurred_at, properties->>'status', properties->>'currency', \
                (properties->>'monthly_amount_minor')::bigint \
         FROM analytics_events \
         WHERE name = 'subscriptions.subscription.changed' AND occurred_at < $1 \
           AND properties ? 'monthly_amount_minor' AND coalesce(properties->>'currency', '') <> '' \
         ORDER BY occurred_at, received_at, client_event_id",
    )
    .bind(to)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|(tenant, at, status, currency, amount)| Change {
            customer: tenant.to_string(),
            at,
            currency,
            monthly_minor: if counts_for_mrr(&status) { amount } else { 0 },
        })
        .collect())
}

/// Credits charged to the workspace per UTC month, for months with any charge before `to`.
pub async fn credits_per_month(
    conn: &mut PgConnection,
    tenant: TenantId,
    to: DateTime<Utc>,
) -> Result<Vec<(NaiveDate, i64)>, Error> {
    sqlx::query_as(
        "SELECT (date_trunc('month', occurred_at AT TIME ZONE 'UTC'))::date, \
                sum((properties->>'credits')::bigint)::bigint \
         FROM analytics_events \
         WHERE tenant_id = $1 AND name = 'subscriptions.credits.charged' AND occurred_at < $2 \
           AND jsonb_typeof(properties->'credits') = 'number' \
         GROUP BY 1 ORDER BY 1",
    )
    .bind(tenant.as_uuid())
    .bind(to)
    .fetch_all(conn)
    .await
    .db()
}
