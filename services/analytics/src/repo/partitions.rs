//! Monthly partitions of `analytics_events` (SQL functions of the migrations).

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::Error;
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

/// Creates the partition of the month starting `month` unless it exists.
pub async fn ensure(conn: &mut PgConnection, month: NaiveDate) -> Result<(), Error> {
    sqlx::query("SELECT analytics_ensure_partition($1)").bind(month).execute(conn).await.db()?;
    Ok(())
}

/// Drops every partition wholly before `cutoff`; how many were dropped.
pub async fn drop_before(conn: &mut PgConnection, cutoff: DateTime<Utc>) -> Result<i32, Error> {
    sqlx::query_scalar("SELECT analytics_drop_partitions_before($1)").bind(cutoff).fetch_one(conn).await.db()
}
