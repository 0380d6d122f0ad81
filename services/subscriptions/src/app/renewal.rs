//! Background work: renewing locally billed subscriptions and expiring abandoned holds.

use std::sync::Arc;
use std::time::Duration;

use nexus_kernel::{Error, WorkspaceId};
use nexus_platform::db::{commit, system};
use tokio_util::sync::CancellationToken;

use super::Billing;
use crate::domain::{self, NewInvoice};
use crate::{events, repo};

impl Billing {
    /// Starts the next period of locally billed subscriptions whose period ended: applies a
    /// pending downgrade or cancellation, then grants (reset or roll over, as the plan says).
    #[tracing::instrument(skip_all)]
    pub async fn renew_due(&self) -> Result<usize, Error> {
        let mut tx = system(&self.db).await?;
        let due = repo::subscriptions::lock_due_local(&mut tx).await?;
        for s in &due {
            let tenant = WorkspaceId::from_uuid(s.tenant_id);
            let next_plan = if s.cancel_at_period_end {
                "free".to_owned()
            } else {
                s.pending_plan_code.clone().unwrap_or_else(|| s.plan_code.clone())
            };
            let start = s.current_period_end;
            let end = domain::next_period_end(start);
            repo::subscriptions::start_next_period(&mut tx, tenant, &next_plan, start, end).await?;
            Self::start_period(&mut tx, tenant, &next_plan, start).await?;
            if next_plan != "free" {
                // Local billing writes its own receipt for the new period.
                let amount = repo::catalogue::plan_price(&mut tx, &next_plan, &s.currency).await?;
                let receipt =
                    NewInvoice::local_receipt("subscription_cycle", &s.currency, amount.unwrap_or(0), start, Some(end));
                Self::record_invoice(&mut tx, tenant, &receipt, false).await?;
            }
            if next_plan != s.plan_code {
                events::subscription_changed(&mut tx, tenant, &next_plan, &s.plan_code, "active").await?;
            }
        }
        commit(tx).await?;
        Ok(due.len())
    }
}

/// Gives back expired reservations and renews locally billed subscriptions, every `every`.
pub async fn sweeper(billing: Arc<Billing>, every: Duration, stop: CancellationToken) {
    loop {
        match billing.expire_reservations().await {
            // Alerts fire when this stops moving (a stuck or failing sweeper leaves holds in place).
            Ok(_) => metrics::gauge!("nexus_credits_sweep_last_success_seconds").set(unix_now_secs()),
            Err(e) => tracing::warn!(error = %e, "reservation expiry sweep failed"),
        }
        if let Err(e) = billing.renew_due().await {
            tracing::warn!(error = %e, "renewal sweep failed");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

fn unix_now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}
