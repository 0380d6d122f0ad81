//! The timeline of a contact.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// An activity the platform writes (a lead, a stage change, a merge, a consent change).
pub struct NewActivity<'a> {
    pub contact: Uuid,
    pub kind: &'a str,
    pub body: &'a str,
    pub data: serde_json::Value,
    pub actor: &'a str,
    pub occurred_at: DateTime<Utc>,
    /// The source event's key: the same event adds one activity however often it arrives.
    pub source_key: Option<&'a str>,
}

/// Adds an activity; `Ok(false)` when one with the same source key exists already.
pub async fn insert(conn: &mut PgConnection, tenant: TenantId, a: &NewActivity<'_>) -> Result<bool, Error> {
    let done = sqlx::query(
        "INSERT INTO activities (id, tenant_id, contact_id, kind, body, data, actor, occurred_at, source_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (tenant_id, source_key) WHERE source_key IS NOT NULL DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.as_uuid())
    .bind(a.contact)
    .bind(a.kind)
    .bind(a.body)
    .bind(Json(&a.data))
    .bind(a.actor)
    .bind(a.occurred_at)
    .bind(a.source_key)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}
