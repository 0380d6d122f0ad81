//! Sessions: refresh-token rotation with reuse detection, logout, and the user's list of
//! sessions with revocation.

use chrono::Utc;
use nexus_kernel::Error;
use nexus_platform::db::{self, DbResultExt};
use nexus_platform::identity::Principal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{App, Client, Issued};
use crate::domain::sessions::successor_context;
use crate::domain::{self, SessionView, StoredRefresh};
use crate::events;
use crate::repo::{self, sessions::Revoke};

impl App {
    /// Rotates a refresh token. A spent token sent again within `auth.refresh_reuse_grace` of its
    /// rotation gets the same successor back (the client lost the response); later, or when the
    /// successor has moved on, the whole family is revoked. A family ends for good at
    /// `family_expires_at` (`auth.refresh_family_lifetime` after sign-in).
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str, client: &Client) -> Result<Issued, Error> {
        let invalid = || Error::unauthenticated("auth.invalid_refresh_token");
        if !refresh_token.starts_with("nxr_") || refresh_token.len() > 100 {
            return Err(invalid());
        }
        let mut tx = db::system(&self.pool).await?;
        let row = repo::sessions::by_refresh_hash(&mut tx, &domain::token_hash(refresh_token)).await?;
        let Some(row) = row else {
            return Err(invalid());
        };
        let family = row.family_id;
        if row.revoked_at.is_none()
            && let Some(replaced) = row.replaced_at
        {
            let grace = chrono::Duration::from_std(self.cfg.auth.refresh_reuse_grace).unwrap_or_default();
            if Utc::now() - replaced <= grace
                && let Some(issued) = self.same_successor(&mut tx, &row).await?
            {
                db::commit(tx).await?;
                metrics::counter!("nexus_auth_refresh_grace_total").increment(1);
                return Ok(issued);
            }
        }
        if row.replaced_at.is_some() || row.revoked_at.is_some() {
            // A spent token came back: whoever holds the family may be an attacker. Kill it all.
            let families = repo::sessions::revoke(&mut tx, Revoke::Family(family)).await?;
            events::sessions_revoked(&mut tx, row.user_id, &families, "refresh_token_reuse").await?;
            db::commit(tx).await?;
            tracing::warn!(%family, "refresh token reuse; session family revoked");
            metrics::counter!("nexus_auth_refresh_reuse_total").increment(1);
            return Err(invalid());
        }
        let now = Utc::now();
        if row.expires_at < now || row.family_expires_at < now {
            return Err(invalid());
        }
        let user = repo::users::by_id(&mut tx, row.user_id, false)
            .await?
            .filter(|u| u.deletion_requested_at.is_none())
            .ok_or_else(invalid)?;
        // Role changes and removals take effect at the next refresh.
        let Some(workspace) = repo::workspaces::membership(&mut tx, row.user_id, row.workspace_id).await? else {
            return Err(invalid());
        };
        let auth = domain::SessionAuth {
            amr: row.amr.clone(),
            auth_time: row.auth_time,
            family_expires_at: row.family_expires_at,
        };
        let issued = self.add_session_row(&mut tx, user, workspace, family, auth, client).await?;
        // The successor, sealed to this row, so a lost response can be given again.
        let sealed = self.sealer.seal(issued.refresh_token.as_bytes(), &successor_context(row.id));
        repo::sessions::mark_replaced(&mut tx, row.id, issued.row_id, &sealed).await?;
        db::commit(tx).await?;
        Ok(issued)
    }

    /// The successor of a just-rotated row, with a fresh access token, while it is still the
    /// family's live newest row; `None` otherwise (then the reuse counts as theft).
    async fn same_successor(&self, conn: &mut PgConnection, row: &StoredRefresh) -> Result<Option<Issued>, Error> {
        let (Some(successor), Some(sealed)) = (row.successor_id, row.successor_sealed.as_deref()) else {
            return Ok(None);
        };
        let Some(domain::LiveRow { user_id, workspace_id, amr }) =
            repo::sessions::live_newest(&mut *conn, successor).await?
        else {
            return Ok(None);
        };
        let Ok(refresh) = self.sealer.open(sealed, &successor_context(row.id)) else { return Ok(None) };
        let Ok(refresh) = String::from_utf8(refresh) else { return Ok(None) };
        let Some(user) = repo::users::by_id(conn, user_id, false).await?.filter(|u| u.deletion_requested_at.is_none())
        else {
            return Ok(None);
        };
        let Some(workspace) = repo::workspaces::membership(conn, user_id, workspace_id).await? else { return Ok(None) };
        self.issue(conn, user, workspace, row.family_id, &amr, refresh, successor).await.map(Some)
    }

    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, refresh_token: &str) -> Result<(), Error> {
        let mut tx = db::system(&self.pool).await?;
        let found = repo::sessions::family_of(&mut tx, &domain::token_hash(refresh_token)).await?;
        // Logging out with an unknown token is not an error: the client is logged out either way.
        if let Some((family, user)) = found {
            let families = repo::sessions::revoke(&mut tx, Revoke::Family(family)).await?;
            events::sessions_revoked(&mut tx, user, &families, "logout").await?;
        }
        db::commit(tx).await
    }

    /// Sessions are the person's, across workspaces: users only, never an API key.
    #[tracing::instrument(skip_all)]
    pub async fn list_sessions(&self, p: &Principal) -> Result<Vec<SessionView>, Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let mut conn = self.pool.acquire().await.db()?;
        repo::sessions::list_live(&mut conn, p.user_id.as_uuid()).await
    }

    #[tracing::instrument(skip_all, fields(session = %id))]
    pub async fn revoke_session(&self, p: &Principal, id: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let family = Uuid::parse_str(id).map_err(|_| Error::not_found("request.not_found"))?;
        let mut tx = db::system(&self.pool).await?;
        let which = Revoke::OwnFamily { family, user: p.user_id.as_uuid() };
        let revoked = repo::sessions::revoke(&mut tx, which).await?;
        if revoked.is_empty() {
            return Err(Error::not_found("request.not_found"));
        }
        events::sessions_revoked(&mut tx, p.user_id.as_uuid(), &[family], "revoked_by_user").await?;
        db::commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    pub async fn revoke_all_sessions(&self, p: &Principal) -> Result<(), Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let mut tx = db::system(&self.pool).await?;
        let families = repo::sessions::revoke(&mut tx, Revoke::User(p.user_id.as_uuid())).await?;
        events::sessions_revoked(&mut tx, p.user_id.as_uuid(), &families, "revoked_by_user").await?;
        db::commit(tx).await
    }
}
