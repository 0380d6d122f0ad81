//! Workspace settings (time zone, retention, hashing salt), write keys, and partitions: the
//! repository functions the ingest path, consumers and reports share, with small caches in front
//! of the hot lookups (every tracked batch verifies a key and needs its workspace's salt).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::crypto::Sealer;
use nexus_platform::db::{begin_system, begin_tenant};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::Salt;

pub fn db(e: sqlx::Error) -> Error {
    nexus_platform::db::error(e)
}

/// What a verified write key grants: tracking into one workspace, from the allowed origins.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub tenant: TenantId,
    pub key_id: Uuid,
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct WorkspaceSettings {
    pub time_zone: String,
    pub retention_days: u32,
    pub salt: Salt,
}

#[derive(Debug, Clone)]
pub struct WriteKeyView {
    pub key: String,
    pub key_id: Uuid,
    pub allowed_origins: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    tenant_id: Uuid,
    key_sealed: String,
    allowed_origins: Vec<String>,
    created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct SettingsRow {
    time_zone: String,
    retention_days: i32,
    salt_sealed: String,
}

pub const WRITE_KEY_PREFIX: &str = "wk_";

fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A fresh write key: `wk_` and 32 random bytes, base64url.
fn new_write_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{WRITE_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The settings row every workspace gets on first use. The nil tenant holds the salt for facts
/// that belong to no workspace (audit of fleet-wide tables).
pub const SYSTEM_TENANT: TenantId = TenantId::from_uuid(Uuid::nil());

pub struct Store {
    pub pool: PgPool,
    sealer: Sealer,
    default_retention_days: u32,
    cache_ttl: Duration,
    keys: RwLock<HashMap<[u8; 32], (KeyGrant, Instant)>>,
    settings: RwLock<HashMap<TenantId, (WorkspaceSettings, Instant)>>,
    partitions: Mutex<HashSet<NaiveDate>>,
    zones: RwLock<HashSet<String>>,
}

/// Bound on cached keys and settings; past it the cache starts over.
const CACHE_MAX: usize = 100_000;

impl Store {
    pub fn new(pool: PgPool, sealer: Sealer, default_retention_days: u32, cache_ttl: Duration) -> Self {
        Self {
            pool,
            sealer,
            default_retention_days,
            cache_ttl,
            keys: RwLock::default(),
            settings: RwLock::default(),
            partitions: Mutex::default(),
            zones: RwLock::default(),
        }
    }

    /// Verifies a write key; `analytics.invalid_write_key` for anything but an active key.
    pub async fn verify_key(&self, key: &str) -> Result<KeyGrant, Error> {
        let invalid = || Error::unauthenticated("analytics.invalid_write_key");
        if !key.starts_with(WRITE_KEY_PREFIX) || key.len() > 100 {
            return Err(invalid());
        }
        let hash = key_hash(key);
        if let Some((grant, at)) = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&hash)
            && at.elapsed() < self.cache_ttl
        {
            return Ok(grant.clone());
        }
        // The key names the workspace: the lookup itself cannot be confined to one tenant.
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let row: Option<(Uuid, Uuid, Vec<String>)> = sqlx::query_as(
            "SELECT id, tenant_id, allowed_origins FROM write_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash.as_slice())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let (key_id, tenant, allowed_origins) = row.ok_or_else(invalid)?;
        let grant = KeyGrant { tenant: TenantId::from_uuid(tenant), key_id, allowed_origins };
        let mut cache = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(hash, (grant.clone(), Instant::now()));
        Ok(grant)
    }

    /// The workspace's settings, created with a fresh salt on first use.
    pub async fn settings(&self, tenant: TenantId) -> Result<WorkspaceSettings, Error> {
        if let Some((s, at)) = self.settings.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&tenant)
            && at.elapsed() < self.cache_ttl
        {
            return Ok(s.clone());
        }
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        let mut row: Option<SettingsRow> = sqlx::query_as(
            "SELECT time_zone, retention_days, salt_sealed FROM workspace_settings WHERE tenant_id = $1",
        )
        .bind(tenant.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if row.is_none() {
            let salt = Salt::generate();
            sqlx::query(
                "INSERT INTO workspace_settings (tenant_id, retention_days, salt_sealed) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant.as_uuid())
            .bind(i32::try_from(self.default_retention_days).unwrap_or(395))
            .bind(self.sealer.seal(&salt.0, &salt_context(tenant)))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            row = sqlx::query_as(
                "SELECT time_zone, retention_days, salt_sealed FROM workspace_settings WHERE tenant_id = $1",
            )
            .bind(tenant.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        let row = row.ok_or_else(|| Error::internal("workspace settings vanished"))?;
        let raw = self.sealer.open(&row.salt_sealed, &salt_context(tenant)).map_err(Error::internal)?;
        let salt: [u8; 32] = raw.try_into().map_err(|_| Error::internal("salt of the wrong length"))?;
        let s = WorkspaceSettings {
            time_zone: row.time_zone,
            retention_days: u32::try_from(row.retention_days).unwrap_or(1),
            salt: Salt(salt),
        };
        let mut cache = self.settings.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(tenant, (s.clone(), Instant::now()));
        Ok(s)
    }

    /// Changes time zone and/or retention (validated first).
    pub async fn update_settings(
        &self,
        tenant: TenantId,
        time_zone: Option<&str>,
        retention_days: Option<u32>,
    ) -> Result<WorkspaceSettings, Error> {
        if let Some(tz) = time_zone {
            self.check_zone(tz).await?;
        }
        if let Some(d) = retention_days
            && !(1..=3650).contains(&d)
        {
            return Err(Error::new(ErrorKind::Unprocessable, "analytics.invalid_retention").with_param("max", "3650"));
        }
        // Creates the row (and salt) if this is the first use.
        self.settings(tenant).await?;
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        sqlx::query(
            "UPDATE workspace_settings SET time_zone = coalesce($2, time_zone), \
                    retention_days = coalesce($3, retention_days), updated_at = now() WHERE tenant_id = $1",
        )
        .bind(tenant.as_uuid())
        .bind(time_zone)
        .bind(retention_days.and_then(|d| i32::try_from(d).ok()))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.settings.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&tenant);
        self.settings(tenant).await
    }

    /// `analytics.invalid_time_zone` unless Postgres knows the IANA zone.
    pub async fn check_zone(&self, tz: &str) -> Result<(), Error> {
        let bad = || Error::new(ErrorKind::Unprocessable, "analytics.invalid_time_zone").with_param("zone", tz);
        if tz.is_empty() || tz.len() > 64 {
            return Err(bad());
        }
        if self.zones.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(tz) {
            return Ok(());
        }
        let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
            .bind(tz)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        if !known {
            return Err(bad());
        }
        self.zones.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(tz.to_owned());
        Ok(())
    }

    /// The workspace's active write key, created on first request.
    pub async fn write_key(&self, tenant: TenantId) -> Result<WriteKeyView, Error> {
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        let existing: Option<KeyRow> = sqlx::query_as(
            "SELECT id, tenant_id, key_sealed, allowed_origins, created_at FROM write_keys \
             WHERE tenant_id = $1 AND revoked_at IS NULL",
        )
        .bind(tenant.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let row = match existing {
            Some(r) => r,
            None => match self.insert_key(&mut tx, tenant, &[]).await {
                Ok(r) => r,
                // Another request created it first: theirs stands.
                Err(e) if is_unique_violation(&e) => {
                    drop(tx);
                    return Box::pin(self.write_key(tenant)).await;
                }
                Err(e) => return Err(db(e)),
            },
        };
        tx.commit().await.map_err(db)?;
        self.view(row)
    }

    /// Revokes the active key and creates a new one.
    pub async fn rotate_write_key(&self, tenant: TenantId, origins: &[String]) -> Result<WriteKeyView, Error> {
        let origins = check_origins(origins)?;
        let mut tx = begin_tenant(&self.pool, tenant).await.map_err(db)?;
        let revoked: Vec<Vec<u8>> = sqlx::query_scalar(
            "UPDATE write_keys SET revoked_at = now() WHERE tenant_id = $1 AND revoked_at IS NULL RETURNING key_hash",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let row = self.insert_key(&mut tx, tenant, &origins).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut cache = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for h in revoked {
            if let Ok(h) = <[u8; 32]>::try_from(h.as_slice()) {
                cache.remove(&h);
            }
        }
        drop(cache);
        self.view(row)
    }

    async fn insert_key(
        &self,
        tx: &mut sqlx::PgConnection,
        tenant: TenantId,
        origins: &[String],
    ) -> Result<KeyRow, sqlx::Error> {
        let key = new_write_key();
        let id = Uuid::now_v7();
        sqlx::query_as(
            "INSERT INTO write_keys (id, tenant_id, key_hash, key_sealed, allowed_origins) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, tenant_id, key_sealed, allowed_origins, created_at",
        )
        .bind(id)
        .bind(tenant.as_uuid())
        .bind(key_hash(&key).as_slice())
        .bind(self.sealer.seal(key.as_bytes(), &key_context(tenant)))
        .bind(origins)
        .fetch_one(tx)
        .await
    }

    fn view(&self, row: KeyRow) -> Result<WriteKeyView, Error> {
        let tenant = TenantId::from_uuid(row.tenant_id);
        let key = self.sealer.open(&row.key_sealed, &key_context(tenant)).map_err(Error::internal)?;
        Ok(WriteKeyView {
            key: String::from_utf8(key).map_err(Error::internal)?,
            key_id: row.id,
            allowed_origins: row.allowed_origins,
            created_at: row.created_at,
        })
    }

    /// Makes sure the monthly partitions of these instants exist (cached once created).
    pub async fn ensure_partitions(&self, instants: impl IntoIterator<Item = DateTime<Utc>>) -> Result<(), Error> {
        let months: HashSet<NaiveDate> = instants.into_iter().filter_map(month_of).collect();
        let missing: Vec<NaiveDate> = {
            let known = self.partitions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            months.into_iter().filter(|m| !known.contains(m)).collect()
        };
        for month in missing {
            sqlx::query("SELECT analytics_ensure_partition($1)").bind(month).execute(&self.pool).await.map_err(db)?;
            self.partitions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(month);
        }
        Ok(())
    }

    /// Forgets which partitions exist (after retention dropped some).
    pub fn forget_partitions(&self) {
        self.partitions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

pub fn month_of(t: DateTime<Utc>) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(t.year(), t.month(), 1)
}

fn salt_context(tenant: TenantId) -> String {
    format!("analytics.salt:{}", tenant.as_uuid())
}

fn key_context(tenant: TenantId) -> String {
    format!("analytics.write_key:{}", tenant.as_uuid())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "23505")
}

/// Origins as browsers send them: `scheme://host[:port]`, at most 20.
fn check_origins(origins: &[String]) -> Result<Vec<String>, Error> {
    let bad = |o: &str| Error::new(ErrorKind::Unprocessable, "analytics.invalid_origin").with_param("origin", o);
    if origins.len() > 20 {
        return Err(bad("…"));
    }
    origins
        .iter()
        .map(|o| {
            let u = url::Url::parse(o).map_err(|_| bad(o))?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() || u.path() != "/" {
                return Err(bad(o));
            }
            Ok(u.origin().ascii_serialization())
        })
        .collect()
}

/// Whether a request from `origin` may use a key restricted to `allowed` (none = any origin).
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| a.eq_ignore_ascii_case(origin.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_keys_look_alike_and_differ() {
        let (a, b) = (new_write_key(), new_write_key());
        assert!(a.starts_with("wk_") && a.len() == 46, "{a}");
        assert_ne!(a, b);
        assert_ne!(key_hash(&a), key_hash(&b));
    }

    #[test]
    fn origins_are_normalised_and_checked() {
        let ok = check_origins(&["https://Shop.Example.com".into(), "http://localhost:3000".into()]).unwrap();
        assert_eq!(ok, vec!["https://shop.example.com", "http://localhost:3000"]);
        assert!(check_origins(&["https://x.com/path".into()]).is_err());
        assert!(check_origins(&["javascript:alert(1)".into()]).is_err());
        assert!(origin_allowed(&[], "https://any.example"));
        assert!(origin_allowed(&ok, "https://shop.example.com"));
        assert!(!origin_allowed(&ok, "https://evil.example"));
        assert!(!origin_allowed(&ok, ""));
    }
}
