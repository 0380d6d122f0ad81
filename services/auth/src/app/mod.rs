//! Use cases of the auth service. Handlers in `grpc` call these with a verified principal (or
//! none, for sign-up and login); every state change commits with its events and audit rows.

mod accounts;
mod api_keys;
pub mod keys;
pub mod mail;
mod mfa;
pub mod notices;
mod oauth;
pub mod sealed;
mod service_identity;
mod sessions;
mod workspaces;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::Utc;
use nexus_kernel::{Error, ErrorKind, Locale, UserId, WorkspaceId};
use nexus_platform::crypto::Sealer;
use nexus_platform::db::{self, DbResultExt};
use nexus_platform::identity::{AUDIENCE, Claims, ISSUER, Principal, PrincipalKind, Role, Scope};
use nexus_providers::oidc::OidcClient;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::config::Config;
use crate::domain::{self, Membership, SessionAuth, User};
use crate::repo;
use keys::SigningKeys;

pub use crate::domain::{ApiKeyView, IdentityView, InvitationView, MemberView, ProfileUpdate, SessionView};
pub use accounts::MeView;
pub use api_keys::CreatedKey;
pub use mfa::Enrollment;
pub use oauth::SecondFactor;

/// Where a request came from (IP and User-Agent), for sessions and throttling.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: String,
    pub user_agent: String,
}

/// A new session: what sign-up, login, refresh and friends return.
#[derive(Debug, Clone)]
pub struct Issued {
    pub user: User,
    pub workspace: Membership,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u32,
    pub session_id: Uuid,
    /// The refresh-token row just written (the family's newest).
    pub(crate) row_id: Uuid,
}

pub struct App {
    pub pool: PgPool,
    pub keys: Arc<SigningKeys>,
    pub sealer: Sealer,
    pub cfg: Arc<Config>,
    argon: Argon2<'static>,
    /// Verified against when the email is unknown, so both paths cost the same.
    dummy_hash: String,
    oidc: HashMap<String, OidcClient>,
}

pub(crate) fn now_unix() -> i64 {
    Utc::now().timestamp()
}

fn minutes(d: Duration) -> String {
    d.as_secs().div_ceil(60).to_string()
}

impl App {
    pub fn new(
        pool: PgPool,
        keys: Arc<SigningKeys>,
        sealer: Sealer,
        cfg: Arc<Config>,
        oidc: HashMap<String, OidcClient>,
    ) -> anyhow::Result<Self> {
        let a = &cfg.auth;
        let params = Params::new(a.argon2_memory_kib, a.argon2_iterations, a.argon2_parallelism, None)
            .map_err(|e| anyhow::anyhow!("auth.argon2_*: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = argon
            .hash_password(b"dummy password for unknown emails")
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(Self { pool, keys, sealer, cfg, argon, dummy_hash, oidc })
    }

    /// Argon2id on a blocking thread: it is deliberately slow and must not stall the runtime.
    async fn hash_password(&self, password: &str) -> Result<String, Error> {
        let argon = self.argon.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            argon
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| Error::internal(format!("argon2: {e}")))
        })
        .await
        .map_err(Error::internal)?
    }

    /// Verifies against `hash`, or against the dummy hash when there is none (unknown user or
    /// OAuth-only account), returning false then.
    async fn verify_password(&self, hash: Option<&str>, password: &str) -> Result<bool, Error> {
        let argon = self.argon.clone();
        let real = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || argon.verify_password(password.as_bytes(), hash.as_str()).is_ok())
            .await
            .map_err(Error::internal)?;
        Ok(real && ok)
    }

    fn locale_of(settings_locale: &str) -> Locale {
        settings_locale.parse().unwrap_or_default()
    }

    fn link(&self, path: &str, token: &str) -> String {
        format!("{}{path}?token={token}", self.cfg.auth.public_url.trim_end_matches('/'))
    }

    pub(crate) async fn access_token(
        &self,
        user: Uuid,
        workspace: Uuid,
        role: Role,
        sid: Uuid,
        amr: &[String],
        locale: &str,
    ) -> Result<String, Error> {
        let now = now_unix();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: UserId::from_uuid(user).to_string(),
            ws: WorkspaceId::from_uuid(workspace).to_string(),
            role,
            scp: Vec::new(),
            sid: sid.to_string(),
            kind: PrincipalKind::User,
            jti: Uuid::now_v7().to_string(),
            iat: now,
            exp: now + i64::try_from(self.cfg.auth.access_ttl.as_secs()).unwrap_or(900),
            amr: amr.to_vec(),
            loc: locale.to_owned(),
            svc: String::new(),
        };
        self.keys.sign(&claims).await
    }

    /// Opens a new session family (a sign-in, authenticated now) and issues its first tokens.
    pub(crate) async fn open_session(
        &self,
        conn: &mut PgConnection,
        user: User,
        workspace: Membership,
        amr: &[&str],
        client: &Client,
    ) -> Result<Issued, Error> {
        let now = Utc::now();
        let auth = SessionAuth {
            amr: amr.iter().map(|s| (*s).to_owned()).collect(),
            auth_time: now,
            family_expires_at: now
                + chrono::Duration::from_std(self.cfg.auth.refresh_family_lifetime).unwrap_or_default(),
        };
        self.add_session_row(conn, user, workspace, Uuid::now_v7(), auth, client).await
    }

    /// Opens a new family for the caller's session in another workspace: same authentication
    /// (methods, time, absolute end), so switching is not a sign-in.
    pub(crate) async fn open_session_like(
        &self,
        conn: &mut PgConnection,
        p: &Principal,
        user: User,
        workspace: Membership,
        client: &Client,
    ) -> Result<Issued, Error> {
        let family = Uuid::parse_str(&p.session_id).map_err(|_| Error::unauthenticated("auth.unauthenticated"))?;
        let auth = repo::sessions::auth_of(&mut *conn, family)
            .await?
            .ok_or_else(|| Error::unauthenticated("auth.token_expired"))?;
        self.add_session_row(conn, user, workspace, Uuid::now_v7(), auth, client).await
    }

    pub(crate) async fn add_session_row(
        &self,
        conn: &mut PgConnection,
        user: User,
        workspace: Membership,
        family: Uuid,
        auth: SessionAuth,
        client: &Client,
    ) -> Result<Issued, Error> {
        let refresh = domain::random_token("nxr_");
        let expires = (Utc::now() + chrono::Duration::from_std(self.cfg.auth.refresh_ttl).unwrap_or_default())
            .min(auth.family_expires_at);
        let ua: String = client.user_agent.chars().take(512).collect();
        let row_id = Uuid::now_v7();
        let row = repo::sessions::NewRow {
            id: row_id,
            family,
            user: user.id,
            workspace: workspace.workspace_id,
            refresh_hash: &domain::token_hash(&refresh),
            ip: &client.ip,
            user_agent: &ua,
            device: &domain::device_name(&ua),
            expires_at: expires,
            auth: &auth,
        };
        repo::sessions::insert(&mut *conn, &row).await?;
        self.issue(conn, user, workspace, family, &auth.amr, refresh, row_id).await
    }

    /// Signs an access token for a family row whose refresh token is `refresh`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn issue(
        &self,
        conn: &mut PgConnection,
        user: User,
        workspace: Membership,
        family: Uuid,
        amr: &[String],
        refresh: String,
        row_id: Uuid,
    ) -> Result<Issued, Error> {
        let role: Role = workspace.role.parse()?;
        let locale = repo::users::settings(&mut *conn, user.id).await?.locale;
        let access = self.access_token(user.id, workspace.workspace_id, role, family, amr, &locale).await?;
        Ok(Issued {
            user,
            workspace,
            access_token: access,
            refresh_token: refresh,
            expires_in: u32::try_from(self.cfg.auth.access_ttl.as_secs()).unwrap_or(900),
            session_id: family,
            row_id,
        })
    }

    /// Fails unless the principal's session (or API key) is still live. Auth checks its own
    /// database; other services learn of revocations from events.
    pub(crate) async fn require_live(&self, p: &Principal) -> Result<(), Error> {
        if p.kind == PrincipalKind::Service {
            // A service token has no session to end; it is short-lived and checked per RPC.
            return Ok(());
        }
        let sid = Uuid::parse_str(&p.session_id).map_err(|_| Error::unauthenticated("auth.unauthenticated"))?;
        let mut conn = self.pool.acquire().await.db()?;
        let live = match p.kind {
            PrincipalKind::User => repo::sessions::family_live(&mut conn, sid).await?,
            PrincipalKind::ApiKey | PrincipalKind::Service => repo::api_keys::live(&mut conn, sid).await?,
        };
        drop(conn);
        // api_keys has RLS: look it up in a system transaction when the pool query sees nothing.
        let live = live || (p.kind == PrincipalKind::ApiKey && self.api_key_live(sid).await?);
        if live { Ok(()) } else { Err(Error::unauthenticated("auth.token_expired")) }
    }

    async fn api_key_live(&self, id: Uuid) -> Result<bool, Error> {
        let mut tx = db::system(&self.pool).await?;
        repo::api_keys::live(&mut tx, id).await
    }

    /// The signed-in user's row, locked for the rest of the transaction.
    pub(crate) async fn caller_for_update(conn: &mut PgConnection, p: &Principal) -> Result<User, Error> {
        repo::users::by_id(conn, p.user_id.as_uuid(), true)
            .await?
            .ok_or_else(|| Error::unauthenticated("auth.unauthenticated"))
    }

    /// A user-only operation: API keys (and the internal tokens they are exchanged for) and
    /// services cannot change passwords or MFA, see sessions or other workspaces, or link
    /// sign-in methods.
    pub(crate) fn require_user(p: &Principal) -> Result<(), Error> {
        if p.kind == PrincipalKind::User { Ok(()) } else { Err(Error::forbidden("auth.user_session_required")) }
    }

    /// A person's operation: a user or an API key acting for one, never a service.
    pub(crate) fn require_person(p: &Principal) -> Result<(), Error> {
        if p.is_service() { Err(Error::forbidden("auth.user_session_required")) } else { Ok(()) }
    }

    /// Fails with `auth.reauthentication_required` unless the caller's session signed in with a
    /// password or TOTP within `auth.reauthentication_window`.
    pub(crate) async fn require_recent_auth(&self, conn: &mut PgConnection, p: &Principal) -> Result<(), Error> {
        Self::require_user(p)?;
        let window = self.cfg.auth.reauthentication_window;
        let refused = || Error::forbidden("auth.reauthentication_required").with_param("minutes", minutes(window));
        let family = Uuid::parse_str(&p.session_id).map_err(|_| refused())?;
        let auth = repo::sessions::auth_of(conn, family).await?.ok_or_else(refused)?;
        let strong = auth.amr.iter().any(|m| m == "pwd" || m == "otp");
        let recent = Utc::now() - auth.auth_time <= chrono::Duration::from_std(window).unwrap_or_default();
        if strong && recent { Ok(()) } else { Err(refused()) }
    }
}

/// Rate-limit errors carry `retry_after` (seconds) so the gateway can set `Retry-After`.
fn locked_error(code: &'static str, until: chrono::DateTime<Utc>) -> Error {
    let secs = (until - Utc::now()).num_seconds().max(1);
    Error::new(ErrorKind::RateLimited, code)
        .with_param("minutes", ((secs + 59) / 60).to_string())
        .with_param("retry_after", secs.to_string())
}

fn scopes_of(raw: &[String]) -> Result<Vec<Scope>, Error> {
    raw.iter().map(|s| s.parse()).collect()
}
