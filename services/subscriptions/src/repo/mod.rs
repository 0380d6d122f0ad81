//! Every SQL statement of the service, one file per group of tables. Functions take the caller's
//! connection (`&mut *tx`) and answer with domain types; rows are mapped here and go no further.

pub mod catalogue;
pub mod checkout;
pub mod credits;
pub mod features;
pub mod invoices;
pub mod stripe_events;
pub mod subscriptions;

use nexus_kernel::Error;
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use sqlx::postgres::{PgArguments, Postgres};

/// A domain value read from a row: each file implements `FromRow` for the types it reads.
pub(super) struct Row<T>(T);

pub(super) fn rows<T>(rows: Vec<Row<T>>) -> Vec<T> {
    rows.into_iter().map(|r| r.0).collect()
}

/// `FromRow` for `Row<$ty>`, each field read from the column of the same name.
macro_rules! from_row {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for $crate::repo::Row<$ty> {
            fn from_row(r: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                Ok($crate::repo::Row($ty { $($field: r.try_get(stringify!($field))?),* }))
            }
        }
    };
}
pub(super) use from_row;

/// Runs an INSERT … ON CONFLICT DO NOTHING; whether it inserted.
pub(super) async fn inserted(
    q: sqlx::query::Query<'_, Postgres, PgArguments>,
    conn: &mut PgConnection,
) -> Result<bool, Error> {
    Ok(q.execute(conn).await.db()?.rows_affected() == 1)
}
