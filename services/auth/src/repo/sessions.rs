//! `sessions`: one row per refresh token; rows of one sign-in share a `family_id`.

use chrono::{DateTime, Utc};
use nexus_kernel::Error;
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{LiveRow, SessionAuth, SessionView, StoredRefresh};

/// A row to insert: the newest refresh token of `family`.
pub struct NewRow<'a> {
    pub id: Uuid,
    pub family: Uuid,
    pub user: Uuid,
    pub workspace: Uuid,
    pub refresh_hash: &'a [u8],
    pub ip: &'a str,
    pub user_agent: &'a str,
    pub device: &'a str,
    pub expires_at: DateTime<Utc>,
    pub auth: &'a SessionAuth,
}

pub async fn insert(conn: &mut PgConnection, row: &NewRow<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO sessions (id, family_id, user_id, workspace_id, refresh_hash, amr, ip, user_agent, device, expires_at, auth_time, family_expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(row.id)
    .bind(row.family)
    .bind(row.user)
    .bind(row.workspace)
    .bind(row.refresh_hash)
    .bind(&row.auth.amr)
    .bind(row.ip)
    .bind(row.user_agent)
    .bind(row.device)
    .bind(row.expires_at)
    .bind(row.auth.auth_time)
    .bind(row.auth.family_expires_at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// How a live session family authenticated (from its newest row), or `None` when it is unknown
/// or revoked.
pub async fn auth_of(conn: &mut PgConnection, family: Uuid) -> Result<Option<SessionAuth>, Error> {
    let row: Option<(Vec<String>, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT amr, auth_time, family_expires_at FROM sessions WHERE family_id = $1 AND revoked_at IS NULL \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(family)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|(amr, auth_time, family_expires_at)| SessionAuth { amr, auth_time, family_expires_at }))
}

/// Whether the family has a row that is not revoked.
pub async fn family_live(conn: &mut PgConnection, family: Uuid) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sessions WHERE family_id = $1 AND revoked_at IS NULL)")
        .bind(family)
        .fetch_one(conn)
        .await
        .db()
}

/// `(family, user)` of the row of a refresh token.
pub async fn family_of(conn: &mut PgConnection, refresh_hash: &[u8]) -> Result<Option<(Uuid, Uuid)>, Error> {
    sqlx::query_as("SELECT family_id, user_id FROM sessions WHERE refresh_hash = $1")
        .bind(refresh_hash)
        .fetch_optional(conn)
        .await
        .db()
}

row!(RefreshRow => StoredRefresh {
    id, family_id, user_id, workspace_id, amr, expires_at, replaced_at, revoked_at, auth_time,
    family_expires_at, successor_id, successor_sealed
});

/// The row of a refresh token (by its hash), locked for the rotation.
pub async fn by_refresh_hash(conn: &mut PgConnection, hash: &[u8]) -> Result<Option<StoredRefresh>, Error> {
    let row: Option<RefreshRow> = sqlx::query_as(
        "SELECT id, family_id, user_id, workspace_id, amr, expires_at, replaced_at, revoked_at, auth_time, family_expires_at, \
                successor_id, successor_sealed \
         FROM sessions WHERE refresh_hash = $1 FOR UPDATE",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|r| r.0))
}

/// Marks a row rotated, keeping its successor (sealed) for the reuse grace.
pub async fn mark_replaced(conn: &mut PgConnection, id: Uuid, successor: Uuid, sealed: &str) -> Result<(), Error> {
    sqlx::query(
        "UPDATE sessions SET replaced_at = now(), last_used_at = now(), successor_id = $2, successor_sealed = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(successor)
    .bind(sealed)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Row `id` while it is its family's live, unrotated, unexpired newest row (locked); `None`
/// otherwise.
pub async fn live_newest(conn: &mut PgConnection, id: Uuid) -> Result<Option<LiveRow>, Error> {
    let row: Option<(Uuid, Uuid, Vec<String>)> = sqlx::query_as(
        "SELECT user_id, workspace_id, amr FROM sessions WHERE id = $1 AND revoked_at IS NULL AND replaced_at IS NULL \
         AND expires_at > now() AND family_expires_at > now() FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|(user_id, workspace_id, amr)| LiveRow { user_id, workspace_id, amr }))
}

/// Which live rows a revocation ends.
pub enum Revoke {
    /// One family (logout, refresh-token reuse).
    Family(Uuid),
    /// Every family of a user (password change or reset, deletion, "sign out everywhere").
    User(Uuid),
    /// One family, only if it is the user's (a user ending one of their sessions).
    OwnFamily { family: Uuid, user: Uuid },
    /// A user's families in one workspace (removal, ownership transfer).
    InWorkspace { user: Uuid, workspace: Uuid },
}

/// Revokes the session families `which` names; returns their ids, sorted (for events).
pub async fn revoke(conn: &mut PgConnection, which: Revoke) -> Result<Vec<Uuid>, Error> {
    let (filter, first, second) = match which {
        Revoke::Family(f) => ("family_id = $1", f, None),
        Revoke::User(u) => ("user_id = $1", u, None),
        Revoke::OwnFamily { family, user } => ("family_id = $1 AND user_id = $2", family, Some(user)),
        Revoke::InWorkspace { user, workspace } => ("user_id = $1 AND workspace_id = $2", user, Some(workspace)),
    };
    let sql =
        format!("UPDATE sessions SET revoked_at = now() WHERE {filter} AND revoked_at IS NULL RETURNING family_id");
    let query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(first);
    let query = match second {
        Some(s) => query.bind(s),
        None => query,
    };
    let mut ids: Vec<Uuid> = query.fetch_all(conn).await.db()?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

row!(ListedRow => SessionView { id, ip, user_agent, device, created_at, last_used_at });

/// A user's live session families, each with its first sign-in time and newest row.
pub async fn list_live(conn: &mut PgConnection, user: Uuid) -> Result<Vec<SessionView>, Error> {
    let rows: Vec<ListedRow> = sqlx::query_as(
        "SELECT DISTINCT ON (family_id) family_id AS id, ip, user_agent, device, \
                min(created_at) OVER (PARTITION BY family_id) AS created_at, last_used_at \
         FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() \
         ORDER BY family_id, created_at DESC",
    )
    .bind(user)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}
