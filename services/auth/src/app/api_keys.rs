//! API keys: created with scopes, shown once, stored hashed behind a public prefix, exchanged by
//! the gateway for a short-lived internal token, revoked at once.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, UserId, WorkspaceId};
use nexus_platform::db::{begin_system, begin_tenant};
use nexus_platform::identity::{AUDIENCE, Action, Claims, ISSUER, Principal, PrincipalKind, Role, Scope};
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{App, now_unix, scopes_of};
use crate::domain;
use crate::repo::db;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: ApiKeyView,
    pub secret: String,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    tenant_id: Uuid,
    created_by: Uuid,
    secret_hash: Vec<u8>,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at";

/// `nx_<8 hex prefix>_<secret>`: the prefix finds the row, the whole string is hashed.
fn split_secret(secret: &str) -> Option<&str> {
    let rest = secret.strip_prefix("nx_")?;
    let (prefix, body) = rest.split_once('_')?;
    (prefix.len() == 8 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) && body.len() >= 40 && body.len() <= 64)
        .then_some(prefix)
}

impl App {
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
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let key: ApiKeyView = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_keys (id, tenant_id, created_by, name, prefix, secret_hash, scopes, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(p.workspace_id.as_uuid())
        .bind(p.user_id.as_uuid())
        .bind(&name)
        .bind(format!("nx_{prefix}"))
        .bind(domain::token_hash(&secret))
        .bind(&names)
        .bind(expires_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        enqueue(
            &mut tx,
            "nexus.auth.api_key.created",
            Some(p.workspace_id),
            &events::ApiKeyCreated {
                key_id: id.to_string(),
                workspace_id: p.workspace_id.to_string(),
                scopes: names.iter().map(|s| (*s).to_owned()).collect(),
            },
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(CreatedKey { key, secret })
    }

    pub async fn list_api_keys(&self, p: &Principal) -> Result<Vec<ApiKeyView>, Error> {
        self.require_live(p).await?;
        p.require(Action::Read)?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at DESC")))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)
    }

    pub async fn revoke_api_key(&self, p: &Principal, id: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        p.require(Action::ManageApiKeys)?;
        let id = Uuid::parse_str(id.strip_prefix("key_").unwrap_or(id))
            .map_err(|_| Error::not_found("request.not_found"))?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let revoked = sqlx::query("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        if revoked == 0 {
            return Err(Error::not_found("request.not_found"));
        }
        enqueue(
            &mut tx,
            "nexus.auth.api_key.revoked",
            Some(p.workspace_id),
            &events::ApiKeyRevoked { key_id: id.to_string(), workspace_id: p.workspace_id.to_string() },
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// Trades a key for an internal token carrying its scopes and its creator's current role.
    pub async fn exchange_api_key(&self, secret: &str) -> Result<(String, u32, Uuid), Error> {
        let invalid = || Error::unauthenticated("auth.api_key_invalid");
        let prefix = split_secret(secret).ok_or_else(invalid)?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let row: Option<KeyRow> = sqlx::query_as(
            "SELECT id, tenant_id, created_by, secret_hash, scopes, expires_at, revoked_at, last_used_at FROM api_keys WHERE prefix = $1",
        )
        .bind(format!("nx_{prefix}"))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let KeyRow {
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
        let role: String = sqlx::query_scalar("SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant)
            .bind(creator)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(invalid)?;
        let role: Role = role.parse()?;
        let locale: Option<String> = sqlx::query_scalar("SELECT locale FROM user_settings WHERE user_id = $1")
            .bind(creator)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if last_used.is_none_or(|t| Utc::now() - t > chrono::Duration::seconds(60)) {
            sqlx::query("UPDATE api_keys SET last_used_at = now() WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
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

#[cfg(test)]
mod tests {
    use super::split_secret;

    #[test]
    fn key_format_is_checked_before_any_lookup() {
        let good = format!("nx_0a1b2c3d_{}", "A".repeat(43));
        assert_eq!(split_secret(&good), Some("0a1b2c3d"));
        assert_eq!(split_secret("nx_0a1b2c3d_short"), None);
        assert_eq!(split_secret(&format!("nx_zzzzzzzz_{}", "A".repeat(43))), None);
        assert_eq!(split_secret(&format!("sk_0a1b2c3d_{}", "A".repeat(43))), None);
    }
}
