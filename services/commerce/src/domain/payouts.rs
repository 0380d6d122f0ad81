//! Payout statements: a month's commission movements per beneficiary (earned in the month, and
//! reversals made in the month, also of earlier months' commissions) with totals that reconcile:
//! for each beneficiary, net = earned − reversed = the sum of its signed lines.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::Error;
use rust_decimal::Decimal;
use uuid::Uuid;

/// A commission earned, or (part of) one taken back by a refund, as the statement needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub commission: Uuid,
    pub sale: Uuid,
    pub beneficiary: String,
    pub reversal: bool,
    /// Not signed.
    pub amount: Decimal,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub commission: Uuid,
    pub sale: Uuid,
    pub beneficiary: String,
    /// `earned` or `reversal`.
    pub kind: &'static str,
    /// Signed.
    pub amount: Decimal,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Total {
    pub earned: Decimal,
    pub reversed: Decimal,
    pub net: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub period: NaiveDate,
    pub lines: Vec<Line>,
    pub totals: BTreeMap<String, Total>,
}

/// `YYYY-MM` → the month's first day.
pub fn parse_period(s: &str) -> Result<NaiveDate, Error> {
    NaiveDate::parse_from_str(&format!("{}-01", s.trim()), "%Y-%m-%d")
        .ok()
        .filter(|_| s.trim().len() == 7)
        .ok_or_else(|| Error::invalid("commerce.period_invalid").with_violation("period", "invalid"))
}

/// The statement of the month starting `period` from the movements touching it.
pub fn statement(period: NaiveDate, movements: &[Movement]) -> Statement {
    let end = super::commissions::period_end(period);
    let within = |t: DateTime<Utc>| t.date_naive() >= period && t.date_naive() < end;
    let mut lines = Vec::new();
    for m in movements.iter().filter(|m| within(m.at)) {
        lines.push(Line {
            commission: m.commission,
            sale: m.sale,
            beneficiary: m.beneficiary.clone(),
            kind: if m.reversal { "reversal" } else { "earned" },
            amount: if m.reversal { -m.amount } else { m.amount },
            at: m.at,
        });
    }
    lines.sort_by(|a, b| (a.at, a.commission, a.kind).cmp(&(b.at, b.commission, b.kind)));
    let mut totals: BTreeMap<String, Total> = BTreeMap::new();
    for l in &lines {
        let t = totals.entry(l.beneficiary.clone()).or_default();
        if l.kind == "earned" {
            t.earned += l.amount;
        } else {
            t.reversed -= l.amount;
        }
        t.net += l.amount;
    }
    Statement { period, lines, totals }
}

/// A CSV field: quoted when it holds a separator, quote or line break; a leading `=`, `+`, `-`
/// or `@` of text is neutralised so a spreadsheet never runs it as a formula.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '@']) || (s.starts_with('-') && s.parse::<Decimal>().is_err()) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// The statement as CSV: one row per line, then one `total` row per beneficiary.
pub fn to_csv(s: &Statement, currency: &str) -> String {
    let mut out = String::from("period,kind,beneficiary,commission_id,sale_id,at,amount,currency\n");
    let period = s.period.format("%Y-%m").to_string();
    for l in &s.lines {
        out += &[
            period.clone(),
            l.kind.to_owned(),
            field(&l.beneficiary),
            l.commission.to_string(),
            l.sale.to_string(),
            l.at.to_rfc3339(),
            l.amount.to_string(),
            currency.to_owned(),
        ]
        .join(",");
        out.push('\n');
    }
    for (b, t) in &s.totals {
        out += &[
            period.clone(),
            "total".into(),
            field(b),
            String::new(),
            String::new(),
            String::new(),
            t.net.to_string(),
            currency.to_owned(),
        ]
        .join(",");
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A commission earned, and its reversal when given.
    fn m(b: &str, amount: &str, earned: &str, reversed: Option<&str>) -> Vec<Movement> {
        let base = Movement {
            commission: Uuid::now_v7(),
            sale: Uuid::now_v7(),
            beneficiary: b.into(),
            reversal: false,
            amount: amount.parse().unwrap(),
            at: at(earned),
        };
        let back = reversed.map(|r| Movement { reversal: true, at: at(r), ..base.clone() });
        std::iter::once(base).chain(back).collect()
    }

    #[test]
    fn totals_reconcile_with_the_lines() {
        let nov = parse_period("2026-11").unwrap();
        let moves: Vec<Movement> = [
            m("ana", "5.00", "2026-11-02T10:00:00Z", None),
            m("ana", "7.25", "2026-11-03T10:00:00Z", Some("2026-11-20T10:00:00Z")),
            // Earned in October, reversed in November: a November reversal.
            m("ana", "3.10", "2026-10-30T10:00:00Z", Some("2026-11-01T00:00:00Z")),
            // Earned in November, reversed in December: earned only, here.
            m("bo", "1.50", "2026-11-30T23:59:59Z", Some("2026-12-01T00:00:00Z")),
            m("bo", "9.99", "2026-12-01T00:00:00Z", None),
        ]
        .concat();
        let s = statement(nov, &moves);
        assert_eq!(s.lines.len(), 5);
        let ana = &s.totals["ana"];
        assert_eq!(
            (ana.earned, ana.reversed, ana.net),
            ("12.25".parse().unwrap(), "10.35".parse().unwrap(), "1.90".parse().unwrap())
        );
        assert_eq!(s.totals["bo"].net, "1.50".parse::<Decimal>().unwrap());
        for (b, t) in &s.totals {
            let sum: Decimal = s.lines.iter().filter(|l| &l.beneficiary == b).map(|l| l.amount).sum();
            assert_eq!(sum, t.net, "{b}");
            assert_eq!(t.earned - t.reversed, t.net);
        }
        let csv = to_csv(&s, "USD");
        assert_eq!(csv.lines().count(), 1 + 5 + 2);
        assert!(csv.lines().last().unwrap().starts_with("2026-11,total,bo,,,,1.50,USD"));
        assert!(csv.contains(",-3.10,USD"));
    }

    #[test]
    fn periods_and_fields_are_checked() {
        for bad in ["2026-13", "2026-1", "nov", "", "2026-11-01"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("-3.10"), "-3.10");
    }
}
