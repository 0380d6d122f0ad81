//! The token expiry watch: tokens near expiry are refreshed where the platform allows, else
//! the connection turns `expiring` with one `connection.expiring` event; past expiry it turns
//! `expired` with `connection.expired`.

use std::sync::Arc;

use chrono::Utc;
use nexus_kernel::{Error, TenantId};
use nexus_platform::db;
use tokio_util::sync::CancellationToken;

use super::App;
use crate::domain::connections::{ExpiryStep, Provider, expiry_step};
use crate::{events, repo};

/// Connections looked at per round.
const BATCH: i64 = 500;

pub async fn watcher(app: Arc<App>, stop: CancellationToken) {
    loop {
        if let Err(e) = app.watch_expiry().await {
            tracing::warn!(error = ?e, "connection expiry watch failed");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(app.cfg.expiry.interval) => {}
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub refreshed: u32,
    pub warned: u32,
    pub expired: u32,
}

impl App {
    /// One round over every workspace's connections due within the notice period.
    pub async fn watch_expiry(&self) -> Result<Round, Error> {
        let now = Utc::now();
        let notice_std = self.cfg.expiry.notice;
        let notice = chrono::Duration::from_std(notice_std).unwrap_or(chrono::Duration::days(7));
        let mut sys = db::system(&self.pool).await?;
        let due = repo::connections::due(&mut sys, now + notice, BATCH).await?;
        db::commit(sys).await?;
        let mut round = Round::default();
        for d in due {
            let Ok(provider) = d.provider.parse::<Provider>() else { continue };
            let tenant = TenantId::from_uuid(d.tenant_id);
            match expiry_step(provider, d.token_expires_at, d.warned, now, notice) {
                ExpiryStep::Nothing => {}
                ExpiryStep::Refresh => match self.refresh_connection(tenant, d.id, provider, notice_std).await {
                    Ok(_) => round.refreshed += 1,
                    Err(e) => {
                        tracing::warn!(provider = %provider, code = e.code(), "refreshing a platform token failed");
                        // A token that could not be renewed is reported like any other.
                        let warned = d.warned;
                        if let Some(at) = d.token_expires_at {
                            if at <= now {
                                round.expired += u32::from(self.expire(tenant, &d).await?);
                            } else if !warned {
                                round.warned += u32::from(self.warn(tenant, &d).await?);
                            }
                        }
                    }
                },
                ExpiryStep::Warn => round.warned += u32::from(self.warn(tenant, &d).await?),
                ExpiryStep::Expire => round.expired += u32::from(self.expire(tenant, &d).await?),
            }
        }
        Ok(round)
    }

    async fn warn(&self, tenant: TenantId, d: &repo::connections::Due) -> Result<bool, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let first = repo::connections::mark_expiring(&mut tx, d.id).await?;
        if first {
            events::connection_expiring(&mut tx, tenant, d).await?;
        }
        db::commit(tx).await?;
        Ok(first)
    }

    async fn expire(&self, tenant: TenantId, d: &repo::connections::Due) -> Result<bool, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let first = repo::connections::mark_expired(&mut tx, d.id).await?;
        if first {
            events::connection_expired(&mut tx, tenant, d).await?;
        }
        db::commit(tx).await?;
        Ok(first)
    }

    /// Renews the connection's token at the platform and stores it; the fresh tokens. Renewals
    /// of one connection take turns and each reads the stored tokens after its turn comes: TikTok
    /// rotates refresh tokens, so a renewal racing another with the same refresh token would be
    /// refused. A token still valid beyond `min_valid` (another replica renewed it meanwhile) is
    /// kept.
    pub(crate) async fn refresh_connection(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        provider: Provider,
        min_valid: std::time::Duration,
    ) -> Result<super::platforms::Tokens, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        repo::connections::lock_renewal(&mut tx, id).await?;
        let stored =
            repo::connections::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("ads.connection_not_found"))?;
        let tokens = self.open_tokens(id, &stored.credentials)?;
        let keep = Utc::now() + chrono::Duration::from_std(min_valid).unwrap_or_default();
        if stored.record.token_expires_at.is_some_and(|at| at > keep) {
            db::commit(tx).await?;
            return Ok(tokens);
        }
        // The platform call happens inside the turn (one short request, rarely).
        let (fresh, expires_at) = self.refresh(provider, &tokens).await?;
        let sealed = self.seal_tokens(id, &fresh)?;
        repo::connections::set_credentials(&mut tx, id, &sealed, expires_at).await?;
        db::commit(tx).await?;
        Ok(fresh)
    }
}
