//! Billing rules with no I/O: periods, the credit thresholds that trigger notices, and validation
//! of what callers ask for.

mod model;
pub mod stripe;

pub use model::*;

use chrono::{DateTime, Months, Utc};
use nexus_kernel::{Error, ErrorKind};
use uuid::Uuid;

/// The period after one ending at `end`: same day next month (clamped to the month's end).
pub fn next_period_end(start: DateTime<Utc>) -> DateTime<Utc> {
    start.checked_add_months(Months::new(1)).unwrap_or(start + chrono::Duration::days(30))
}

/// Notice thresholds crossed by using `used` of `granted` credits: 80 and 100 percent.
pub fn thresholds_crossed(used_before: i64, used_after: i64, granted: i64) -> Vec<u32> {
    if granted <= 0 {
        return Vec::new();
    }
    [80u32, 100]
        .into_iter()
        .filter(|p| {
            let line = granted * i64::from(*p) / 100;
            used_before < line && used_after >= line
        })
        .collect()
}

pub const MAX_IDEMPOTENCY_KEY: usize = 255;

pub fn check_idempotency_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || key.chars().any(char::is_control) {
        return Err(
            Error::invalid("subscriptions.invalid_idempotency_key").with_violation("idempotency_key", "invalid")
        );
    }
    Ok(())
}

/// Feature names are identifiers from the plans' entitlements.
pub fn check_feature(feature: &str) -> Result<(), Error> {
    let ok = !feature.is_empty() && feature.len() <= 64 && feature.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("subscriptions.unknown_feature")
            .with_param("feature", feature.chars().take(64).collect::<String>()))
    }
}

pub fn insufficient(available: i64, needed: i64) -> Error {
    Error::new(ErrorKind::PaymentRequired, "subscriptions.insufficient_credits")
        .with_param("available", available.to_string())
        .with_param("needed", needed.to_string())
}

/// Paid features stay while Stripe retries a payment (past_due); they go when the subscription is
/// canceled, unpaid, paused or never completed.
pub fn status_has_access(status: &str) -> bool {
    matches!(status, "active" | "trialing" | "past_due")
}

/// Stripe's statuses as we store them: `incomplete_expired` is a subscription that never started.
pub fn normalize_status(stripe: &str) -> Option<&'static str> {
    Some(match stripe {
        "trialing" => "trialing",
        "active" => "active",
        "past_due" => "past_due",
        "canceled" | "incomplete_expired" => "canceled",
        "unpaid" => "unpaid",
        "paused" => "paused",
        "incomplete" => "incomplete",
        _ => return None,
    })
}

/// Credits granted when upgrading mid-period: the monthly difference for the part of the period
/// still to run, rounded down.
pub fn prorated(monthly_difference: i64, now: DateTime<Utc>, start: DateTime<Utc>, end: DateTime<Utc>) -> i64 {
    let total = (end - start).num_seconds();
    let left = (end - now).num_seconds().clamp(0, total.max(0));
    if total <= 0 || monthly_difference <= 0 {
        return 0;
    }
    i64::try_from(i128::from(monthly_difference) * i128::from(left) / i128::from(total)).unwrap_or(0)
}

/// Our ids for local sessions and receipts: a prefix and a time-ordered UUID.
pub fn local_id(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

/// ISO 4217 code we know, upper-case; empty means USD.
pub fn normalize_currency(c: &str) -> Result<String, Error> {
    if c.is_empty() {
        return Ok("USD".into());
    }
    let currency: nexus_kernel::Currency = c.trim().to_ascii_uppercase().parse()?;
    Ok(currency.code().to_owned())
}

/// Where Stripe sends the user: an absolute http(s) URL of sane length, nothing else.
pub fn check_return_url(url: &str) -> Result<(), Error> {
    let ok = url.is_empty()
        || (url.len() <= 2048
            && (url.starts_with("https://") || url.starts_with("http://"))
            && !url.chars().any(|c| c.is_whitespace() || c.is_control()));
    if ok { Ok(()) } else { Err(Error::invalid("subscriptions.invalid_url")) }
}

/// A reservation id as clients send it (`rsv_…`, or the bare UUID).
pub fn parse_reservation(id: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(id.strip_prefix("rsv_").unwrap_or(id))
        .map_err(|_| Error::not_found("subscriptions.reservation_not_found"))
}

/// The label and credits of a reservation: explicit `credits`, or `quantity` (0 = 1) units of
/// `action` at `unit` credits each (`None`: the action has no price).
pub fn price(action: &str, quantity: i64, credits: i64, unit: Option<i64>) -> Result<(String, i64), Error> {
    if credits < 0 || quantity < 0 {
        return Err(Error::invalid("subscriptions.invalid_amount"));
    }
    if credits > 0 {
        let label = if action.is_empty() { "custom".to_owned() } else { action.to_owned() };
        return Ok((label, credits));
    }
    let unit = unit.ok_or_else(|| {
        Error::invalid("subscriptions.unknown_action").with_param("action", action.chars().take(64).collect::<String>())
    })?;
    let quantity = if quantity == 0 { 1 } else { quantity };
    if quantity > 100_000 {
        return Err(Error::invalid("subscriptions.invalid_amount"));
    }
    Ok((action.to_owned(), unit.checked_mul(quantity).ok_or_else(|| Error::invalid("subscriptions.invalid_amount"))?))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn periods_are_calendar_months() {
        let jan31 = Utc.with_ymd_and_hms(2026, 1, 31, 10, 0, 0).unwrap();
        assert_eq!(next_period_end(jan31), Utc.with_ymd_and_hms(2026, 2, 28, 10, 0, 0).unwrap());
        let nov = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
        assert_eq!(next_period_end(nov), Utc.with_ymd_and_hms(2026, 12, 25, 0, 0, 0).unwrap());
    }

    #[test]
    fn thresholds_fire_once_when_crossed() {
        assert_eq!(thresholds_crossed(0, 39, 50), Vec::<u32>::new());
        assert_eq!(thresholds_crossed(39, 40, 50), vec![80]);
        assert_eq!(thresholds_crossed(40, 45, 50), Vec::<u32>::new());
        assert_eq!(thresholds_crossed(30, 50, 50), vec![80, 100]);
        assert_eq!(thresholds_crossed(0, 10, 0), Vec::<u32>::new());
    }

    #[test]
    fn keys_and_features_are_validated() {
        assert!(check_idempotency_key("gen-123").is_ok());
        assert!(check_idempotency_key("").is_err());
        assert!(check_idempotency_key(&"k".repeat(256)).is_err());
        assert!(check_feature("videos_per_month").is_ok());
        assert!(check_feature("Videos; DROP").is_err());
    }

    #[test]
    fn proration_is_the_remaining_share_rounded_down() {
        let start = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let end = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let mid = chrono::DateTime::parse_from_rfc3339("2026-11-16T00:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(prorated(1500, mid, start, end), 750);
        assert_eq!(prorated(1500, start, start, end), 1500);
        assert_eq!(prorated(1500, end, start, end), 0);
        assert_eq!(prorated(-450, mid, start, end), 0);
        assert_eq!(prorated(450, mid, end, start), 0);
        assert_eq!(prorated(7, mid + chrono::Duration::seconds(1), start, end), 3);
    }

    #[test]
    fn access_follows_stripe_status() {
        for s in ["active", "trialing", "past_due"] {
            assert!(status_has_access(s), "{s}");
        }
        for s in ["canceled", "unpaid", "paused", "incomplete"] {
            assert!(!status_has_access(s), "{s}");
        }
        assert_eq!(normalize_status("incomplete_expired"), Some("canceled"));
        assert_eq!(normalize_status("bogus"), None);
    }
}
