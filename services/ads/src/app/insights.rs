//! Insights sync: daily ad-level rows of a built Meta or TikTok campaign (or, for the scheduled
//! sweep, of a whole account) over the last days (28 by default, the backfill), stored per day
//! in the account's time zone and exact minor units of its currency. When Meta's rate-limit
//! headers report 95 % or more, the sync waits before the next page (Meta's own estimate when
//! it gives one) instead of failing; TikTok's "too frequent" answers are retried after a pause.

use std::time::Duration;

use chrono::Utc;
use nexus_kernel::{Currency, Error, ErrorKind, TenantId};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};

use super::ad_platform::{AdPlatform, Scope, ad_account_kind};
use super::platforms::platform_error;
use super::{App, id_of, require};
use crate::domain::BuildId;
use crate::domain::campaigns::parse_minor;
use crate::repo;
use crate::repo::insights::Owner;

/// Usage at which the sync slows down.
pub const SLOW_DOWN_AT_PERCENT: u32 = 95;

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub rows: u64,
    pub days: i64,
    pub spend_minor: i64,
    pub revenue_minor: i64,
    pub currency: String,
    pub time_zone: String,
    /// Pauses made because the platform reported high usage.
    pub slowed: u32,
}

/// Where rows are read from and stored.
pub(crate) struct Pull<'a> {
    pub tenant: TenantId,
    pub owner: Owner,
    pub platform: AdPlatform<'a>,
    pub token: &'a str,
    pub account: &'a str,
    pub scope: Scope,
    pub currency: Currency,
    pub time_zone: &'a str,
}

/// The last `days` days up to today as the account counts them (its time zone), as the
/// platforms date their rows: (since, until).
pub(crate) fn day_range(time_zone: &str, days: u32) -> (String, String) {
    let until = match time_zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => Utc::now().with_timezone(&tz).date_naive(),
        Err(_) => Utc::now().date_naive(),
    };
    let since = until - chrono::Duration::days(i64::from(days.max(1)) - 1);
    (since.to_string(), until.to_string())
}

impl App {
    pub async fn sync_insights(&self, p: &Principal, raw_id: &str, days: u32) -> Result<SyncReport, Error> {
        require(p, Action::Write)?;
        let days = if days == 0 { self.cfg.insights.backfill_days } else { days };
        if !(1..=90).contains(&days) {
            return Err(Error::invalid("ads.insights_range_invalid").with_violation("days", "range"));
        }
        let id = id_of::<BuildId>(raw_id, "ads.build_not_found", BuildId::as_uuid)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let b = repo::builds::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("ads.build_not_found"))?;
        let steps = repo::builds::steps(&mut tx, id).await?;
        let conn = repo::connections::get(&mut tx, b.connection_id).await?;
        db::commit(tx).await?;
        if b.status != "built" {
            return Err(
                Error::new(ErrorKind::FailedPrecondition, "ads.build_not_manageable").with_param("status", b.status)
            );
        }
        let conn = conn
            .filter(|c| c.record.status != crate::domain::connections::status::DISCONNECTED)
            .ok_or_else(|| Error::new(ErrorKind::FailedPrecondition, "ads.connection_required"))?;
        let kind = ad_account_kind(conn.record.provider);
        let time_zone = conn
            .record
            .accounts
            .iter()
            .find(|a| a.kind == kind && a.external_id == b.ad_account)
            .map(|a| a.time_zone.clone())
            .unwrap_or_default();
        let currency: Currency = b.currency.parse()?;
        let token = self.open_tokens(b.connection_id, &conn.credentials)?.access_token;
        let campaign = steps
            .iter()
            .find(|s| s.step == "campaign")
            .and_then(|s| s.platform_id.clone())
            .ok_or_else(|| Error::internal("built campaign without its id"))?;
        let platform = self.ad_platform_of(&b.provider)?;
        let (since, until) = day_range(&time_zone, days);
        let pull = Pull {
            tenant: p.workspace_id,
            owner: Owner::Build(b.id),
            platform,
            token: &token,
            account: &b.ad_account,
            scope: Scope::Campaign(campaign),
            currency,
            time_zone: &time_zone,
        };
        let mut report =
            SyncReport { currency: b.currency.clone(), time_zone: time_zone.clone(), ..Default::default() };
        self.pull(&pull, &since, &until, &mut report).await?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let (stored_days, spend, revenue) = repo::insights::totals(&mut tx, b.id).await?;
        db::commit(tx).await?;
        report.days = stored_days;
        report.spend_minor = spend;
        report.revenue_minor = revenue;
        Ok(report)
    }

    /// Reads every page of `pull` between two days and stores it, slowing down when the
    /// platform says it is busy.
    pub(crate) async fn pull(
        &self,
        pull: &Pull<'_>,
        since: &str,
        until: &str,
        report: &mut SyncReport,
    ) -> Result<(), Error> {
        let provider = pull.platform.provider();
        let mut cursor = pull.platform.first_page();
        loop {
            let page = pull
                .platform
                .insights_page(pull.token, pull.account, &pull.scope, since, until, &cursor)
                .await
                .map_err(|e| platform_error(provider, e))?;
            let mut rows = Vec::with_capacity(page.rows.len());
            for r in &page.rows {
                let bad = || {
                    Error::new(ErrorKind::Unavailable, "ads.platform_unavailable")
                        .with_param("provider", provider.as_str())
                };
                let day = chrono::NaiveDate::parse_from_str(&r.date, "%Y-%m-%d").map_err(|_| bad())?;
                rows.push(repo::insights::Row {
                    campaign_id: r.campaign_id.clone(),
                    adset_id: r.adset_id.clone(),
                    ad_id: r.ad_id.clone(),
                    day,
                    spend_minor: parse_minor(&r.spend, pull.currency).ok_or_else(bad)?,
                    impressions: r.impressions,
                    reach: r.reach,
                    clicks: r.clicks,
                    conversions: r.conversions,
                    revenue_minor: parse_minor(&r.revenue, pull.currency).ok_or_else(bad)?,
                });
            }
            if !rows.is_empty() {
                let mut tx = db::tenant(&self.pool, pull.tenant).await?;
                let code = pull.currency.code();
                repo::insights::upsert(&mut tx, pull.tenant, &pull.owner, code, pull.time_zone, &rows).await?;
                db::commit(tx).await?;
                report.rows += rows.len() as u64;
            }
            let Some(next) = page.next else { break };
            cursor = next;
            if page.usage_percent >= SLOW_DOWN_AT_PERCENT {
                // Slow down rather than be throttled: Meta's estimate, else the configured pause.
                let wait = page.regain_after.unwrap_or(self.cfg.insights.slowdown).min(Duration::from_secs(15 * 60));
                tracing::info!(
                    usage = page.usage_percent,
                    wait_ms = wait.as_millis() as u64,
                    "insights sync slowing down"
                );
                tokio::time::sleep(wait).await;
                report.slowed += 1;
            }
        }
        Ok(())
    }
}
