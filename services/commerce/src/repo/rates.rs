//! Daily exchange rates (not tenant data: one published rate for everyone).

use nexus_kernel::Error;
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

use crate::domain::rates::DailyRate;

pub async fn store(conn: &mut PgConnection, rates: &[DailyRate], source: &str) -> Result<(), Error> {
    for r in rates {
        sqlx::query(
            "INSERT INTO exchange_rates (day, currency, per_euro, source) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (day, currency) DO UPDATE SET per_euro = EXCLUDED.per_euro, source = EXCLUDED.source, fetched_at = now()",
        )
        .bind(r.day)
        .bind(&r.currency)
        .bind(r.per_euro)
        .bind(source)
        .execute(&mut *conn)
        .await
        .db()?;
    }
    Ok(())
}

/// The stored rates of the last `days` days of publications.
pub async fn recent(conn: &mut PgConnection, days: i32) -> Result<Vec<DailyRate>, Error> {
    let rows: Vec<(chrono::NaiveDate, String, rust_decimal::Decimal)> = sqlx::query_as(
        "SELECT day, currency, per_euro FROM exchange_rates WHERE day >= (SELECT max(day) FROM exchange_rates) - $1 ORDER BY day",
    )
    .bind(days)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().map(|(day, currency, per_euro)| DailyRate { day, currency, per_euro }).collect())
}
