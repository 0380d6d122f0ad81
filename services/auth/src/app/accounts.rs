//! Accounts: sign-up, login (with MFA step-up and lockout), refresh-token rotation with reuse
//! detection, logout, email verification, password reset and change, deletion, profile, sessions.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, Locale, UserId, WorkspaceId};
use nexus_platform::db::begin_system;
use nexus_platform::identity::Principal;
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{App, Client, Issued, locked_error, minutes, now_unix};
use crate::domain::{self, Email};
use crate::mail;
use crate::repo::{self, MembershipRow, RefreshRow, SettingsRow, UserRow, db, throttle};

/// The signed-in user as `GET /v1/me` shows them.
#[derive(Debug, Clone)]
pub struct MeView {
    pub user: UserRow,
    pub settings: SettingsRow,
    pub workspace: MembershipRow,
}

/// Sealing context of a row's successor refresh token.
fn successor_context(row: Uuid) -> String {
    format!("auth.sessions.successor:{row}")
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionView {
    pub id: Uuid,
    pub ip: String,
    pub user_agent: String,
    pub device: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub notifications: Option<serde_json::Value>,
}

impl App {
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

        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let (user_id, workspace_id) = Self::create_account(&mut tx, &email, &name, Some(&hash), false, locale).await?;
        self.send_verification(&mut tx, user_id, email.as_str(), &name, locale).await?;
        let user = repo::user_by_id(&mut tx, user_id, false).await?.ok_or_else(|| Error::internal("user vanished"))?;
        let ws = MembershipRow { workspace_id, workspace_name: name, role: "owner".into() };
        let issued = self.open_session(&mut tx, user, ws, &["pwd"], client).await?;
        tx.commit().await.map_err(db)?;
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
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, email_verified_at) \
             VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END) ON CONFLICT (email) DO NOTHING",
        )
        .bind(user_id)
        .bind(email.as_str())
        .bind(name)
        .bind(password_hash)
        .bind(verified)
        .execute(&mut *conn)
        .await
        .map_err(db)?
        .rows_affected();
        if inserted == 0 {
            return Err(Error::new(ErrorKind::Conflict, "auth.email_taken").with_violation("email", "taken"));
        }
        let workspace_id = Uuid::now_v7();
        sqlx::query("INSERT INTO user_settings (user_id, locale) VALUES ($1, $2)")
            .bind(user_id)
            .bind(locale.code())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO workspaces (id, name, owner_id) VALUES ($1, $2, $3)")
            .bind(workspace_id)
            .bind(name)
            .bind(user_id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')")
            .bind(workspace_id)
            .bind(user_id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        enqueue(
            conn,
            "nexus.auth.user.signed_up",
            Some(WorkspaceId::from_uuid(workspace_id)),
            &events::UserSignedUp {
                user_id: UserId::from_uuid(user_id).to_string(),
                workspace_id: WorkspaceId::from_uuid(workspace_id).to_string(),
                email: email.as_str().into(),
                locale: locale.code().into(),
            },
        )
        .await
        .map_err(db)?;
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
        sqlx::query("INSERT INTO email_tokens (user_id, purpose, token_hash, expires_at) VALUES ($1, 'verify_email', $2, now() + interval '48 hours')")
            .bind(user)
            .bind(domain::token_hash(&token))
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        let link = self.link("/verify-email", &token);
        mail::enqueue(conn, email, locale, "verify_email", &[("name", name), ("link", &link), ("hours", "48")]).await
    }

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
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        if let Some(until) = throttle::locked_until(&mut tx, &ip_key).await? {
            return Err(locked_error("request.rate_limited", until));
        }
        if let Some(until) = throttle::locked_until(&mut tx, &email_key).await? {
            return Err(locked_error("auth.account_locked", until));
        }
        let user = repo::user_by_email(&mut tx, email.as_str(), true).await?;
        let password_ok =
            self.verify_password(user.as_ref().and_then(|u| u.password_hash.as_deref()), password).await?;
        let user = match user {
            Some(u) if password_ok && u.deletion_requested_at.is_none() => u,
            other => {
                // Same work and same answer whether or not the email is registered.
                let locked =
                    throttle::fail(&mut tx, &email_key, cfg.lockout_threshold, cfg.lockout_period, cfg.lockout_period)
                        .await?;
                throttle::fail(&mut tx, &ip_key, cfg.ip_failure_limit, cfg.ip_failure_window, cfg.ip_failure_window)
                    .await?;
                enqueue(
                    &mut tx,
                    "nexus.auth.login.failed",
                    None,
                    &events::LoginFailed {
                        email_hash: email.hash_hex(),
                        ip: client.ip.clone(),
                        reason: "invalid_credentials".into(),
                    },
                )
                .await
                .map_err(db)?;
                if let (Some(_), Some(u)) = (locked, other.as_ref()) {
                    self.on_locked(&mut tx, u, "password", cfg.lockout_period).await?;
                }
                tx.commit().await.map_err(db)?;
                metrics::counter!("nexus_auth_login_failures_total").increment(1);
                return Err(Error::unauthenticated("auth.invalid_credentials"));
            }
        };

        let mut amr = vec!["pwd"];
        if user.mfa_enabled_at.is_some() {
            self.second_factor(&mut tx, &user, totp, recovery).await?;
            amr.push("otp");
        }
        throttle::reset(&mut tx, &email_key).await?;
        let workspace = repo::memberships_of(&mut tx, user.id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::forbidden("auth.not_member"))?;
        let issued = self.open_session(&mut tx, user, workspace, &amr, client).await?;
        Self::emit_logged_in(&mut tx, &issued, &client.ip, &amr.join("+")).await?;
        tx.commit().await.map_err(db)?;
        Ok(issued)
    }

    /// Checks the TOTP or recovery code of a user whose password was right. Errors commit the
    /// failure count themselves, since the caller's transaction is abandoned.
    pub(crate) async fn second_factor(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        user: &UserRow,
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
                    sqlx::query("UPDATE users SET mfa_last_step = $2, mfa_failed = 0 WHERE id = $1")
                        .bind(user.id)
                        .bind(i64::try_from(step).unwrap_or(i64::MAX))
                        .execute(&mut **tx)
                        .await
                        .map_err(db)?;
                    true
                }
                None => false,
            }
        } else {
            let used = Self::use_recovery_code(tx, user.id, recovery).await?;
            if used {
                sqlx::query("UPDATE users SET mfa_failed = 0 WHERE id = $1")
                    .bind(user.id)
                    .execute(&mut **tx)
                    .await
                    .map_err(db)?;
            }
            used
        };
        if ok {
            return Ok(());
        }
        let cfg = &self.cfg.auth;
        let failed = user.mfa_failed + 1;
        if failed >= cfg.mfa_max_failures {
            sqlx::query(
                "UPDATE users SET mfa_failed = 0, mfa_locked_until = now() + make_interval(secs => $2) WHERE id = $1",
            )
            .bind(user.id)
            .bind(cfg.mfa_lock_period.as_secs_f64())
            .execute(&mut **tx)
            .await
            .map_err(db)?;
            self.on_locked(tx, user, "mfa", cfg.mfa_lock_period).await?;
        } else {
            sqlx::query("UPDATE users SET mfa_failed = $2 WHERE id = $1")
                .bind(user.id)
                .bind(failed)
                .execute(&mut **tx)
                .await
                .map_err(db)?;
        }
        // The failure must be remembered even though the login fails.
        let tx = std::mem::replace(tx, begin_system(&self.pool).await.map_err(db)?);
        tx.commit().await.map_err(db)?;
        Err(Error::unauthenticated("auth.invalid_mfa_code"))
    }

    /// Spends one unused recovery code of `user`; false if it is not one.
    pub(crate) async fn use_recovery_code(conn: &mut PgConnection, user: Uuid, code: &str) -> Result<bool, Error> {
        let used = sqlx::query(
            "UPDATE recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user)
        .bind(domain::recovery_hash(user, code))
        .execute(conn)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(used == 1)
    }

    async fn on_locked(
        &self,
        conn: &mut PgConnection,
        user: &UserRow,
        factor: &str,
        period: std::time::Duration,
    ) -> Result<(), Error> {
        enqueue(
            conn,
            "nexus.auth.user.locked",
            None,
            &events::UserLocked {
                user_id: UserId::from_uuid(user.id).to_string(),
                minutes: u32::try_from(period.as_secs() / 60).unwrap_or(u32::MAX),
                factor: factor.into(),
            },
        )
        .await
        .map_err(db)?;
        let settings = repo::settings(conn, user.id).await?;
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

    /// Rotates a refresh token. A spent token sent again within `auth.refresh_reuse_grace` of its
    /// rotation gets the same successor back (the client lost the response); later, or when the
    /// successor has moved on, the whole family is revoked. A family ends for good at
    /// `family_expires_at` (`auth.refresh_family_lifetime` after sign-in).
    pub async fn refresh(&self, refresh_token: &str, client: &Client) -> Result<Issued, Error> {
        let invalid = || Error::unauthenticated("auth.invalid_refresh_token");
        if !refresh_token.starts_with("nxr_") || refresh_token.len() > 100 {
            return Err(invalid());
        }
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let row = repo::refresh_row(&mut tx, &domain::token_hash(refresh_token)).await?;
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
                tx.commit().await.map_err(db)?;
                metrics::counter!("nexus_auth_refresh_grace_total").increment(1);
                return Ok(issued);
            }
        }
        if row.replaced_at.is_some() || row.revoked_at.is_some() {
            // A spent token came back: whoever holds the family may be an attacker. Kill it all.
            let families = repo::revoke_families(&mut tx, "family_id", family, None).await?;
            Self::emit_revoked(&mut tx, row.user_id, &families, "refresh_token_reuse").await?;
            tx.commit().await.map_err(db)?;
            tracing::warn!(%family, "refresh token reuse; session family revoked");
            metrics::counter!("nexus_auth_refresh_reuse_total").increment(1);
            return Err(invalid());
        }
        let now = Utc::now();
        if row.expires_at < now || row.family_expires_at < now {
            return Err(invalid());
        }
        let user = repo::user_by_id(&mut tx, row.user_id, false)
            .await?
            .filter(|u| u.deletion_requested_at.is_none())
            .ok_or_else(invalid)?;
        // Role changes and removals take effect at the next refresh.
        let Some(workspace) = repo::membership(&mut tx, row.user_id, row.workspace_id).await? else {
            return Err(invalid());
        };
        let auth = super::SessionAuth {
            amr: row.amr.clone(),
            auth_time: row.auth_time,
            family_expires_at: row.family_expires_at,
        };
        let issued = self.add_session_row(&mut tx, user, workspace, family, auth, client).await?;
        // The successor, sealed to this row, so a lost response can be given again.
        let sealed = self.sealer.seal(issued.refresh_token.as_bytes(), &successor_context(row.id));
        repo::mark_replaced(&mut tx, row.id, issued.row_id, &sealed).await?;
        tx.commit().await.map_err(db)?;
        Ok(issued)
    }

    /// The successor of a just-rotated row, with a fresh access token, while it is still the
    /// family's live newest row; `None` otherwise (then the reuse counts as theft).
    async fn same_successor(&self, conn: &mut PgConnection, row: &RefreshRow) -> Result<Option<Issued>, Error> {
        let (Some(successor), Some(sealed)) = (row.successor_id, row.successor_sealed.as_deref()) else {
            return Ok(None);
        };
        let Some((user_id, workspace_id, amr)) = repo::live_newest_row(&mut *conn, successor).await? else {
            return Ok(None);
        };
        let Ok(refresh) = self.sealer.open(sealed, &successor_context(row.id)) else { return Ok(None) };
        let Ok(refresh) = String::from_utf8(refresh) else { return Ok(None) };
        let Some(user) = repo::user_by_id(conn, user_id, false).await?.filter(|u| u.deletion_requested_at.is_none())
        else {
            return Ok(None);
        };
        let Some(workspace) = repo::membership(conn, user_id, workspace_id).await? else { return Ok(None) };
        self.issue(conn, user, workspace, row.family_id, &amr, refresh, successor).await.map(Some)
    }

    pub async fn logout(&self, refresh_token: &str) -> Result<(), Error> {
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let found: Option<(Uuid, Uuid)> =
            sqlx::query_as("SELECT family_id, user_id FROM sessions WHERE refresh_hash = $1")
                .bind(domain::token_hash(refresh_token))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        // Logging out with an unknown token is not an error: the client is logged out either way.
        if let Some((family, user)) = found {
            let families = repo::revoke_families(&mut tx, "family_id", family, None).await?;
            Self::emit_revoked(&mut tx, user, &families, "logout").await?;
        }
        tx.commit().await.map_err(db)
    }

    pub async fn me(&self, p: &Principal) -> Result<MeView, Error> {
        self.require_live(p).await?;
        Self::require_person(p)?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let user = repo::user_by_id(&mut tx, p.user_id.as_uuid(), false)
            .await?
            .ok_or_else(|| Error::unauthenticated("auth.unauthenticated"))?;
        let settings = repo::settings(&mut tx, user.id).await?;
        let workspace = repo::membership(&mut tx, user.id, p.workspace_id.as_uuid())
            .await?
            .ok_or_else(|| Error::forbidden("auth.not_member"))?;
        Ok(MeView { user, settings, workspace })
    }

    /// The signed-in user's address (users only: not an API key, not a service).
    pub async fn own_email(&self, p: &Principal) -> Result<String, Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        repo::user_by_id(&mut tx, p.user_id.as_uuid(), false)
            .await?
            .map(|u| u.email)
            .ok_or_else(|| Error::unauthenticated("auth.unauthenticated"))
    }

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
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let uid = p.user_id.as_uuid();
        if name.is_some() || avatar.is_some() {
            sqlx::query("UPDATE users SET name = coalesce($2, name), avatar_url = CASE WHEN $3 THEN $4 ELSE avatar_url END, updated_at = now() WHERE id = $1")
                .bind(uid)
                .bind(name)
                .bind(avatar.is_some())
                .bind(avatar.flatten())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        sqlx::query(
            "UPDATE user_settings SET locale = coalesce($2, locale), timezone = coalesce($3, timezone), \
             notifications = coalesce($4, notifications), updated_at = now() WHERE user_id = $1",
        )
        .bind(uid)
        .bind(locale.map(|l| l.code()))
        .bind(timezone)
        .bind(update.notifications)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.me(p).await
    }

    pub async fn verify_email(&self, token: &str) -> Result<(), Error> {
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let user = Self::consume_email_token(&mut tx, token, "verify_email").await?;
        sqlx::query("UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn consume_email_token(conn: &mut PgConnection, token: &str, purpose: &str) -> Result<Uuid, Error> {
        sqlx::query_scalar(
            "UPDATE email_tokens SET used_at = now() WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
        )
        .bind(domain::token_hash(token))
        .bind(purpose)
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or_else(|| Error::invalid("auth.invalid_token"))
    }

    pub async fn resend_verification(&self, p: &Principal) -> Result<(), Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let user = repo::user_by_id(&mut tx, p.user_id.as_uuid(), false)
            .await?
            .ok_or_else(|| Error::unauthenticated("auth.unauthenticated"))?;
        if user.email_verified_at.is_none() {
            let key = format!("verify:user:{}", user.id);
            if throttle::over_budget(&mut tx, &key, self.cfg.auth.reset_per_hour, std::time::Duration::from_secs(3600))
                .await?
            {
                return Err(
                    Error::new(ErrorKind::RateLimited, "request.rate_limited").with_param("retry_after", "3600")
                );
            }
            let settings = repo::settings(&mut tx, user.id).await?;
            self.send_verification(&mut tx, user.id, &user.email, &user.name, Self::locale_of(&settings.locale))
                .await?;
        }
        tx.commit().await.map_err(db)
    }

    /// Always answers the same, registered email or not; mails only when it is and the budget
    /// allows.
    pub async fn request_password_reset(&self, email: &str, client: &Client) -> Result<(), Error> {
        let Ok(email) = Email::parse(email) else { return Ok(()) };
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let hour = std::time::Duration::from_secs(3600);
        if throttle::over_budget(&mut tx, &format!("reset:ip:{}", client.ip), self.cfg.auth.reset_per_hour * 4, hour)
            .await?
        {
            tx.commit().await.map_err(db)?;
            return Err(Error::new(ErrorKind::RateLimited, "request.rate_limited").with_param("retry_after", "3600"));
        }
        let over = throttle::over_budget(
            &mut tx,
            &format!("reset:email:{}", email.hash_hex()),
            self.cfg.auth.reset_per_hour,
            hour,
        )
        .await?;
        if !over
            && let Some(user) =
                repo::user_by_email(&mut tx, email.as_str(), false).await?.filter(|u| u.deletion_requested_at.is_none())
        {
            let token = domain::random_token("nxp_");
            sqlx::query("INSERT INTO email_tokens (user_id, purpose, token_hash, expires_at) VALUES ($1, 'reset_password', $2, now() + interval '1 hour')")
                .bind(user.id)
                .bind(domain::token_hash(&token))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            let settings = repo::settings(&mut tx, user.id).await?;
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
        tx.commit().await.map_err(db)
    }

    pub async fn reset_password(&self, token: &str, new_password: &str) -> Result<(), Error> {
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let user_id = Self::consume_email_token(&mut tx, token, "reset_password").await?;
        let user =
            repo::user_by_id(&mut tx, user_id, true).await?.ok_or_else(|| Error::invalid("auth.invalid_token"))?;
        domain::check_password(new_password, &Email::parse(&user.email)?)?;
        let hash = self.hash_password(new_password).await?;
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
            .bind(user_id)
            .bind(hash)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // Whoever reset the password owns the account now: lift the lock and end every session.
        throttle::reset(&mut tx, &format!("login:email:{}", Email::parse(&user.email)?.hash_hex())).await?;
        let families = repo::revoke_families(&mut tx, "user_id", user_id, None).await?;
        Self::emit_revoked(&mut tx, user_id, &families, "password_reset").await?;
        self.mail_password_changed(&mut tx, &user).await?;
        tx.commit().await.map_err(db)
    }

    async fn mail_password_changed(&self, conn: &mut PgConnection, user: &UserRow) -> Result<(), Error> {
        let settings = repo::settings(conn, user.id).await?;
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
    pub(crate) async fn reauthenticate(&self, user: &UserRow, password: &str) -> Result<(), Error> {
        if self.verify_password(user.password_hash.as_deref(), password).await? {
            Ok(())
        } else {
            Err(Error::invalid("auth.password_incorrect").with_violation("password", "incorrect"))
        }
    }

    pub async fn change_password(
        &self,
        p: &Principal,
        current: &str,
        new_password: &str,
        client: &Client,
    ) -> Result<Issued, Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let user = Self::caller_for_update(&mut tx, p).await?;
        self.reauthenticate(&user, current).await?;
        if current == new_password {
            return Err(Error::invalid("auth.password_reused").with_violation("new_password", "reused"));
        }
        domain::check_password(new_password, &Email::parse(&user.email)?)?;
        let hash = self.hash_password(new_password).await?;
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
            .bind(user.id)
            .bind(hash)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let families = repo::revoke_families(&mut tx, "user_id", user.id, None).await?;
        Self::emit_revoked(&mut tx, user.id, &families, "password_changed").await?;
        self.mail_password_changed(&mut tx, &user).await?;
        let workspace = repo::membership(&mut tx, user.id, p.workspace_id.as_uuid())
            .await?
            .ok_or_else(|| Error::forbidden("auth.not_member"))?;
        let issued = self.open_session(&mut tx, user, workspace, &["pwd"], client).await?;
        tx.commit().await.map_err(db)?;
        Ok(issued)
    }

    /// Erases the auth data that identifies the person and announces the request so the other
    /// services erase theirs.
    pub async fn request_account_deletion(&self, p: &Principal, password: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let user = Self::caller_for_update(&mut tx, p).await?;
        self.reauthenticate(&user, password).await?;
        let settings = repo::settings(&mut tx, user.id).await?;
        mail::enqueue(
            &mut tx,
            &user.email,
            Self::locale_of(&settings.locale),
            "account_deletion",
            &[("name", &user.name), ("days", "30")],
        )
        .await?;
        sqlx::query(
            "UPDATE users SET email = 'deleted+' || id || '@invalid', name = '', avatar_url = NULL, password_hash = NULL, \
             mfa_secret_sealed = NULL, mfa_pending_sealed = NULL, mfa_enabled_at = NULL, deletion_requested_at = now(), updated_at = now() WHERE id = $1",
        )
        .bind(user.id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        for table in ["oauth_identities", "recovery_codes", "email_tokens"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE user_id = $1")))
                .bind(user.id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let families = repo::revoke_families(&mut tx, "user_id", user.id, None).await?;
        Self::emit_revoked(&mut tx, user.id, &families, "account_deleted").await?;
        enqueue(
            &mut tx,
            "nexus.auth.account.deletion_requested",
            None,
            &events::AccountDeletionRequested { user_id: UserId::from_uuid(user.id).to_string() },
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// Sessions are the person's, across workspaces: users only, never an API key.
    pub async fn list_sessions(&self, p: &Principal) -> Result<Vec<SessionView>, Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let rows: Vec<SessionView> = sqlx::query_as(
            "SELECT DISTINCT ON (family_id) family_id AS id, ip, user_agent, device, \
                    min(created_at) OVER (PARTITION BY family_id) AS created_at, last_used_at \
             FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() \
             ORDER BY family_id, created_at DESC",
        )
        .bind(p.user_id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows)
    }

    pub async fn revoke_session(&self, p: &Principal, id: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let family = Uuid::parse_str(id).map_err(|_| Error::not_found("request.not_found"))?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let revoked: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = now() WHERE family_id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING family_id",
        )
        .bind(family)
        .bind(p.user_id.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        if revoked.is_empty() {
            return Err(Error::not_found("request.not_found"));
        }
        Self::emit_revoked(&mut tx, p.user_id.as_uuid(), &[family], "revoked_by_user").await?;
        tx.commit().await.map_err(db)
    }

    pub async fn revoke_all_sessions(&self, p: &Principal) -> Result<(), Error> {
        self.require_live(p).await?;
        Self::require_user(p)?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let families = repo::revoke_families(&mut tx, "user_id", p.user_id.as_uuid(), None).await?;
        Self::emit_revoked(&mut tx, p.user_id.as_uuid(), &families, "revoked_by_user").await?;
        tx.commit().await.map_err(db)
    }
}
