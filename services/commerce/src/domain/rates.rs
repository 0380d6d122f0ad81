//! Daily exchange rates, quoted per euro as the ECB publishes them, and conversion with the rate
//! of a given day. The rate used is returned with every converted amount so it can be recorded
//! beside the price or sale it produced.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use nexus_kernel::{Currency, Error, ErrorKind};
use rust_decimal::{Decimal, RoundingStrategy};

use super::money::Amount;

/// Decimal places of a cross rate as used and stored (`numeric(24,10)`): the recorded rate
/// reproduces the converted amount exactly.
pub const RATE_DP: u32 = 10;

/// One published rate: units of `currency` for one euro on `day`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyRate {
    pub day: NaiveDate,
    pub currency: String,
    pub per_euro: Decimal,
}

/// The conversion behind an amount: `to = round(from × rate)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversion {
    pub from: Currency,
    pub to: Currency,
    pub rate: Decimal,
    /// The publication day of the rates used (the order's day, or the last one before it).
    pub day: NaiveDate,
}

impl Conversion {
    /// The identity (same currency), recorded with rate 1.
    pub fn identity(currency: Currency, day: NaiveDate) -> Conversion {
        Conversion { from: currency, to: currency, rate: Decimal::ONE, day }
    }

    /// `amount` (in `from`) converted and rounded to `to`'s minor unit.
    pub fn apply(&self, amount: Amount) -> Result<Amount, Error> {
        if amount.currency != self.from {
            return Err(Error::invalid("commerce.currency_mismatch")
                .with_param("expected", self.from.code())
                .with_param("currency", amount.currency.code()));
        }
        Ok(Amount::new(amount.value * self.rate, self.to))
    }

    /// An unrounded value (a cost with four decimals) converted, kept at 4 decimals.
    pub fn apply_exact(&self, value: Decimal) -> Decimal {
        (value * self.rate).round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
    }
}

/// Rates by day, for converting on any day they cover.
#[derive(Debug, Clone, Default)]
pub struct RateTable {
    days: BTreeMap<NaiveDate, BTreeMap<String, Decimal>>,
    /// A day's rates older than this (in days) are not used.
    max_age_days: i64,
}

impl RateTable {
    pub fn new(rates: impl IntoIterator<Item = DailyRate>, max_age_days: i64) -> RateTable {
        let mut days: BTreeMap<NaiveDate, BTreeMap<String, Decimal>> = BTreeMap::new();
        for r in rates {
            let day = days.entry(r.day).or_default();
            // The euro is the base of every publication.
            day.insert("EUR".into(), Decimal::ONE);
            day.insert(r.currency, r.per_euro);
        }
        RateTable { days, max_age_days }
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// The conversion `from` → `to` with the rates of `day` (or the latest publication before
    /// it, within the age limit: no rates are published on weekends and holidays).
    pub fn conversion(&self, from: Currency, to: Currency, day: NaiveDate) -> Result<Conversion, Error> {
        let (&published, rates) = self
            .days
            .range(..=day)
            .rev()
            .find(|(_, r)| r.contains_key(from.code()) && r.contains_key(to.code()))
            .ok_or_else(|| missing(from, to, day))?;
        if (day - published).num_days() > self.max_age_days {
            return Err(missing(from, to, day));
        }
        if from == to {
            return Ok(Conversion::identity(from, published));
        }
        let rate = (rates[to.code()] / rates[from.code()])
            .round_dp_with_strategy(RATE_DP, RoundingStrategy::MidpointAwayFromZero);
        Ok(Conversion { from, to, rate, day: published })
    }
}

fn missing(from: Currency, to: Currency, day: NaiveDate) -> Error {
    Error::new(ErrorKind::FailedPrecondition, "commerce.rate_unavailable")
        .with_param("from", from.code())
        .with_param("to", to.code())
        .with_param("day", day.to_string())
}

/// Parses the rates file shipped with the service: `day,currency,per_euro` lines, `#` comments.
pub fn parse_rates_csv(text: &str) -> Result<Vec<DailyRate>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("day,") {
            continue;
        }
        let mut parts = line.split(',').map(str::trim);
        let (Some(day), Some(currency), Some(rate), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("line {}: expected day,currency,per_euro", n + 1));
        };
        out.push(daily(day, currency, rate).map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    Ok(out)
}

/// One rate from its text parts, checked.
pub fn daily(day: &str, currency: &str, per_euro: &str) -> Result<DailyRate, String> {
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| format!("bad day {day:?}"))?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("bad currency {currency:?}"));
    }
    let per_euro: Decimal = per_euro.parse().map_err(|_| format!("bad rate {per_euro:?}"))?;
    if per_euro <= Decimal::ZERO {
        return Err(format!("rate {per_euro} is not positive"));
    }
    Ok(DailyRate { day, currency: currency.to_owned(), per_euro })
}

/// Parses an ECB-style daily feed: `<Cube time="YYYY-MM-DD">` elements holding
/// `<Cube currency="USD" rate="1.0823"/>`. Only those attributes are read, so namespaces and
/// the envelope do not matter.
pub fn parse_ecb_xml(xml: &str) -> Result<Vec<DailyRate>, String> {
    let mut out = Vec::new();
    let mut day: Option<String> = None;
    for tag in xml.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        if !tag.starts_with("Cube") {
            continue;
        }
        if let Some(t) = attr(tag, "time") {
            day = Some(t.to_owned());
        } else if let (Some(c), Some(r)) = (attr(tag, "currency"), attr(tag, "rate")) {
            let d = day.as_deref().ok_or("a rate before any day")?;
            out.push(daily(d, c, r)?);
        }
    }
    if out.is_empty() {
        return Err("no rates in the feed".into());
    }
    Ok(out)
}

/// The value of `name="…"` (or `'…'`) in a tag's text.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(i) = rest.find(name) {
        let before_ok = i == 0 || rest.as_bytes()[i - 1].is_ascii_whitespace();
        let after = rest[i + name.len()..].trim_start();
        if before_ok && let Some(after) = after.strip_prefix('=') {
            let after = after.trim_start();
            let quote = after.chars().next()?;
            if quote == '"' || quote == '\'' {
                let body = &after[1..];
                return body.find(quote).map(|end| &body[..end]);
            }
        }
        rest = &rest[i + name.len()..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn brl() -> Currency {
        "BRL".parse().unwrap()
    }

    fn table() -> RateTable {
        let text = "day,currency,per_euro\n# two days\n2026-11-02,USD,1.0800\n2026-11-02,BRL,5.8000\n\
                    2026-11-03,USD,1.0900\n2026-11-03,BRL,5.9000\n";
        RateTable::new(parse_rates_csv(text).unwrap(), 7)
    }

    #[test]
    fn converts_with_the_rate_of_the_day() {
        let t = table();
        let c = t.conversion(Currency::USD, brl(), day("2026-11-02")).unwrap();
        // 5.80 / 1.08 = 5.370370370370…
        assert_eq!(c.rate, d("5.3703703704"));
        assert_eq!(c.apply(Amount::new(d("10.00"), Currency::USD)).unwrap().value, d("53.70"));
        let c = t.conversion(Currency::USD, brl(), day("2026-11-03")).unwrap();
        assert_eq!(c.rate, d("5.4128440367"));
        assert_eq!(c.day, day("2026-11-03"));
        let eur = t.conversion(Currency::EUR, Currency::USD, day("2026-11-03")).unwrap();
        assert_eq!(eur.rate, d("1.09"));
    }

    #[test]
    fn a_weekend_uses_the_last_publication_within_the_age_limit() {
        let t = table();
        let c = t.conversion(brl(), Currency::USD, day("2026-11-05")).unwrap();
        assert_eq!(c.day, day("2026-11-03"));
        let e = t.conversion(brl(), Currency::USD, day("2026-11-20")).unwrap_err();
        assert_eq!(e.code(), "commerce.rate_unavailable");
        let e = t.conversion(brl(), Currency::USD, day("2026-11-01")).unwrap_err();
        assert_eq!(e.code(), "commerce.rate_unavailable");
        let gbp: Currency = "GBP".parse().unwrap();
        assert!(t.conversion(gbp, Currency::USD, day("2026-11-03")).is_err());
    }

    #[test]
    fn the_same_currency_converts_at_one() {
        let c = table().conversion(Currency::USD, Currency::USD, day("2026-11-03")).unwrap();
        assert_eq!(c.rate, Decimal::ONE);
        assert!(c.apply(Amount::new(d("1"), Currency::EUR)).is_err());
    }

    #[test]
    fn reads_an_ecb_daily_feed() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <Cube>
    <Cube time='2026-11-04'>
      <Cube currency='USD' rate='1.0823'/>
      <Cube currency='BRL' rate='5.8312'/>
    </Cube>
  </Cube>
</gesmes:Envelope>"#;
        let rates = parse_ecb_xml(xml).unwrap();
        assert_eq!(rates.len(), 2);
        assert_eq!(rates[0], DailyRate { day: day("2026-11-04"), currency: "USD".into(), per_euro: d("1.0823") });
        assert!(parse_ecb_xml("<html>maintenance</html>").is_err());
        assert!(parse_ecb_xml("<Cube currency='USD' rate='1'/>").is_err());
        assert!(parse_ecb_xml("<Cube time='2026-11-04'><Cube currency='USD' rate='-1'/>").is_err());
    }

    #[test]
    fn the_rates_file_refuses_malformed_lines() {
        assert!(parse_rates_csv("2026-11-02,USD").is_err());
        assert!(parse_rates_csv("2026-13-02,USD,1").is_err());
        assert!(parse_rates_csv("2026-11-02,usd,1").is_err());
        assert!(parse_rates_csv("2026-11-02,USD,0").is_err());
    }
}
