//! Outbound webhooks: the rules of delivery — when to try again, what counts as delivered, when
//! an endpoint is given up on, and which event types an endpoint may subscribe to.

use std::time::Duration;

use nexus_kernel::Error;

/// Gaps before each attempt of a message: the first goes at once, then after 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h and 10 h (eight attempts over about 27.6 hours).
pub const SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// An answer must arrive within this to count.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(15);

/// An endpoint that has delivered nothing for this long while failing is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// How long delivery attempts (request, status, body excerpt, latency) are kept.
pub const ATTEMPTS_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

/// The part of a response body kept with an attempt.
pub const BODY_EXCERPT: usize = 1_024;

/// The previous secret keeps signing for this long after a rotation.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// The wait before attempt `n` (0-based) of a message; `None` when the schedule is spent.
pub fn gap_before(attempt: usize) -> Option<Duration> {
    SCHEDULE.get(attempt).copied()
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx within [`RESPONSE_TIMEOUT`].
    Delivered,
    /// Anything else: the reason is recorded with the attempt.
    Failed(FailReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The endpoint answered with a status outside 2xx (a redirect too: it is never followed,
    /// since the new location was not checked by the outbound rules).
    Status(u16),
    Timeout,
    /// Connection refused, reset, TLS failure, DNS failure.
    Network,
    /// The target resolved to an address the outbound rules refuse.
    Refused,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status(s) if (300..400).contains(&s) => "redirect",
            Self::Status(_) => "status",
            Self::Timeout => "timeout",
            Self::Network => "network",
            Self::Refused => "refused",
        }
    }
}

/// Classifies an answer by status code.
pub fn outcome(status: u16) -> Outcome {
    if (200..300).contains(&status) { Outcome::Delivered } else { Outcome::Failed(FailReason::Status(status)) }
}

/// Whether an endpoint failing since `failing_since` should be disabled at `now`.
pub fn should_disable(failing_since: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> bool {
    now.signed_duration_since(failing_since).to_std().is_ok_and(|d| d >= DISABLE_AFTER)
}

/// An event type a workspace's endpoint can subscribe to: the public events of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON Schema of the `data` of the message.
    pub schema: &'static str,
    /// What a test-send delivers.
    pub example: &'static str,
}

/// Checks an endpoint's subscription list against the catalogue: each name known or a
/// `prefix.*` wildcard over known names; no repeats; empty means "every type".
pub fn check_filter(types: &[String], catalogue: &[EventType]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        let t = t.trim();
        let known = match t.strip_suffix(".*") {
            Some(prefix) => catalogue.iter().any(|e| e.name.starts_with(&format!("{prefix}."))),
            None => catalogue.iter().any(|e| e.name == t),
        };
        if !known {
            return Err(Error::invalid("messaging.unknown_event_type")
                .with_param("type", t.chars().take(100).collect::<String>()));
        }
        if !out.iter().any(|x| x == t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

/// Whether an endpoint subscribed to `filter` receives `event`.
pub fn matches(filter: &[String], event: &str) -> bool {
    filter.is_empty()
        || filter.iter().any(|f| match f.strip_suffix(".*") {
            Some(prefix) => event.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')),
            None => f == event,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOGUE: &[EventType] = &[
        EventType { name: "contact.created", description: "", schema: "{}", example: "{}" },
        EventType { name: "contact.updated", description: "", schema: "{}", example: "{}" },
        EventType { name: "page.lead_captured", description: "", schema: "{}", example: "{}" },
    ];

    #[test]
    fn the_schedule_is_the_documented_one() {
        let secs: Vec<u64> = SCHEDULE.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, vec![0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]);
        assert_eq!(gap_before(8), None);
    }

    #[test]
    fn only_2xx_delivers_and_redirects_fail() {
        assert_eq!(outcome(200), Outcome::Delivered);
        assert_eq!(outcome(204), Outcome::Delivered);
        assert_eq!(outcome(301), Outcome::Failed(FailReason::Status(301)));
        assert_eq!(FailReason::Status(302).as_str(), "redirect");
        assert_eq!(FailReason::Status(500).as_str(), "status");
    }

    #[test]
    fn endpoints_are_disabled_after_five_days_of_failure() {
        let t0 = chrono::Utc::now();
        assert!(!should_disable(t0, t0 + chrono::Duration::days(4)));
        assert!(should_disable(t0, t0 + chrono::Duration::days(5)));
        assert!(!should_disable(t0, t0 - chrono::Duration::days(6)));
    }

    #[test]
    fn filters_name_known_types_or_prefixes() {
        let f =
            check_filter(&["contact.*".into(), "page.lead_captured".into(), "contact.*".into()], CATALOGUE).unwrap();
        assert_eq!(f.len(), 2);
        assert!(matches(&f, "contact.updated"));
        assert!(matches(&f, "page.lead_captured"));
        assert!(!matches(&f, "contactx.created"));
        assert!(matches(&[], "anything"));
        assert_eq!(check_filter(&["order.*".into()], CATALOGUE).unwrap_err().code(), "messaging.unknown_event_type");
        assert!(check_filter(&["contact".into()], CATALOGUE).is_err());
    }
}
