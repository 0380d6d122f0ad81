//! Accounts: sign-up, login (with MFA step-up and lockout), email verification, password reset
//! and change, deletion, profile.

use std::time::Duration;

use chrono::Utc;
use nexus_kernel::{Error, ErrorKind, Locale};
use nexus_platform::db;
use nexus_platform::identity::Principal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{App, Client, Issued, locked_error, mail, minutes, now_unix};
use crate::domain::{self, Email, Membership, ProfileUpdate, Settings, User};
use crate::events;
use crate::repo::{self, sessions::Revoke, throttles};

/// The signed-in user as `GET /v1/me` shows them.
#[derive(Debug, Clone)]
pub struct MeView {
    pub user: User,
    pub settings: Settings,
    pub workspace: Membership,
}

impl App {
    #[tracing::instrument(skip_all)]
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        name: &str,
        locale: Locale,
        client: &Client,
    ) -> Result<Issued, Error> {
        let email = Email::parse(email)?;
        let name = domain::check_name(name)?;
        domain::check_password(password, &email)?;
        let hash = self.hash_password(password).await?;

        let mut tx = db::system(&self.pool).await?;
        let (user_id, workspace_id) = Self::create_account(&mut tx, &email, &name, Some(&hash), false, locale).await?;
        self.send_verification(&mut tx, user_id, email.as_str(), &name, locale).await?;
        let user =
            repo::users::by_id(&mut tx, user_id, false).await?.ok_or_else(|| Error::internal("user vanished"))?;
        let ws = Membership { workspace_id, workspace_name: name, role: "owner".into() };
        let issued = self.open_session(&mut tx, user, ws, &["pwd"], client).await?;
        db::commit(tx).await?;
        metrics::counter!("nexus_auth_signups_total").increment(1);
        Ok(issued)
    }

    /// A new person with a workspace of their own: user, settings, workspace, owner membership
    /// and the `user.signed_up` event. `auth.email_taken` when the address is registered.
    pub(crate) async fn create_account(
        conn: &mut PgConnection,
        email: &Email,
        name: &str,
        password_hash: Option<&str>,
        verified: bool,
        locale: Locale,
    ) -> Result<(Uuid, Uuid), Error> {
        let user_id = Uuid::now_v7();
        if !repo::users::insert(conn, user_id, email.as_str(), name, password_hash, verified).await? {
            return Err(Error::new(ErrorKind::Conflict, "auth.email_taken").with_violation("email", "taken"));
        }
        let workspace_id = Uuid::now_v7();
        repo::users::insert_settings(conn, user_id, locale.code()).await?;
        repo::workspaces::insert(conn, workspace_id, name, user_id).await?;
        repo::workspaces::add_member(conn, workspace_id, user_id, "owner").await?;
        events::signed_up(conn, user_id, workspace_id, email.as_str(), locale.code()).await?;
        Ok((user_id, workspace_id))
    }

    async fn send_verification(
        &self,
        conn: &mut PgConnection,
        user: Uuid,
        email: &str,
        name: &str,
        locale: Locale,
    ) -> Result<(), Error> {
        let token = domain::random_token("nxv_");
        let hash = domain::token_hash(&token);
        repo::users::insert_email_token(conn, user, "verify_email", &hash, Duration::from_secs(48 * 3600)).await?;
        let link = self.link("/verify-email", &token);
        mail::enqueue(conn, email, locale, "verify_email", &[("name", name), ("link", &link), ("hours", "48")]).await
    }

    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        totp: &str,
        recovery: &str,
        client: &Client,
    ) -> Result<Issued, Error> {
        let email = Email::parse(email)?;
        let cfg = &self.cfg.auth;
        let email_key = format!("login:email:{}", email.hash_hex());
        let ip_key = format!("login:ip:{}", client.ip);
        let mut tx = db::system(&self.pool).await?;
        if let Some(until) = throttles::locked_until(&mut tx, &ip_key).await? {
            return Err(locked_error("request.rate_limited", until));
        }
        if let Some(until) = throttles::locked_until(&mut tx, &email_key).await? {
            return Err(locked_error("auth.account_locked", until));
        }
        let user = repo::users::by_email(&mut tx, email.as_str(), true).await?;
        let password_ok =
            self.verify_password(user.as_ref().and_then(|u| u.password_hash.as_deref()), password).await?;
        let user = match user {
            Some(u) if password_ok && u.deletion_requested_at.is_none() => u,
            other => {
                // Same work and same answer whether or not the email is registered.
                let locked =
                    throttles::fail(&mut tx, &email_key, cfg.lockout_threshold, cfg.lockout_period, cfg.lockout_period)
                        .await?;
                throttles::fail(&mut tx, &ip_key, cfg.ip_failure_limit, cfg.ip_failure_window, cfg.ip_failure_window)
                    .await?;
                events::login_failed(&mut tx, email.hash_hex(), &client.ip).await?;
                if let (Some(_), Some(u)) = (locked, other.as_ref()) {
                    self.on_locked(&mut tx, u, "password", cfg.lockout_period).await?;
                }
                db::commit(tx).await?;
                metrics::counter!("nexus_auth_login_failures_total").increment(1);
                return Err(Error::unauthenticated("auth.invalid_credentials"));
            }
        };

        let mut amr = vec!["pwd"];
        if user.mfa_enabled_at.is_some() {
            self.second_factor(&mut tx, &user, totp, recovery).await?;
            amr.push("otp");
        }
        throttles::reset(&mut tx, &email_key).await?;
        let workspace = repo::workspaces::memberships_of(&mut tx, user.id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::forbidden("auth.not_member"))?;
        let issued = self.open_session(&mut tx, user, workspace, &amr, client).await?;
        events::logged_in(&mut tx, &issued, &client.ip, &amr.join("+")).await?;
        db::commit(tx).await?;
        Ok(issued)
    }

    /// Checks the TOTP or recovery code of a user whose password was right. Errors commit the
    /// failure count themselves, since the caller's transaction is abandoned.
    pub(crate) async fn second_factor(
        &self,
        tx: &mut db::Tx,
        user: &User,
        totp: &str,
        recovery: &str,
    ) -> Result<(), Error> {
        if let Some(until) = user.mfa_locked_until.filter(|u| *u > Utc::now()) {
            return Err(locked_error("auth.mfa_locked", until));
        }
        if totp.trim().is_empty() && recovery.trim().is_empty() {
            return Err(Error::unauthenticated("auth.mfa_required"));
        }
        let ok = if !totp.trim().is_empty() {
            let secret = self.open_mfa_secret(user, user.mfa_secret_sealed.as_deref())?;
            match domain::check_totp(
                &secret,
                &user.email,
                totp,
                u64::try_from(now_unix()).unwrap_or(0),
                u64::try_from(user.mfa_last_step).unwrap_or(0),
            )? {
                Some(step) => {
                    repo::users::accept_totp_step(tx, user.id, i64::try_from(step).unwrap_or(i64::MAX)).await?;
                    true
                }
                None => false,
            }
        } else {
            let used = Self::use_recovery_code(tx, user.id, recovery).await?;
            if used {
                repo::users::set_mfa_failures(tx, user.id, 0).await?;
            }
            used
        };
        if ok {
            return Ok(());
        }
        let cfg = &self.cfg.auth;
        let failed = user.mfa_failed + 1;
        if failed >= cfg.mfa_max_failures {
            repo::users::lock_mfa(tx, user.id, cfg.mfa_lock_period).await?;
            self.on_locked(tx, user, "mfa", cfg.mfa_lock_period).await?;
        } else {
            repo::users::set_mfa_failures(tx, user.id, failed).await?;
        }
        // The failure must be remembered even though the login fails.
        let tx = std::mem::replace(tx, db::system(&self.pool).await?);
        db::commit(tx).await?;
        Err(Error::unauthenticated("auth.invalid_mfa_code"))
    }

    /// Spends one unused recovery code of `user`; false if it is not one.
    pub(crate) async fn use_recovery_code(conn: &mut PgConnection, user: Uuid, code: &str) -> Result<bool, Error> {
        repo::users::use_recovery_code(conn, user, &domain::recovery_hash(user, code)).await
    }

    async fn on_locked(
        &self,
        conn: &mut PgConnection,
        user: &User,
        factor: &str,
        period: std::time::Duration,
    ) -> Result<(), Error> {
        let minutes_locked = u32::try_from(period.as_secs() / 60).unwrap_or(u32::MAX);
        events::user_locked(conn, user.id, minutes_locked, factor).await?;
        let settings = repo::users::settings(conn, user.id).await?;
        let link = format!("{}/reset-password", self.cfg.auth.public_url.trim_end_matches('/'));
        mail::enqueue(
            conn,
            &user.email,
            Self::locale_of(&settings.locale),
            "account_locked",
            &[("name", &user.name), ("minutes", &minutes(period)), ("link", &link)],
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    pub async fn me(&self, p: &Principal) -> Result<MeView, Error> {
        self.require_live(p).await?;
        Self::require_person(p)?;
        let mut tx = db::system(&self.pool).await?;
        let user = repo::users::by_id(&mut tx, p.user_id.as_uuid(), false)
            .await?
            .ok_or_else(|| Error::unauthenticated("auth.unauthenticated"))?;
        let settings = repo::users::settings(&mut tx, user.id).await?;
        let workspace = repo::workspaces::membership(&mut tx, user.id, p.workspace_id.as_uuid())
            .await?
            .ok_or_else(|| Error::forbidden("auth.not_member"))?;
        Ok(MeView { user, settings, workspace })
    }

    /// The signed-in user's address (users only: not an API key, not a service).
    #[tracing::instrument(skip_all)]
    pub async fn own_email(&self, p: &Principal) -> Result<String, Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let mut tx = db::system(&self.pool).await?;
        repo::users::by_id(&mut tx, p.user_id.as_uuid(), false)
            .await?
            .map(|u| u.email)
            .ok_or_else(|| Error::unauthenticated("auth.unauthenticated"))
    }

    #[tracing::instrument(skip_all)]
    pub async fn update_profile(&self, p: &Principal, update: ProfileUpdate) -> Result<MeView, Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let name = update.name.as_deref().map(domain::check_name).transpose()?;
        let avatar = update.avatar_url.as_deref().map(domain::check_avatar_url).transpose()?;
        let locale = update
            .locale
            .as_deref()
            .map(|l| {
                l.parse::<Locale>().map_err(|_| {
                    Error::invalid("auth.invalid_locale").with_param("locale", l.chars().take(16).collect::<String>())
                })
            })
            .transpose()?;
        let timezone = update.timezone.as_deref().map(domain::check_timezone).transpose()?;
        let mut tx = db::system(&self.pool).await?;
        let uid = p.user_id.as_uuid();
        if name.is_some() || avatar.is_some() {
            repo::users::update_profile(&mut tx, uid, name, avatar).await?;
        }
        repo::users::update_settings(&mut tx, uid, locale.map(|l| l.code()), timezone, update.notifications).await?;
        db::commit(tx).await?;
        self.me(p).await
    }

    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, token: &str) -> Result<(), Error> {
        let mut tx = db::system(&self.pool).await?;
        let user = Self::consume_email_token(&mut tx, token, "verify_email").await?;
        repo::users::mark_email_verified(&mut tx, user).await?;
        db::commit(tx).await
    }

    async fn consume_email_token(conn: &mut PgConnection, token: &str, purpose: &str) -> Result<Uuid, Error> {
        repo::users::consume_email_token(conn, &domain::token_hash(token), purpose)
            .await?
            .ok_or_else(|| Error::invalid("auth.invalid_token"))
    }

    #[tracing::instrument(skip_all)]
    pub async fn resend_verification(&self, p: &Principal) -> Result<(), Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let mut tx = db::system(&self.pool).await?;
        let user = repo::users::by_id(&mut tx, p.user_id.as_uuid(), false)
            .await?
            .ok_or_else(|| Error::unauthenticated("auth.unauthenticated"))?;
        if user.email_verified_at.is_none() {
            let key = format!("verify:user:{}", user.id);
            if throttles::over_budget(&mut tx, &key, self.cfg.auth.reset_per_hour, Duration::from_secs(3600)).await? {
                return Err(
                    Error::new(ErrorKind::RateLimited, "request.rate_limited").with_param("retry_after", "3600")
                );
            }
            let settings = repo::users::settings(&mut tx, user.id).await?;
            self.send_verification(&mut tx, user.id, &user.email, &user.name, Self::locale_of(&settings.locale))
                .await?;
        }
        db::commit(tx).await
    }

    /// Always answers the same, registered email or not; mails only when it is and the budget
    /// allows.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(&self, email: &str, client: &Client) -> Result<(), Error> {
        let Ok(email) = Email::parse(email) else { return Ok(()) };
        let mut tx = db::system(&self.pool).await?;
        let hour = Duration::from_secs(3600);
        if throttles::over_budget(&mut tx, &format!("reset:ip:{}", client.ip), self.cfg.auth.reset_per_hour * 4, hour)
            .await?
        {
            db::commit(tx).await?;
            return Err(Error::new(ErrorKind::RateLimited, "request.rate_limited").with_param("retry_after", "3600"));
        }
        let over = throttles::over_budget(
            &mut tx,
            &format!("reset:email:{}", email.hash_hex()),
            self.cfg.auth.reset_per_hour,
            hour,
        )
        .await?;
        if !over
            && let Some(user) = repo::users::by_email(&mut tx, email.as_str(), false)
                .await?
                .filter(|u| u.deletion_requested_at.is_none())
        {
            let token = domain::random_token("nxp_");
            let hash = domain::token_hash(&token);
            repo::users::insert_email_token(&mut tx, user.id, "reset_password", &hash, Duration::from_secs(3600))
                .await?;
            let settings = repo::users::settings(&mut tx, user.id).await?;
            let link = self.link("/reset-password", &token);
            mail::enqueue(
                &mut tx,
                &user.email,
                Self::locale_of(&settings.locale),
                "reset_password",
                &[("name", &user.name), ("link", &link), ("minutes", "60")],
            )
            .await?;
        }
        db::commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    pub async fn reset_password(&self, token: &str, new_password: &str) -> Result<(), Error> {
        let mut tx = db::system(&self.pool).await?;
        let user_id = Self::consume_email_token(&mut tx, token, "reset_password").await?;
        let user =
            repo::users::by_id(&mut tx, user_id, true).await?.ok_or_else(|| Error::invalid("auth.invalid_token"))?;
        domain::check_password(new_password, &Email::parse(&user.email)?)?;
        let hash = self.hash_password(new_password).await?;
        repo::users::set_password(&mut tx, user_id, &hash).await?;
        // Whoever reset the password owns the account now: lift the lock and end every session.
        throttles::reset(&mut tx, &format!("login:email:{}", Email::parse(&user.email)?.hash_hex())).await?;
        let families = repo::sessions::revoke(&mut tx, Revoke::User(user_id)).await?;
        events::sessions_revoked(&mut tx, user_id, &families, "password_reset").await?;
        self.mail_password_changed(&mut tx, &user).await?;
        db::commit(tx).await
    }

    async fn mail_password_changed(&self, conn: &mut PgConnection, user: &User) -> Result<(), Error> {
        let settings = repo::users::settings(conn, user.id).await?;
        let link = format!("{}/reset-password", self.cfg.auth.public_url.trim_end_matches('/'));
        mail::enqueue(
            conn,
            &user.email,
            Self::locale_of(&settings.locale),
            "password_changed",
            &[("name", &user.name), ("link", &link)],
        )
        .await
    }

    /// Re-authenticates with the current password; a wrong one counts toward the lockout.
    pub(crate) async fn reauthenticate(&self, user: &User, password: &str) -> Result<(), Error> {
        if self.verify_password(user.password_hash.as_deref(), password).await? {
            Ok(())
        } else {
            Err(Error::invalid("auth.password_incorrect").with_violation("password", "incorrect"))
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
        p: &Principal,
        current: &str,
        new_password: &str,
        client: &Client,
    ) -> Result<Issued, Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let mut tx = db::system(&self.pool).await?;
        let user = Self::caller_for_update(&mut tx, p).await?;
        self.reauthenticate(&user, current).await?;
        if current == new_password {
            return Err(Error::invalid("auth.password_reused").with_violation("new_password", "reused"));
        }
        domain::check_password(new_password, &Email::parse(&user.email)?)?;
        let hash = self.hash_password(new_password).await?;
        repo::users::set_password(&mut tx, user.id, &hash).await?;
        let families = repo::sessions::revoke(&mut tx, Revoke::User(user.id)).await?;
        events::sessions_revoked(&mut tx, user.id, &families, "password_changed").await?;
        self.mail_password_changed(&mut tx, &user).await?;
        let workspace = repo::workspaces::membership(&mut tx, user.id, p.workspace_id.as_uuid())
            .await?
            .ok_or_else(|| Error::forbidden("auth.not_member"))?;
        let issued = self.open_session(&mut tx, user, workspace, &["pwd"], client).await?;
        db::commit(tx).await?;
        Ok(issued)
    }

    /// Erases the auth data that identifies the person and announces the request so the other
    /// services erase theirs.
    #[tracing::instrument(skip_all)]
    pub async fn request_account_deletion(&self, p: &Principal, password: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let mut tx = db::system(&self.pool).await?;
        let user = Self::caller_for_update(&mut tx, p).await?;
        self.reauthenticate(&user, password).await?;
        let settings = repo::users::settings(&mut tx, user.id).await?;
        mail::enqueue(
            &mut tx,
            &user.email,
            Self::locale_of(&settings.locale),
            "account_deletion",
            &[("name", &user.name), ("days", "30")],
        )
        .await?;
        repo::users::erase(&mut tx, user.id).await?;
        let families = repo::sessions::revoke(&mut tx, Revoke::User(user.id)).await?;
        events::sessions_revoked(&mut tx, user.id, &families, "account_deleted").await?;
        events::account_deletion_requested(&mut tx, user.id).await?;
        db::commit(tx).await
    }
}
