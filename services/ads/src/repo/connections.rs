//! Connections and their accounts.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::connections::{Account, Connection};

const COLUMNS: &str = "id, provider, external_user, display_name, status, token_expires_at, scopes, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    provider: String,
    external_user: String,
    display_name: String,
    status: String,
    token_expires_at: Option<DateTime<Utc>>,
    scopes: Vec<String>,
    created_at: DateTime<Utc>,
}

impl Row {
    fn into_connection(self, accounts: Vec<Account>) -> Result<Connection, Error> {
        Ok(Connection {
            id: self.id,
            provider: self
                .provider
                .parse()
                .map_err(|_| Error::internal(format!("stored provider {}", self.provider)))?,
            external_user: self.external_user,
            display_name: self.display_name,
            status: self.status,
            token_expires_at: self.token_expires_at,
            scopes: self.scopes,
            accounts,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    connection_id: Uuid,
    kind: String,
    external_id: String,
    name: String,
    currency: String,
    time_zone: String,
    chosen: bool,
}

impl AccountRow {
    fn into_account(self) -> Result<Account, Error> {
        Ok(Account {
            kind: self.kind.parse()?,
            external_id: self.external_id,
            name: self.name,
            currency: self.currency,
            time_zone: self.time_zone,
            chosen: self.chosen,
        })
    }
}

async fn accounts_of(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<(Uuid, Account)>, Error> {
    let rows: Vec<AccountRow> = sqlx::query_as(
        "SELECT connection_id, kind, external_id, name, currency, time_zone, chosen FROM connection_accounts \
         WHERE connection_id = ANY($1) ORDER BY kind, name, external_id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
    .db()?;
    rows.into_iter().map(|r| Ok((r.connection_id, r.into_account()?))).collect()
}

async fn with_accounts(conn: &mut PgConnection, rows: Vec<Row>) -> Result<Vec<Connection>, Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut by_connection: std::collections::HashMap<Uuid, Vec<Account>> = std::collections::HashMap::new();
    for (c, a) in accounts_of(conn, &ids).await? {
        by_connection.entry(c).or_default().push(a);
    }
    rows.into_iter()
        .map(|r| {
            let mine = by_connection.remove(&r.id).unwrap_or_default();
            r.into_connection(mine)
        })
        .collect()
}

/// Newest first, disconnected ones left out.
pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Connection>, Error> {
    let q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM connections WHERE status <> 'disconnected' AND {}",
        Keyset::newest_first(1)
    )));
    let rows: Vec<Row> = keyset.bind(q).fetch_all(&mut *conn).await.db()?;
    let items = with_accounts(conn, rows).await?;
    Ok(keyset.page(items, |c| (c.created_at, c.id)))
}

/// A connection with its sealed credentials.
pub type Stored = nexus_platform::db::WithSealed<Connection>;
type StoredRow = nexus_platform::db::SealedRow<Row>;

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Stored>, Error> {
    let q = format!("SELECT {COLUMNS}, credentials FROM connections WHERE id = $1");
    let row: Option<StoredRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await.db()?;
    let Some(r) = row else { return Ok(None) };
    let mut c = with_accounts(conn, vec![r.row]).await?;
    Ok(c.pop().map(|connection| Stored { record: connection, credentials: r.credentials }))
}

/// What a completed authorization stores.
pub struct NewConnection<'a> {
    pub id: Uuid,
    pub provider: &'a str,
    pub external_user: &'a str,
    pub display_name: &'a str,
    pub credentials: &'a str,
    pub scopes: &'a [String],
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// Inserts a connection, or renews the same platform user's (a reconnect keeps the row and its
/// chosen accounts, takes the new token and forgets the old token's expiry notice). Returns
/// the row's id, which differs from `c.id` on a reconnect.
pub async fn upsert(conn: &mut PgConnection, tenant: TenantId, c: &NewConnection<'_>) -> Result<Uuid, Error> {
    sqlx::query_scalar(
        "INSERT INTO connections (id, tenant_id, provider, external_user, display_name, credentials, scopes, token_expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant_id, provider, external_user) DO UPDATE SET display_name = EXCLUDED.display_name, \
           credentials = EXCLUDED.credentials, scopes = EXCLUDED.scopes, token_expires_at = EXCLUDED.token_expires_at, \
           status = 'active', expiring_notified_at = NULL, posting_paused_at = NULL, updated_at = now() \
         RETURNING id",
    )
    .bind(c.id)
    .bind(tenant.as_uuid())
    .bind(c.provider)
    .bind(c.external_user)
    .bind(c.display_name)
    .bind(c.credentials)
    .bind(c.scopes)
    .bind(c.token_expires_at)
    .fetch_one(conn)
    .await
    .db()
}

/// Replaces the connection's credentials (sealed again with the same id), e.g. after a refresh.
pub async fn set_credentials(
    conn: &mut PgConnection,
    id: Uuid,
    credentials: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE connections SET credentials = $2, token_expires_at = $3, status = 'active', \
           expiring_notified_at = NULL, posting_paused_at = NULL, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(credentials)
    .bind(expires_at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Stores the accounts the platform listed: new ones with the choice given, known ones keep
/// theirs, vanished ones are removed.
pub async fn put_accounts(
    conn: &mut PgConnection,
    tenant: TenantId,
    connection: Uuid,
    accounts: &[Account],
) -> Result<(), Error> {
    let kinds: Vec<&str> = accounts.iter().map(|a| a.kind.as_str()).collect();
    let ids: Vec<&str> = accounts.iter().map(|a| a.external_id.as_str()).collect();
    let names: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
    let currencies: Vec<&str> = accounts.iter().map(|a| a.currency.as_str()).collect();
    let zones: Vec<&str> = accounts.iter().map(|a| a.time_zone.as_str()).collect();
    let chosen: Vec<bool> = accounts.iter().map(|a| a.chosen).collect();
    sqlx::query(
        "DELETE FROM connection_accounts WHERE connection_id = $1 \
         AND (kind, external_id) NOT IN (SELECT * FROM unnest($2::text[], $3::text[]))",
    )
    .bind(connection)
    .bind(&kinds)
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .db()?;
    sqlx::query(
        "INSERT INTO connection_accounts (tenant_id, connection_id, kind, external_id, name, currency, time_zone, chosen) \
         SELECT $1, $2, k, i, n, c, z, ch FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[]) \
           AS t(k, i, n, c, z, ch) \
         ON CONFLICT (connection_id, kind, external_id) DO UPDATE SET name = EXCLUDED.name, \
           currency = EXCLUDED.currency, time_zone = EXCLUDED.time_zone",
    )
    .bind(tenant.as_uuid())
    .bind(connection)
    .bind(&kinds)
    .bind(&ids)
    .bind(&names)
    .bind(&currencies)
    .bind(&zones)
    .bind(&chosen)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Chooses exactly `external_ids` among the connection's accounts; returns how many matched.
pub async fn choose(conn: &mut PgConnection, connection: Uuid, external_ids: &[String]) -> Result<u64, Error> {
    sqlx::query("UPDATE connection_accounts SET chosen = (external_id = ANY($2)) WHERE connection_id = $1")
        .bind(connection)
        .bind(external_ids)
        .execute(&mut *conn)
        .await
        .db()?;
    let matched: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT external_id) FROM connection_accounts WHERE connection_id = $1 AND external_id = ANY($2)",
    )
    .bind(connection)
    .bind(external_ids)
    .fetch_one(conn)
    .await
    .db()?;
    Ok(u64::try_from(matched).unwrap_or(0))
}

/// Marks a connection disconnected and forgets its tokens and accounts.
pub async fn disconnect(conn: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    sqlx::query(
        "UPDATE connections SET status = 'disconnected', credentials = '', token_expires_at = NULL, updated_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await
    .db()?;
    sqlx::query("DELETE FROM connection_accounts WHERE connection_id = $1").bind(id).execute(conn).await.db()?;
    Ok(())
}

/// A connection the expiry watch looks at.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub provider: String,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub warned: bool,
}

/// Live connections whose token expires before `horizon` (system transaction: all workspaces).
pub async fn due(conn: &mut PgConnection, horizon: DateTime<Utc>, limit: i64) -> Result<Vec<Due>, Error> {
    sqlx::query_as(
        "SELECT id, tenant_id, provider, token_expires_at, expiring_notified_at IS NOT NULL AS warned \
         FROM connections WHERE status IN ('active', 'expiring') AND token_expires_at < $1 \
         ORDER BY token_expires_at LIMIT $2",
    )
    .bind(horizon)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()
}

/// Marks a token's notice sent (status `expiring`), unless another watcher did: true when this
/// call did it, so the event goes out once.
pub async fn mark_expiring(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    let r = sqlx::query(
        "UPDATE connections SET status = 'expiring', expiring_notified_at = now(), updated_at = now() \
         WHERE id = $1 AND status = 'active' AND expiring_notified_at IS NULL",
    )
    .bind(id)
    .execute(conn)
    .await
    .db()?;
    Ok(r.rows_affected() == 1)
}

/// Marks a connection expired, once.
pub async fn mark_expired(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    let r = sqlx::query(
        "UPDATE connections SET status = 'expired', updated_at = now() \
         WHERE id = $1 AND status IN ('active', 'expiring') AND token_expires_at <= now()",
    )
    .bind(id)
    .execute(conn)
    .await
    .db()?;
    Ok(r.rows_affected() == 1)
}

/// Takes this connection's renewal turn until the transaction ends.
pub async fn lock_renewal(conn: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('ads.renewal:' || $1::text, 0))")
        .bind(id)
        .execute(conn)
        .await
        .db()
        .map(drop)
}
