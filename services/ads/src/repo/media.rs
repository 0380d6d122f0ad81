//! The media library of social posts.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::media::{Facts, MediaItem};
use crate::domain::posts::MediaKind;

const COLUMNS: &str = "id, name, kind, content_type, bytes, width, height, duration_secs, storage_key, sha256, \
                       created_by, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    kind: String,
    content_type: String,
    bytes: i64,
    width: i32,
    height: i32,
    duration_secs: f64,
    storage_key: String,
    sha256: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
}

impl Row {
    fn into_item(self) -> Result<MediaItem, Error> {
        let kind = match self.kind.as_str() {
            "image" => MediaKind::Image,
            "video" => MediaKind::Video,
            other => return Err(Error::internal(format!("stored media kind {other}"))),
        };
        let size = |n: i32| u32::try_from(n).map_err(|_| Error::internal(format!("stored media side {n}")));
        Ok(MediaItem {
            id: self.id,
            name: self.name,
            facts: Facts {
                kind,
                content_type: self.content_type,
                width: size(self.width)?,
                height: size(self.height)?,
                duration_secs: self.duration_secs,
            },
            bytes: u64::try_from(self.bytes).map_err(|_| Error::internal("stored media bytes"))?,
            sha256: self.sha256,
            storage_key: self.storage_key,
            created_by: self.created_by,
            created_at: self.created_at,
        })
    }
}

fn kind_text(k: MediaKind) -> &'static str {
    match k {
        MediaKind::Image => "image",
        MediaKind::Video => "video",
    }
}

/// Stores an item; `source_image` names the content image it was imported from. `None` when a
/// live item of that image is already there (a concurrent import stored it first).
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    m: &MediaItem,
    source_image: Option<&str>,
) -> Result<Option<MediaItem>, Error> {
    let q = format!(
        "INSERT INTO post_media (id, tenant_id, name, kind, content_type, bytes, width, height, duration_secs, \
           storage_key, sha256, created_by, source_image) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (tenant_id, source_image) WHERE source_image IS NOT NULL AND deleted_at IS NULL DO NOTHING \
         RETURNING {COLUMNS}"
    );
    let side = |n: u32| i32::try_from(n).map_err(|_| Error::invalid("ads.media_unreadable"));
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(q))
        .bind(m.id)
        .bind(tenant.as_uuid())
        .bind(&m.name)
        .bind(kind_text(m.facts.kind))
        .bind(&m.facts.content_type)
        .bind(i64::try_from(m.bytes).map_err(|_| Error::internal("media bytes"))?)
        .bind(side(m.facts.width)?)
        .bind(side(m.facts.height)?)
        .bind(m.facts.duration_secs)
        .bind(&m.storage_key)
        .bind(&m.sha256)
        .bind(m.created_by)
        .bind(source_image)
        .fetch_optional(conn)
        .await
        .db()?;
    row.map(Row::into_item).transpose()
}

/// The live item imported from a content image.
pub async fn by_source_image(conn: &mut PgConnection, image_id: &str) -> Result<Option<MediaItem>, Error> {
    let q = format!("SELECT {COLUMNS} FROM post_media WHERE source_image = $1 AND deleted_at IS NULL");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(image_id).fetch_optional(conn).await.db()?;
    row.map(Row::into_item).transpose()
}

/// A live (not deleted) item; `lock` holds it against a concurrent delete.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<MediaItem>, Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let q = format!("SELECT {COLUMNS} FROM post_media WHERE id = $1 AND deleted_at IS NULL{lock}");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(conn).await.db()?;
    row.map(Row::into_item).transpose()
}

/// Live items, newest first.
pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<MediaItem>, Error> {
    let q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM post_media WHERE deleted_at IS NULL AND {}",
        Keyset::newest_first(1)
    )));
    let rows: Vec<Row> = keyset.bind(q).fetch_all(conn).await.db()?;
    let items = rows.into_iter().map(Row::into_item).collect::<Result<Vec<_>, _>>()?;
    Ok(keyset.page(items, |m| (m.created_at, m.id)))
}

/// Whether a post that may still go out names the item (`"media_id": "<id>"` anywhere in its
/// shared body or in a variant of a target not yet published): a draft, one waiting for
/// approval, or a scheduled one with a target still to publish.
pub async fn in_use(conn: &mut PgConnection, media_id: &str) -> Result<bool, Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM social_posts p JOIN social_post_targets t ON t.post_id = p.id \
           WHERE p.status IN ('draft', 'pending_approval', 'scheduled') AND t.status IN ('scheduled', 'publishing') \
             AND (jsonb_path_exists(t.variant, '$.**.media_id ? (@ == $id)', jsonb_build_object('id', $1::text)) \
               OR jsonb_path_exists(p.body, '$.**.media_id ? (@ == $id)', jsonb_build_object('id', $1::text))))",
    )
    .bind(media_id)
    .fetch_one(conn)
    .await
    .db()
}

/// Marks the item deleted; its storage key, or `None` when there is no live item.
pub async fn soft_delete(conn: &mut PgConnection, id: Uuid) -> Result<Option<String>, Error> {
    sqlx::query_scalar(
        "UPDATE post_media SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING storage_key",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .db()
}
