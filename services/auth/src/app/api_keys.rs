//! API keys: created with scopes, shown once, stored hashed behind a public prefix, exchanged by
//! the gateway for a short-lived internal token, revoked at once.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, UserId, WorkspaceId};
use nexus_platform::db;
use nexus_platform::identity::{AUDIENCE, Action, Claims, ISSUER, Principal, PrincipalKind, Role, Scope};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{App, now_unix, scopes_of};
use crate::domain::api_keys::split_secret;
use crate::domain::{self, ApiKeyView, StoredKey};
use crate::events;
use crate::repo;

#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: ApiKeyView,
    pub secret: String,
}

impl App {
    #[tracing::instrument(skip_all)]
    pub async fn create_api_key(
        &self,
        p: &Principal,
        name: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<CreatedKey, Error> {
        self.require_live(p).await?;
        p.require(Action::ManageApiKeys)?;
        let name = domain::check_name(name).map_err(|e| {
            if e.code() == "auth.name_required" {
                Error::invalid("auth.name_required").with_violation("name", "required")
            } else {
                e
            }
        })?;
        if scopes.is_empty() {
            return Err(Error::invalid("auth.invalid_scope")
                .with_param("scope", "")
                .with_violation("scopes", "required"));
        }
        let parsed = scopes_of(scopes)?;
        // A key cannot do more than its creator's token may.
        if let Some(mine) = &p.scopes
            && parsed.iter().any(|s| !mine.contains(s))
        {
            return Err(Error::forbidden("auth.scope_missing").with_param("scope", "admin"));
        }
        if expires_at.is_some_and(|e| e <= Utc::now()) {
            return Err(Error::invalid("request.invalid").with_violation("expires_at", "in_the_past"));
        }
        let mut raw = [0u8; 4];
        rand::fill(&mut raw);
        let prefix = hex::encode(raw);
        let secret = format!("nx_{prefix}_{}", domain::random_token(""));
        let id = Uuid::now_v7();
        let mut names: Vec<&str> = parsed.iter().map(|s| s.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let prefix = format!("nx_{prefix}");
        let new = repo::api_keys::NewKey {
            id,
            workspace: p.workspace_id.as_uuid(),
            created_by: p.user_id.as_uuid(),
            name: &name,
            prefix: &prefix,
            secret_hash: &domain::token_hash(&secret),
            scopes: &names,
            expires_at,
        };
        let key = repo::api_keys::insert(&mut tx, &new).await?;
        let scopes = names.iter().map(|s| (*s).to_owned()).collect();
        events::api_key_created(&mut tx, p.workspace_id, id, scopes).await?;
        db::commit(tx).await?;
        Ok(CreatedKey { key, secret })
    }

    #[tracing::instrument(skip_all)]
    pub async fn list_api_keys(&self, p: &Principal) -> Result<Vec<ApiKeyView>, Error> {
        self.require_live(p).await?;
        p.require(Action::Read)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::api_keys::list(&mut tx).await
    }

    #[tracing::instrument(skip_all, fields(key = %id))]
    pub async fn revoke_api_key(&self, p: &Principal, id: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        p.require(Action::ManageApiKeys)?;
        let id = Uuid::parse_str(id.strip_prefix("key_").unwrap_or(id))
            .map_err(|_| Error::not_found("request.not_found"))?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if !repo::api_keys::revoke(&mut tx, id).await? {
            return Err(Error::not_found("request.not_found"));
        }
        events::api_key_revoked(&mut tx, p.workspace_id, id).await?;
        db::commit(tx).await
    }

    /// Trades a key for an internal token carrying its scopes and its creator's current role.
    #[tracing::instrument(skip_all)]
    pub async fn exchange_api_key(&self, secret: &str) -> Result<(String, u32, Uuid), Error> {
        let invalid = || Error::unauthenticated("auth.api_key_invalid");
        let prefix = split_secret(secret).ok_or_else(invalid)?;
        let mut tx = db::system(&self.pool).await?;
        let row = repo::api_keys::by_prefix(&mut tx, &format!("nx_{prefix}")).await?;
        let StoredKey {
            id,
            tenant_id: tenant,
            created_by: creator,
            secret_hash: hash,
            scopes,
            expires_at,
            revoked_at,
            last_used_at: last_used,
        } = row.ok_or_else(invalid)?;
        if !bool::from(hash.as_slice().ct_eq(&domain::token_hash(secret)))
            || revoked_at.is_some()
            || expires_at.is_some_and(|e| e <= Utc::now())
        {
            return Err(invalid());
        }
        let role = repo::workspaces::role_in(&mut tx, tenant, creator).await?.ok_or_else(invalid)?;
        let role: Role = role.parse()?;
        let locale = repo::users::locale(&mut tx, creator).await?;
        if last_used.is_none_or(|t| Utc::now() - t > chrono::Duration::seconds(60)) {
            repo::api_keys::touch(&mut tx, id).await?;
        }
        db::commit(tx).await?;
        let scopes: Vec<Scope> = scopes_of(&scopes)?;
        let ttl = self.cfg.auth.api_key_token_ttl.as_secs();
        let now = now_unix();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: UserId::from_uuid(creator).to_string(),
            ws: WorkspaceId::from_uuid(tenant).to_string(),
            role,
            scp: scopes,
            sid: id.to_string(),
            kind: PrincipalKind::ApiKey,
            jti: Uuid::now_v7().to_string(),
            iat: now,
            exp: now + i64::try_from(ttl).unwrap_or(300),
            amr: vec!["key".into()],
            loc: locale.unwrap_or_default(),
            svc: String::new(),
        };
        Ok((self.keys.sign(&claims).await?, u32::try_from(ttl).unwrap_or(300), id))
    }
}
