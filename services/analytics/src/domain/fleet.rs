//! Fleet health from the outside: a service's status and, from two successive reads of its
//! Prometheus `/metrics`, request rate, server-error share and p95 latency.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceStatus {
    pub name: String,
    /// "up", "degraded" or "down".
    pub status: &'static str,
    pub request_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub p95_latency_ms: Option<f64>,
    pub checked_at: Option<DateTime<Utc>>,
    pub error: String,
}

/// Cumulative figures of one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub requests: f64,
    pub errors: f64,
    /// (upper bound, cumulative count), ascending; the last is +Inf.
    pub buckets: Vec<(f64, f64)>,
}

/// gRPC codes that mean the server failed (not the caller): UNKNOWN, DEADLINE_EXCEEDED,
/// INTERNAL, UNAVAILABLE, DATA_LOSS, and transport failures.
const SERVER_ERROR_CODES: &[&str] = &["2", "4", "13", "14", "15", "transport"];

/// Reads the figures of `service` from a Prometheus text exposition. The gateway is measured by
/// its HTTP metrics; every other service by its gRPC metrics (labelled with its name).
pub fn sample_of(service: &str, text: &str) -> Option<Sample> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).ok()?;
    let http = service == "gateway";
    let (counter, histogram) = if http {
        ("nexus_http_requests_total", "nexus_http_request_duration_seconds")
    } else {
        ("nexus_grpc_requests_total", "nexus_grpc_request_duration_seconds")
    };
    let ours = |labels: &prometheus_parse::Labels| http || labels.get("service") == Some(service);
    let mut s = Sample::default();
    let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let mut seen = false;
    for sample in &scrape.samples {
        if !ours(&sample.labels) {
            continue;
        }
        let metric = sample.metric.strip_suffix("_bucket").unwrap_or(&sample.metric);
        match (&sample.value, metric) {
            (prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v), m) if m == counter => {
                seen = true;
                s.requests += v;
                let failed = if http {
                    sample.labels.get("status").is_some_and(|c| c.starts_with('5'))
                } else {
                    sample.labels.get("code").is_some_and(|c| SERVER_ERROR_CODES.contains(&c))
                };
                if failed {
                    s.errors += v;
                }
            }
            (prometheus_parse::Value::Histogram(counts), m) if m == histogram => {
                for c in counts {
                    let key = if c.less_than.is_infinite() { u64::MAX } else { (c.less_than * 1e9) as u64 };
                    let e = buckets.entry(key).or_insert((c.less_than, 0.0));
                    e.1 += c.count;
                }
            }
            _ => {}
        }
    }
    s.buckets = buckets.into_values().collect();
    (seen || !s.buckets.is_empty()).then_some(s)
}

/// Rates between two samples `secs` apart: (requests/s, error share, p95 ms). A counter that
/// went down means the process restarted: the new sample counts from zero.
pub fn rates(prev: &Sample, cur: &Sample, secs: f64) -> (f64, f64, Option<f64>) {
    let reset = cur.requests < prev.requests;
    let delta = |c: f64, p: f64| if reset { c } else { (c - p).max(0.0) };
    let requests = delta(cur.requests, prev.requests);
    let errors = delta(cur.errors, prev.errors);
    let rate = if secs > 0.0 { requests / secs } else { 0.0 };
    let error_rate = if requests > 0.0 { errors / requests } else { 0.0 };
    let mut diff: Vec<(f64, f64)> = cur
        .buckets
        .iter()
        .map(|(le, c)| {
            let p = if reset { 0.0 } else { prev.buckets.iter().find(|(l, _)| l == le).map_or(0.0, |(_, c)| *c) };
            (*le, (c - p).max(0.0))
        })
        .collect();
    diff.sort_by(|a, b| a.0.total_cmp(&b.0));
    (rate, error_rate, p95(&diff))
}

/// The 95th percentile (ms) of cumulative histogram buckets, interpolated linearly inside the
/// bucket it falls in; the largest finite bound when it falls past all of them.
pub fn p95(buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let target = 0.95 * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= target {
            if le.is_infinite() {
                return Some(lower.0 * 1000.0);
            }
            let inside = count - lower.1;
            let frac = if inside > 0.0 { (target - lower.1) / inside } else { 1.0 };
            return Some((lower.0 + (le - lower.0) * frac) * 1000.0);
        }
        lower = (le, count);
    }
    None
}

impl ServiceStatus {
    /// A service configured but not read yet.
    pub fn unchecked(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            status: "down",
            request_rate: None,
            error_rate: None,
            p95_latency_ms: None,
            checked_at: None,
            error: "not checked yet".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE_1: &str = "\
# TYPE nexus_grpc_requests_total counter
nexus_grpc_requests_total{service=\"auth\",method=\"/a\",code=\"0\"} 100
nexus_grpc_requests_total{service=\"auth\",method=\"/a\",code=\"13\"} 2
nexus_grpc_requests_total{service=\"auth\",method=\"/a\",code=\"16\"} 5
nexus_grpc_requests_total{service=\"billing\",method=\"/b\",code=\"0\"} 999
# TYPE nexus_grpc_request_duration_seconds histogram
nexus_grpc_request_duration_seconds_bucket{service=\"auth\",method=\"/a\",le=\"0.01\"} 50
nexus_grpc_request_duration_seconds_bucket{service=\"auth\",method=\"/a\",le=\"0.1\"} 100
nexus_grpc_request_duration_seconds_bucket{service=\"auth\",method=\"/a\",le=\"+Inf\"} 107
nexus_grpc_request_duration_seconds_sum{service=\"auth\",method=\"/a\"} 3
nexus_grpc_request_duration_seconds_count{service=\"auth\",method=\"/a\"} 107
";

    const SCRAPE_2: &str = "\
# TYPE nexus_grpc_requests_total counter
nexus_grpc_requests_total{service=\"auth\",method=\"/a\",code=\"0\"} 190
nexus_grpc_requests_total{service=\"auth\",method=\"/a\",code=\"13\"} 12
nexus_grpc_requests_total{service=\"auth\",method=\"/a\",code=\"16\"} 5
# TYPE nexus_grpc_request_duration_seconds histogram
nexus_grpc_request_duration_seconds_bucket{service=\"auth\",method=\"/a\",le=\"0.01\"} 50
nexus_grpc_request_duration_seconds_bucket{service=\"auth\",method=\"/a\",le=\"0.1\"} 150
nexus_grpc_request_duration_seconds_bucket{service=\"auth\",method=\"/a\",le=\"+Inf\"} 207
";

    #[test]
    fn rates_come_from_the_difference_of_two_scrapes() {
        let a = sample_of("auth", SCRAPE_1).unwrap();
        assert_eq!((a.requests, a.errors), (107.0, 2.0));
        let b = sample_of("auth", SCRAPE_2).unwrap();
        let (rate, err, p95) = rates(&a, &b, 10.0);
        assert!((rate - 10.0).abs() < 1e-9, "{rate}");
        assert!((err - 0.1).abs() < 1e-9, "{err}");
        // 100 new requests: 50 in (0.01, 0.1], 50 past 0.1: the 95th is past every finite bound.
        assert_eq!(p95, Some(100.0));
        assert!(sample_of("nobody", SCRAPE_1).is_none());
    }

    #[test]
    fn p95_interpolates_inside_its_bucket() {
        // 100 requests: 90 under 10 ms, 10 between 10 and 20 ms -> p95 at 15 ms.
        let p = p95(&[(0.01, 90.0), (0.02, 100.0), (f64::INFINITY, 100.0)]).unwrap();
        assert!((p - 15.0).abs() < 1e-9, "{p}");
        assert_eq!(p95(&[(0.01, 0.0), (f64::INFINITY, 0.0)]), None);
    }

    #[test]
    fn a_restart_counts_from_zero() {
        let before = Sample { requests: 1000.0, errors: 10.0, buckets: vec![] };
        let after = Sample { requests: 20.0, errors: 1.0, buckets: vec![] };
        let (rate, err, _) = rates(&before, &after, 2.0);
        assert_eq!((rate, err), (10.0, 0.05));
    }
}
