//! Every SQL statement of the auth service, one file per table group. Functions take the
//! caller's connection (`&mut *tx`), so the caller's transaction (tenant or system) decides what
//! they see, and return domain types.

/// A private newtype that reads a row into a domain struct, each field from the column of the same
/// name: `row!(UserRow => User { id, email })`. Row types stay here; callers get domain types.
macro_rules! row {
    ($row:ident => $ty:ident { $($field:ident),* $(,)? }) => {
        struct $row($ty);

        impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for $row {
            fn from_row(r: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                Ok($row($ty { $($field: r.try_get(stringify!($field))?),* }))
            }
        }
    };
}

pub mod api_keys;
pub mod mail;
pub mod oauth;
pub mod sessions;
pub mod signing_keys;
pub mod throttles;
pub mod users;
pub mod workspaces;
