//! Reports: their time ranges and buckets, the bounds a request must respect, and the views the
//! report queries answer with.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use nexus_kernel::{Currency, Error, ErrorKind, Money};
use uuid::Uuid;

use super::event::MAX_NAME;

fn unprocessable(code: &'static str) -> Error {
    Error::new(ErrorKind::Unprocessable, code)
}

/// Report time buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
    Week,
    Month,
}

impl Interval {
    pub fn parse(s: &str, allowed: &[Interval]) -> Option<Interval> {
        let i = match s {
            "hour" => Interval::Hour,
            "day" => Interval::Day,
            "week" => Interval::Week,
            "month" => Interval::Month,
            _ => return None,
        };
        allowed.contains(&i).then_some(i)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
    }

    /// Approximate length, for bounding how many buckets a range may have.
    pub fn approx(self) -> chrono::Duration {
        match self {
            Interval::Hour => chrono::Duration::hours(1),
            Interval::Day => chrono::Duration::days(1),
            Interval::Week => chrono::Duration::weeks(1),
            Interval::Month => chrono::Duration::days(28),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// RFC 3339 bounds; `to` defaults to now and `from` to `default_days` before `to`.
pub fn parse_range(from: &str, to: &str, now: DateTime<Utc>, default_days: i64) -> Result<Range, Error> {
    let parse = |s: &str, field: &'static str| -> Result<Option<DateTime<Utc>>, Error> {
        if s.trim().is_empty() {
            return Ok(None);
        }
        DateTime::parse_from_rfc3339(s.trim()).map(|t| Some(t.with_timezone(&Utc))).map_err(|_| {
            unprocessable("analytics.invalid_range").with_param("field", field).with_violation(field, "invalid")
        })
    };
    let to = parse(to, "to")?.unwrap_or(now);
    let from = parse(from, "from")?.unwrap_or(to - chrono::Duration::days(default_days));
    if from >= to {
        return Err(unprocessable("analytics.invalid_range")
            .with_param("field", "from")
            .with_violation("from", "after_to"));
    }
    if to - from > chrono::Duration::days(3660) {
        return Err(unprocessable("analytics.range_too_large"));
    }
    Ok(Range { from, to })
}

/// Most buckets one time series may have.
pub const MAX_BUCKETS: i64 = 2000;
pub const MAX_STEPS: usize = 10;
pub const MAX_WINDOW_DAYS: u64 = 90;
/// Longest property name a breakdown may group by.
pub const MAX_PROPERTY: usize = 100;

/// `analytics.range_too_large` when `range` cut by `interval` has more than [`MAX_BUCKETS`].
pub fn bucket_count_ok(range: &Range, interval: Interval) -> Result<(), Error> {
    let n = (range.to - range.from).num_seconds() / interval.approx().num_seconds().max(1);
    if n > MAX_BUCKETS {
        return Err(unprocessable("analytics.range_too_large"));
    }
    Ok(())
}

/// An optional event-name filter: blank means every event.
pub fn filter_name(name: &str) -> Result<Option<String>, Error> {
    let n = name.trim();
    if n.is_empty() {
        return Ok(None);
    }
    // Control characters are refused as in tracked names (Postgres text cannot even hold NUL).
    if n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(unprocessable("analytics.invalid_event_name").with_param("max", MAX_NAME.to_string()));
    }
    Ok(Some(n.to_owned()))
}

/// The property a breakdown groups by, trimmed.
pub fn check_property(property: &str) -> Result<&str, Error> {
    let property = property.trim();
    if property.is_empty() || property.chars().count() > MAX_PROPERTY || property.chars().any(char::is_control) {
        return Err(unprocessable("analytics.invalid_property").with_param("max", MAX_PROPERTY.to_string()));
    }
    Ok(property)
}

/// The UTM field a breakdown groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UtmDimension {
    Source,
    Medium,
    Campaign,
    Term,
    Content,
}

impl UtmDimension {
    /// Blank means `source`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "source" | "" => Self::Source,
            "medium" => Self::Medium,
            "campaign" => Self::Campaign,
            "term" => Self::Term,
            "content" => Self::Content,
            other => {
                return Err(unprocessable("analytics.invalid_dimension").with_param("dimension", other.to_owned()));
            }
        })
    }
}

/// What a ranked breakdown groups events by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakdownBy<'a> {
    EventName,
    Property(&'a str),
    Utm(UtmDimension),
}

/// Funnel steps (trimmed) and window, checked.
pub fn check_funnel(steps: &[String], window_seconds: u64) -> Result<Vec<String>, Error> {
    let bad_steps = || unprocessable("analytics.invalid_funnel_steps").with_param("max", MAX_STEPS.to_string());
    if steps.len() < 2 || steps.len() > MAX_STEPS {
        return Err(bad_steps());
    }
    let steps: Vec<String> = steps.iter().map(|s| s.trim().to_owned()).collect();
    if steps.iter().any(|s| s.is_empty() || s.chars().count() > MAX_NAME || s.chars().any(char::is_control)) {
        return Err(bad_steps());
    }
    if window_seconds == 0 || window_seconds > MAX_WINDOW_DAYS * 86_400 {
        return Err(unprocessable("analytics.invalid_window").with_param("days", MAX_WINDOW_DAYS.to_string()));
    }
    Ok(steps)
}

#[derive(Debug, Clone)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub local_start: NaiveDateTime,
    pub events: i64,
    pub unique_users: i64,
}

/// One row of a ranked breakdown (top events, a property's values, a UTM field's values).
#[derive(Debug, Clone)]
pub struct Breakdown {
    pub key: String,
    pub events: i64,
    pub unique_users: i64,
}

#[derive(Debug, Clone)]
pub struct FunnelStep {
    pub name: String,
    pub users: i64,
    pub conversion_from_start: f64,
    pub conversion_from_previous: f64,
    pub drop_off: i64,
}

/// The funnel of `steps` from the users who reached each step.
pub fn funnel_steps(steps: Vec<String>, counts: &[i64]) -> Vec<FunnelStep> {
    let first = counts.first().copied().unwrap_or(0);
    let ratio = |a: i64, b: i64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    steps
        .into_iter()
        .zip(counts)
        .enumerate()
        .map(|(i, (name, &users))| {
            let prev = if i == 0 { users } else { counts[i - 1] };
            FunnelStep {
                name,
                users,
                conversion_from_start: ratio(users, first),
                conversion_from_previous: ratio(users, prev),
                drop_off: prev - users,
            }
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct RevenuePoint {
    pub start: DateTime<Utc>,
    pub local_start: NaiveDateTime,
    pub total: Money,
    pub events: i64,
}

/// Revenue of one bucket in one currency, as stored (the code not yet checked).
#[derive(Debug, Clone)]
pub struct RevenueSum {
    pub local_start: NaiveDateTime,
    pub start: DateTime<Utc>,
    pub currency: String,
    pub total: i64,
    pub events: i64,
}

/// Points per bucket and currency, plus totals per currency (integer minor units).
pub fn revenue(sums: Vec<RevenueSum>) -> Result<(Vec<RevenuePoint>, Vec<Money>), Error> {
    let mut totals: BTreeMap<String, Money> = BTreeMap::new();
    let mut points = Vec::with_capacity(sums.len());
    for s in sums {
        // Only codes the tracker accepted are stored; anything else is skipped, not guessed.
        let Ok(c) = s.currency.parse::<Currency>() else { continue };
        let m = Money::new(s.total, c);
        let t = totals.entry(s.currency).or_insert(Money::new(0, c));
        *t = t.checked_add(m)?;
        points.push(RevenuePoint { start: s.start, local_start: s.local_start, total: m, events: s.events });
    }
    Ok((points, totals.into_values().collect()))
}

#[derive(Debug, Clone)]
pub struct FeatureUsage {
    pub plan: String,
    pub feature: String,
    pub uses: i64,
    pub credits: i64,
    pub unique_users: i64,
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub service: String,
    pub resource_type: String,
    pub resource_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub ip: Option<String>,
    pub request_id: String,
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_default_and_are_checked() {
        let now = Utc::now();
        let r = parse_range("", "", now, 30).unwrap();
        assert_eq!(r.to, now);
        assert_eq!(r.to - r.from, chrono::Duration::days(30));
        assert_eq!(
            parse_range("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", now, 30).unwrap_err().code(),
            "analytics.invalid_range"
        );
        assert_eq!(parse_range("yesterday", "", now, 30).unwrap_err().code(), "analytics.invalid_range");
        assert_eq!(
            parse_range("2000-01-01T00:00:00Z", "2026-01-01T00:00:00Z", now, 30).unwrap_err().code(),
            "analytics.range_too_large"
        );
        let r = parse_range("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z", now, 30).unwrap();
        assert!(bucket_count_ok(&r, Interval::Day).is_ok());
        assert!(bucket_count_ok(&r, Interval::Hour).is_err());
    }

    #[test]
    fn names_with_control_characters_are_refused() {
        assert_eq!(filter_name(" page.viewed\n").unwrap().as_deref(), Some("page.viewed"));
        assert!(filter_name("page\u{0}viewed").is_err());
        assert!(check_property("plan\u{7}").is_err());
        assert!(check_property("\tplan ").is_ok());
        let steps = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(check_funnel(&steps(&["a", "b\u{0}"]), 60).is_err());
        assert!(check_funnel(&steps(&["a", " b "]), 60).is_ok());
    }
}
