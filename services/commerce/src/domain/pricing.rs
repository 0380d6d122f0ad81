//! Pricing rules: a selling price from a supplier cost (already converted to the store's
//! currency), with markup, compare-at price and charm rounding; the rule that applies to a
//! product (its own, else its category's, else the workspace default); margins; and how a
//! monitored cost change moves the price.

use nexus_kernel::{Currency, Error};
use rust_decimal::Decimal;

use super::money::{Amount, max_value};

/// How a computed price is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// To the currency's minor unit only.
    None,
    /// Up to the next `…​.99`.
    Cents99,
    /// Up to the next `…​.95`.
    Cents95,
}

impl Rounding {
    pub fn as_str(self) -> &'static str {
        match self {
            Rounding::None => "none",
            Rounding::Cents99 => "cents99",
            Rounding::Cents95 => "cents95",
        }
    }

    pub fn parse(s: &str) -> Result<Rounding, Error> {
        match s {
            "" | "none" => Ok(Rounding::None),
            "cents99" | ".99" => Ok(Rounding::Cents99),
            "cents95" | ".95" => Ok(Rounding::Cents95),
            _ => Err(Error::invalid("commerce.rounding_invalid").with_violation("rounding", "invalid")),
        }
    }

    /// `value` rounded up to the ending (never down: rounding must not eat margin). A currency
    /// without cents (JPY) rounds to the unit.
    pub fn apply(self, value: Decimal, currency: Currency) -> Decimal {
        let ending = match self {
            Rounding::None => return super::money::round(value, currency),
            Rounding::Cents99 => Decimal::new(99, 2),
            Rounding::Cents95 => Decimal::new(95, 2),
        };
        if currency.minor_digits() == 0 {
            return value.ceil();
        }
        let candidate = value.floor() + ending;
        if candidate >= value { candidate } else { candidate + Decimal::ONE }
    }
}

/// Where a rule applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Default,
    Category(String),
    Product(String),
}

impl Scope {
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Default => "default",
            Scope::Category(_) => "category",
            Scope::Product(_) => "product",
        }
    }

    pub fn reference(&self) -> &str {
        match self {
            Scope::Default => "",
            Scope::Category(c) | Scope::Product(c) => c,
        }
    }

    pub fn parse(kind: &str, reference: &str) -> Result<Scope, Error> {
        let reference = reference.trim();
        let needs_ref = || {
            if reference.is_empty() || reference.chars().count() > 200 || reference.chars().any(char::is_control) {
                Err(Error::invalid("commerce.rule_scope_invalid").with_violation("scope_ref", "invalid"))
            } else {
                Ok(reference.to_owned())
            }
        };
        match kind {
            "default" => Ok(Scope::Default),
            "category" => Ok(Scope::Category(needs_ref()?)),
            "product" => Ok(Scope::Product(needs_ref()?)),
            _ => Err(Error::invalid("commerce.rule_scope_invalid").with_violation("scope", "invalid")),
        }
    }
}

/// A pricing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingRule {
    pub scope: Scope,
    /// Percent added to the cost (40 → cost × 1.40).
    pub markup_percent: Decimal,
    /// Added after the percentage, in the store currency.
    pub markup_fixed: Decimal,
    /// The compare-at ("was") price, percent above the price; `None`: no compare-at price.
    pub compare_at_percent: Option<Decimal>,
    pub rounding: Rounding,
    pub currency: Currency,
    /// A margin below this percent raises an alert.
    pub min_margin_percent: Decimal,
    /// How much (percent of the current price) monitoring may raise a price by itself.
    pub max_auto_increase_percent: Decimal,
}

impl PricingRule {
    /// Checks the numbers a client sent.
    pub fn check(&self) -> Result<(), Error> {
        let pct = |v: Decimal, field: &str| {
            if v.is_sign_negative() || v > Decimal::new(10_000, 0) || v.scale() > 4 {
                Err(Error::invalid("commerce.rule_value_invalid")
                    .with_param("field", field)
                    .with_violation(field, "invalid"))
            } else {
                Ok(())
            }
        };
        pct(self.markup_percent, "markup_percent")?;
        pct(self.min_margin_percent, "min_margin_percent")?;
        pct(self.max_auto_increase_percent, "max_auto_increase_percent")?;
        if let Some(c) = self.compare_at_percent {
            pct(c, "compare_at_percent")?;
        }
        if self.min_margin_percent >= Decimal::ONE_HUNDRED {
            return Err(Error::invalid("commerce.rule_value_invalid")
                .with_param("field", "min_margin_percent")
                .with_violation("min_margin_percent", "invalid"));
        }
        if self.markup_fixed.is_sign_negative()
            || self.markup_fixed > max_value()
            || self.markup_fixed.scale() > u32::from(self.currency.minor_digits())
        {
            return Err(Error::invalid("commerce.rule_value_invalid")
                .with_param("field", "markup_fixed")
                .with_violation("markup_fixed", "invalid"));
        }
        Ok(())
    }

    /// The price and compare-at price for a cost in the rule's currency.
    pub fn price(&self, cost: Decimal) -> Priced {
        let raw = cost * (Decimal::ONE_HUNDRED + self.markup_percent) / Decimal::ONE_HUNDRED + self.markup_fixed;
        let price = self.rounding.apply(raw, self.currency);
        let compare_at = self
            .compare_at_percent
            .map(|p| self.rounding.apply(price * (Decimal::ONE_HUNDRED + p) / Decimal::ONE_HUNDRED, self.currency));
        Priced { price: Amount { value: price, currency: self.currency }, compare_at }
    }
}

/// A computed price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priced {
    pub price: Amount,
    pub compare_at: Option<Decimal>,
}

/// The rule for a product: its own, else its category's, else the default; `None` when the
/// workspace has none.
pub fn rule_for<'a>(rules: &'a [PricingRule], product: &str, category: &str) -> Option<&'a PricingRule> {
    rules
        .iter()
        .find(|r| matches!(&r.scope, Scope::Product(p) if p == product))
        .or_else(|| {
            rules.iter().find(
                |r| matches!(&r.scope, Scope::Category(c) if !category.is_empty() && c.eq_ignore_ascii_case(category)),
            )
        })
        .or_else(|| rules.iter().find(|r| r.scope == Scope::Default))
}

/// Margin in percent of the price, to two decimals (`None` for a zero price).
pub fn margin_percent(price: Decimal, cost: Decimal) -> Option<Decimal> {
    if price.is_zero() {
        return None;
    }
    Some(((price - cost) * Decimal::ONE_HUNDRED / price).round_dp(2))
}

/// What monitoring does after a variant's cost changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repricing {
    /// The price to set (the current one when nothing moves).
    pub new_price: Decimal,
    pub compare_at: Option<Decimal>,
    /// The margin at the current price and the new cost fell below the rule's threshold.
    pub margin_alert: bool,
    /// The rule's price was above the automatic limit: the price stopped at the limit.
    pub capped: bool,
}

/// After a cost change: the rule's price for the new cost, but never more than
/// `max_auto_increase_percent` above the current price in one step (a bigger rise waits for a
/// person); prices never fall by themselves. The alert is raised when the margin at the current
/// price and the new cost is below the threshold.
pub fn reprice(rule: &PricingRule, current_price: Decimal, new_cost: Decimal) -> Repricing {
    let margin_alert = margin_percent(current_price, new_cost).is_none_or(|m| m < rule.min_margin_percent);
    let wanted = rule.price(new_cost);
    if wanted.price.value <= current_price {
        return Repricing { new_price: current_price, compare_at: None, margin_alert, capped: false };
    }
    let limit = super::money::round(
        current_price * (Decimal::ONE_HUNDRED + rule.max_auto_increase_percent) / Decimal::ONE_HUNDRED,
        rule.currency,
    );
    if wanted.price.value <= limit {
        Repricing { new_price: wanted.price.value, compare_at: wanted.compare_at, margin_alert, capped: false }
    } else {
        Repricing { new_price: limit, compare_at: None, margin_alert, capped: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn rule(scope: Scope, markup: &str, fixed: &str, rounding: Rounding) -> PricingRule {
        PricingRule {
            scope,
            markup_percent: d(markup),
            markup_fixed: d(fixed),
            compare_at_percent: Some(d("30")),
            rounding,
            currency: Currency::USD,
            min_margin_percent: d("25"),
            max_auto_increase_percent: d("10"),
        }
    }

    #[test]
    fn charm_rounding_goes_up_to_the_ending() {
        let usd = Currency::USD;
        assert_eq!(Rounding::Cents99.apply(d("12.30"), usd), d("12.99"));
        assert_eq!(Rounding::Cents99.apply(d("12.99"), usd), d("12.99"));
        assert_eq!(Rounding::Cents99.apply(d("12.995"), usd), d("13.99"));
        assert_eq!(Rounding::Cents95.apply(d("12.96"), usd), d("13.95"));
        assert_eq!(Rounding::Cents95.apply(d("12"), usd), d("12.95"));
        assert_eq!(Rounding::None.apply(d("12.345"), usd), d("12.35"));
        assert_eq!(Rounding::Cents99.apply(d("1200.2"), "JPY".parse().unwrap()), d("1201"));
    }

    #[test]
    fn markup_fixed_and_compare_at() {
        // 10.00 × 1.5 + 1.00 = 16.00 → 16.99; compare-at 16.99 × 1.3 = 22.087 → 22.99.
        let p = rule(Scope::Default, "50", "1.00", Rounding::Cents99).price(d("10.00"));
        assert_eq!(p.price.value, d("16.99"));
        assert_eq!(p.compare_at, Some(d("22.99")));
        // 7.3333 × 1.35 = 9.899955 → 9.90 without charm rounding; compare-at 12.87.
        let p = rule(Scope::Default, "35", "0", Rounding::None).price(d("7.3333"));
        assert_eq!(p.price.value, d("9.90"));
        assert_eq!(p.compare_at, Some(d("12.87")));
    }

    #[test]
    fn the_most_specific_rule_applies() {
        let rules = vec![
            rule(Scope::Default, "50", "0", Rounding::None),
            rule(Scope::Category("Shoes".into()), "80", "0", Rounding::None),
            rule(Scope::Product("prod_1".into()), "20", "0", Rounding::None),
        ];
        assert_eq!(rule_for(&rules, "prod_1", "shoes").unwrap().markup_percent, d("20"));
        assert_eq!(rule_for(&rules, "prod_2", "shoes").unwrap().markup_percent, d("80"));
        assert_eq!(rule_for(&rules, "prod_2", "hats").unwrap().markup_percent, d("50"));
        assert_eq!(rule_for(&rules, "prod_2", "").unwrap().markup_percent, d("50"));
        assert!(rule_for(&rules[1..2], "prod_2", "hats").is_none());
    }

    #[test]
    fn a_cost_rise_alerts_and_moves_the_price_within_the_limit() {
        let r = rule(Scope::Default, "60", "0", Rounding::Cents99);
        // At 19.99 with cost 10: margin 49.97 %. The cost rises to 15.50: margin 22.46 % < 25 %.
        assert_eq!(margin_percent(d("19.99"), d("15.50")), Some(d("22.46")));
        // The rule wants 15.50 × 1.6 = 24.80 → 24.99, above 19.99 + 10 % = 21.99: capped.
        let out = reprice(&r, d("19.99"), d("15.50"));
        assert_eq!(out, Repricing { new_price: d("21.99"), compare_at: None, margin_alert: true, capped: true });
        // A smaller rise: 12.40 × 1.6 = 19.84 → 19.99, the current price; the margin stays above 25 %.
        let out = reprice(&r, d("19.99"), d("12.40"));
        assert_eq!(out.new_price, d("19.99"));
        assert!(!out.margin_alert);
        // 13.00 × 1.6 = 20.80 → 20.99, within the limit: the rule's price with its compare-at.
        let out = reprice(&r, d("19.99"), d("13.00"));
        assert_eq!(out.new_price, d("20.99"));
        assert_eq!(out.compare_at, Some(d("27.99")));
        // A cost fall never lowers the price by itself.
        assert_eq!(reprice(&r, d("19.99"), d("5")).new_price, d("19.99"));
    }

    #[test]
    fn rules_refuse_nonsense_numbers() {
        let mut r = rule(Scope::Default, "50", "0", Rounding::None);
        assert!(r.check().is_ok());
        r.markup_percent = d("-1");
        assert_eq!(r.check().unwrap_err().code(), "commerce.rule_value_invalid");
        r.markup_percent = d("10");
        r.markup_fixed = d("0.001");
        assert!(r.check().is_err());
        r.markup_fixed = d("0");
        r.min_margin_percent = d("100");
        assert!(r.check().is_err());
        assert!(Scope::parse("category", " ").is_err());
        assert!(Scope::parse("galaxy", "x").is_err());
        assert!(Scope::parse("", "").is_err(), "the scope is named, never implied");
        assert_eq!(Scope::parse("product", "p1").unwrap(), Scope::Product("p1".into()));
        assert!(Rounding::parse("cents42").is_err());
    }
}
