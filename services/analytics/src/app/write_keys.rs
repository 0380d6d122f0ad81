//! Write keys: the browser-safe credential of tracking, one active per workspace.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db;

use super::Analytics;
use crate::domain::workspace::{KeyGrant, WriteKey, check_origins, key_context, key_hash, key_shaped, new_write_key};
use crate::repo;
use crate::repo::write_keys::SealedKey;

impl Analytics {
    /// Verifies a write key; `analytics.invalid_write_key` for anything but an active key.
    pub async fn verify_key(&self, key: &str) -> Result<KeyGrant, Error> {
        let invalid = || Error::unauthenticated("analytics.invalid_write_key");
        if !key_shaped(key) {
            return Err(invalid());
        }
        let hash = key_hash(key);
        if let Some(grant) = self.keys.get(&hash) {
            return Ok(grant);
        }
        let mut tx = db::system(&self.db).await?;
        let grant = repo::write_keys::grant(&mut tx, &hash).await?;
        db::commit(tx).await?;
        let grant = grant.ok_or_else(invalid)?;
        self.keys.put(hash, grant.clone());
        Ok(grant)
    }

    /// The workspace's active write key, created on first request.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn write_key(&self, tenant: TenantId) -> Result<WriteKey, Error> {
        loop {
            let mut tx = db::tenant(&self.db, tenant).await?;
            let row = match repo::write_keys::active(&mut tx, tenant).await? {
                Some(r) => r,
                None => match self.insert_key(&mut tx, tenant, &[]).await? {
                    Some(r) => r,
                    // Another request created it first: theirs stands.
                    None => continue,
                },
            };
            db::commit(tx).await?;
            return self.view(row);
        }
    }

    /// Revokes the active key and creates a new one.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn rotate_write_key(&self, tenant: TenantId, origins: &[String]) -> Result<WriteKey, Error> {
        let origins = check_origins(origins)?;
        let mut tx = db::tenant(&self.db, tenant).await?;
        let revoked = repo::write_keys::revoke_active(&mut tx, tenant).await?;
        let row = self
            .insert_key(&mut tx, tenant, &origins)
            .await?
            .ok_or_else(|| Error::internal("a write key was created while rotating"))?;
        db::commit(tx).await?;
        for h in revoked {
            if let Ok(h) = <[u8; 32]>::try_from(h.as_slice()) {
                self.keys.remove(&h);
            }
        }
        self.view(row)
    }

    async fn insert_key(
        &self,
        tx: &mut db::Tx,
        tenant: TenantId,
        origins: &[String],
    ) -> Result<Option<SealedKey>, Error> {
        let key = new_write_key();
        let sealed = self.sealer.seal(key.as_bytes(), &key_context(tenant));
        repo::write_keys::insert(tx, tenant, &key_hash(&key), &sealed, origins).await
    }

    fn view(&self, row: SealedKey) -> Result<WriteKey, Error> {
        let key = self.sealer.open(&row.key_sealed, &key_context(row.tenant)).map_err(Error::internal)?;
        Ok(WriteKey {
            key: String::from_utf8(key).map_err(Error::internal)?,
            key_id: row.id,
            allowed_origins: row.allowed_origins,
            created_at: row.created_at,
        })
    }
}
