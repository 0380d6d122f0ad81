//! A workspace's analytics settings: time zone, retention, and the salt of its hashes.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::{self, DbResultExt};

use super::Analytics;
use crate::domain::Salt;
use crate::domain::workspace::{
    FALLBACK_RETENTION_DAYS, WorkspaceSettings, check_retention, invalid_zone, salt_context, zone_shaped,
};
use crate::repo;

impl Analytics {
    /// The workspace's settings, created with a fresh salt on first use.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn settings(&self, tenant: TenantId) -> Result<WorkspaceSettings, Error> {
        if let Some(s) = self.settings.get(&tenant) {
            return Ok(s);
        }
        let mut tx = db::tenant(&self.db, tenant).await?;
        let mut row = repo::settings::get(&mut tx, tenant).await?;
        if row.is_none() {
            let salt = Salt::generate();
            let days = i32::try_from(self.default_retention_days).unwrap_or(FALLBACK_RETENTION_DAYS);
            let sealed = self.sealer.seal(&salt.0, &salt_context(tenant));
            repo::settings::insert(&mut tx, tenant, days, &sealed).await?;
            row = repo::settings::get(&mut tx, tenant).await?;
        }
        db::commit(tx).await?;
        let row = row.ok_or_else(|| Error::internal("workspace settings vanished"))?;
        let raw = self.sealer.open(&row.salt_sealed, &salt_context(tenant)).map_err(Error::internal)?;
        let salt: [u8; 32] = raw.try_into().map_err(|_| Error::internal("salt of the wrong length"))?;
        let s = WorkspaceSettings {
            time_zone: row.time_zone,
            retention_days: u32::try_from(row.retention_days).unwrap_or(1),
            salt: Salt(salt),
        };
        self.settings.put(tenant, s.clone());
        Ok(s)
    }

    /// Changes time zone and/or retention (validated first).
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn update_settings(
        &self,
        tenant: TenantId,
        time_zone: Option<&str>,
        retention_days: Option<u32>,
    ) -> Result<WorkspaceSettings, Error> {
        if let Some(tz) = time_zone {
            self.check_zone(tz).await?;
        }
        if let Some(d) = retention_days {
            check_retention(d)?;
        }
        // Creates the row (and salt) if this is the first use.
        self.settings(tenant).await?;
        let mut tx = db::tenant(&self.db, tenant).await?;
        let days = retention_days.and_then(|d| i32::try_from(d).ok());
        repo::settings::update(&mut tx, tenant, time_zone, days).await?;
        db::commit(tx).await?;
        self.settings.remove(&tenant);
        self.settings(tenant).await
    }

    /// `analytics.invalid_time_zone` unless Postgres knows the IANA zone.
    #[tracing::instrument(skip_all, fields(zone = %tz))]
    pub async fn check_zone(&self, tz: &str) -> Result<(), Error> {
        if !zone_shaped(tz) {
            return Err(invalid_zone(tz));
        }
        if self.zones.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(tz) {
            return Ok(());
        }
        let mut conn = self.db.acquire().await.db()?;
        if !repo::settings::zone_known(&mut conn, tz).await? {
            return Err(invalid_zone(tz));
        }
        self.zones.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(tz.to_owned());
        Ok(())
    }
}
