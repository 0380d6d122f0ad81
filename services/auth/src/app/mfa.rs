//! TOTP two-step verification: enrol (secret, otpauth URI, QR), confirm with a code (which
//! switches it on and returns ten recovery codes), disable with password and code.

use nexus_kernel::{Error, ErrorKind, UserId};
use nexus_platform::db::begin_system;
use nexus_platform::identity::Principal;
use nexus_platform::outbox::enqueue;
use nexus_proto::events;

use super::{App, now_unix};
use crate::domain;
use crate::mail;
use crate::repo::{self, UserRow, db};

#[derive(Debug, Clone)]
pub struct Enrollment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

fn mfa_context(user: uuid::Uuid) -> String {
    format!("auth.users.mfa:{user}")
}

impl App {
    pub(crate) fn open_mfa_secret(&self, user: &UserRow, sealed: Option<&str>) -> Result<String, Error> {
        let sealed = sealed.ok_or_else(|| Error::new(ErrorKind::FailedPrecondition, "auth.mfa_not_enrolled"))?;
        let raw =
            self.sealer.open(sealed, &mfa_context(user.id)).map_err(|e| Error::internal(format!("mfa secret: {e}")))?;
        String::from_utf8(raw).map_err(Error::internal)
    }

    pub async fn enroll_totp(&self, p: &Principal) -> Result<Enrollment, Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let user = Self::caller_for_update(&mut tx, p).await?;
        if user.mfa_enabled_at.is_some() {
            return Err(Error::new(ErrorKind::Conflict, "auth.mfa_already_enabled"));
        }
        let secret = domain::new_totp_secret();
        let uri =
            domain::totp(&secret, &user.email)?.to_url().map_err(|e| Error::internal(format!("otpauth: {e:?}")))?;
        sqlx::query("UPDATE users SET mfa_pending_sealed = $2 WHERE id = $1")
            .bind(user.id)
            .bind(self.sealer.seal(secret.as_bytes(), &mfa_context(user.id)))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Enrollment { qr_svg: domain::qr_svg(&uri)?, otpauth_uri: uri, secret })
    }

    pub async fn confirm_totp(&self, p: &Principal, code: &str) -> Result<Vec<String>, Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let user = Self::caller_for_update(&mut tx, p).await?;
        if user.mfa_enabled_at.is_some() {
            return Err(Error::new(ErrorKind::Conflict, "auth.mfa_already_enabled"));
        }
        let secret = self.open_mfa_secret(&user, user.mfa_pending_sealed.as_deref())?;
        let step = domain::check_totp(&secret, &user.email, code, u64::try_from(now_unix()).unwrap_or(0), 0)?
            .ok_or_else(|| Error::invalid("auth.invalid_mfa_code").with_violation("code", "invalid"))?;
        sqlx::query(
            "UPDATE users SET mfa_secret_sealed = mfa_pending_sealed, mfa_pending_sealed = NULL, mfa_enabled_at = now(), \
             mfa_last_step = $2, mfa_failed = 0, mfa_locked_until = NULL WHERE id = $1",
        )
        .bind(user.id)
        .bind(i64::try_from(step).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let codes = domain::recovery_codes();
        for c in &codes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user.id)
                .bind(domain::recovery_hash(user.id, c))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        enqueue(
            &mut tx,
            "nexus.auth.mfa.enabled",
            None,
            &events::MfaEnabled { user_id: UserId::from_uuid(user.id).to_string() },
        )
        .await
        .map_err(db)?;
        let settings = repo::settings(&mut tx, user.id).await?;
        mail::enqueue(&mut tx, &user.email, Self::locale_of(&settings.locale), "mfa_enabled", &[("name", &user.name)])
            .await?;
        tx.commit().await.map_err(db)?;
        Ok(codes)
    }

    pub async fn disable_mfa(&self, p: &Principal, password: &str, code: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let user = Self::caller_for_update(&mut tx, p).await?;
        if user.mfa_enabled_at.is_none() {
            return Err(Error::new(ErrorKind::FailedPrecondition, "auth.mfa_not_enabled"));
        }
        self.reauthenticate(&user, password).await?;
        let secret = self.open_mfa_secret(&user, user.mfa_secret_sealed.as_deref())?;
        let ok = domain::check_totp(
            &secret,
            &user.email,
            code,
            u64::try_from(now_unix()).unwrap_or(0),
            u64::try_from(user.mfa_last_step).unwrap_or(0),
        )?
        .is_some()
            || Self::use_recovery_code(&mut tx, user.id, code).await?;
        if !ok {
            return Err(Error::invalid("auth.invalid_mfa_code").with_violation("code", "invalid"));
        }
        sqlx::query("UPDATE users SET mfa_secret_sealed = NULL, mfa_enabled_at = NULL, mfa_failed = 0 WHERE id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }
}
