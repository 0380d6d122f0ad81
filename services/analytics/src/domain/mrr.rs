//! Monthly recurring revenue from a time-ordered history of subscription changes: MRR at each
//! month end, ARR, the movements between two month ends, ARPU and LTV. Money is integer minor
//! units; ratios are exact decimals.
//!
//! Definitions (per currency; a customer is one subscriber, e.g. a workspace):
//! - a customer's MRR at an instant is the monthly amount of its last change at or before it
//!   (0 after a cancel or while its status does not bill, see [`counts_for_mrr`]);
//! - MRR of a month is the sum at the month's end; ARR = 12 × MRR;
//! - movements compare each customer's MRR at the previous month end (`p`) with this one (`c`):
//!   new (`p = 0 < c`, never paid before), reactivation (`p = 0 < c`, paid at some earlier
//!   time), expansion (`0 < p < c`), contraction (`0 < c < p`), churned (`p > 0 = c`). A change
//!   undone inside one month moves nothing: only month ends are compared;
//! - net new = new + expansion + reactivation − contraction − churned = MRR − previous MRR;
//! - ARPU = MRR / paying customers; monthly churn rate = churned customers / paying customers
//!   at the previous month end; LTV = ARPU / churn rate, undefined (None) when the churn rate
//!   is 0 — a month without churn says nothing about lifetime.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use nexus_kernel::{Error, ErrorKind};
use rust_decimal::{Decimal, RoundingStrategy};

/// One subscription change: the customer's monthly amount from `at` on (0 when canceled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub customer: String,
    pub at: DateTime<Utc>,
    pub currency: String,
    pub monthly_minor: i64,
}

/// Whether a subscription in `status` bills its plan: active ones, and past-due ones (the
/// invoice is still owed and collection continues). Trials, paused, unpaid and canceled ones
/// bring nothing.
pub fn counts_for_mrr(status: &str) -> bool {
    matches!(status, "active" | "past_due")
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MrrMonth {
    /// First day of the month.
    pub month: NaiveDate,
    pub currency: String,
    pub mrr: i64,
    pub arr: i64,
    pub new: i64,
    pub expansion: i64,
    pub contraction: i64,
    pub churned: i64,
    pub reactivation: i64,
    pub net_new: i64,
    pub paying_customers: u32,
    pub churned_customers: u32,
    pub arpu: i64,
    pub churn_rate: Decimal,
    pub ltv: Option<i64>,
}

/// The first day of the month after `month`'s.
pub fn next_month(month: NaiveDate) -> NaiveDate {
    let (y, m) = if month.month() == 12 { (month.year() + 1, 1) } else { (month.year(), month.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(month)
}

/// The first day of `at`'s month.
pub fn month_of(at: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1).unwrap_or_else(|| at.date_naive())
}

/// The first instant of `month` (UTC).
pub fn start_of(month: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&month.and_hms_opt(0, 0, 0).unwrap_or_default())
}

fn round_minor(d: Decimal) -> i64 {
    i64::try_from(d.round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)).unwrap_or(i64::MAX)
}

/// Per month from `from` to `to` (first days, both included) and per currency that has had any
/// change: the figures defined in the module's documentation. Changes at the same instant apply
/// in the given order (the later one wins).
pub fn report<'a>(changes: &'a [Change], from: NaiveDate, to: NaiveDate) -> Vec<MrrMonth> {
    let currencies: HashSet<&str> = changes.iter().map(|c| c.currency.as_str()).collect();
    let mut currencies: Vec<&str> = currencies.into_iter().collect();
    currencies.sort_unstable();
    let mut out = Vec::new();
    for cur in currencies {
        // A customer who changes currency leaves one currency (0 there) and joins the other.
        let mut mine: Vec<(&'a str, DateTime<Utc>, i64)> = changes
            .iter()
            .map(|c| (c.customer.as_str(), c.at, if c.currency == cur { c.monthly_minor.max(0) } else { 0 }))
            .collect();
        // Stable: changes at the same instant keep their given order.
        mine.sort_by_key(|c| c.1);
        let mut state: HashMap<&'a str, i64> = HashMap::new();
        let mut next = 0;
        // Applies every change before `until`, remembering who had paid before it.
        let mut advance = |until: DateTime<Utc>, state: &mut HashMap<&'a str, i64>, paid: &mut HashSet<&'a str>| {
            while next < mine.len() && mine[next].1 < until {
                let (who, _, amount) = mine[next];
                state.insert(who, amount);
                next += 1;
                // The month's comparison uses the set as it was at the month's start (cloned).
                if amount > 0 {
                    paid.insert(who);
                }
            }
        };
        // State at the end of the month before `from`.
        let mut paid_before_month = HashSet::new();
        advance(start_of(from), &mut state, &mut paid_before_month);
        let mut month = from;
        while month <= to {
            let prev = state.clone();
            let paid_at_start = paid_before_month.clone();
            advance(start_of(next_month(month)), &mut state, &mut paid_before_month);
            let mut m = MrrMonth { month, currency: cur.to_owned(), ..MrrMonth::default() };
            let customers: HashSet<&str> = prev.keys().chain(state.keys()).copied().collect();
            let mut paying_at_start = 0u32;
            for who in customers {
                let p = prev.get(who).copied().unwrap_or(0);
                let c = state.get(who).copied().unwrap_or(0);
                if p > 0 {
                    paying_at_start += 1;
                }
                if c > 0 {
                    m.paying_customers += 1;
                    m.mrr += c;
                }
                match (p, c) {
                    (0, c) if c > 0 && paid_at_start.contains(who) => m.reactivation += c,
                    (0, c) if c > 0 => m.new += c,
                    (p, 0) if p > 0 => {
                        m.churned += p;
                        m.churned_customers += 1;
                    }
                    (p, c) if c > p => m.expansion += c - p,
                    (p, c) if c < p => m.contraction += p - c,
                    _ => {}
                }
            }
            m.arr = m.mrr * 12;
            m.net_new = m.new + m.expansion + m.reactivation - m.contraction - m.churned;
            if m.paying_customers > 0 {
                m.arpu = round_minor(Decimal::from(m.mrr) / Decimal::from(m.paying_customers));
            }
            if paying_at_start > 0 {
                m.churn_rate = Decimal::from(m.churned_customers) / Decimal::from(paying_at_start);
            }
            if !m.churn_rate.is_zero() && m.paying_customers > 0 {
                let arpu = Decimal::from(m.mrr) / Decimal::from(m.paying_customers);
                m.ltv = Some(round_minor(arpu / m.churn_rate));
            }
            m.churn_rate = m.churn_rate.round_dp(4).normalize();
            out.push(m);
            month = next_month(month);
        }
    }
    out.sort_by(|a, b| (a.month, &a.currency).cmp(&(b.month, &b.currency)));
    out
}

/// MRR of `currency` at each month end from the first change's month to `to`, as a series for
/// forecasting (month, MRR).
pub fn series(changes: &[Change], currency: &str, to: NaiveDate) -> Vec<(NaiveDate, i64)> {
    let Some(first) = changes.iter().filter(|c| c.currency == currency).map(|c| month_of(c.at)).min() else {
        return Vec::new();
    };
    if first > to {
        return Vec::new();
    }
    let months: BTreeMap<NaiveDate, i64> =
        report(changes, first, to).into_iter().filter(|m| m.currency == currency).map(|m| (m.month, m.mrr)).collect();
    months.into_iter().collect()
}

/// Most months one report covers.
pub const MAX_MONTHS: i32 = 36;

/// The report's months from "YYYY-MM" bounds (UTC); empty bounds mean the 12 months up to
/// `today`'s.
pub fn parse_months(from: &str, to: &str, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), Error> {
    let parse = |s: &str, field: &str, default: NaiveDate| -> Result<NaiveDate, Error> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(default);
        }
        NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
            .ok()
            .filter(|_| s.len() == 7)
            .ok_or_else(|| Error::invalid("analytics.invalid_month").with_param("field", field))
    };
    let this = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
    let to = parse(to, "to", this)?;
    let from = parse(from, "from", to - chrono::Months::new(11))?;
    if from > to {
        return Err(Error::invalid("analytics.invalid_month").with_param("field", "from"));
    }
    let span = (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32 + 1;
    if span > MAX_MONTHS {
        return Err(Error::new(ErrorKind::Unprocessable, "analytics.range_too_large"));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }
    fn ch(who: &str, t: DateTime<Utc>, amount: i64) -> Change {
        Change { customer: who.into(), at: t, currency: "USD".into(), monthly_minor: amount }
    }
    fn month(y: i32, m: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, 1).unwrap()
    }

    /// A scripted history, every figure computed by hand:
    /// Jan: A pro 9700, B premium 29700 -> MRR 39400, new 39400.
    /// Feb: A upgrades to premium (+20000), C starts pro 9700 -> MRR 69100.
    /// Mar: B downgrades to pro (-20000), C cancels (-9700) -> MRR 39400.
    /// Apr: C comes back on pro (reactivation 9700); D starts and cancels inside April (nothing).
    fn history() -> Vec<Change> {
        vec![
            ch("A", at(2026, 1, 3), 9700),
            ch("B", at(2026, 1, 20), 29700),
            ch("A", at(2026, 2, 10), 29700),
            ch("C", at(2026, 2, 14), 9700),
            ch("B", at(2026, 3, 1), 9700),
            ch("C", at(2026, 3, 31), 0),
            ch("C", at(2026, 4, 2), 9700),
            ch("D", at(2026, 4, 5), 9700),
            ch("D", at(2026, 4, 25), 0),
        ]
    }

    #[test]
    fn movements_of_a_scripted_history_match_the_hand_computed_figures() {
        let r = report(&history(), month(2026, 1), month(2026, 4));
        assert_eq!(r.len(), 4);
        let (jan, feb, mar, apr) = (&r[0], &r[1], &r[2], &r[3]);
        assert_eq!(
            (jan.mrr, jan.new, jan.net_new, jan.paying_customers, jan.arr),
            (39_400, 39_400, 39_400, 2, 472_800)
        );
        assert_eq!(jan.arpu, 19_700);
        assert_eq!(jan.ltv, None, "no churn: LTV undefined");
        assert_eq!((feb.mrr, feb.new, feb.expansion, feb.net_new), (69_100, 9_700, 20_000, 29_700));
        assert_eq!((feb.paying_customers, feb.arpu), (3, 23_033)); // 69100 / 3 = 23033.33
        assert_eq!((mar.mrr, mar.contraction, mar.churned, mar.net_new), (39_400, 20_000, 9_700, -29_700));
        assert_eq!((mar.churned_customers, mar.paying_customers, mar.arpu), (1, 2, 19_700));
        assert_eq!(mar.churn_rate, Decimal::new(3333, 4)); // 1 of 3 paying at the start
        assert_eq!(mar.ltv, Some(59_100)); // 19700 / (1/3)
        assert_eq!((apr.mrr, apr.reactivation, apr.new, apr.churned, apr.net_new), (49_100, 9_700, 0, 0, 9_700));
        for m in &r {
            assert_eq!(m.net_new, m.new + m.expansion + m.reactivation - m.contraction - m.churned);
        }
        let mrrs: Vec<i64> = r.iter().map(|m| m.mrr).collect();
        for w in r.windows(2) {
            assert_eq!(w[1].net_new, w[1].mrr - w[0].mrr, "{mrrs:?}");
        }
    }

    #[test]
    fn a_month_before_any_change_is_empty_and_currencies_are_apart() {
        let mut h = history();
        h.push(Change { customer: "E".into(), at: at(2026, 2, 1), currency: "EUR".into(), monthly_minor: 8900 });
        let r = report(&h, month(2025, 12), month(2026, 2));
        let dec: Vec<_> = r.iter().filter(|m| m.month == month(2025, 12)).collect();
        assert!(dec.iter().all(|m| m.mrr == 0 && m.new == 0));
        let eur = r.iter().find(|m| m.month == month(2026, 2) && m.currency == "EUR").unwrap();
        assert_eq!((eur.mrr, eur.new, eur.paying_customers), (8900, 8900, 1));
        let usd = r.iter().find(|m| m.month == month(2026, 2) && m.currency == "USD").unwrap();
        assert_eq!(usd.mrr, 69_100);
    }

    #[test]
    fn a_range_starting_later_still_knows_earlier_payers() {
        // Starting at April: C paid in February, so its return is a reactivation, not new.
        let r = report(&history(), month(2026, 4), month(2026, 4));
        assert_eq!((r[0].reactivation, r[0].new), (9_700, 0));
    }

    #[test]
    fn series_runs_from_the_first_change() {
        let s = series(&history(), "USD", month(2026, 4));
        assert_eq!(
            s,
            vec![
                (month(2026, 1), 39_400),
                (month(2026, 2), 69_100),
                (month(2026, 3), 39_400),
                (month(2026, 4), 49_100)
            ]
        );
        assert!(series(&history(), "EUR", month(2026, 4)).is_empty());
    }

    #[test]
    fn months_parse_with_defaults_and_bounds() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(parse_months("", "", today).unwrap(), (month(2026, 1), month(2026, 12)));
        assert_eq!(parse_months("2026-02", "2026-04", today).unwrap(), (month(2026, 2), month(2026, 4)));
        for (f, t) in [("2026-13", ""), ("2026-1", "2026-02"), ("2026-04", "2026-02"), ("x", ""), ("2026-01-01", "")] {
            assert_eq!(parse_months(f, t, today).unwrap_err().code(), "analytics.invalid_month", "{f} {t}");
        }
        assert_eq!(parse_months("2020-01", "2026-01", today).unwrap_err().code(), "analytics.range_too_large");
    }

    #[test]
    fn billing_statuses() {
        assert!(counts_for_mrr("active") && counts_for_mrr("past_due"));
        assert!(!counts_for_mrr("trialing") && !counts_for_mrr("canceled") && !counts_for_mrr("paused"));
    }
}
