//! The contact book's settings and custom field definitions.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

use crate::domain::fields::{FieldDef, FieldKind};

pub async fn default_region(conn: &mut PgConnection) -> Result<Option<String>, Error> {
    let r: Option<String> =
        sqlx::query_scalar("SELECT default_region FROM book_settings").fetch_optional(conn).await.db()?;
    Ok(r.filter(|r| !r.is_empty()))
}

/// The workspace's "do not sell or share" setting and when it last changed.
pub async fn do_not_sell(conn: &mut PgConnection) -> Result<(bool, Option<DateTime<Utc>>), Error> {
    let row: Option<(bool, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT do_not_sell, do_not_sell_changed_at FROM book_settings")
            .fetch_optional(conn)
            .await
            .db()?;
    Ok(row.unwrap_or((false, None)))
}

/// Sets "do not sell or share"; whether it changed (a concurrent change waits for the row and
/// then finds nothing left to change).
pub async fn save_do_not_sell(conn: &mut PgConnection, tenant: TenantId, on: bool) -> Result<bool, Error> {
    sqlx::query("INSERT INTO book_settings (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING")
        .bind(tenant.as_uuid())
        .execute(&mut *conn)
        .await
        .db()?;
    let changed = sqlx::query(
        "UPDATE book_settings SET do_not_sell = $1, do_not_sell_changed_at = now(), updated_at = now() \
         WHERE do_not_sell IS DISTINCT FROM $1",
    )
    .bind(on)
    .execute(conn)
    .await
    .db()?;
    Ok(changed.rows_affected() > 0)
}

pub async fn save_default_region(conn: &mut PgConnection, tenant: TenantId, region: &str) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO book_settings (tenant_id, default_region) VALUES ($1, $2) \
         ON CONFLICT (tenant_id) DO UPDATE SET default_region = excluded.default_region, updated_at = now()",
    )
    .bind(tenant.as_uuid())
    .bind(region)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct FieldRow {
    key: String,
    label: String,
    kind: String,
    options: Vec<String>,
}

impl FieldRow {
    fn into_def(self) -> Result<FieldDef, Error> {
        let kind: FieldKind =
            self.kind.parse().map_err(|_| Error::internal(format!("stored field kind {}", self.kind)))?;
        Ok(FieldDef { key: self.key, label: self.label, kind, options: self.options })
    }
}

/// The workspace's field definitions, in their order.
pub async fn fields(conn: &mut PgConnection) -> Result<Vec<FieldDef>, Error> {
    let rows: Vec<FieldRow> =
        sqlx::query_as("SELECT key, label, kind, options FROM field_definitions ORDER BY position, key")
            .fetch_all(conn)
            .await
            .db()?;
    rows.into_iter().map(FieldRow::into_def).collect()
}

/// Adds a definition or changes the label and options of one; its kind never changes (values
/// are stored in its shape). Answers the definition as stored, or `None` when the kind differs.
pub async fn save_field(conn: &mut PgConnection, tenant: TenantId, def: &FieldDef) -> Result<Option<FieldDef>, Error> {
    let row: Option<FieldRow> = sqlx::query_as(
        "INSERT INTO field_definitions (tenant_id, key, label, kind, options, position) \
         VALUES ($1, $2, $3, $4, $5, (SELECT count(*) FROM field_definitions)) \
         ON CONFLICT (tenant_id, key) DO UPDATE SET label = excluded.label, options = excluded.options \
           WHERE field_definitions.kind = excluded.kind \
         RETURNING key, label, kind, options",
    )
    .bind(tenant.as_uuid())
    .bind(&def.key)
    .bind(&def.label)
    .bind(def.kind.as_str())
    .bind(&def.options)
    .fetch_optional(conn)
    .await
    .db()?;
    row.map(FieldRow::into_def).transpose()
}

pub async fn field_count(conn: &mut PgConnection) -> Result<i64, Error> {
    sqlx::query_scalar("SELECT count(*) FROM field_definitions").fetch_one(conn).await.db()
}

/// Removes a definition and its values from every contact; false when there was none.
pub async fn delete_field(conn: &mut PgConnection, key: &str) -> Result<bool, Error> {
    let gone = sqlx::query("DELETE FROM field_definitions WHERE key = $1").bind(key).execute(&mut *conn).await.db()?;
    if gone.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE contacts SET fields = fields - $1, updated_at = now() WHERE fields ? $1")
        .bind(key)
        .execute(conn)
        .await
        .db()?;
    Ok(true)
}
