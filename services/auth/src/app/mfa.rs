//! TOTP two-step verification: enrol (secret, otpauth URI, QR), confirm with a code (which
//! switches it on and returns ten recovery codes), disable with password and code.

use nexus_kernel::{Error, ErrorKind};
use nexus_platform::db;
use nexus_platform::identity::Principal;

use super::{App, mail, now_unix};
use crate::domain::{self, User};
use crate::events;
use crate::repo;

#[derive(Debug, Clone)]
pub struct Enrollment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

pub(crate) fn mfa_context(user: uuid::Uuid) -> String {
    format!("auth.users.mfa:{user}")
}

impl App {
    pub(crate) fn open_mfa_secret(&self, user: &User, sealed: Option<&str>) -> Result<String, Error> {
        let sealed = sealed.ok_or_else(|| Error::new(ErrorKind::FailedPrecondition, "auth.mfa_not_enrolled"))?;
        let raw =
            self.sealer.open(sealed, &mfa_context(user.id)).map_err(|e| Error::internal(format!("mfa secret: {e}")))?;
        String::from_utf8(raw).map_err(Error::internal)
    }

    #[tracing::instrument(skip_all)]
    pub async fn enroll_totp(&self, p: &Principal) -> Result<Enrollment, Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        let mut tx = db::system(&self.pool).await?;
        let user = Self::caller_for_update(&mut tx, p).await?;
        if user.mfa_enabled_at.is_some() {
            return Err(Error::new(ErrorKind::Conflict, "auth.mfa_already_enabled"));
        }
        let secret = domain::new_totp_secret();
        let uri =
            domain::totp(&secret, &user.email)?.to_url().map_err(|e| Error::internal(format!("otpauth: {e:?}")))?;
        repo::users::set_mfa_pending(&mut tx, user.id, self.sealer.seal(secret.as_bytes(), &mfa_context(user.id)))
            .await?;
        db::commit(tx).await?;
        Ok(Enrollment { qr_svg: domain::qr_svg(&uri)?, otpauth_uri: uri, secret })
    }

    #[tracing::instrument(skip_all)]
    pub async fn confirm_totp(&self, p: &Principal, code: &str) -> Result<Vec<String>, Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        let mut tx = db::system(&self.pool).await?;
        let user = Self::caller_for_update(&mut tx, p).await?;
        if user.mfa_enabled_at.is_some() {
            return Err(Error::new(ErrorKind::Conflict, "auth.mfa_already_enabled"));
        }
        let secret = self.open_mfa_secret(&user, user.mfa_pending_sealed.as_deref())?;
        let step = domain::check_totp(&secret, &user.email, code, u64::try_from(now_unix()).unwrap_or(0), 0)?
            .ok_or_else(|| Error::invalid("auth.invalid_mfa_code").with_violation("code", "invalid"))?;
        repo::users::enable_mfa(&mut tx, user.id, i64::try_from(step).unwrap_or(i64::MAX)).await?;
        repo::users::delete_recovery_codes(&mut tx, user.id).await?;
        let codes = domain::recovery_codes();
        let hashes: Vec<Vec<u8>> = codes.iter().map(|c| domain::recovery_hash(user.id, c)).collect();
        repo::users::insert_recovery_codes(&mut tx, user.id, &hashes).await?;
        events::mfa_enabled(&mut tx, user.id).await?;
        let settings = repo::users::settings(&mut tx, user.id).await?;
        mail::enqueue(&mut tx, &user.email, Self::locale_of(&settings.locale), "mfa_enabled", &[("name", &user.name)])
            .await?;
        db::commit(tx).await?;
        Ok(codes)
    }

    #[tracing::instrument(skip_all)]
    pub async fn disable_mfa(&self, p: &Principal, password: &str, code: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        let mut tx = db::system(&self.pool).await?;
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
        repo::users::disable_mfa(&mut tx, user.id).await?;
        db::commit(tx).await
    }
}
