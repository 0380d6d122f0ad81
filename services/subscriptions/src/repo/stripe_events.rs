//! `stripe_events`: each Stripe event applied once.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

pub async fn seen(conn: &mut PgConnection, id: &str) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM stripe_events WHERE id = $1)").bind(id).fetch_one(conn).await.db()
}

/// Records the event in the transaction that applies it; `false` when it was applied already.
pub async fn record(conn: &mut PgConnection, id: &str, kind: &str, tenant: Option<TenantId>) -> Result<bool, Error> {
    let q =
        sqlx::query("INSERT INTO stripe_events (id, type, workspace) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING");
    super::inserted(q.bind(id).bind(kind).bind(tenant.map(|t| t.as_uuid())), conn).await
}
