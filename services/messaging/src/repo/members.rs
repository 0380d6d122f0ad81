//! `members`: the projection of auth's memberships.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

/// Records that `user` joined (`active`) or left the workspace at `at`, unless a later change is
/// already recorded (events may arrive out of order).
pub async fn record(
    conn: &mut PgConnection,
    tenant: TenantId,
    user: Uuid,
    active: bool,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO members (tenant_id, user_id, active, changed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET active = EXCLUDED.active, changed_at = EXCLUDED.changed_at \
         WHERE members.changed_at <= EXCLUDED.changed_at",
    )
    .bind(tenant.as_uuid())
    .bind(user)
    .bind(active)
    .bind(at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Whether `user` is a current member of the transaction's workspace.
pub async fn is_member(conn: &mut PgConnection, user: Uuid) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM members WHERE user_id = $1 AND active)")
        .bind(user)
        .fetch_one(conn)
        .await
        .db()
}

/// Which of `users` are current members of the transaction's workspace.
pub async fn current_among(conn: &mut PgConnection, users: &[Uuid]) -> Result<Vec<Uuid>, Error> {
    sqlx::query_scalar("SELECT user_id FROM members WHERE user_id = ANY($1) AND active")
        .bind(users)
        .fetch_all(conn)
        .await
        .db()
}
