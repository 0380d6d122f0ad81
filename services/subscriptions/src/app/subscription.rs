//! The workspace's subscription and the one state machine every change goes through.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::{commit, tenant};
use sqlx::PgConnection;

use super::Billing;
use crate::domain::{self, Observed, Subscription};
use crate::{events, repo};

impl Billing {
    /// Puts a workspace on FREE with its first grant, unless it already has a subscription.
    /// Returns whether it was created. Idempotent; safe under races.
    pub async fn ensure_subscription(conn: &mut PgConnection, tenant: TenantId) -> Result<bool, Error> {
        let start = Utc::now();
        if !repo::subscriptions::insert_free(&mut *conn, tenant, start, domain::next_period_end(start)).await? {
            return Ok(false);
        }
        repo::credits::create_balance(&mut *conn, tenant).await?;
        let (credits, _) = repo::catalogue::plan_credits(&mut *conn, "free").await?;
        let key = format!("period:free:{}", start.timestamp_micros());
        Self::grant(&mut *conn, tenant, credits, "grant", &key, true).await?;
        events::subscription_changed(conn, tenant, "free", "", "active").await?;
        Ok(true)
    }

    #[tracing::instrument(skip_all)]
    pub async fn subscription(&self, workspace: TenantId) -> Result<Subscription, Error> {
        let mut tx = tenant(&self.db, workspace).await?;
        Self::ensure_subscription(&mut tx, workspace).await?;
        let row = repo::subscriptions::load(&mut tx).await?;
        commit(tx).await?;
        Ok(row)
    }

    /// Brings the workspace's subscription to what its billing source reports, granting credits
    /// for a new period (once per period) or an upgrade (the prorated difference, once), and
    /// announcing changes. Downgrades reported mid-period wait for the period's end. Runs inside
    /// the caller's tenant transaction, with the subscription row locked.
    pub async fn observe(conn: &mut PgConnection, tenant: TenantId, obs: &Observed) -> Result<Subscription, Error> {
        Self::ensure_subscription(&mut *conn, tenant).await?;
        let cur = repo::subscriptions::lock(&mut *conn).await?;
        let now = Utc::now();
        // News about a Stripe subscription this workspace no longer has changes nothing.
        if obs.billing == "stripe"
            && cur.stripe_subscription_id.is_some()
            && cur.stripe_subscription_id != obs.stripe_subscription
            && (obs.status == "canceled" || cur.has_access())
        {
            tracing::info!(stripe_subscription = ?obs.stripe_subscription, "ignoring a subscription the workspace has replaced");
            return Ok(cur);
        }
        if obs.status == "canceled" {
            // The paid subscription is over: back to FREE on a local period from now.
            if cur.plan_code == "free" && cur.billing == "local" {
                return Ok(cur);
            }
            repo::subscriptions::back_to_free(
                &mut *conn,
                now,
                domain::next_period_end(now),
                obs.stripe_customer.as_deref(),
            )
            .await?;
            Self::start_period(&mut *conn, tenant, "free", now).await?;
            events::subscription_changed(&mut *conn, tenant, "free", &cur.plan_code, "canceled").await?;
            return repo::subscriptions::load(conn).await;
        }

        let ranks = repo::catalogue::ranks(&mut *conn, vec![cur.plan_code.clone(), obs.plan.clone()]).await?;
        let info = |code: &str| ranks.iter().find(|(c, _, _)| c == code).map(|(_, r, m)| (*r, *m));
        let (new_rank, new_credits) = info(&obs.plan)
            .ok_or_else(|| Error::invalid("subscriptions.unknown_plan").with_param("plan", &obs.plan))?;
        let (old_rank, old_credits) = info(&cur.plan_code).unwrap_or((0, 0));

        // The paid period already under way (and granted), as opposed to a new one starting: the
        // first paid period after FREE, a renewal, or access regained after an unpaid spell.
        let continuing = cur.current_period_start.timestamp() == obs.period_start.timestamp()
            && cur.plan_code != "free"
            && cur.has_access();
        let (plan, pending) = if continuing && new_rank < old_rank {
            // A downgrade takes effect when the period that was paid for ends.
            (cur.plan_code.clone(), Some(obs.plan.clone()))
        } else if continuing && obs.plan == cur.plan_code {
            (cur.plan_code.clone(), None)
        } else {
            (obs.plan.clone(), None)
        };
        repo::subscriptions::apply(&mut *conn, obs, &plan, pending.as_deref()).await?;

        if domain::status_has_access(&obs.status) {
            if !continuing {
                // The grant of a new period (keyed by plan and start: once, whichever event brings it).
                Self::start_period(&mut *conn, tenant, &plan, obs.period_start).await?;
            } else if plan != cur.plan_code && new_rank > old_rank {
                // Upgrade inside the period: the extra monthly credits for what is left of it.
                let extra = domain::prorated(new_credits - old_credits, now, obs.period_start, obs.period_end);
                let key = format!("upgrade:{plan}:{}", obs.period_start.timestamp());
                if extra > 0 {
                    Self::grant(&mut *conn, tenant, extra, "grant", &key, false).await?;
                }
            }
        }
        if plan != cur.plan_code || obs.status != cur.status {
            events::subscription_changed(&mut *conn, tenant, &plan, &cur.plan_code, &obs.status).await?;
        }
        repo::subscriptions::load(conn).await
    }

    /// The monthly grant of a new period. Plans that do not roll over expire what is left first.
    pub async fn start_period(
        conn: &mut PgConnection,
        tenant: TenantId,
        plan: &str,
        start: DateTime<Utc>,
    ) -> Result<(), Error> {
        let (credits, rollover) = repo::catalogue::plan_credits(&mut *conn, plan).await?;
        let key = format!("period:{plan}:{}", start.timestamp_micros());
        if repo::credits::granted(&mut *conn, tenant, &key).await? {
            return Ok(());
        }
        if !rollover {
            Self::expire_left(&mut *conn, tenant).await?;
        }
        Self::grant(conn, tenant, credits, "grant", &key, true).await?;
        Ok(())
    }
}
