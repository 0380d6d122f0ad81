//! `signing_keys`: Ed25519 keys, private halves sealed; the newest unretired one signs.

use chrono::{DateTime, Utc};
use nexus_kernel::Error;
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

/// Serializes key creation across replicas until the transaction ends: replicas starting
/// together must not each mint a key.
pub async fn lock_creation(conn: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('nexus.auth.signing_keys'))").execute(conn).await.db()?;
    Ok(())
}

pub async fn any_active(conn: &mut PgConnection) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)").fetch_one(conn).await.db()
}

pub async fn retire_all(conn: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL").execute(conn).await.db()?;
    Ok(())
}

pub async fn insert(conn: &mut PgConnection, kid: &str, public: &[u8], private_sealed: &str) -> Result<(), Error> {
    sqlx::query("INSERT INTO signing_keys (kid, public_key, private_key_sealed) VALUES ($1, $2, $3)")
        .bind(kid)
        .bind(public)
        .bind(private_sealed)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `(kid, sealed private key)` of the key that signs now.
pub async fn newest_active(conn: &mut PgConnection) -> Result<Option<(String, String)>, Error> {
    sqlx::query_as(
        "SELECT kid, private_key_sealed FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await
    .db()
}

/// `(kid, public key)` of every key unretired or retired after `horizon`, newest first.
pub async fn published(conn: &mut PgConnection, horizon: DateTime<Utc>) -> Result<Vec<(String, Vec<u8>)>, Error> {
    sqlx::query_as(
        "SELECT kid, public_key FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC",
    )
    .bind(horizon)
    .fetch_all(conn)
    .await
    .db()
}
