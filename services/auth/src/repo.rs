//! Row types and the queries several use cases share. Every function takes the caller's
//! connection, so the caller's transaction (tenant or system) decides what it sees.

use chrono::{DateTime, Utc};
use nexus_kernel::Error;
use sqlx::PgConnection;
use uuid::Uuid;

pub fn db(e: sqlx::Error) -> Error {
    nexus_platform::db::error(e)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub name: String,
    pub avatar_url: Option<String>,
    pub password_hash: Option<String>,
    pub mfa_secret_sealed: Option<String>,
    pub mfa_pending_sealed: Option<String>,
    pub mfa_enabled_at: Option<DateTime<Utc>>,
    pub mfa_failed: i32,
    pub mfa_locked_until: Option<DateTime<Utc>>,
    pub mfa_last_step: i64,
    pub deletion_requested_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const USER_COLUMNS: &str = "id, email, email_verified_at, name, avatar_url, password_hash, mfa_secret_sealed, \
     mfa_pending_sealed, mfa_enabled_at, mfa_failed, mfa_locked_until, mfa_last_step, deletion_requested_at, created_at";

pub async fn user_by_email(conn: &mut PgConnection, email: &str, lock: bool) -> Result<Option<UserRow>, Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1{}", if lock { " FOR UPDATE" } else { "" });
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(email).fetch_optional(conn).await.map_err(db)
}

pub async fn user_by_id(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<UserRow>, Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1{}", if lock { " FOR UPDATE" } else { "" });
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await.map_err(db)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SettingsRow {
    pub locale: String,
    pub timezone: String,
    pub notifications: serde_json::Value,
}

pub async fn settings(conn: &mut PgConnection, user: Uuid) -> Result<SettingsRow, Error> {
    sqlx::query_as("SELECT locale, timezone, notifications FROM user_settings WHERE user_id = $1")
        .bind(user)
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or_else(|| Error::internal("user without settings"))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MembershipRow {
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub role: String,
}

/// Workspaces of a user, oldest membership first. Needs a system transaction (spans tenants).
pub async fn memberships_of(conn: &mut PgConnection, user: Uuid) -> Result<Vec<MembershipRow>, Error> {
    sqlx::query_as(
        "SELECT w.id AS workspace_id, w.name AS workspace_name, m.role FROM memberships m \
         JOIN workspaces w ON w.id = m.tenant_id WHERE m.user_id = $1 ORDER BY m.created_at, w.id",
    )
    .bind(user)
    .fetch_all(conn)
    .await
    .map_err(db)
}

pub async fn membership(conn: &mut PgConnection, user: Uuid, workspace: Uuid) -> Result<Option<MembershipRow>, Error> {
    sqlx::query_as(
        "SELECT w.id AS workspace_id, w.name AS workspace_name, m.role FROM memberships m \
         JOIN workspaces w ON w.id = m.tenant_id WHERE m.user_id = $1 AND m.tenant_id = $2",
    )
    .bind(user)
    .bind(workspace)
    .fetch_optional(conn)
    .await
    .map_err(db)
}

/// How a live session family authenticated (from its newest row), or `None` when it is unknown
/// or revoked.
pub async fn session_auth(conn: &mut PgConnection, family: Uuid) -> Result<Option<crate::app::SessionAuth>, Error> {
    let row: Option<(Vec<String>, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT amr, auth_time, family_expires_at FROM sessions WHERE family_id = $1 AND revoked_at IS NULL \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(family)
    .fetch_optional(conn)
    .await
    .map_err(db)?;
    Ok(row.map(|(amr, auth_time, family_expires_at)| crate::app::SessionAuth { amr, auth_time, family_expires_at }))
}

/// Links an OAuth identity; false when it was linked already.
pub async fn insert_identity(
    conn: &mut PgConnection,
    user: Uuid,
    provider: &str,
    subject: &str,
    email: Option<&str>,
) -> Result<bool, Error> {
    let inserted = sqlx::query(
        "INSERT INTO oauth_identities (user_id, provider, subject, email) VALUES ($1, $2, $3, $4) ON CONFLICT (provider, subject) DO NOTHING",
    )
    .bind(user)
    .bind(provider)
    .bind(subject)
    .bind(email)
    .execute(conn)
    .await
    .map_err(db)?
    .rows_affected();
    Ok(inserted == 1)
}

pub async fn identities_of(conn: &mut PgConnection, user: Uuid) -> Result<Vec<crate::app::IdentityView>, Error> {
    sqlx::query_as(
        "SELECT id, provider, email, created_at FROM oauth_identities WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user)
    .fetch_all(conn)
    .await
    .map_err(db)
}

pub async fn delete_identity(conn: &mut PgConnection, user: Uuid, id: Uuid) -> Result<(), Error> {
    sqlx::query("DELETE FROM oauth_identities WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Revokes session families and returns the ids revoked (for events).
pub async fn revoke_families(
    conn: &mut PgConnection,
    filter: &str,
    arg: Uuid,
    keep: Option<Uuid>,
) -> Result<Vec<Uuid>, Error> {
    let sql = format!(
        "UPDATE sessions SET revoked_at = now() WHERE {filter} = $1 AND revoked_at IS NULL \
         AND ($2::uuid IS NULL OR family_id <> $2) RETURNING family_id"
    );
    let mut ids: Vec<Uuid> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(arg).bind(keep).fetch_all(conn).await.map_err(db)?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// A refresh-token row, as rotation reads it.
#[derive(sqlx::FromRow)]
pub struct RefreshRow {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub amr: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub replaced_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub auth_time: DateTime<Utc>,
    pub family_expires_at: DateTime<Utc>,
    pub successor_id: Option<Uuid>,
    pub successor_sealed: Option<String>,
}

/// The row of a refresh token (by its hash), locked for the rotation.
pub async fn refresh_row(conn: &mut PgConnection, hash: &[u8]) -> Result<Option<RefreshRow>, Error> {
    sqlx::query_as(
        "SELECT id, family_id, user_id, workspace_id, amr, expires_at, replaced_at, revoked_at, auth_time, family_expires_at, \
                successor_id, successor_sealed \
         FROM sessions WHERE refresh_hash = $1 FOR UPDATE",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await
    .map_err(db)
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
    .map_err(db)?;
    Ok(())
}

/// `(user, workspace, amr)` of row `id` while it is its family's live, unrotated, unexpired
/// newest row (locked); `None` otherwise.
pub async fn live_newest_row(conn: &mut PgConnection, id: Uuid) -> Result<Option<(Uuid, Uuid, Vec<String>)>, Error> {
    sqlx::query_as(
        "SELECT user_id, workspace_id, amr FROM sessions WHERE id = $1 AND revoked_at IS NULL AND replaced_at IS NULL \
         AND expires_at > now() AND family_expires_at > now() FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(db)
}

/// Ends `user`'s session families in `workspace`; returns their ids (for events).
pub async fn revoke_in_workspace(conn: &mut PgConnection, user: Uuid, workspace: Uuid) -> Result<Vec<Uuid>, Error> {
    let mut ids: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND workspace_id = $2 AND revoked_at IS NULL RETURNING family_id",
    )
    .bind(user)
    .bind(workspace)
    .fetch_all(conn)
    .await
    .map_err(db)?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Ownership transfer, inside a tenant transaction of the workspace.
pub mod ownership {
    use nexus_kernel::Error;
    use sqlx::PgConnection;
    use uuid::Uuid;

    use super::db;

    /// Locks the workspace row (transfers of one workspace run one at a time) and the
    /// memberships of `users`; returns their current roles.
    pub async fn lock(conn: &mut PgConnection, workspace: Uuid, users: &[Uuid]) -> Result<Vec<(Uuid, String)>, Error> {
        sqlx::query("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE")
            .bind(workspace)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        sqlx::query_as("SELECT user_id, role FROM memberships WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE")
            .bind(users)
            .fetch_all(conn)
            .await
            .map_err(db)
    }

    /// `to` becomes the owner, `from` an admin.
    pub async fn hand_over(conn: &mut PgConnection, from: Uuid, to: Uuid) -> Result<(), Error> {
        sqlx::query(
            "UPDATE memberships SET role = CASE WHEN user_id = $1 THEN 'owner' ELSE 'admin' END WHERE user_id = ANY($2)",
        )
        .bind(to)
        .bind(vec![from, to])
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        sqlx::query("UPDATE workspaces SET owner_id = $1").bind(to).execute(conn).await.map_err(db)?;
        Ok(())
    }
}

/// Pending OAuth sign-ins (state hashed, PKCE verifier sealed).
pub mod oauth_states {
    use nexus_kernel::Error;
    use sqlx::PgPool;
    use uuid::Uuid;

    use super::db;

    #[derive(sqlx::FromRow)]
    pub struct StateRow {
        pub provider: String,
        pub nonce: String,
        pub verifier_sealed: String,
        pub redirect_uri: String,
        pub link_user_id: Option<Uuid>,
        pub code_hash: Option<Vec<u8>>,
        pub mfa_user_id: Option<Uuid>,
        pub pending_subject: Option<String>,
        pub pending_email: Option<String>,
    }

    /// Takes (deletes and returns) an unexpired state: each is used once.
    pub async fn take(pool: &PgPool, state_hash: &[u8]) -> Result<Option<StateRow>, Error> {
        sqlx::query_as(
            "DELETE FROM oauth_states WHERE state_hash = $1 AND expires_at > now() \
             RETURNING provider, nonce, verifier_sealed, redirect_uri, link_user_id, code_hash, mfa_user_id, pending_subject, pending_email",
        )
        .bind(state_hash)
        .fetch_optional(pool)
        .await
        .map_err(db)
    }

    /// A sign-in the provider has answered, waiting for the user's second factor.
    pub struct Waiting<'a> {
        pub state_hash: &'a [u8],
        pub provider: &'a str,
        pub redirect_uri: &'a str,
        /// Hash of the provider's code: only the same callback may finish it.
        pub code_hash: &'a [u8],
        pub user: Uuid,
        /// The identity to link once the factor passes, if any.
        pub pending_subject: Option<&'a str>,
        pub pending_email: Option<&'a str>,
    }

    /// Stores a waiting state for ten minutes (no-op if the state exists).
    pub async fn put_waiting(pool: &PgPool, w: &Waiting<'_>) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, provider, nonce, verifier_sealed, redirect_uri, link_user_id, expires_at, \
                                       code_hash, mfa_user_id, pending_subject, pending_email) \
             VALUES ($1, $2, '', '', $3, NULL, now() + interval '10 minutes', $4, $5, $6, $7) ON CONFLICT (state_hash) DO NOTHING",
        )
        .bind(w.state_hash)
        .bind(w.provider)
        .bind(w.redirect_uri)
        .bind(w.code_hash)
        .bind(w.user)
        .bind(w.pending_subject)
        .bind(w.pending_email)
        .execute(pool)
        .await
        .map_err(db)?;
        Ok(())
    }
}

/// Brute-force counters. `fail` counts a failure inside the window and locks the key for
/// `lock` once `threshold` is reached; returns the lock end when this failure set it.
pub mod throttle {
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use nexus_kernel::Error;
    use sqlx::PgConnection;

    use super::db;

    pub async fn locked_until(conn: &mut PgConnection, key: &str) -> Result<Option<DateTime<Utc>>, Error> {
        let until: Option<Option<DateTime<Utc>>> =
            sqlx::query_scalar("SELECT locked_until FROM throttles WHERE key = $1 AND locked_until > now()")
                .bind(key)
                .fetch_optional(conn)
                .await
                .map_err(db)?;
        Ok(until.flatten())
    }

    pub async fn fail(
        conn: &mut PgConnection,
        key: &str,
        threshold: i32,
        window: Duration,
        lock: Duration,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let window_s = window.as_secs_f64();
        let lock_s = lock.as_secs_f64();
        let newly: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
            "INSERT INTO throttles AS t (key, window_start, failures) VALUES ($1, now(), 1) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN t.window_start < now() - make_interval(secs => $2) THEN 1 ELSE t.failures + 1 END, \
               window_start = CASE WHEN t.window_start < now() - make_interval(secs => $2) THEN now() ELSE t.window_start END \
             RETURNING CASE WHEN failures >= $3 THEN now() + make_interval(secs => $4) END",
        )
        .bind(key)
        .bind(window_s)
        .bind(threshold)
        .bind(lock_s)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        let until = newly.flatten();
        if let Some(until) = until {
            sqlx::query("UPDATE throttles SET locked_until = $2, failures = 0, window_start = now() WHERE key = $1")
                .bind(key)
                .bind(until)
                .execute(conn)
                .await
                .map_err(db)?;
        }
        Ok(until)
    }

    /// Counts an event (not a failure) and says whether the budget is spent, e.g. reset mails.
    pub async fn over_budget(conn: &mut PgConnection, key: &str, budget: i32, window: Duration) -> Result<bool, Error> {
        let failures: i32 = sqlx::query_scalar(
            "INSERT INTO throttles AS t (key, window_start, failures) VALUES ($1, now(), 1) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN t.window_start < now() - make_interval(secs => $2) THEN 1 ELSE t.failures + 1 END, \
               window_start = CASE WHEN t.window_start < now() - make_interval(secs => $2) THEN now() ELSE t.window_start END \
             RETURNING failures",
        )
        .bind(key)
        .bind(window.as_secs_f64())
        .fetch_one(conn)
        .await
        .map_err(db)?;
        Ok(failures > budget)
    }

    /// Spends one unit of `budget` per `window` (a fixed window from the first use). `Some(when)`
    /// when the budget is already spent: nothing is counted then, and `when` is the window's end.
    pub async fn spend(
        conn: &mut PgConnection,
        key: &str,
        budget: i32,
        window: Duration,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let (used, start): (i32, DateTime<Utc>) = sqlx::query_as(
            "INSERT INTO throttles AS t (key, window_start, failures) VALUES ($1, now(), 1) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN t.window_start < now() - make_interval(secs => $2) THEN 1 ELSE t.failures + 1 END, \
               window_start = CASE WHEN t.window_start < now() - make_interval(secs => $2) THEN now() ELSE t.window_start END \
             RETURNING failures, window_start",
        )
        .bind(key)
        .bind(window.as_secs_f64())
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
        if used <= budget {
            return Ok(None);
        }
        sqlx::query("UPDATE throttles SET failures = failures - 1 WHERE key = $1")
            .bind(key)
            .execute(conn)
            .await
            .map_err(db)?;
        Ok(Some(start + chrono::Duration::from_std(window).unwrap_or_default()))
    }

    pub async fn reset(conn: &mut PgConnection, key: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM throttles WHERE key = $1").bind(key).execute(conn).await.map_err(db)?;
        Ok(())
    }
}
