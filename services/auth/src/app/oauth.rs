//! Sign-in with Google or Facebook (OpenID Connect, authorization code + PKCE). State, nonce and
//! the PKCE verifier stay server-side (state hashed, verifier sealed) for ten minutes.
//!
//! Linking a provider to an account needs a user session (not an API key) that signed in with a
//! password or TOTP within `auth.reauthentication_window`, and mails the user. A sign-in never
//! attaches to a local account whose email is unverified, and a user with TOTP on passes it after
//! the provider too: the callback answers `auth.mfa_required` and keeps the state, bound to the
//! provider's code, until the same call comes back with the code from the app.

use nexus_kernel::{Error, ErrorKind, Locale};
use nexus_platform::db::{self, DbResultExt};
use nexus_platform::identity::Principal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{App, Client, Issued, mail};
use crate::domain::oauth::{provider_display, verifier_context};
use crate::domain::{self, Email, IdentityView, OAuthState, User, WaitingState};
use crate::events;
use crate::repo;

/// The second factor sent with a callback that answered `auth.mfa_required`.
#[derive(Debug, Clone, Default)]
pub struct SecondFactor {
    pub totp: String,
    pub recovery: String,
}

impl App {
    fn oidc(&self, provider: &str) -> Result<&nexus_providers::oidc::OidcClient, Error> {
        self.oidc.get(provider).ok_or_else(|| {
            Error::invalid("auth.oauth_unknown_provider")
                .with_param("provider", provider.chars().take(32).collect::<String>())
        })
    }

    #[tracing::instrument(skip_all, fields(provider = %provider))]
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
        let link_user = match p {
            Some(p) => {
                self.require_live(p).await?;
                let mut conn = self.pool.acquire().await.db()?;
                self.require_recent_auth(&mut conn, p).await?;
                Some(p.user_id.as_uuid())
            }
            None => None,
        };
        let req = client.authorization_request(redirect_uri).await.map_err(|e| e.into_kernel_error(provider))?;
        let state_hash = domain::token_hash(&req.state);
        let verifier_sealed = self.sealer.seal(req.pkce_verifier.as_bytes(), &verifier_context(&state_hash));
        let state = repo::oauth::NewState {
            state_hash: &state_hash,
            provider,
            nonce: &req.nonce,
            verifier_sealed: &verifier_sealed,
            redirect_uri,
            link_user,
        };
        let mut conn = self.pool.acquire().await.db()?;
        repo::oauth::insert_state(&mut conn, &state).await?;
        repo::oauth::delete_expired_states(&mut conn).await?;
        Ok((req.url, req.state))
    }

    #[tracing::instrument(skip_all, fields(provider = %provider))]
    pub async fn oauth_callback(
        &self,
        provider: &str,
        code: &str,
        state: &str,
        factor: &SecondFactor,
        locale: Locale,
        client: &Client,
    ) -> Result<Issued, Error> {
        let oidc = self.oidc(provider)?;
        let bad_state = || Error::invalid("auth.oauth_state_invalid");
        let state_hash = domain::token_hash(state);
        let taken = repo::oauth::take_state(&mut *self.pool.acquire().await.db()?, &state_hash).await?;
        let row = taken.ok_or_else(bad_state)?;
        if row.provider != provider {
            return Err(bad_state());
        }
        if let Some(user) = row.mfa_user_id {
            // The provider already answered for this state; only the second factor is missing.
            if row.code_hash.as_deref() != Some(domain::token_hash(code).as_slice()) {
                return Err(bad_state());
            }
            return self.finish_after_mfa(provider, &state_hash, &row, user, factor, client).await;
        }
        let verifier =
            self.sealer.open(&row.verifier_sealed, &verifier_context(&state_hash)).map_err(|_| bad_state())?;
        let verifier = String::from_utf8(verifier).map_err(|_| bad_state())?;
        let claims = oidc
            .login(code, &verifier, &row.redirect_uri, &row.nonce)
            .await
            .map_err(|e| e.into_kernel_error(provider))?;

        let mut tx = db::system(&self.pool).await?;
        let existing = repo::oauth::identity_owner(&mut tx, provider, &claims.sub).await?;
        let email = claims.email.as_deref().map(Email::parse).transpose().ok().flatten();
        // (user, identity to link once every check has passed)
        let (user_id, to_link) = match (existing, row.link_user_id) {
            // Linking while signed in must not hand over an identity someone else already owns.
            (Some(owner), Some(me)) if owner != me => {
                return Err(
                    Error::new(ErrorKind::Conflict, "auth.oauth_already_linked").with_param("provider", provider)
                );
            }
            (Some(u), _) => (u, false),
            // Explicit link by a signed-in, recently re-authenticated user (checked at start).
            (None, Some(u)) => (u, true),
            (None, None) => {
                let email = email.clone().ok_or_else(|| {
                    Error::unauthenticated("auth.oauth_email_unverified").with_param("provider", provider)
                })?;
                match repo::users::by_email(&mut tx, email.as_str(), false).await? {
                    // Never attach to an account whose owner has not proven the address: whoever
                    // registered it first could be anyone.
                    Some(u) if u.email_verified_at.is_none() => {
                        return Err(Error::new(ErrorKind::Conflict, "auth.oauth_local_unverified")
                            .with_param("provider", provider));
                    }
                    // Automatic linking only on an address both sides have verified.
                    Some(u) if claims.email_verified => (u.id, true),
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
                        let created = self
                            .create_oauth_user(
                                &mut tx,
                                &email,
                                &domain::check_name(&name)?,
                                claims.email_verified,
                                locale,
                                provider,
                                &claims.sub,
                            )
                            .await?;
                        (created, false)
                    }
                }
            }
        };
        let user = repo::users::by_id(&mut tx, user_id, true)
            .await?
            .filter(|u| u.deletion_requested_at.is_none())
            .ok_or_else(|| Error::unauthenticated("auth.invalid_credentials"))?;
        let mut amr = vec!["oauth"];
        // A user with TOTP passes it after the provider too, unless this is a link by a user who
        // is signed in already (and re-authenticated to start it).
        if user.mfa_enabled_at.is_some() && row.link_user_id.is_none() {
            if factor.totp.trim().is_empty() && factor.recovery.trim().is_empty() {
                drop(tx);
                self.await_second_factor(
                    provider,
                    &state_hash,
                    &row,
                    code,
                    user.id,
                    to_link,
                    &claims.sub,
                    email.as_ref(),
                )
                .await?;
                return Err(Error::unauthenticated("auth.mfa_required"));
            }
            self.second_factor(&mut tx, &user, &factor.totp, &factor.recovery).await?;
            amr.push("otp");
        }
        if to_link {
            self.link_identity(&mut tx, &user, provider, &claims.sub, email.as_ref()).await?;
        }
        let issued = self.oauth_session(&mut tx, user, provider, &amr, client).await?;
        db::commit(tx).await?;
        Ok(issued)
    }

    /// Keeps the state for the second factor: bound to the provider's code, with the resolved user
    /// and the identity to link once the factor passes.
    #[allow(clippy::too_many_arguments)]
    async fn await_second_factor(
        &self,
        provider: &str,
        state_hash: &[u8],
        row: &OAuthState,
        code: &str,
        user: Uuid,
        to_link: bool,
        subject: &str,
        email: Option<&Email>,
    ) -> Result<(), Error> {
        let waiting = WaitingState {
            state_hash,
            provider,
            redirect_uri: &row.redirect_uri,
            code_hash: &domain::token_hash(code),
            user,
            pending_subject: to_link.then_some(subject),
            pending_email: if to_link { email.map(Email::as_str) } else { None },
        };
        self.put_waiting(&waiting).await
    }

    async fn finish_after_mfa(
        &self,
        provider: &str,
        state_hash: &[u8],
        row: &OAuthState,
        user_id: Uuid,
        factor: &SecondFactor,
        client: &Client,
    ) -> Result<Issued, Error> {
        let mut tx = db::system(&self.pool).await?;
        let user = repo::users::by_id(&mut tx, user_id, true)
            .await?
            .filter(|u| u.deletion_requested_at.is_none())
            .ok_or_else(|| Error::unauthenticated("auth.invalid_credentials"))?;
        if user.mfa_enabled_at.is_some() {
            if factor.totp.trim().is_empty() && factor.recovery.trim().is_empty() {
                return Err(self.keep_waiting(state_hash, row, user_id).await);
            }
            if let Err(e) = self.second_factor(&mut tx, &user, &factor.totp, &factor.recovery).await {
                // A wrong code may be retried (the MFA lock counts the failures); a lock ends it.
                if e.code() == "auth.invalid_mfa_code" {
                    let _ = self.keep_waiting(state_hash, row, user_id).await;
                }
                return Err(e);
            }
        }
        if let Some(subject) = row.pending_subject.as_deref() {
            let email = row.pending_email.as_deref().map(Email::parse).transpose().ok().flatten();
            self.link_identity(&mut tx, &user, provider, subject, email.as_ref()).await?;
        }
        let issued = self.oauth_session(&mut tx, user, provider, &["oauth", "otp"], client).await?;
        db::commit(tx).await?;
        Ok(issued)
    }

    async fn put_waiting(&self, waiting: &WaitingState<'_>) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await.db()?;
        repo::oauth::put_waiting(&mut conn, waiting).await
    }

    /// Puts a waiting state back (it was taken by the callback) and answers `auth.mfa_required`.
    async fn keep_waiting(&self, state_hash: &[u8], row: &OAuthState, user: Uuid) -> Error {
        let waiting = WaitingState {
            state_hash,
            provider: &row.provider,
            redirect_uri: &row.redirect_uri,
            code_hash: row.code_hash.as_deref().unwrap_or_default(),
            user,
            pending_subject: row.pending_subject.as_deref(),
            pending_email: row.pending_email.as_deref(),
        };
        match self.put_waiting(&waiting).await {
            Ok(()) => Error::unauthenticated("auth.mfa_required"),
            Err(e) => e,
        }
    }

    async fn oauth_session(
        &self,
        tx: &mut db::Tx,
        user: User,
        provider: &str,
        amr: &[&str],
        client: &Client,
    ) -> Result<Issued, Error> {
        let workspace = repo::workspaces::memberships_of(tx, user.id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::forbidden("auth.not_member"))?;
        let issued = self.open_session(tx, user, workspace, amr, client).await?;
        events::logged_in(tx, &issued, &client.ip, &format!("oauth:{provider}")).await?;
        Ok(issued)
    }

    #[tracing::instrument(skip_all)]
    pub async fn list_identities(&self, p: &Principal) -> Result<(Vec<IdentityView>, bool), Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let mut tx = db::system(&self.pool).await?;
        let user = repo::users::by_id(&mut tx, p.user_id.as_uuid(), false)
            .await?
            .ok_or_else(|| Error::unauthenticated("auth.unauthenticated"))?;
        let items = repo::oauth::identities_of(&mut tx, user.id).await?;
        Ok((items, user.password_hash.is_some()))
    }

    /// Unlinks one of the caller's identities; never the last way to sign in of a user without a
    /// password.
    #[tracing::instrument(skip_all, fields(identity = %id))]
    pub async fn unlink_identity(&self, p: &Principal, id: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let id = Uuid::parse_str(id.strip_prefix("idn_").unwrap_or(id))
            .map_err(|_| Error::not_found("request.not_found"))?;
        let mut tx = db::system(&self.pool).await?;
        let user = Self::caller_for_update(&mut tx, p).await?;
        let identities = repo::oauth::identities_of(&mut tx, user.id).await?;
        if !identities.iter().any(|i| i.id == id) {
            return Err(Error::not_found("request.not_found"));
        }
        if user.password_hash.is_none() && identities.len() <= 1 {
            return Err(Error::new(ErrorKind::FailedPrecondition, "auth.last_sign_in_method"));
        }
        repo::oauth::delete_identity(&mut tx, user.id, id).await?;
        db::commit(tx).await
    }

    /// Links `subject` at `provider` to `user` and mails them about it (a new way into their
    /// account is worth knowing of).
    async fn link_identity(
        &self,
        conn: &mut PgConnection,
        user: &User,
        provider: &str,
        subject: &str,
        email: Option<&Email>,
    ) -> Result<(), Error> {
        if !repo::oauth::insert_identity(&mut *conn, user.id, provider, subject, email.map(Email::as_str)).await? {
            return Ok(());
        }
        let settings = repo::users::settings(&mut *conn, user.id).await?;
        let link = format!("{}/settings/security", self.cfg.auth.public_url.trim_end_matches('/'));
        let provider_name = provider_display(provider);
        mail::enqueue(
            conn,
            &user.email,
            Self::locale_of(&settings.locale),
            "identity_linked",
            &[("name", &user.name), ("provider", &provider_name), ("link", &link)],
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_oauth_user(
        &self,
        conn: &mut PgConnection,
        email: &Email,
        name: &str,
        verified: bool,
        locale: Locale,
        provider: &str,
        subject: &str,
    ) -> Result<Uuid, Error> {
        let (user_id, _) = Self::create_account(conn, email, name, None, verified, locale).await?;
        // The account is made for this identity: nothing to announce.
        repo::oauth::insert_identity(conn, user_id, provider, subject, Some(email.as_str())).await?;
        Ok(user_id)
    }
}
