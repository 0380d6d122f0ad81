//! Custom audiences.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Audience {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub ad_account: String,
    pub name: String,
    pub platform_id: String,
    pub members: i32,
    pub dropped: i32,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut PgConnection, tenant: TenantId, a: &Audience) -> Result<Audience, Error> {
    sqlx::query_as(
        "INSERT INTO audiences (id, tenant_id, connection_id, ad_account, name, platform_id, members, dropped) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         RETURNING id, connection_id, ad_account, name, platform_id, members, dropped, created_at",
    )
    .bind(a.id)
    .bind(tenant.as_uuid())
    .bind(a.connection_id)
    .bind(&a.ad_account)
    .bind(&a.name)
    .bind(&a.platform_id)
    .bind(a.members)
    .bind(a.dropped)
    .fetch_one(conn)
    .await
    .db()
}
