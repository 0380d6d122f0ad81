//! Re-sealing (`nexus-<svc> reseal`): after a new sealing key is added, every sealed column a
//! service declares is opened with whichever key sealed it and sealed again under the newest.
//!
//! Online: keyset pages in key order, one short system transaction per page holding row locks
//! only on that page, so the service keeps serving (a writer that races a page waits for it, and
//! a value it writes under the newest key is not touched again). Resumable and idempotent: only
//! values not yet under the newest key are selected, so a rerun after an interruption starts where
//! the work is. A value no configured key opens is counted and named by its row key (never by its
//! value) and the run goes on; the command then exits non-zero.

use sqlx::{PgConnection, PgPool, Row};

use crate::crypto::Sealer;
use crate::db::begin_system;

/// One sealed column of one table, as the service that seals it declares it.
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    pub table: &'static str,
    /// A unique, ordered column naming the row (the keyset the pages follow).
    pub key: &'static str,
    /// The column holding `v<version>.<nonce>.<ciphertext>` (NULL or empty: nothing sealed).
    pub column: &'static str,
    /// The column the sealing context is built from (often `key`); handed to `context` as text,
    /// `bytea` hex-encoded without a prefix.
    pub context_from: &'static str,
    /// The context the service passes to `Sealer::seal` for this row; `None` when the value of
    /// `context_from` cannot be one the service wrote (reported like a value that does not open).
    pub context: fn(&str) -> Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct ResealOptions {
    /// Rows per transaction.
    pub batch_size: u32,
    /// Stop after this many batches per column (a bounded pass; a rerun continues).
    pub max_batches: Option<u64>,
}

impl Default for ResealOptions {
    fn default() -> Self {
        Self { batch_size: 500, max_batches: None }
    }
}

/// What a run did to one column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnReport {
    pub table: String,
    pub column: String,
    /// Values not under the newest key when the run began.
    pub pending: u64,
    pub resealed: u64,
    /// Row keys whose value no configured key opens (or whose context cannot be built).
    pub failed: Vec<String>,
    /// Whether the run stopped at `max_batches` before reaching the end of the table.
    pub interrupted: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResealReport {
    pub columns: Vec<ColumnReport>,
}

impl ResealReport {
    pub fn failed(&self) -> u64 {
        self.columns.iter().map(|c| c.failed.len() as u64).sum()
    }

    pub fn resealed(&self) -> u64 {
        self.columns.iter().map(|c| c.resealed).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("sealed column {0}: not a plain identifier or not found")]
    BadColumn(String),
}

fn ident(name: &str) -> Result<&str, ResealError> {
    let ok = !name.is_empty()
        && name.len() < 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok { Ok(name) } else { Err(ResealError::BadColumn(name.to_owned())) }
}

/// The SQL type of `table.column` as `format_type` spells it (a cast target), from the catalogue.
async fn column_type(conn: &mut PgConnection, table: &str, column: &str) -> Result<String, ResealError> {
    sqlx::query_scalar(
        "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
         WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped",
    )
    .bind(table)
    .bind(column)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ResealError::BadColumn(format!("{table}.{column}")))
}

/// `column` as text: hex for `bytea` (what the services' contexts print), the type's own text
/// form otherwise.
fn as_text(column: &str, ty: &str) -> String {
    if ty == "bytea" { format!("encode({column}, 'hex')") } else { format!("{column}::text") }
}

/// Re-seals every declared column under `sealer`'s newest key, across all workspaces.
pub async fn reseal(
    pool: &PgPool,
    sealer: &Sealer,
    columns: &[SealedColumn],
    options: ResealOptions,
) -> Result<ResealReport, ResealError> {
    let mut report = ResealReport::default();
    for c in columns {
        report.columns.push(reseal_column(pool, sealer, c, options).await?);
    }
    Ok(report)
}

async fn reseal_column(
    pool: &PgPool,
    sealer: &Sealer,
    c: &SealedColumn,
    options: ResealOptions,
) -> Result<ColumnReport, ResealError> {
    let (table, key, column) = (ident(c.table)?, ident(c.key)?, ident(c.column)?);
    let context_from = ident(c.context_from)?;
    // A system transaction: RLS policies let it see every workspace (the sweepers' way), while
    // the connection stays the service's own role.
    let mut tx = begin_system(pool).await?;
    let key_type = column_type(&mut tx, table, key).await?;
    let context_type = column_type(&mut tx, table, context_from).await?;
    // Values under the newest key are skipped by this predicate: a rerun only sees what is left.
    let pending_filter = format!("{column} IS NOT NULL AND {column} <> '' AND left({column}, length($1)) <> $1");
    let current_prefix = format!("v{}.", sealer.current_version());
    let pending: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table} WHERE {pending_filter}")))
            .bind(&current_prefix)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;

    let mut out = ColumnReport {
        table: table.to_owned(),
        column: column.to_owned(),
        pending: u64::try_from(pending).unwrap_or_default(),
        ..ColumnReport::default()
    };
    tracing::info!(table, column, pending = out.pending, version = sealer.current_version(), "re-sealing");

    // The key travels as its text form and is cast back (`'\x…'::bytea`, `'…'::uuid`), so the
    // comparison uses the key's own ordering and index.
    let select = format!(
        "SELECT {key}::text AS k, {ctx} AS c, {column} AS v FROM {table} \
         WHERE {pending_filter} AND ($2::text IS NULL OR {key} > $2::text::{key_type}) \
         ORDER BY {key} LIMIT $3 FOR UPDATE",
        ctx = as_text(context_from, &context_type),
    );
    let update = format!(
        "UPDATE {table} AS t SET {column} = u.v FROM unnest($1::text[], $2::text[]) AS u(k, v) \
         WHERE t.{key} = u.k::{key_type}"
    );
    let mut after: Option<String> = None;
    let mut batches = 0u64;
    loop {
        if options.max_batches.is_some_and(|m| batches >= m) {
            out.interrupted = true;
            break;
        }
        let mut tx = begin_system(pool).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(select.as_str()))
            .bind(&current_prefix)
            .bind(after.as_deref())
            .bind(i64::from(options.batch_size.max(1)))
            .fetch_all(&mut *tx)
            .await?;
        let Some(last) = rows.last() else {
            tx.commit().await?;
            break;
        };
        after = Some(last.try_get("k")?);
        let (mut keys, mut values) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
        for row in &rows {
            let k: String = row.try_get("k")?;
            let ctx: String = row.try_get("c")?;
            let sealed: String = row.try_get("v")?;
            match (c.context)(&ctx).ok_or(()).and_then(|context| sealer.reseal(&sealed, &context).map_err(|_| ())) {
                Ok(v) => {
                    keys.push(k);
                    values.push(v);
                }
                Err(()) => {
                    tracing::warn!(table, column, row = %k, "sealed value does not open with any configured key");
                    out.failed.push(k);
                }
            }
        }
        if !keys.is_empty() {
            sqlx::query(sqlx::AssertSqlSafe(update.as_str())).bind(&keys).bind(&values).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        out.resealed += keys.len() as u64;
        batches += 1;
        tracing::info!(
            table,
            column,
            done = out.resealed + out.failed.len() as u64,
            total = out.pending,
            failed = out.failed.len(),
            "batch re-sealed"
        );
    }
    tracing::info!(
        table,
        column,
        resealed = out.resealed,
        failed = out.failed.len(),
        interrupted = out.interrupted,
        "column done"
    );
    Ok(out)
}

/// For a [`SealedColumn::context`] built from a `uuid` column: `f` of the parsed id.
pub fn by_uuid(value: &str, f: impl FnOnce(uuid::Uuid) -> String) -> Option<String> {
    uuid::Uuid::parse_str(value).ok().map(f)
}
