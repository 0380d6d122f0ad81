//! `users`, `user_settings`, `recovery_codes` and `email_tokens`.

use std::time::Duration;

use nexus_kernel::Error;
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Settings, User};

const USER_COLUMNS: &str = "id, email, email_verified_at, name, avatar_url, password_hash, mfa_secret_sealed, \
     mfa_pending_sealed, mfa_enabled_at, mfa_failed, mfa_locked_until, mfa_last_step, deletion_requested_at, created_at";

row!(UserRow => User {
    id, email, email_verified_at, name, avatar_url, password_hash, mfa_secret_sealed, mfa_pending_sealed,
    mfa_enabled_at, mfa_failed, mfa_locked_until, mfa_last_step, deletion_requested_at, created_at
});

fn user_sql(column: &str, lock: bool) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE {column} = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
}

pub async fn by_email(conn: &mut PgConnection, email: &str, lock: bool) -> Result<Option<User>, Error> {
    let row: Option<UserRow> = sqlx::query_as(user_sql("email", lock)).bind(email).fetch_optional(conn).await.db()?;
    Ok(row.map(|r| r.0))
}

pub async fn by_id(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<User>, Error> {
    let row: Option<UserRow> = sqlx::query_as(user_sql("id", lock)).bind(id).fetch_optional(conn).await.db()?;
    Ok(row.map(|r| r.0))
}

/// Inserts a user; false when the email is registered already.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    email: &str,
    name: &str,
    password_hash: Option<&str>,
    verified: bool,
) -> Result<bool, Error> {
    let inserted = sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, email_verified_at) \
         VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END) ON CONFLICT (email) DO NOTHING",
    )
    .bind(id)
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .bind(verified)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(inserted == 1)
}

/// Sets the name and, when `avatar` is given, the avatar URL (`Some(None)` clears it).
pub async fn update_profile(
    conn: &mut PgConnection,
    id: Uuid,
    name: Option<String>,
    avatar: Option<Option<String>>,
) -> Result<(), Error> {
    sqlx::query("UPDATE users SET name = coalesce($2, name), avatar_url = CASE WHEN $3 THEN $4 ELSE avatar_url END, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(name)
        .bind(avatar.is_some())
        .bind(avatar.flatten())
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

pub async fn mark_email_verified(conn: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    sqlx::query("UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

pub async fn set_password(conn: &mut PgConnection, id: Uuid, hash: &str) -> Result<(), Error> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Blanks what identifies the person (email, name, avatar, password, second factor) and drops
/// their linked identities, recovery codes and email tokens.
pub async fn erase(conn: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    sqlx::query(
        "UPDATE users SET email = 'deleted+' || id || '@invalid', name = '', avatar_url = NULL, password_hash = NULL, \
         mfa_secret_sealed = NULL, mfa_pending_sealed = NULL, mfa_enabled_at = NULL, deletion_requested_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await
    .db()?;
    for table in ["oauth_identities", "recovery_codes", "email_tokens"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE user_id = $1")))
            .bind(id)
            .execute(&mut *conn)
            .await
            .db()?;
    }
    Ok(())
}

/// Runs one statement on a user's MFA columns with `arg` as `$2`.
async fn mfa_update<T>(conn: &mut PgConnection, sql: &'static str, id: Uuid, arg: T) -> Result<(), Error>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
{
    sqlx::query(sql).bind(id).bind(arg).execute(conn).await.db()?;
    Ok(())
}

/// A TOTP step was accepted: later codes must be of later steps; the failure count restarts.
pub async fn accept_totp_step(conn: &mut PgConnection, id: Uuid, step: i64) -> Result<(), Error> {
    mfa_update(conn, "UPDATE users SET mfa_last_step = $2, mfa_failed = 0 WHERE id = $1", id, step).await
}

pub async fn set_mfa_failures(conn: &mut PgConnection, id: Uuid, failed: i32) -> Result<(), Error> {
    mfa_update(conn, "UPDATE users SET mfa_failed = $2 WHERE id = $1", id, failed).await
}

/// Locks the second factor for `period` (and restarts the failure count).
pub async fn lock_mfa(conn: &mut PgConnection, id: Uuid, period: Duration) -> Result<(), Error> {
    mfa_update(
        conn,
        "UPDATE users SET mfa_failed = 0, mfa_locked_until = now() + make_interval(secs => $2) WHERE id = $1",
        id,
        period.as_secs_f64(),
    )
    .await
}

/// Keeps a TOTP secret (sealed) until the user confirms it with a code.
pub async fn set_mfa_pending(conn: &mut PgConnection, id: Uuid, sealed: String) -> Result<(), Error> {
    mfa_update(conn, "UPDATE users SET mfa_pending_sealed = $2 WHERE id = $1", id, sealed).await
}

/// The pending secret becomes the one in force, `step` its first used step.
pub async fn enable_mfa(conn: &mut PgConnection, id: Uuid, step: i64) -> Result<(), Error> {
    mfa_update(
        conn,
        "UPDATE users SET mfa_secret_sealed = mfa_pending_sealed, mfa_pending_sealed = NULL, mfa_enabled_at = now(), \
         mfa_last_step = $2, mfa_failed = 0, mfa_locked_until = NULL WHERE id = $1",
        id,
        step,
    )
    .await
}

/// Switches the second factor off and drops the recovery codes.
pub async fn disable_mfa(conn: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    sqlx::query("UPDATE users SET mfa_secret_sealed = NULL, mfa_enabled_at = NULL, mfa_failed = 0 WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .db()?;
    delete_recovery_codes(conn, id).await
}

pub async fn delete_recovery_codes(conn: &mut PgConnection, user: Uuid) -> Result<(), Error> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user).execute(conn).await.db()?;
    Ok(())
}

pub async fn insert_recovery_codes(conn: &mut PgConnection, user: Uuid, hashes: &[Vec<u8>]) -> Result<(), Error> {
    for hash in hashes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user)
            .bind(hash)
            .execute(&mut *conn)
            .await
            .db()?;
    }
    Ok(())
}

/// Spends one unused recovery code of `user` by its hash; false if there is none.
pub async fn use_recovery_code(conn: &mut PgConnection, user: Uuid, hash: &[u8]) -> Result<bool, Error> {
    let used = sqlx::query(
        "UPDATE recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
    )
    .bind(user)
    .bind(hash)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(used == 1)
}

pub async fn insert_settings(conn: &mut PgConnection, user: Uuid, locale: &str) -> Result<(), Error> {
    sqlx::query("INSERT INTO user_settings (user_id, locale) VALUES ($1, $2)")
        .bind(user)
        .bind(locale)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

pub async fn settings(conn: &mut PgConnection, user: Uuid) -> Result<Settings, Error> {
    let row: Option<(String, String, serde_json::Value)> =
        sqlx::query_as("SELECT locale, timezone, notifications FROM user_settings WHERE user_id = $1")
            .bind(user)
            .fetch_optional(conn)
            .await
            .db()?;
    let (locale, timezone, notifications) = row.ok_or_else(|| Error::internal("user without settings"))?;
    Ok(Settings { locale, timezone, notifications })
}

/// The user's locale, when they have settings.
pub async fn locale(conn: &mut PgConnection, user: Uuid) -> Result<Option<String>, Error> {
    sqlx::query_scalar("SELECT locale FROM user_settings WHERE user_id = $1").bind(user).fetch_optional(conn).await.db()
}

/// Sets the given settings; absent ones stay.
pub async fn update_settings(
    conn: &mut PgConnection,
    user: Uuid,
    locale: Option<&str>,
    timezone: Option<String>,
    notifications: Option<serde_json::Value>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE user_settings SET locale = coalesce($2, locale), timezone = coalesce($3, timezone), \
         notifications = coalesce($4, notifications), updated_at = now() WHERE user_id = $1",
    )
    .bind(user)
    .bind(locale)
    .bind(timezone)
    .bind(notifications)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Stores a single-use mail token (by its hash) for `purpose`, valid for `valid_for`.
pub async fn insert_email_token(
    conn: &mut PgConnection,
    user: Uuid,
    purpose: &str,
    hash: &[u8],
    valid_for: Duration,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO email_tokens (user_id, purpose, token_hash, expires_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(user)
    .bind(purpose)
    .bind(hash)
    .bind(valid_for.as_secs_f64())
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Spends an unused, unexpired mail token for `purpose`; its user, or `None`.
pub async fn consume_email_token(conn: &mut PgConnection, hash: &[u8], purpose: &str) -> Result<Option<Uuid>, Error> {
    sqlx::query_scalar(
        "UPDATE email_tokens SET used_at = now() WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
    )
    .bind(hash)
    .bind(purpose)
    .fetch_optional(conn)
    .await
    .db()
}
