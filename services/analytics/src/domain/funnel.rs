//! Funnels from each user's step timestamps, in one pass over their events in time order (no
//! join per step). The rule is the report's: from every step-1 event in the range, the earliest
//! next step strictly after the previous one and no later than step 1 + window; a user counts at
//! the furthest step any of their starts reaches.
//!
//! Why one pass suffices: of the chains that reached step k, the one that started latest can go
//! wherever an earlier-started one can (its deadline is later), and in time order every chain
//! kept ended before the event at hand (events of the same instant are applied together, so a
//! step never follows another of the same instant).

use chrono::{DateTime, TimeDelta, Utc};

/// How many steps (0..=len) one user reached; `events` are their step events in time order.
pub fn furthest(
    steps: &[String],
    events: &[(&str, DateTime<Utc>)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    window: TimeDelta,
) -> usize {
    // latest[k]: the latest start of a chain that reached step k (0-based).
    let mut latest: Vec<Option<DateTime<Utc>>> = vec![None; steps.len()];
    let mut updates: Vec<(usize, DateTime<Utc>)> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let at = events[i].1;
        updates.clear();
        while i < events.len() && events[i].1 == at {
            let name = events[i].0;
            for (k, _) in steps.iter().enumerate().filter(|(_, s)| s.as_str() == name) {
                let start = if k == 0 {
                    (from <= at && at < to).then_some(at)
                } else {
                    latest[k - 1].filter(|&t1| at <= t1 + window)
                };
                if let Some(t1) = start {
                    updates.push((k, t1));
                }
            }
            i += 1;
        }
        for &(k, t1) in &updates {
            if latest[k].is_none_or(|t| t < t1) {
                latest[k] = Some(t1);
            }
        }
    }
    latest.iter().rposition(Option::is_some).map_or(0, |k| k + 1)
}

/// Users who reached each step, from each user's furthest step.
pub fn reached(steps: usize, furthest: impl IntoIterator<Item = usize>) -> Vec<i64> {
    let mut out = vec![0i64; steps];
    for f in furthest {
        for r in out.iter_mut().take(f) {
            *r += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + TimeDelta::minutes(m)
    }

    fn steps(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn the_latest_start_carries_a_user_the_furthest() {
        let s = steps(&["a", "b", "c"]);
        let w = TimeDelta::minutes(10);
        // The first start runs out of time before c; the second start reaches it.
        let ev = [("a", t(0)), ("b", t(5)), ("a", t(8)), ("b", t(9)), ("c", t(15))];
        assert_eq!(furthest(&s, &ev, t(0), t(60), w), 3);
        // Out of order: c before b does not count.
        let ev = [("a", t(0)), ("c", t(1)), ("b", t(2))];
        assert_eq!(furthest(&s, &ev, t(0), t(60), w), 2);
        // A start outside the range starts nothing; later steps are fine after `to`.
        let ev = [("a", t(0)), ("b", t(1))];
        assert_eq!(furthest(&s, &ev, t(1), t(60), w), 0);
        assert_eq!(furthest(&s, &ev, t(0), t(1), w), 2);
    }

    #[test]
    fn steps_of_the_same_instant_do_not_follow_each_other() {
        let s = steps(&["a", "b"]);
        assert_eq!(furthest(&s, &[("a", t(0)), ("b", t(0))], t(0), t(9), TimeDelta::minutes(5)), 1);
        // A repeated step name needs two events.
        let s = steps(&["a", "a"]);
        assert_eq!(furthest(&s, &[("a", t(0))], t(0), t(9), TimeDelta::minutes(5)), 1);
        assert_eq!(furthest(&s, &[("a", t(0)), ("a", t(1))], t(0), t(9), TimeDelta::minutes(5)), 2);
    }

    #[test]
    fn users_count_at_every_step_up_to_their_furthest() {
        assert_eq!(reached(3, [3, 1, 0, 2]), vec![3, 2, 1]);
    }
}
