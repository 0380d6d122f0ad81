//! `mail_outbox`: rendered messages waiting for (or done with) delivery.

use std::time::Duration;

use nexus_kernel::Error;
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::mail::StoredMail;

const COLUMNS: &str = "id, to_email, locale, subject, body, created_at";

row!(MailRow => StoredMail { id, to_email, locale, subject, body, created_at });

pub async fn insert(
    conn: &mut PgConnection,
    to: &str,
    locale: &str,
    kind: &str,
    subject: &str,
    body: &str,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO mail_outbox (to_email, locale, kind, subject, body) VALUES ($1, $2, $3, $4, $5)")
        .bind(to)
        .bind(locale)
        .bind(kind)
        .bind(subject)
        .bind(body)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// The newest `limit` messages to `to` (to anyone when empty).
pub async fn list(conn: &mut PgConnection, to: &str, limit: i64) -> Result<Vec<StoredMail>, Error> {
    let rows: Vec<MailRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mail_outbox WHERE ($1 = '' OR to_email = $1) ORDER BY created_at DESC, id DESC LIMIT $2"
    )))
    .bind(to)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The oldest unsent messages still worth trying, locked (others senders skip them).
pub async fn due(conn: &mut PgConnection) -> Result<Vec<StoredMail>, Error> {
    let rows: Vec<MailRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM mail_outbox WHERE sent_at IS NULL AND attempts < 10 ORDER BY created_at LIMIT 20 FOR UPDATE SKIP LOCKED"
    )))
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Records a delivery attempt: sent, or failed with `error`.
pub async fn record_attempt(conn: &mut PgConnection, id: Uuid, error: Option<String>) -> Result<(), Error> {
    match error {
        None => sqlx::query("UPDATE mail_outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = $1").bind(id),
        Some(e) => sqlx::query("UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
            .bind(id)
            .bind(e),
    }
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Blanks the bodies of mail created more than `retention` ago that is done with: sent, given up
/// on, or (with `local`) any. Returns how many were blanked.
pub async fn purge_bodies(conn: &mut PgConnection, retention: Duration, local: bool) -> Result<u64, Error> {
    let purged = sqlx::query(
        "UPDATE mail_outbox SET body = '', body_purged_at = now() \
         WHERE body_purged_at IS NULL AND created_at < now() - make_interval(secs => $1) \
           AND ($2 OR sent_at IS NOT NULL OR attempts >= 10)",
    )
    .bind(retention.as_secs_f64())
    .bind(local)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(purged)
}
