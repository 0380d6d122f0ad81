//! Rollups: hourly and daily (UTC) aggregates of a workspace's events, kept beside the events so
//! reports need not scan them. The writer that stores a batch of events appends, in the same
//! transaction, one partial row per key for the events that were new (a duplicate is refused by
//! the event store first, so it never reaches a rollup; a late event adds a row to its own old
//! bucket). Partial rows of a key add up (counts, money, credits) and merge (user sketches), so
//! reports may read them before or after compaction folds them into one.
//!
//! Keys per bucket: the every-event row (`name` blank), one row per event name and revenue
//! currency (`plan` blank), and for metered actions one row per plan and feature.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, NaiveDateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use super::hll::Sketch;
use super::report::{Breakdown, Bucket, FeatureUsage, RevenueSum};

/// The domain event whose plan and feature the feature-usage report groups by.
pub const FEATURE_EVENT: &str = "subscriptions.credits.charged";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grain {
    Hour,
    Day,
}

impl Grain {
    pub const ALL: [Grain; 2] = [Grain::Hour, Grain::Day];

    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Hour => "hour",
            Grain::Day => "day",
        }
    }

    pub fn length(self) -> TimeDelta {
        match self {
            Grain::Hour => TimeDelta::hours(1),
            Grain::Day => TimeDelta::days(1),
        }
    }

    /// The start of the bucket holding `t`.
    pub fn floor(self, t: DateTime<Utc>) -> DateTime<Utc> {
        t.duration_trunc(self.length()).unwrap_or(t)
    }

    /// The first bucket start at or after `t`.
    pub fn ceil(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let f = self.floor(t);
        if f == t { f } else { f + self.length() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub tenant: Uuid,
    pub grain: Grain,
    pub bucket: DateTime<Utc>,
    /// Blank: every event of the bucket.
    pub name: String,
    /// Blank: no revenue.
    pub currency: String,
    /// Non-blank only on feature rows (the plan is `unknown` when the event named none).
    pub plan: String,
    pub feature: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub events: i64,
    pub revenue_minor: i64,
    pub credits: Decimal,
    pub users: Sketch,
}

impl Totals {
    pub fn add(&mut self, other: &Totals) {
        self.events += other.events;
        self.revenue_minor += other.revenue_minor;
        self.credits += other.credits;
        self.users.merge(&other.users);
    }
}

/// A metered action's plan, feature and credits, as the raw report reads them from properties:
/// `plan` (else `unknown`), `action` (else blank), `credits` when it is a number (else 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub plan: String,
    pub feature: String,
    pub credits: Decimal,
}

/// Postgres `->>` of a property: strings as themselves, JSON null or absent as None, anything
/// else as its JSON text.
fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl Feature {
    pub fn from_properties(p: &Value) -> Feature {
        let credits = match p.get("credits") {
            Some(Value::Number(n)) => n.to_string().parse::<Decimal>().unwrap_or_default(),
            _ => Decimal::ZERO,
        };
        Feature {
            plan: text_of(p.get("plan")).unwrap_or_else(|| "unknown".to_owned()),
            feature: text_of(p.get("action")).unwrap_or_default(),
            credits,
        }
    }
}

/// One stored event, as much of it as rollups keep.
#[derive(Debug, Clone)]
pub struct Fact<'a> {
    pub tenant: Uuid,
    pub at: DateTime<Utc>,
    pub name: &'a str,
    pub user_id: Option<&'a str>,
    pub anonymous_id: Option<&'a str>,
    pub revenue: Option<(i64, &'a str)>,
    /// Only for [`FEATURE_EVENT`].
    pub feature: Option<Feature>,
}

/// The partial rows of a set of newly stored events.
pub fn aggregate<'a>(facts: impl IntoIterator<Item = Fact<'a>>) -> BTreeMap<Key, Totals> {
    let mut out: BTreeMap<Key, Totals> = BTreeMap::new();
    for f in facts {
        // Reports count a user by id, else by anonymous id; feature usage by id only.
        let who = f.user_id.or(f.anonymous_id);
        for grain in Grain::ALL {
            let key = |name: &str, currency: &str, plan: &str, feature: &str| Key {
                tenant: f.tenant,
                grain,
                bucket: grain.floor(f.at),
                name: name.to_owned(),
                currency: currency.to_owned(),
                plan: plan.to_owned(),
                feature: feature.to_owned(),
            };
            let mut add = |k: Key, revenue: i64, credits: Decimal, user: Option<&str>| {
                let t = out.entry(k).or_default();
                t.events += 1;
                t.revenue_minor += revenue;
                t.credits += credits;
                if let Some(u) = user {
                    t.users.insert(u);
                }
            };
            add(key("", "", "", ""), 0, Decimal::ZERO, who);
            let (amount, currency) = f.revenue.unwrap_or((0, ""));
            add(key(f.name, currency, "", ""), amount, Decimal::ZERO, who);
            if let Some(feat) = &f.feature {
                add(key(f.name, "", &feat.plan, &feat.feature), 0, feat.credits, f.user_id);
            }
        }
    }
    out
}

/// Which rows a report reads.
#[derive(Debug, Clone, Copy)]
pub enum Slice<'a> {
    /// The every-event rows.
    All,
    /// Rows per event name (and currency), optionally of one name.
    Names(Option<&'a str>),
    /// Rows per event name with revenue, optionally in one currency.
    Revenue(Option<&'a str>),
    /// Rows per plan and feature of metered actions.
    Features,
}

/// Figures of one local bucket and key, read from rollups or counted from raw events.
#[derive(Debug, Clone)]
pub struct Part {
    pub local_start: NaiveDateTime,
    pub name: String,
    pub currency: String,
    pub plan: String,
    pub feature: String,
    pub totals: Totals,
}

/// One raw event as rollups would count it, with its bucket cut in the report's zone.
#[derive(Debug, Clone)]
pub struct RawFact {
    pub local_start: NaiveDateTime,
    pub name: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub revenue: Option<(i64, String)>,
    pub feature: Option<Feature>,
}

/// The parts of `slice` that raw events make, one per local bucket and key: what their rollup
/// rows would hold.
pub fn raw_parts(facts: &[RawFact], slice: Slice<'_>) -> Vec<Part> {
    type K<'f> = (NaiveDateTime, &'f str, &'f str, &'f str, &'f str);
    let mut out: BTreeMap<K<'_>, Totals> = BTreeMap::new();
    for f in facts {
        let who = f.user_id.as_deref().or(f.anonymous_id.as_deref());
        let (amount, currency) = f.revenue.as_ref().map_or((0, ""), |(a, c)| (*a, c.as_str()));
        let (key, revenue, credits, user): (K<'_>, i64, Decimal, Option<&str>) = match slice {
            Slice::All => ((f.local_start, "", "", "", ""), 0, Decimal::ZERO, who),
            Slice::Names(n) if n.is_none_or(|n| n == f.name) => {
                ((f.local_start, &f.name, currency, "", ""), amount, Decimal::ZERO, who)
            }
            Slice::Revenue(c) if !currency.is_empty() && c.is_none_or(|c| c == currency) => {
                ((f.local_start, &f.name, currency, "", ""), amount, Decimal::ZERO, who)
            }
            Slice::Features => match &f.feature {
                Some(feat) => {
                    ((f.local_start, &f.name, "", &feat.plan, &feat.feature), 0, feat.credits, f.user_id.as_deref())
                }
                None => continue,
            },
            _ => continue,
        };
        let t = out.entry(key).or_default();
        t.events += 1;
        t.revenue_minor += revenue;
        t.credits += credits;
        if let Some(u) = user {
            t.users.insert(u);
        }
    }
    out.into_iter()
        .map(|((local_start, name, currency, plan, feature), totals)| Part {
            local_start,
            name: name.to_owned(),
            currency: currency.to_owned(),
            plan: plan.to_owned(),
            feature: feature.to_owned(),
            totals,
        })
        .collect()
}

/// Where a report over `[from, to)` reads each part: whole closed UTC days from daily rows (when
/// `days` allows), whole closed hours from hourly rows, the rest (partial hours at the edges and
/// the open hour) from the events themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Raw,
    Rollup(Grain),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub source: Source,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

pub fn plan(from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>, days: bool) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut push = |source, a: DateTime<Utc>, b: DateTime<Utc>| {
        if a < b {
            out.push(Segment { source, from: a, to: b });
        }
    };
    // Only closed buckets come from rollups: the open hour is still being written.
    let closed_to = to.min(Grain::Hour.floor(now));
    let (h_from, h_to) = (Grain::Hour.ceil(from), Grain::Hour.floor(closed_to));
    if h_from >= h_to {
        push(Source::Raw, from, to);
        return out;
    }
    push(Source::Raw, from, h_from);
    let (d_from, d_to) = (Grain::Day.ceil(h_from), Grain::Day.floor(h_to));
    if days && d_from < d_to {
        push(Source::Rollup(Grain::Hour), h_from, d_from);
        push(Source::Rollup(Grain::Day), d_from, d_to);
        push(Source::Rollup(Grain::Hour), d_to, h_to);
    } else {
        push(Source::Rollup(Grain::Hour), h_from, h_to);
    }
    push(Source::Raw, h_to, to);
    out
}

/// Parts added up per key of the report that reads them.
fn fold<K: Ord>(parts: Vec<Part>, key: impl Fn(&Part) -> K) -> BTreeMap<K, Totals> {
    let mut out: BTreeMap<K, Totals> = BTreeMap::new();
    for p in parts {
        out.entry(key(&p)).or_default().add(&p.totals);
    }
    out
}

/// A time series: every bucket of `starts` (local start, instant), empty ones included.
pub fn series(starts: Vec<(NaiveDateTime, DateTime<Utc>)>, parts: Vec<Part>) -> Vec<Bucket> {
    let mut by = fold(parts, |p| p.local_start);
    starts
        .into_iter()
        .map(|(local_start, start)| {
            let t = by.remove(&local_start).unwrap_or_default();
            Bucket { start, local_start, events: t.events, unique_users: t.users.estimate() }
        })
        .collect()
}

/// Events per name, most first (then by name), `fetch` rows from `offset`.
pub fn ranked(parts: Vec<Part>, offset: usize, fetch: usize) -> Vec<Breakdown> {
    let mut rows: Vec<Breakdown> = fold(parts, |p| p.name.clone())
        .into_iter()
        .map(|(key, t)| Breakdown { key, events: t.events, unique_users: t.users.estimate() })
        .collect();
    rows.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.key.cmp(&b.key)));
    rows.into_iter().skip(offset).take(fetch).collect()
}

/// Revenue per local bucket and currency, in that order.
pub fn revenue(starts: &[(NaiveDateTime, DateTime<Utc>)], parts: Vec<Part>) -> Vec<RevenueSum> {
    let instant: BTreeMap<NaiveDateTime, DateTime<Utc>> = starts.iter().copied().collect();
    fold(parts, |p| (p.local_start, p.currency.clone()))
        .into_iter()
        .filter_map(|((local_start, currency), t)| {
            Some(RevenueSum {
                local_start,
                start: *instant.get(&local_start)?,
                currency,
                total: t.revenue_minor,
                events: t.events,
            })
        })
        .collect()
}

/// Metered actions per plan and feature; credits rounded as Postgres casts numeric to bigint.
pub fn features(parts: Vec<Part>) -> Vec<FeatureUsage> {
    fold(parts, |p| (p.plan.clone(), p.feature.clone()))
        .into_iter()
        .map(|((plan, feature), t)| FeatureUsage {
            plan,
            feature,
            uses: t.events,
            credits: t
                .credits
                .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                .try_into()
                .unwrap_or(i64::MAX),
            unique_users: t.users.estimate(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap()
    }

    #[test]
    fn a_range_splits_into_raw_edges_hours_and_days() {
        use Source::*;
        let s = plan(t(1, 10, 30), t(4, 5, 15), t(20, 0, 0), true);
        let got: Vec<_> = s.iter().map(|s| (s.source, s.from, s.to)).collect();
        assert_eq!(
            got,
            vec![
                (Raw, t(1, 10, 30), t(1, 11, 0)),
                (Rollup(Grain::Hour), t(1, 11, 0), t(2, 0, 0)),
                (Rollup(Grain::Day), t(2, 0, 0), t(4, 0, 0)),
                (Rollup(Grain::Hour), t(4, 0, 0), t(4, 5, 0)),
                (Raw, t(4, 5, 0), t(4, 5, 15)),
            ]
        );
        // Without days (a zone other than UTC), hours throughout; the open hour is raw.
        let s = plan(t(1, 0, 0), t(3, 0, 0), t(2, 7, 20), false);
        let got: Vec<_> = s.iter().map(|s| (s.source, s.from, s.to)).collect();
        assert_eq!(got, vec![(Rollup(Grain::Hour), t(1, 0, 0), t(2, 7, 0)), (Raw, t(2, 7, 0), t(3, 0, 0))]);
        // Inside one hour: all raw.
        assert_eq!(plan(t(1, 10, 5), t(1, 10, 50), t(9, 0, 0), true).len(), 1);
    }

    #[test]
    fn partial_rows_count_each_event_once_per_grain_and_key() {
        let ws = Uuid::nil();
        let fact = |at, name, user, revenue, feature| Fact {
            tenant: ws,
            at,
            name,
            user_id: user,
            anonymous_id: Some("anon"),
            revenue,
            feature,
        };
        let feat = Feature::from_properties(&json!({"plan": "pro", "action": "image", "credits": 3}));
        let rows = aggregate([
            fact(t(1, 10, 1), "order.paid", Some("u1"), Some((250, "USD")), None),
            fact(t(1, 10, 2), "order.paid", Some("u2"), Some((100, "USD")), None),
            fact(t(1, 11, 0), FEATURE_EVENT, None, None, Some(feat)),
        ]);
        let get = |grain, bucket, name: &str, currency: &str, plan: &str| {
            rows.get(&Key {
                tenant: ws,
                grain,
                bucket,
                name: name.into(),
                currency: currency.into(),
                plan: plan.into(),
                feature: if plan.is_empty() { String::new() } else { "image".into() },
            })
            .cloned()
            .unwrap_or_default()
        };
        let paid = get(Grain::Hour, t(1, 10, 0), "order.paid", "USD", "");
        assert_eq!((paid.events, paid.revenue_minor, paid.users.estimate()), (2, 350, 2));
        let all_day = get(Grain::Day, t(1, 0, 0), "", "", "");
        assert_eq!((all_day.events, all_day.users.estimate()), (3, 3), "u1, u2 and the anonymous one");
        let f = get(Grain::Day, t(1, 0, 0), FEATURE_EVENT, "", "pro");
        assert_eq!((f.events, f.credits, f.users.estimate()), (1, Decimal::from(3), 0), "by user id only");
        // Hours 10 and 11: every-event rows, order.paid/USD, credits charged and its plan row; the day: four.
        assert_eq!(rows.len(), 5 + 4);
    }

    #[test]
    fn feature_properties_read_as_postgres_would() {
        let f = Feature::from_properties(&json!({"credits": "7", "plan": null}));
        assert_eq!(f, Feature { plan: "unknown".into(), feature: String::new(), credits: Decimal::ZERO });
        let f = Feature::from_properties(&json!({"credits": 2.5, "plan": 3, "action": "video"}));
        assert_eq!(f, Feature { plan: "3".into(), feature: "video".into(), credits: "2.5".parse().unwrap() });
    }
}
