//! A sale: what a paid order earned. Revenue, product cost, shipping, platform and payment fees,
//! taxes and profit in the order's currency (supplier costs converted with the rate of the
//! order's day), and revenue and profit again in the workspace's reporting currency.

use chrono::NaiveDate;
use nexus_kernel::{Currency, Error};
use rust_decimal::Decimal;

use super::money::{Amount, round};
use super::rates::{Conversion, RateTable};

/// What the buyer paid, in the order's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charged {
    pub currency: Currency,
    /// Goods, after discounts.
    pub subtotal: Decimal,
    /// Shipping charged to the buyer.
    pub shipping: Decimal,
    /// Taxes collected (passed through, not revenue).
    pub taxes: Decimal,
    pub paid_on: NaiveDate,
}

/// One line's supplier cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCost {
    /// Unit cost in the supplier's currency.
    pub unit_cost: Amount,
    pub quantity: u32,
}

/// Fees the store pays on a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    /// Percent of revenue (the platform's cut).
    pub platform_percent: Decimal,
    /// Percent of what the buyer paid (revenue and taxes), plus a fixed amount in the order's
    /// currency (card processing).
    pub payment_percent: Decimal,
    pub payment_fixed: Decimal,
}

/// The figures of a sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleFigures {
    pub currency: Currency,
    pub revenue: Decimal,
    pub product_cost: Decimal,
    pub shipping_cost: Decimal,
    pub platform_fee: Decimal,
    pub payment_fee: Decimal,
    pub taxes: Decimal,
    pub profit: Decimal,
    /// Order currency → reporting currency on the order's day.
    pub reporting: Conversion,
    pub reporting_revenue: Decimal,
    pub reporting_profit: Decimal,
}

/// The sale of a paid order. Each figure is rounded to the currency's minor unit as it is made,
/// and profit is exactly revenue minus the rounded costs and fees.
pub fn compute(
    charged: &Charged,
    lines: &[LineCost],
    supplier_shipping: Amount,
    fees: &Fees,
    rates: &RateTable,
    reporting: Currency,
) -> Result<SaleFigures, Error> {
    let cur = charged.currency;
    let day = charged.paid_on;
    let to_order =
        |a: Amount| -> Result<Decimal, Error> { Ok(rates.conversion(a.currency, cur, day)?.apply(a)?.value) };
    let revenue = round(charged.subtotal + charged.shipping, cur);
    let taxes = round(charged.taxes, cur);
    let mut product_cost = Decimal::ZERO;
    for l in lines {
        let line = Amount { value: l.unit_cost.value * Decimal::from(l.quantity), currency: l.unit_cost.currency };
        product_cost += to_order(line)?;
    }
    let shipping_cost = to_order(supplier_shipping)?;
    let platform_fee = round(revenue * fees.platform_percent / Decimal::ONE_HUNDRED, cur);
    let payment_fee = round((revenue + taxes) * fees.payment_percent / Decimal::ONE_HUNDRED + fees.payment_fixed, cur);
    let profit = revenue - product_cost - shipping_cost - platform_fee - payment_fee;
    let conversion = rates.conversion(cur, reporting, day)?;
    Ok(SaleFigures {
        currency: cur,
        revenue,
        product_cost,
        shipping_cost,
        platform_fee,
        payment_fee,
        taxes,
        profit,
        reporting: conversion,
        reporting_revenue: conversion.apply(Amount { value: revenue, currency: cur })?.value,
        reporting_profit: conversion.apply(Amount { value: profit, currency: cur })?.value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rates::parse_rates_csv;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn a_sale_in_another_currency_than_its_costs() {
        let rates = RateTable::new(parse_rates_csv("2026-11-02,USD,1.0800\n2026-11-02,BRL,5.8000\n").unwrap(), 7);
        let brl: Currency = "BRL".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let charged =
            Charged { currency: brl, subtotal: d("199.90"), shipping: d("15.00"), taxes: d("10.00"), paid_on: day };
        let lines = [
            LineCost { unit_cost: Amount::new(d("7.25"), Currency::USD), quantity: 2 },
            LineCost { unit_cost: Amount::new(d("3.10"), Currency::USD), quantity: 1 },
        ];
        let fees = Fees { platform_percent: d("2"), payment_percent: d("2.9"), payment_fixed: d("0.30") };
        let s = compute(&charged, &lines, Amount::new(d("4.50"), Currency::USD), &fees, &rates, Currency::USD).unwrap();
        // USD→BRL 5.3703703704: 14.50 → 77.87; 3.10 → 16.65; 4.50 → 24.17.
        assert_eq!(s.revenue, d("214.90"));
        assert_eq!(s.product_cost, d("94.52"));
        assert_eq!(s.shipping_cost, d("24.17"));
        assert_eq!(s.platform_fee, d("4.30"));
        // (214.90 + 10.00) × 2.9 % + 0.30 = 6.8221 → 6.82
        assert_eq!(s.payment_fee, d("6.82"));
        assert_eq!(s.profit, d("85.09"));
        // BRL→USD 0.1862068966
        assert_eq!(s.reporting.rate, d("0.1862068966"));
        assert_eq!(s.reporting_revenue, d("40.02"));
        assert_eq!(s.reporting_profit, d("15.84"));
    }
}
