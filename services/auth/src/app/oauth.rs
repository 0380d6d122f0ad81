//! Sign-in with Google or Facebook (OpenID Connect, authorization code + PKCE). State, nonce and
//! the PKCE verifier stay server-side (state hashed, verifier sealed) for ten minutes.

use nexus_kernel::{Error, ErrorKind, Locale};
use nexus_platform::db::begin_system;
use nexus_platform::identity::Principal;
use uuid::Uuid;

use super::{App, Client, Issued};
use crate::domain::{self, Email};
use crate::repo::{self, db};

impl App {
    fn oidc(&self, provider: &str) -> Result<&nexus_providers::oidc::OidcClient, Error> {
        self.oidc.get(provider).ok_or_else(|| {
            Error::invalid("auth.oauth_unknown_provider")
                .with_param("provider", provider.chars().take(32).collect::<String>())
        })
    }

    pub async fn oauth_start(
        &self,
        p: Option<&Principal>,
        provider: &str,
        redirect_uri: &str,
    ) -> Result<(String, String), Error> {
        let client = self.oidc(provider)?;
        if !self.cfg.oauth.redirect_allowlist.iter().any(|u| u == redirect_uri) {
            return Err(Error::invalid("auth.invalid_url").with_violation("redirect_uri", "not_allowed"));
        }
        let req = client.authorization_request(redirect_uri).await.map_err(|e| e.into_kernel_error(provider))?;
        let link_user = match p {
            Some(p) => {
                self.require_live(p).await?;
                Some(p.user_id.as_uuid())
            }
            None => None,
        };
        let state_hash = domain::token_hash(&req.state);
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, provider, nonce, verifier_sealed, redirect_uri, link_user_id, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, now() + interval '10 minutes')",
        )
        .bind(&state_hash)
        .bind(provider)
        .bind(&req.nonce)
        .bind(self.sealer.seal(req.pkce_verifier.as_bytes(), &format!("auth.oauth_states:{}", hex::encode(&state_hash))))
        .bind(redirect_uri)
        .bind(link_user)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        sqlx::query("DELETE FROM oauth_states WHERE expires_at < now()").execute(&self.pool).await.map_err(db)?;
        Ok((req.url, req.state))
    }

    pub async fn oauth_callback(
        &self,
        provider: &str,
        code: &str,
        state: &str,
        locale: Locale,
        client: &Client,
    ) -> Result<Issued, Error> {
        let oidc = self.oidc(provider)?;
        let bad_state = || Error::invalid("auth.oauth_state_invalid");
        let state_hash = domain::token_hash(state);
        let row: Option<(String, String, String, String, Option<Uuid>)> = sqlx::query_as(
            "DELETE FROM oauth_states WHERE state_hash = $1 AND expires_at > now() RETURNING provider, nonce, verifier_sealed, redirect_uri, link_user_id",
        )
        .bind(&state_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let (stored_provider, nonce, sealed, redirect_uri, link_user) = row.ok_or_else(bad_state)?;
        if stored_provider != provider {
            return Err(bad_state());
        }
        let verifier = self
            .sealer
            .open(&sealed, &format!("auth.oauth_states:{}", hex::encode(&state_hash)))
            .map_err(|_| bad_state())?;
        let verifier = String::from_utf8(verifier).map_err(|_| bad_state())?;
        let claims =
            oidc.login(code, &verifier, &redirect_uri, &nonce).await.map_err(|e| e.into_kernel_error(provider))?;

        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let existing: Option<Uuid> =
            sqlx::query_scalar("SELECT user_id FROM oauth_identities WHERE provider = $1 AND subject = $2")
                .bind(provider)
                .bind(&claims.sub)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let email = claims.email.as_deref().map(Email::parse).transpose().ok().flatten();
        let user_id = match (existing, link_user) {
            // Linking while signed in must not hand over an identity someone else already owns.
            (Some(owner), Some(me)) if owner != me => {
                return Err(
                    Error::new(ErrorKind::Conflict, "auth.oauth_already_linked").with_param("provider", provider)
                );
            }
            (Some(u), _) => u,
            (None, Some(u)) => {
                self.link_identity(&mut tx, u, provider, &claims.sub, email.as_ref()).await?;
                u
            }
            (None, None) => {
                let email = email.ok_or_else(|| {
                    Error::unauthenticated("auth.oauth_email_unverified").with_param("provider", provider)
                })?;
                match repo::user_by_email(&mut tx, email.as_str(), false).await? {
                    // Automatic linking only on an address the provider has verified.
                    Some(u) if claims.email_verified => {
                        self.link_identity(&mut tx, u.id, provider, &claims.sub, Some(&email)).await?;
                        u.id
                    }
                    // The address is taken and the provider does not vouch for it: sign in with the
                    // password and link explicitly.
                    Some(_) => {
                        return Err(Error::new(ErrorKind::Conflict, "auth.oauth_link_required")
                            .with_param("provider", provider));
                    }
                    // No account yet, but an unverified address: creating one would let anyone
                    // claim an address before its owner signs up.
                    None if !claims.email_verified => {
                        return Err(Error::new(ErrorKind::FailedPrecondition, "auth.oauth_email_unverified")
                            .with_param("provider", provider));
                    }
                    None => {
                        let name = claims
                            .name
                            .clone()
                            .filter(|n| !n.trim().is_empty())
                            .unwrap_or_else(|| email.as_str().split('@').next().unwrap_or("").to_owned());
                        self.create_oauth_user(
                            &mut tx,
                            &email,
                            &domain::check_name(&name)?,
                            claims.email_verified,
                            locale,
                            provider,
                            &claims.sub,
                        )
                        .await?
                    }
                }
            }
        };
        let user = repo::user_by_id(&mut tx, user_id, false)
            .await?
            .filter(|u| u.deletion_requested_at.is_none())
            .ok_or_else(|| Error::unauthenticated("auth.invalid_credentials"))?;
        let workspace = repo::memberships_of(&mut tx, user.id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::forbidden("auth.not_member"))?;
        let method = format!("oauth:{provider}");
        let issued = self.open_session(&mut tx, user, workspace, &["oauth"], client).await?;
        Self::emit_logged_in(&mut tx, &issued, &client.ip, &method).await?;
        tx.commit().await.map_err(db)?;
        Ok(issued)
    }

    async fn link_identity(
        &self,
        conn: &mut sqlx::PgConnection,
        user: Uuid,
        provider: &str,
        subject: &str,
        email: Option<&Email>,
    ) -> Result<(), Error> {
        sqlx::query("INSERT INTO oauth_identities (user_id, provider, subject, email) VALUES ($1, $2, $3, $4) ON CONFLICT (provider, subject) DO NOTHING")
            .bind(user)
            .bind(provider)
            .bind(subject)
            .bind(email.map(Email::as_str))
            .execute(conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_oauth_user(
        &self,
        conn: &mut sqlx::PgConnection,
        email: &Email,
        name: &str,
        verified: bool,
        locale: Locale,
        provider: &str,
        subject: &str,
    ) -> Result<Uuid, Error> {
        let (user_id, _) = Self::create_account(conn, email, name, None, verified, locale).await?;
        self.link_identity(conn, user_id, provider, subject, Some(email)).await?;
        Ok(user_id)
    }
}
