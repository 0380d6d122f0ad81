//! Pending authorizations (`oauth_states`).

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

/// A pending authorization, kept ten minutes.
pub struct NewState<'a> {
    pub state_hash: &'a [u8],
    pub provider: &'a str,
    pub verifier_sealed: &'a str,
    pub redirect_uri: &'a str,
}

pub async fn insert(conn: &mut PgConnection, tenant: TenantId, s: &NewState<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO oauth_states (state_hash, tenant_id, provider, verifier_sealed, redirect_uri, expires_at) \
         VALUES ($1, $2, $3, $4, $5, now() + interval '10 minutes')",
    )
    .bind(s.state_hash)
    .bind(tenant.as_uuid())
    .bind(s.provider)
    .bind(s.verifier_sealed)
    .bind(s.redirect_uri)
    .execute(&mut *conn)
    .await
    .db()?;
    sqlx::query("DELETE FROM oauth_states WHERE expires_at < now()").execute(conn).await.db()?;
    Ok(())
}

/// (provider, sealed verifier, redirect uri) of an unexpired state, deleted: each is used once.
pub async fn take(conn: &mut PgConnection, state_hash: &[u8]) -> Result<Option<(String, String, String)>, Error> {
    sqlx::query_as(
        "DELETE FROM oauth_states WHERE state_hash = $1 AND expires_at > now() \
         RETURNING provider, verifier_sealed, redirect_uri",
    )
    .bind(state_hash)
    .fetch_optional(conn)
    .await
    .db()
}
