//! `throttles`: brute-force and budget counters. `fail` counts a failure inside the window and
//! locks the key for `lock` once `threshold` is reached; returns the lock end when this failure
//! set it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nexus_kernel::Error;
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

/// Counts one event for the key inside a window of `$2` seconds (a new window when the last one
/// has passed), returning `returning`.
fn count_one(returning: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!(
        "INSERT INTO throttles AS t (key, window_start, failures) VALUES ($1, now(), 1) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN t.window_start < now() - make_interval(secs => $2) THEN 1 ELSE t.failures + 1 END, \
           window_start = CASE WHEN t.window_start < now() - make_interval(secs => $2) THEN now() ELSE t.window_start END \
         RETURNING {returning}"
    ))
}

pub async fn locked_until(conn: &mut PgConnection, key: &str) -> Result<Option<DateTime<Utc>>, Error> {
    let until: Option<Option<DateTime<Utc>>> =
        sqlx::query_scalar("SELECT locked_until FROM throttles WHERE key = $1 AND locked_until > now()")
            .bind(key)
            .fetch_optional(conn)
            .await
            .db()?;
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
    let newly: Option<Option<DateTime<Utc>>> =
        sqlx::query_scalar(count_one("CASE WHEN failures >= $3 THEN now() + make_interval(secs => $4) END"))
            .bind(key)
            .bind(window_s)
            .bind(threshold)
            .bind(lock_s)
            .fetch_optional(&mut *conn)
            .await
            .db()?;
    let until = newly.flatten();
    if let Some(until) = until {
        sqlx::query("UPDATE throttles SET locked_until = $2, failures = 0, window_start = now() WHERE key = $1")
            .bind(key)
            .bind(until)
            .execute(conn)
            .await
            .db()?;
    }
    Ok(until)
}

/// Counts an event (not a failure) and says whether the budget is spent, e.g. reset mails.
pub async fn over_budget(conn: &mut PgConnection, key: &str, budget: i32, window: Duration) -> Result<bool, Error> {
    let failures: i32 =
        sqlx::query_scalar(count_one("failures")).bind(key).bind(window.as_secs_f64()).fetch_one(conn).await.db()?;
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
    let (used, start): (i32, DateTime<Utc>) = sqlx::query_as(count_one("failures, window_start"))
        .bind(key)
        .bind(window.as_secs_f64())
        .fetch_one(&mut *conn)
        .await
        .db()?;
    if used <= budget {
        return Ok(None);
    }
    sqlx::query("UPDATE throttles SET failures = failures - 1 WHERE key = $1").bind(key).execute(conn).await.db()?;
    Ok(Some(start + chrono::Duration::from_std(window).unwrap_or_default()))
}

pub async fn reset(conn: &mut PgConnection, key: &str) -> Result<(), Error> {
    sqlx::query("DELETE FROM throttles WHERE key = $1").bind(key).execute(conn).await.db()?;
    Ok(())
}
