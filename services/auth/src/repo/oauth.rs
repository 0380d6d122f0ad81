//! `oauth_identities` (linked provider accounts) and `oauth_states` (pending sign-ins).

use nexus_kernel::Error;
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{IdentityView, OAuthState, WaitingState};

/// A pending sign-in to store for ten minutes.
pub struct NewState<'a> {
    pub state_hash: &'a [u8],
    pub provider: &'a str,
    pub nonce: &'a str,
    pub verifier_sealed: &'a str,
    pub redirect_uri: &'a str,
    pub link_user: Option<Uuid>,
}

pub async fn insert_state(conn: &mut PgConnection, s: &NewState<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO oauth_states (state_hash, provider, nonce, verifier_sealed, redirect_uri, link_user_id, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, now() + interval '10 minutes')",
    )
    .bind(s.state_hash)
    .bind(s.provider)
    .bind(s.nonce)
    .bind(s.verifier_sealed)
    .bind(s.redirect_uri)
    .bind(s.link_user)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn delete_expired_states(conn: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("DELETE FROM oauth_states WHERE expires_at < now()").execute(conn).await.db()?;
    Ok(())
}

row!(StateRow => OAuthState {
    provider, nonce, verifier_sealed, redirect_uri, link_user_id, code_hash, mfa_user_id, pending_subject,
    pending_email
});

/// Takes (deletes and returns) an unexpired state: each is used once.
pub async fn take_state(conn: &mut PgConnection, state_hash: &[u8]) -> Result<Option<OAuthState>, Error> {
    let row: Option<StateRow> = sqlx::query_as(
        "DELETE FROM oauth_states WHERE state_hash = $1 AND expires_at > now() \
         RETURNING provider, nonce, verifier_sealed, redirect_uri, link_user_id, code_hash, mfa_user_id, pending_subject, pending_email",
    )
    .bind(state_hash)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|r| r.0))
}

/// Stores a waiting state for ten minutes (no-op if the state exists).
pub async fn put_waiting(conn: &mut PgConnection, w: &WaitingState<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO oauth_states (state_hash, provider, nonce, verifier_sealed, redirect_uri, link_user_id, expires_at, \
                                   code_hash, mfa_user_id, pending_subject, pending_email) \
         VALUES ($1, $2, '', '', $3, NULL, now() + interval '10 minutes', $4, $5, $6, $7) ON CONFLICT (state_hash) DO NOTHING",
    )
    .bind(w.state_hash)
    .bind(w.provider)
    .bind(w.redirect_uri)
    .bind(w.code_hash)
    .bind(w.user)
    .bind(w.pending_subject)
    .bind(w.pending_email)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// The user a provider's subject is linked to.
pub async fn identity_owner(conn: &mut PgConnection, provider: &str, subject: &str) -> Result<Option<Uuid>, Error> {
    sqlx::query_scalar("SELECT user_id FROM oauth_identities WHERE provider = $1 AND subject = $2")
        .bind(provider)
        .bind(subject)
        .fetch_optional(conn)
        .await
        .db()
}

/// Links an OAuth identity; false when it was linked already.
pub async fn insert_identity(
    conn: &mut PgConnection,
    user: Uuid,
    provider: &str,
    subject: &str,
    email: Option<&str>,
) -> Result<bool, Error> {
    let inserted = sqlx::query(
        "INSERT INTO oauth_identities (user_id, provider, subject, email) VALUES ($1, $2, $3, $4) ON CONFLICT (provider, subject) DO NOTHING",
    )
    .bind(user)
    .bind(provider)
    .bind(subject)
    .bind(email)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(inserted == 1)
}

pub async fn identities_of(conn: &mut PgConnection, user: Uuid) -> Result<Vec<IdentityView>, Error> {
    let rows: Vec<(Uuid, String, Option<String>, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT id, provider, email, created_at FROM oauth_identities WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|(id, provider, email, created_at)| IdentityView { id, provider, email, created_at })
        .collect())
}

pub async fn delete_identity(conn: &mut PgConnection, user: Uuid, id: Uuid) -> Result<(), Error> {
    sqlx::query("DELETE FROM oauth_identities WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}
