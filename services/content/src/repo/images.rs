//! `image_assets`: images, their bytes, and the provider jobs that make them.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::images::Image;

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    purpose: String,
    status: String,
    provider: String,
    content_type: String,
    width: i32,
    height: i32,
    size_bytes: i64,
    prompt: String,
    created_at: DateTime<Utc>,
}

impl From<Row> for Image {
    fn from(r: Row) -> Self {
        Image {
            id: r.id,
            purpose: r.purpose,
            status: r.status,
            provider: r.provider,
            content_type: r.content_type,
            width: r.width,
            height: r.height,
            size_bytes: r.size_bytes,
            prompt: r.prompt,
            created_at: r.created_at,
        }
    }
}

const COLUMNS: &str = "id, purpose, status, provider, content_type, width, height, size_bytes, prompt, created_at";

pub async fn by_key(conn: &mut PgConnection, key: &str) -> Result<Option<Image>, Error> {
    super::one::<Row, _, _>(conn, &format!("SELECT {COLUMNS} FROM image_assets"), "idempotency_key", key).await
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Image>, Error> {
    super::one::<Row, _, _>(conn, &format!("SELECT {COLUMNS} FROM image_assets"), "id", id).await
}

/// Whether the image exists (in the transaction's workspace: RLS hides the others).
pub async fn exists(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    let found: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM image_assets WHERE id = $1").bind(id).fetch_optional(conn).await.db()?;
    Ok(found.is_some())
}

/// A finished image's content type and bytes.
pub async fn finished(conn: &mut PgConnection, id: Uuid) -> Result<Option<(String, Vec<u8>)>, Error> {
    sqlx::query_as(
        "SELECT content_type, data FROM image_assets WHERE id = $1 AND status = 'succeeded' AND data IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .db()
}

/// An image to store: finished (with its bytes) or pending at a provider.
pub struct NewImage<'a> {
    pub id: Uuid,
    pub tenant: TenantId,
    pub purpose: &'a str,
    pub provider: &'a str,
    pub status: &'a str,
    pub prompt: &'a str,
    pub caption: &'a str,
    pub language: &'a str,
    pub content_type: &'a str,
    pub data: Option<&'a [u8]>,
    pub width: u32,
    pub height: u32,
    pub external_id: Option<&'a str>,
    pub reservation_id: &'a str,
    pub key: &'a str,
}

/// Stores an image; `None` when one with the same idempotency key is already there.
pub async fn insert(conn: &mut PgConnection, i: &NewImage<'_>) -> Result<Option<Image>, Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO image_assets (id, tenant_id, purpose, provider, status, prompt, caption, language, content_type, data, \
           size_bytes, width, height, external_id, reservation_id, idempotency_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING {COLUMNS}"
    )))
    .bind(i.id)
    .bind(i.tenant.as_uuid())
    .bind(i.purpose)
    .bind(i.provider)
    .bind(i.status)
    .bind(i.prompt)
    .bind(i.caption)
    .bind(i.language)
    .bind(i.content_type)
    .bind(i.data)
    .bind(i.data.map_or(0, |d| i64::try_from(d.len()).unwrap_or(i64::MAX)))
    .bind(i32::try_from(i.width).unwrap_or(1024))
    .bind(i32::try_from(i.height).unwrap_or(1024))
    .bind(i.external_id)
    .bind(i.reservation_id)
    .bind(i.key)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(Into::into))
}

/// An image waiting for a provider job.
pub struct JobImage {
    pub id: Uuid,
    pub tenant: TenantId,
    pub status: String,
    pub reservation: Option<String>,
}

/// The image a provider job makes (any workspace: run in a system transaction).
pub async fn by_job(conn: &mut PgConnection, provider: &str, external_id: &str) -> Result<Option<JobImage>, Error> {
    let found: Option<(Uuid, String, Uuid, Option<String>)> = sqlx::query_as(
        "SELECT id, status, tenant_id, reservation_id FROM image_assets WHERE provider = $1 AND external_id = $2",
    )
    .bind(provider)
    .bind(external_id)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(found.map(|(id, status, tenant, reservation)| JobImage {
        id,
        tenant: TenantId::from_uuid(tenant),
        status,
        reservation,
    }))
}

/// Stores a pending image's bytes; `false` when it was no longer pending.
pub async fn succeed(conn: &mut PgConnection, id: Uuid, content_type: &str, data: &[u8]) -> Result<bool, Error> {
    let n = sqlx::query(
        "UPDATE image_assets SET status = 'succeeded', content_type = $2, data = $3, size_bytes = $4, updated_at = now() \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(content_type)
    .bind(data)
    .bind(i64::try_from(data.len()).unwrap_or(i64::MAX))
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(n == 1)
}

/// Marks a pending image failed; `false` when it was no longer pending.
pub async fn fail(conn: &mut PgConnection, id: Uuid, why: &str) -> Result<bool, Error> {
    let n = sqlx::query(
        "UPDATE image_assets SET status = 'failed', error = $2, updated_at = now() WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(why)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(n == 1)
}

/// Fails the provider's jobs pending for longer than `after_secs`; returns them (status is
/// then `failed`).
pub async fn give_up(conn: &mut PgConnection, provider: &str, after_secs: f64) -> Result<Vec<JobImage>, Error> {
    let rows: Vec<(Uuid, Uuid, Option<String>)> = sqlx::query_as(
        "UPDATE image_assets SET status = 'failed', error = 'the provider did not finish in time', updated_at = now() \
         WHERE provider = $1 AND status = 'pending' AND created_at < now() - make_interval(secs => $2) \
         RETURNING id, tenant_id, reservation_id",
    )
    .bind(provider)
    .bind(after_secs)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|(id, tenant, reservation)| JobImage {
            id,
            tenant: TenantId::from_uuid(tenant),
            status: "failed".to_owned(),
            reservation,
        })
        .collect())
}

/// Up to 20 of the provider's pending jobs not heard of for `after_secs`, longest silent first.
pub async fn due(conn: &mut PgConnection, provider: &str, after_secs: f64) -> Result<Vec<String>, Error> {
    sqlx::query_scalar(
        "SELECT external_id FROM image_assets WHERE provider = $1 AND status = 'pending' AND external_id IS NOT NULL \
         AND updated_at < now() - make_interval(secs => $2) ORDER BY updated_at LIMIT 20",
    )
    .bind(provider)
    .bind(after_secs)
    .fetch_all(conn)
    .await
    .db()
}
