//! The campaign umbrella: a goal, a budget in minor units of one currency, and dates.

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::{Currency, Error};
use uuid::Uuid;

pub const GOALS: &[&str] = &["awareness", "traffic", "engagement", "leads", "sales", "app_promotion"];
const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 2000;
/// A ceiling against typos (a budget entered in units times a hundred twice over).
const MAX_BUDGET_MINOR: i64 = 1_000_000_000_000;

/// A campaign's editable fields, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignSpec {
    pub name: String,
    pub goal: String,
    pub budget_minor: i64,
    pub currency: Currency,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub description: String,
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub id: Uuid,
    pub spec: CampaignSpec,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Minor units as a decimal text in the currency's digits (`1500`, USD -> `15.00`).
pub fn format_minor(minor: i64, currency: Currency) -> String {
    let digits = u32::from(currency.minor_digits());
    if digits == 0 {
        return minor.to_string();
    }
    let unit = 10_i64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    let unit = unit.unsigned_abs();
    format!("{sign}{}.{:0width$}", m / unit, m % unit, width = digits as usize)
}

/// A platform's decimal text (`"12.3"`, `"7"`) in exact minor units of `currency`; None when it
/// is not a plain non-negative decimal or has more digits than the currency.
pub fn parse_minor(text: &str, currency: Currency) -> Option<i64> {
    let t = text.trim();
    if t.is_empty() {
        return Some(0);
    }
    let digits = usize::from(currency.minor_digits());
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > digits {
        return None;
    }
    let scale = 10_i64.checked_pow(u32::try_from(digits).ok()?)?;
    let whole: i64 = whole.parse().ok()?;
    let frac_val: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<digits$}").parse().ok()? };
    whole.checked_mul(scale)?.checked_add(frac_val)
}

fn invalid(field: &str, why: &str) -> Error {
    Error::invalid("ads.campaign_invalid").with_param("field", field).with_violation(field, why)
}

fn date(raw: &str, field: &str) -> Result<Option<NaiveDate>, Error> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Some).map_err(|_| invalid(field, "not_a_date"))
}

impl CampaignSpec {
    /// Checks what a client sent, naming the first field that is wrong.
    pub fn parse(
        name: &str,
        goal: &str,
        budget_minor: i64,
        currency: &str,
        start: &str,
        end: &str,
        description: &str,
    ) -> Result<CampaignSpec, Error> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(invalid("name", "length"));
        }
        let goal = goal.trim();
        if !GOALS.contains(&goal) {
            return Err(invalid("goal", "unknown"));
        }
        if !(0..=MAX_BUDGET_MINOR).contains(&budget_minor) {
            return Err(invalid("budget_minor", "range"));
        }
        let currency: Currency = currency.trim().parse().map_err(|_| invalid("currency", "unsupported"))?;
        let start_date = date(start, "start_date")?;
        let end_date = date(end, "end_date")?;
        if let (Some(s), Some(e)) = (start_date, end_date)
            && e < s
        {
            return Err(invalid("end_date", "before_start"));
        }
        if description.chars().count() > MAX_DESCRIPTION {
            return Err(invalid("description", "length"));
        }
        // Line breaks and tabs are text; other control characters (a NUL cannot even be stored)
        // are not.
        if description.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(invalid("description", "invalid"));
        }
        Ok(CampaignSpec {
            name: name.to_owned(),
            goal: goal.to_owned(),
            budget_minor,
            currency,
            start_date,
            end_date,
            description: description.trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: Error) -> String {
        e.violations().first().map(|v| v.field.clone()).unwrap_or_default()
    }

    #[test]
    fn platform_amounts_become_exact_minor_units() {
        assert_eq!(parse_minor("12.34", Currency::USD), Some(1234));
        assert_eq!(parse_minor("12.3", Currency::USD), Some(1230));
        assert_eq!(parse_minor("7", Currency::USD), Some(700));
        assert_eq!(parse_minor("1500", "JPY".parse().unwrap()), Some(1500));
        assert_eq!(parse_minor("1.234", Currency::USD), None);
        assert_eq!(parse_minor("-1", Currency::USD), None);
    }

    #[test]
    fn a_campaign_needs_a_name_a_known_goal_a_currency_and_ordered_dates() {
        let ok = CampaignSpec::parse("Spring", "leads", 150_000, "EUR", "2026-03-01", "2026-03-31", "").unwrap();
        assert_eq!(ok.currency.code(), "EUR");
        assert_eq!(ok.budget_minor, 150_000);
        let e = CampaignSpec::parse(" ", "leads", 1, "EUR", "", "", "").unwrap_err();
        assert_eq!(e.code(), "ads.campaign_invalid");
        assert_eq!(field(e), "name");
        assert_eq!(field(CampaignSpec::parse("a", "fame", 1, "EUR", "", "", "").unwrap_err()), "goal");
        assert_eq!(field(CampaignSpec::parse("a", "sales", -1, "EUR", "", "", "").unwrap_err()), "budget_minor");
        assert_eq!(field(CampaignSpec::parse("a", "sales", 1, "XYZ", "", "", "").unwrap_err()), "currency");
        assert_eq!(field(CampaignSpec::parse("a", "sales", 1, "USD", "2026-13-01", "", "").unwrap_err()), "start_date");
        assert_eq!(
            field(CampaignSpec::parse("a", "sales", 1, "USD", "2026-03-02", "2026-03-01", "").unwrap_err()),
            "end_date"
        );
        assert_eq!(field(CampaignSpec::parse("a", "sales", 1, "USD", "", "", "x\u{0}y").unwrap_err()), "description");
        assert!(CampaignSpec::parse("a", "sales", 1, "USD", "", "", "two\nlines\tand a tab").is_ok());
    }
}
