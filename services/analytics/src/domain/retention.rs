//! Retention and stickiness: their bounds and the tables they answer with.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use nexus_kernel::{Error, ErrorKind};

use super::report::filter_name;

pub const DEFAULT_WEEKS: u32 = 12;
pub const MAX_WEEKS: u32 = 26;
/// Days a stickiness report may span (each day looks back 30).
pub const MAX_STICKINESS_DAYS: i64 = 400;

/// Checked start and return events and weeks (0 means [`DEFAULT_WEEKS`]).
pub fn check(start: &str, ret: &str, weeks: u32) -> Result<(String, String, u32), Error> {
    let start = filter_name(start)?.ok_or_else(|| {
        Error::new(ErrorKind::Unprocessable, "analytics.invalid_event_name").with_violation("start_event", "required")
    })?;
    let ret = filter_name(ret)?.ok_or_else(|| {
        Error::new(ErrorKind::Unprocessable, "analytics.invalid_event_name").with_violation("return_event", "required")
    })?;
    let weeks = if weeks == 0 { DEFAULT_WEEKS } else { weeks };
    if weeks > MAX_WEEKS {
        return Err(
            Error::new(ErrorKind::Unprocessable, "analytics.invalid_weeks").with_param("max", MAX_WEEKS.to_string())
        );
    }
    Ok((start, ret, weeks))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cohort {
    pub week_start: NaiveDate,
    pub users: i64,
    pub retained: Vec<i64>,
}

/// Cohort rows from (week, weeks since, users) counts, where weeks since −1 is the cohort's size.
pub fn cohorts(counts: Vec<(NaiveDate, i32, i64)>, weeks: u32) -> Vec<Cohort> {
    let mut by: BTreeMap<NaiveDate, Cohort> = BTreeMap::new();
    for (week_start, k, n) in counts {
        let c =
            by.entry(week_start).or_insert_with(|| Cohort { week_start, users: 0, retained: vec![0; weeks as usize] });
        match usize::try_from(k) {
            Ok(k) if k < c.retained.len() => c.retained[k] = n,
            Ok(_) => {}
            Err(_) => c.users = n,
        }
    }
    by.into_values().collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stickiness {
    pub day: NaiveDate,
    pub daily_users: i64,
    pub monthly_users: i64,
    pub ratio: f64,
}

pub fn stickiness(rows: Vec<(NaiveDate, i64, i64)>) -> Vec<Stickiness> {
    rows.into_iter()
        .map(|(day, daily_users, monthly_users)| Stickiness {
            day,
            daily_users,
            monthly_users,
            ratio: if monthly_users == 0 { 0.0 } else { daily_users as f64 / monthly_users as f64 },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        assert_eq!(check(" a ", "b", 0).unwrap(), ("a".into(), "b".into(), 12));
        assert_eq!(check("a", "", 4).unwrap_err().code(), "analytics.invalid_event_name");
        assert_eq!(check("a", "b", 27).unwrap_err().code(), "analytics.invalid_weeks");
        assert_eq!(check("a\u{0}", "b", 1).unwrap_err().code(), "analytics.invalid_event_name");
    }

    #[test]
    fn counts_become_rows_per_cohort() {
        let w = |d| NaiveDate::from_ymd_opt(2026, 1, d).unwrap();
        let rows = cohorts(vec![(w(5), -1, 10), (w(5), 0, 10), (w(5), 2, 4), (w(12), -1, 3), (w(12), 9, 1)], 3);
        assert_eq!(
            rows,
            vec![
                Cohort { week_start: w(5), users: 10, retained: vec![10, 0, 4] },
                Cohort { week_start: w(12), users: 3, retained: vec![0, 0, 0] },
            ]
        );
        assert_eq!(stickiness(vec![(w(1), 2, 8), (w(2), 0, 0)])[0].ratio, 0.25);
    }
}
