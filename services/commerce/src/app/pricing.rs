//! Pricing rules and commission rules: create or replace, list, delete.

use nexus_kernel::Error;
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use uuid::Uuid;

use super::{App, require};
use crate::domain::RuleId;
use crate::domain::commissions::CommissionRule;
use crate::domain::pricing::PricingRule;
use crate::repo;

impl App {
    /// Creates the rule of its scope, or replaces it.
    pub async fn put_pricing_rule(&self, p: &Principal, rule: PricingRule) -> Result<(Uuid, PricingRule), Error> {
        require(p, Action::Write)?;
        rule.check()?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let id = repo::rules::put_pricing_rule(&mut tx, p.workspace_id, &rule).await?;
        db::commit(tx).await?;
        Ok((id, rule))
    }

    pub async fn list_pricing_rules(&self, p: &Principal) -> Result<Vec<(Uuid, PricingRule)>, Error> {
        require(p, Action::Read)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let rules = repo::rules::pricing_rules(&mut tx).await?;
        db::commit(tx).await?;
        Ok(rules)
    }

    pub async fn delete_pricing_rule(&self, p: &Principal, raw_id: &str) -> Result<(), Error> {
        require(p, Action::Write)?;
        let id = super::id_of::<RuleId>(raw_id, "commerce.rule_not_found", RuleId::as_uuid)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if !repo::rules::delete_pricing_rule(&mut tx, id).await? {
            return Err(Error::not_found("commerce.rule_not_found"));
        }
        db::commit(tx).await
    }

    /// Creates a commission rule (a new id) or replaces the one named by `rule.id`. Rules are
    /// in the reporting currency: bases are reporting amounts.
    pub async fn put_commission_rule(
        &self,
        p: &Principal,
        rule: CommissionRule,
        replace: bool,
    ) -> Result<CommissionRule, Error> {
        require(p, Action::ManageBilling)?;
        rule.check()?;
        if rule.currency != self.reporting {
            return Err(Error::invalid("commerce.commission_rule_invalid")
                .with_param("field", "currency")
                .with_violation("currency", "invalid"));
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        // Only this workspace's rules can be replaced (another's id is simply not found).
        if replace && !repo::rules::commission_rules(&mut tx).await?.iter().any(|r| r.id == rule.id) {
            return Err(Error::not_found("commerce.rule_not_found"));
        }
        repo::rules::put_commission_rule(&mut tx, p.workspace_id, &rule).await?;
        db::commit(tx).await?;
        Ok(rule)
    }

    pub async fn list_commission_rules(&self, p: &Principal) -> Result<Vec<CommissionRule>, Error> {
        require(p, Action::Read)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let rules = repo::rules::commission_rules(&mut tx).await?;
        db::commit(tx).await?;
        Ok(rules)
    }
}
