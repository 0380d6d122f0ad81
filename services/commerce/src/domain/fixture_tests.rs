//! The fixture: 50 orders in three currencies (USD, EUR, BRL) over seven days (two
//! without published rates), supplier costs in USD and EUR, five refunds, three commission
//! rules (volume tiers, a cap, a fixed amount, a vendor's lines). The expected figures below were
//! computed by hand-written Python (`decimal`, half-up rounding) from the same definitions, not
//! by this code.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use nexus_kernel::Currency;
use rust_decimal::Decimal;

use super::commissions::{
    CommissionKind, CommissionLine, CommissionRule, CommissionScope, SaleForCommission, Standing, Tier, earn,
};
use super::money::{Amount, round};
use super::rates::{RateTable, parse_rates_csv};
use super::sales::{Charged, Fees, LineCost, SaleFigures, compute};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn rates() -> RateTable {
    let text = include_str!("../../tests/fixtures/fixture_rates.csv");
    RateTable::new(parse_rates_csv(text).unwrap(), 7)
}

fn rules() -> Vec<CommissionRule> {
    let rule = |beneficiary: &str, scope, kind, value: &str, tiers: &[(u32, &str)], cap: Option<&str>| CommissionRule {
        id: uuid::Uuid::new_v4(),
        scope,
        beneficiary: beneficiary.into(),
        kind,
        value: d(value),
        tiers: tiers.iter().map(|(n, v)| Tier { from_orders: *n, value: d(v) }).collect(),
        cap: cap.map(d),
        currency: Currency::USD,
    };
    vec![
        rule(
            "partner",
            CommissionScope::Workspace,
            CommissionKind::Percentage,
            "5",
            &[(20, "6"), (40, "8")],
            Some("60.00"),
        ),
        rule("aff-1", CommissionScope::Affiliate("aff-1".into()), CommissionKind::Fixed, "1.25", &[(10, "2.00")], None),
        rule("beta-vendor", CommissionScope::Vendor("Beta".into()), CommissionKind::Percentage, "10", &[], None),
    ]
}

struct Order {
    charged: Charged,
    lines: Vec<(LineCost, &'static str, &'static str, Decimal)>,
    supplier_shipping: Amount,
    affiliate: Option<String>,
}

fn order(i: u32) -> Order {
    let (currency, k) = match (i - 1) % 3 {
        0 => (Currency::USD, Decimal::ONE),
        1 => (Currency::EUR, Decimal::ONE),
        _ => ("BRL".parse().unwrap(), Decimal::from(5)),
    };
    let n = Decimal::from(i);
    let day = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap() + Duration::days(i64::from((i - 1) % 7));
    let subtotal = round((d("10") + n * d("1.37")) * k, currency);
    let shipping = if i.is_multiple_of(4) { round(d("4.99") * k, currency) } else { Decimal::ZERO };
    let taxes = if i.is_multiple_of(5) { round(subtotal * d("0.1"), currency) } else { Decimal::ZERO };
    let p1_cost = LineCost { unit_cost: Amount::new(d("3") + n * d("0.41"), Currency::USD), quantity: 1 + i % 3 };
    let mut lines = Vec::new();
    if i.is_multiple_of(2) {
        let p2_price = round(d("9") * k, currency);
        lines.push((p1_cost, "p1", "Acme", subtotal - p2_price));
        lines.push((
            LineCost { unit_cost: Amount::new(d("2.15"), Currency::EUR), quantity: 1 },
            "p2",
            "Beta",
            p2_price,
        ));
    } else {
        lines.push((p1_cost, "p1", "Acme", subtotal));
    }
    Order {
        charged: Charged { currency, subtotal, shipping, taxes, paid_on: day },
        lines,
        supplier_shipping: Amount::new(d("2.50") + Decimal::from(i % 3) * d("0.75"), Currency::USD),
        affiliate: i.is_multiple_of(3).then(|| "aff-1".to_owned()),
    }
}

#[test]
fn fifty_orders_in_three_currencies_match_the_hand_computed_figures() {
    let rates = rates();
    let rules = rules();
    let fees = Fees { platform_percent: d("2"), payment_percent: d("2.9"), payment_fixed: d("0.30") };
    // Order 7 is refunded after order 9 was paid, and so on.
    let refunds: HashMap<u32, u32> = [(9, 7), (19, 17), (29, 27), (39, 37), (49, 47)].into_iter().collect();
    let mut standing: HashMap<&str, Standing> = HashMap::new();
    let mut sales: Vec<(u32, SaleFigures, bool)> = Vec::new();
    let mut commissions: HashMap<u32, Vec<(&str, Decimal)>> = HashMap::new();
    let (mut earned, mut reversed): (HashMap<&str, Decimal>, HashMap<&str, Decimal>) = Default::default();

    for i in 1..=50 {
        let o = order(i);
        let costs: Vec<LineCost> = o.lines.iter().map(|l| l.0).collect();
        let s = compute(&o.charged, &costs, o.supplier_shipping, &fees, &rates, Currency::USD).unwrap();
        let paid_at = Utc.from_utc_datetime(&o.charged.paid_on.and_hms_opt(10, 0, 0).unwrap());
        let for_commission = SaleForCommission {
            revenue: s.reporting_revenue,
            lines: o
                .lines
                .iter()
                .map(|(_, product, vendor, price)| CommissionLine {
                    product: (*product).into(),
                    vendor: (*vendor).into(),
                    revenue: s.reporting.apply(Amount { value: *price, currency: o.charged.currency }).unwrap().value,
                })
                .collect(),
            affiliate: o.affiliate.clone(),
            paid_at,
        };
        for rule in &rules {
            let st = standing.entry(rule.beneficiary.as_str()).or_default();
            if let Some(amount) = earn(rule, &for_commission, *st) {
                st.orders += 1;
                st.earned += amount;
                *earned.entry(rule.beneficiary.as_str()).or_default() += amount;
                commissions.entry(i).or_default().push((rule.beneficiary.as_str(), amount));
            }
        }
        sales.push((i, s, false));
        if let Some(&refunded) = refunds.get(&i) {
            sales.iter_mut().find(|(n, ..)| *n == refunded).unwrap().2 = true;
            for (b, amount) in commissions.get(&refunded).cloned().unwrap_or_default() {
                let st = standing.get_mut(b).unwrap();
                st.orders -= 1;
                st.earned -= amount;
                *reversed.entry(b).or_default() += amount;
            }
        }
    }

    let sum = |c: &str, kept_only: bool, f: fn(&SaleFigures) -> Decimal| -> Decimal {
        sales.iter().filter(|(_, s, r)| s.currency.code() == c && !(kept_only && *r)).map(|(_, s, _)| f(s)).sum()
    };
    // currency: revenue, product cost, shipping, platform fee, payment fee, taxes, profit (all
    // 50 sales), then revenue and profit of the 45 not refunded.
    for (c, all, kept) in [
        ("USD", ["772.21", "469.12", "55.25", "15.45", "27.88", "13.28", "204.51"], ["691.93", "183.34"]),
        ("EUR", ["795.50", "662.59", "62.76", "15.91", "28.73", "19.08", "25.51"], ["687.82", "20.44"]),
        ("BRL", ["3694.60", "1256.87", "214.92", "73.90", "114.17", "76.66", "2034.74"], ["3459.65", "1900.56"]),
    ] {
        let got = [
            sum(c, false, |s| s.revenue),
            sum(c, false, |s| s.product_cost),
            sum(c, false, |s| s.shipping_cost),
            sum(c, false, |s| s.platform_fee),
            sum(c, false, |s| s.payment_fee),
            sum(c, false, |s| s.taxes),
            sum(c, false, |s| s.profit),
        ];
        assert_eq!(got, all.map(d), "{c}");
        assert_eq!([sum(c, true, |s| s.revenue), sum(c, true, |s| s.profit)], kept.map(d), "{c} kept");
    }
    let reporting = |kept_only: bool, f: fn(&SaleFigures) -> Decimal| -> Decimal {
        sales.iter().filter(|(_, _, r)| !(kept_only && *r)).map(|(_, s, _)| f(s)).sum()
    };
    assert_eq!(reporting(false, |s| s.reporting_revenue), d("2321.39"));
    assert_eq!(reporting(false, |s| s.reporting_profit), d("610.82"));
    assert_eq!(reporting(true, |s| s.reporting_revenue), d("2080.75"));
    assert_eq!(reporting(true, |s| s.reporting_profit), d("559.16"));

    // One order in full, and the day rule: order 41 is on 2026-11-08 (no rates): 2026-11-06's.
    let (_, s41, _) = &sales[40];
    assert_eq!(s41.reporting.day, NaiveDate::from_ymd_opt(2026, 11, 6).unwrap());
    assert_eq!(
        [s41.revenue, s41.product_cost, s41.shipping_cost, s41.platform_fee, s41.payment_fee, s41.profit],
        ["66.17", "54.82", "3.69", "1.32", "2.22", "4.12"].map(d)
    );
    assert_eq!([s41.reporting_revenue, s41.reporting_profit], ["71.73", "4.47"].map(d));

    for (b, e, r) in [("partner", "65.41", "5.41"), ("aff-1", "24.50", "1.25"), ("beta-vendor", "22.71", "0")] {
        assert_eq!(earned[b], d(e), "{b} earned");
        assert_eq!(reversed.get(b).copied().unwrap_or_default(), d(r), "{b} reversed");
    }
    // The partner's cap (60.00) is reached: later orders earn nothing, yet count as volume.
    assert_eq!(earned["partner"] - reversed["partner"], d("60.00"));
    assert_eq!(commissions[&50], vec![("partner", d("0.00")), ("beta-vendor", d("0.97"))]);
}
