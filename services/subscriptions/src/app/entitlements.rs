//! Limited features (videos a month, WhatsApp numbers, …) and the period's usage.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::db::{commit, tenant};
use sqlx::PgConnection;

use super::Billing;
use crate::domain::{self, EntitlementView, UsageView};
use crate::repo;

impl Billing {
    /// The limit of `feature` on the plan in force, and the start of the period it counts.
    async fn limit_of(conn: &mut PgConnection, feature: &str) -> Result<(i64, DateTime<Utc>), Error> {
        domain::check_feature(feature)?;
        let sub = repo::subscriptions::load(&mut *conn).await?;
        let limit = repo::catalogue::limit_of(conn, sub.effective_plan(), feature)
            .await?
            .ok_or_else(|| Error::invalid("subscriptions.unknown_feature").with_param("feature", feature))?;
        Ok((limit, sub.current_period_start))
    }

    #[tracing::instrument(skip_all, fields(feature = %feature))]
    pub async fn check_entitlement(&self, workspace: TenantId, feature: &str) -> Result<EntitlementView, Error> {
        let mut tx = tenant(&self.db, workspace).await?;
        Self::ensure_subscription(&mut tx, workspace).await?;
        let (limit, period) = Self::limit_of(&mut tx, feature).await?;
        let used = repo::features::used(&mut tx, feature, period).await?;
        commit(tx).await?;
        Ok(EntitlementView { feature: feature.into(), allowed: used < limit, limit, used })
    }

    /// Counts one use of `feature` (once per key) unless its limit is reached.
    #[tracing::instrument(skip_all, fields(feature = %feature))]
    pub async fn use_entitlement(
        &self,
        workspace: TenantId,
        feature: &str,
        key: &str,
    ) -> Result<EntitlementView, Error> {
        domain::check_idempotency_key(key)?;
        let mut tx = tenant(&self.db, workspace).await?;
        Self::ensure_subscription(&mut tx, workspace).await?;
        let (limit, period) = Self::limit_of(&mut tx, feature).await?;
        if !repo::features::record_use(&mut tx, workspace, key, feature).await? {
            commit(tx).await?;
            return self.check_entitlement(workspace, feature).await;
        }
        let limit_reached = || {
            Error::new(ErrorKind::PaymentRequired, "subscriptions.limit_reached")
                .with_param("feature", feature)
                .with_param("limit", limit.to_string())
        };
        if limit <= 0 {
            return Err(limit_reached());
        }
        let used =
            repo::features::count_use(&mut tx, workspace, feature, period, limit).await?.ok_or_else(limit_reached)?;
        commit(tx).await?;
        Ok(EntitlementView { feature: feature.into(), allowed: used < limit, limit, used })
    }

    /// The period's credits (granted, used, by action) and every feature's uses and limit.
    #[tracing::instrument(skip_all)]
    pub async fn usage(&self, workspace: TenantId) -> Result<UsageView, Error> {
        let mut tx = tenant(&self.db, workspace).await?;
        Self::ensure_subscription(&mut tx, workspace).await?;
        let sub = repo::subscriptions::load(&mut tx).await?;
        let b = repo::credits::balance(&mut tx).await?;
        let by_action = repo::credits::committed_by_action(&mut tx, sub.current_period_start).await?;
        let entitlements = repo::catalogue::entitlements(&mut tx, sub.effective_plan()).await?;
        let used = repo::features::used_in(&mut tx, sub.current_period_start).await?;
        let mut features: Vec<EntitlementView> = entitlements
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let limit = v.as_i64().unwrap_or(0);
                        let u = used.get(k).copied().unwrap_or(0);
                        EntitlementView { feature: k.clone(), allowed: u < limit, limit, used: u }
                    })
                    .collect()
            })
            .unwrap_or_default();
        features.sort_by(|a, b| a.feature.cmp(&b.feature));
        commit(tx).await?;
        Ok(UsageView {
            period_start: sub.current_period_start,
            period_end: sub.current_period_end,
            credits_used: b.period_used,
            credits_granted: b.period_grant,
            by_action: by_action.into_iter().collect(),
            features,
        })
    }
}
