//! Supplier and store connections.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::connections::Connection;

const COLUMNS: &str = "id, provider, role, account, status, last_error, checked_at, token_expires_at, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    provider: String,
    role: String,
    account: String,
    status: String,
    last_error: String,
    checked_at: Option<DateTime<Utc>>,
    token_expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl Row {
    fn into_connection(self) -> Result<Connection, Error> {
        Ok(Connection {
            id: self.id,
            provider: self
                .provider
                .parse()
                .map_err(|_| Error::internal(format!("stored provider {}", self.provider)))?,
            role: self.role.parse().map_err(|_| Error::internal(format!("stored role {}", self.role)))?,
            account: self.account,
            status: self.status,
            last_error: self.last_error,
            checked_at: self.checked_at,
            token_expires_at: self.token_expires_at,
            created_at: self.created_at,
        })
    }
}

/// Newest first.
pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Connection>, Error> {
    let q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM connections WHERE {}",
        Keyset::newest_first(1)
    )));
    let rows: Vec<Row> = keyset.bind(q).fetch_all(conn).await.db()?;
    let items = rows.into_iter().map(Row::into_connection).collect::<Result<Vec<_>, _>>()?;
    Ok(keyset.page(items, |c| (c.created_at, c.id)))
}

/// A connection with its sealed credentials.
pub type Stored = nexus_platform::db::WithSealed<Connection>;
type StoredRow = nexus_platform::db::SealedRow<Row>;

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Stored>, Error> {
    let q = format!("SELECT {COLUMNS}, credentials FROM connections WHERE id = $1");
    let row: Option<StoredRow> = sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(conn).await.db()?;
    row.map(|r| Ok(Stored { record: r.row.into_connection()?, credentials: r.credentials })).transpose()
}

/// Inserts a connection, or replaces the credentials of the same account (a reconnect).
pub async fn upsert(
    conn: &mut PgConnection,
    tenant: nexus_kernel::TenantId,
    c: &Connection,
    credentials: &str,
) -> Result<Connection, Error> {
    let q = format!(
        "INSERT INTO connections (id, tenant_id, provider, role, account, credentials, token_expires_at, status, checked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', now()) \
         ON CONFLICT (tenant_id, provider, account) DO UPDATE SET credentials = EXCLUDED.credentials, \
           token_expires_at = EXCLUDED.token_expires_at, status = 'active', last_error = '', checked_at = now(), updated_at = now() \
         RETURNING {COLUMNS}"
    );
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(q))
        .bind(c.id)
        .bind(tenant.as_uuid())
        .bind(c.provider.as_str())
        .bind(c.role.as_str())
        .bind(&c.account)
        .bind(credentials)
        .bind(c.token_expires_at)
        .fetch_one(conn)
        .await
        .map_err(|e| match &e {
            // A shop belongs to one workspace.
            sqlx::Error::Database(d) if d.constraint() == Some("connections_shop") => {
                Error::new(nexus_kernel::ErrorKind::Conflict, "commerce.store_connected_elsewhere")
            }
            _ => nexus_platform::db::error(e),
        })?;
    row.into_connection()
}

/// Records a health check (and refreshed credentials, when the provider issued new tokens).
pub async fn checked(
    conn: &mut PgConnection,
    id: Uuid,
    error: Option<&str>,
    credentials: Option<(&str, Option<DateTime<Utc>>)>,
) -> Result<Connection, Error> {
    let q = format!(
        "UPDATE connections SET status = CASE WHEN $2::text IS NULL THEN 'active' ELSE 'failing' END, \
           last_error = coalesce($2, ''), checked_at = now(), updated_at = now(), \
           credentials = coalesce($3, credentials), token_expires_at = CASE WHEN $3 IS NULL THEN token_expires_at ELSE $4 END \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(q))
        .bind(id)
        .bind(error)
        .bind(credentials.map(|c| c.0))
        .bind(credentials.and_then(|c| c.1))
        .fetch_one(conn)
        .await
        .db()?;
    row.into_connection()
}

/// The workspace owning an active Shopify store connection for `shop` (a webhook names only its
/// shop). Runs in a system transaction: the one lookup across workspaces.
pub async fn tenant_of_shop(conn: &mut PgConnection, shop: &str) -> Result<Option<(Uuid, Uuid)>, Error> {
    sqlx::query_as(
        "SELECT tenant_id, id FROM connections WHERE provider = 'shopify' AND account = $1 AND status <> 'disconnected'",
    )
    .bind(shop)
    .fetch_optional(conn)
    .await
    .db()
}

/// Sets the languages a store sells in.
pub async fn set_languages(conn: &mut PgConnection, id: Uuid, languages: &[&str]) -> Result<(), Error> {
    sqlx::query("UPDATE connections SET languages = $2 WHERE id = $1")
        .bind(id)
        .bind(languages)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// The languages the workspace's connected stores sell in, each once.
pub async fn store_languages(conn: &mut PgConnection) -> Result<Vec<String>, Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT l FROM connections, unnest(languages) AS l WHERE role = 'store' AND status <> 'disconnected' ORDER BY l",
    )
    .fetch_all(conn)
    .await
    .db()
}
