//! Commission rules and the commissions a sale earns: percentage of revenue or a fixed amount
//! per order, higher tiers once a period's volume reaches a count, and a cap per period. A
//! commission is computed once, when its order is paid, and reversed (never recomputed) when the
//! order is refunded; reversed commissions count toward neither volume nor cap afterwards.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use nexus_kernel::{Currency, Error};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::money::{max_value, round};

/// Who a rule pays, and for which sales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommissionScope {
    /// Every sale of the workspace.
    Workspace,
    /// Sales containing this product (on that product's lines).
    Product(String),
    /// Sales containing this vendor's products (on their lines).
    Vendor(String),
    /// Sales the affiliate referred (the whole sale).
    Affiliate(String),
}

impl CommissionScope {
    pub fn kind(&self) -> &'static str {
        match self {
            CommissionScope::Workspace => "workspace",
            CommissionScope::Product(_) => "product",
            CommissionScope::Vendor(_) => "vendor",
            CommissionScope::Affiliate(_) => "affiliate",
        }
    }

    pub fn reference(&self) -> &str {
        match self {
            CommissionScope::Workspace => "",
            CommissionScope::Product(r) | CommissionScope::Vendor(r) | CommissionScope::Affiliate(r) => r,
        }
    }

    pub fn parse(kind: &str, reference: &str) -> Result<CommissionScope, Error> {
        let r = reference.trim();
        let needs = || {
            if r.is_empty() || r.chars().count() > 200 || r.chars().any(char::is_control) {
                Err(Error::invalid("commerce.commission_rule_invalid")
                    .with_param("field", "scope_ref")
                    .with_violation("scope_ref", "invalid"))
            } else {
                Ok(r.to_owned())
            }
        };
        match kind {
            "workspace" => Ok(CommissionScope::Workspace),
            "product" => Ok(CommissionScope::Product(needs()?)),
            "vendor" => Ok(CommissionScope::Vendor(needs()?)),
            "affiliate" => Ok(CommissionScope::Affiliate(needs()?)),
            _ => Err(Error::invalid("commerce.commission_rule_invalid")
                .with_param("field", "scope")
                .with_violation("scope", "invalid")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommissionKind {
    /// `value` percent of the base.
    Percentage,
    /// `value` per qualifying order, in the rule's currency.
    Fixed,
}

impl CommissionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CommissionKind::Percentage => "percentage",
            CommissionKind::Fixed => "fixed",
        }
    }

    pub fn parse(s: &str) -> Result<CommissionKind, Error> {
        match s {
            "percentage" => Ok(CommissionKind::Percentage),
            "fixed" => Ok(CommissionKind::Fixed),
            _ => Err(Error::invalid("commerce.commission_rule_invalid")
                .with_param("field", "kind")
                .with_violation("kind", "invalid")),
        }
    }
}

/// From the `from_orders`-th qualifying order of a period on, the rule pays `value` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub from_orders: u32,
    #[serde(with = "rust_decimal::serde::str")]
    pub value: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommissionRule {
    pub id: uuid::Uuid,
    pub scope: CommissionScope,
    pub beneficiary: String,
    pub kind: CommissionKind,
    pub value: Decimal,
    pub tiers: Vec<Tier>,
    /// Most the rule pays one beneficiary in a period.
    pub cap: Option<Decimal>,
    /// The reporting currency: bases are reporting amounts, fixed values and caps are in it.
    pub currency: Currency,
}

impl CommissionRule {
    /// Checks a rule a client sent.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |field: &str| {
            Err(Error::invalid("commerce.commission_rule_invalid")
                .with_param("field", field)
                .with_violation(field, "invalid"))
        };
        let b = self.beneficiary.trim();
        if b.is_empty() || b.chars().count() > 200 || b.chars().any(char::is_control) {
            return bad("beneficiary");
        }
        let ok_value = |v: Decimal| {
            !v.is_sign_negative()
                && v <= max_value()
                && match self.kind {
                    CommissionKind::Percentage => v <= Decimal::ONE_HUNDRED && v.scale() <= 4,
                    CommissionKind::Fixed => v.scale() <= u32::from(self.currency.minor_digits()),
                }
        };
        if !ok_value(self.value) {
            return bad("value");
        }
        if self.tiers.len() > 20 {
            return bad("tiers");
        }
        let mut last = 1;
        for t in &self.tiers {
            // A month of more than a million orders to one beneficiary is not a threshold anyone means.
            if t.from_orders <= last || t.from_orders > 1_000_000 || !ok_value(t.value) {
                return bad("tiers");
            }
            last = t.from_orders;
        }
        if let Some(c) = self.cap
            && (c.is_sign_negative() || c > max_value() || c.scale() > u32::from(self.currency.minor_digits()))
        {
            return bad("cap");
        }
        Ok(())
    }

    /// The value for the `n`-th qualifying order of a period (1-based).
    pub fn value_for(&self, n: u32) -> Decimal {
        self.tiers.iter().filter(|t| t.from_orders <= n).map(|t| t.value).next_back().unwrap_or(self.value)
    }

    /// The base of a sale for this rule, `None` when the rule does not apply to it.
    pub fn base(&self, sale: &SaleForCommission) -> Option<Decimal> {
        let lines = |f: &dyn Fn(&CommissionLine) -> bool| {
            let matching: Vec<_> = sale.lines.iter().filter(|l| f(l)).collect();
            (!matching.is_empty()).then(|| matching.iter().map(|l| l.revenue).sum())
        };
        match &self.scope {
            CommissionScope::Workspace => Some(sale.revenue),
            CommissionScope::Affiliate(a) => (sale.affiliate.as_deref() == Some(a.as_str())).then_some(sale.revenue),
            CommissionScope::Product(p) => lines(&|l| &l.product == p),
            CommissionScope::Vendor(v) => lines(&|l| l.vendor.eq_ignore_ascii_case(v)),
        }
    }

    /// The commission on a sale with base `base`, being the period's `n`-th qualifying order,
    /// with `earned` already paid to the beneficiary in the period.
    pub fn amount(&self, base: Decimal, n: u32, earned: Decimal) -> Decimal {
        let v = self.value_for(n);
        let raw = match self.kind {
            CommissionKind::Percentage => round(base * v / Decimal::ONE_HUNDRED, self.currency),
            CommissionKind::Fixed => v,
        };
        match self.cap {
            Some(cap) => raw.min((cap - earned).max(Decimal::ZERO)),
            None => raw,
        }
    }
}

/// A sale as commissions see it: reporting-currency amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleForCommission {
    pub revenue: Decimal,
    pub lines: Vec<CommissionLine>,
    pub affiliate: Option<String>,
    pub paid_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommissionLine {
    pub product: String,
    pub vendor: String,
    pub revenue: Decimal,
}

/// The statement period (a calendar month) of a time: its first day.
pub fn period_of(at: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1).unwrap_or_default()
}

/// The end (exclusive) of the period starting on `start`.
pub fn period_end(start: NaiveDate) -> NaiveDate {
    start.checked_add_months(chrono::Months::new(1)).unwrap_or(start)
}

/// A rule's standing in a period before a new sale: qualifying orders counted and amount earned
/// (reversed commissions excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub orders: u32,
    pub earned: Decimal,
}

/// The commission `rule` earns on `sale`, given the rule's standing in the sale's period;
/// `None` when the rule does not apply. Zero amounts are commissions too (a capped rule): they
/// count the order toward the volume tiers.
pub fn earn(rule: &CommissionRule, sale: &SaleForCommission, standing: Standing) -> Option<Decimal> {
    let base = rule.base(sale)?;
    Some(rule.amount(base, standing.orders + 1, standing.earned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn rule(kind: CommissionKind, value: &str, tiers: &[(u32, &str)], cap: Option<&str>) -> CommissionRule {
        CommissionRule {
            id: uuid::Uuid::nil(),
            scope: CommissionScope::Workspace,
            beneficiary: "ana".into(),
            kind,
            value: d(value),
            tiers: tiers.iter().map(|(n, v)| Tier { from_orders: *n, value: d(v) }).collect(),
            cap: cap.map(d),
            currency: Currency::USD,
        }
    }

    fn sale(revenue: &str) -> SaleForCommission {
        SaleForCommission {
            revenue: d(revenue),
            lines: vec![
                CommissionLine { product: "p1".into(), vendor: "Acme".into(), revenue: d("30.00") },
                CommissionLine { product: "p2".into(), vendor: "Other".into(), revenue: d(revenue) - d("30.00") },
            ],
            affiliate: Some("aff-1".into()),
            paid_at: Utc::now(),
        }
    }

    #[test]
    fn tiers_by_volume_and_a_cap() {
        let r = rule(CommissionKind::Percentage, "5", &[(3, "7"), (10, "10")], Some("20.00"));
        assert_eq!(r.value_for(1), d("5"));
        assert_eq!(r.value_for(3), d("7"));
        assert_eq!(r.value_for(12), d("10"));
        // 5 % of 99.99 = 4.9995 → 5.00
        assert_eq!(earn(&r, &sale("99.99"), Standing { orders: 0, earned: d("0") }), Some(d("5.00")));
        // The third order: 7 % of 99.99 = 6.9993 → 7.00
        assert_eq!(earn(&r, &sale("99.99"), Standing { orders: 2, earned: d("10.00") }), Some(d("7.00")));
        // Capped: 18.00 earned, 2.00 left.
        assert_eq!(earn(&r, &sale("99.99"), Standing { orders: 4, earned: d("18.00") }), Some(d("2.00")));
        assert_eq!(earn(&r, &sale("99.99"), Standing { orders: 5, earned: d("20.00") }), Some(d("0")));
    }

    #[test]
    fn scopes_choose_the_base() {
        let mut r = rule(CommissionKind::Percentage, "10", &[], None);
        r.scope = CommissionScope::Product("p1".into());
        assert_eq!(r.base(&sale("80.00")), Some(d("30.00")));
        r.scope = CommissionScope::Vendor("acme".into());
        assert_eq!(r.base(&sale("80.00")), Some(d("30.00")));
        r.scope = CommissionScope::Vendor("nobody".into());
        assert_eq!(r.base(&sale("80.00")), None);
        r.scope = CommissionScope::Affiliate("aff-1".into());
        assert_eq!(r.base(&sale("80.00")), Some(d("80.00")));
        r.scope = CommissionScope::Affiliate("aff-2".into());
        assert_eq!(earn(&r, &sale("80.00"), Standing::default()), None);
        let fixed = rule(CommissionKind::Fixed, "1.50", &[], None);
        assert_eq!(earn(&fixed, &sale("80.00"), Standing::default()), Some(d("1.50")));
    }

    #[test]
    fn rules_refuse_nonsense() {
        assert!(rule(CommissionKind::Percentage, "5", &[(3, "7")], Some("20")).check().is_ok());
        assert!(rule(CommissionKind::Percentage, "101", &[], None).check().is_err());
        assert!(rule(CommissionKind::Percentage, "5", &[(3, "7"), (2, "9")], None).check().is_err());
        assert!(rule(CommissionKind::Percentage, "5", &[(1, "7")], None).check().is_err());
        assert!(rule(CommissionKind::Percentage, "5", &[(1_000_000, "7")], None).check().is_ok());
        assert!(rule(CommissionKind::Percentage, "5", &[(1_000_001, "7")], None).check().is_err());
        assert!(rule(CommissionKind::Fixed, "1.001", &[], None).check().is_err());
        assert!(rule(CommissionKind::Fixed, "1", &[], Some("-1")).check().is_err());
        let mut r = rule(CommissionKind::Fixed, "1", &[], None);
        r.beneficiary = " ".into();
        assert_eq!(r.check().unwrap_err().code(), "commerce.commission_rule_invalid");
        assert!(CommissionScope::parse("vendor", "").is_err());
        assert!(CommissionKind::parse("bribe").is_err());
    }

    #[test]
    fn periods_are_calendar_months() {
        let at = "2026-11-30T23:59:59Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(period_of(at), NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        assert_eq!(period_end(period_of(at)), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
    }
}
