//! Every SQL statement of the content service, one file per table group. Functions take the
//! caller's connection or transaction (`&mut *tx`) and return domain types; row types stay here.

pub mod agents;
pub mod generations;
pub mod images;
pub mod pages;

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

/// Tables whose rows count against a plan limit.
#[derive(Debug, Clone, Copy)]
pub enum Limited {
    Pages,
    Agents,
}

/// How many rows of `table` the workspace has, taken under a transaction-scoped lock on
/// (workspace, `feature`), so two creations cannot both pass the same count.
pub async fn count_locked(
    conn: &mut PgConnection,
    tenant: TenantId,
    table: Limited,
    feature: &str,
) -> Result<i64, Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{tenant}:{feature}"))
        .execute(&mut *conn)
        .await
        .db()?;
    let sql = match table {
        Limited::Pages => "SELECT count(*) FROM magic_pages",
        Limited::Agents => "SELECT count(*) FROM ai_agents",
    };
    sqlx::query_scalar(sql).fetch_one(&mut *conn).await.db()
}

/// The row of `select` (`SELECT … FROM t`, ours) whose `column` (a name of ours, never input)
/// equals `value`, as a domain type.
async fn one<R, D, T>(conn: &mut PgConnection, select: &str, column: &str, value: T) -> Result<Option<D>, Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    D: From<R>,
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
{
    let sql = format!("{select} WHERE {column} = $1");
    let row: Option<R> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(value).fetch_optional(conn).await.db()?;
    Ok(row.map(D::from))
}
