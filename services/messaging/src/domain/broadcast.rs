//! Broadcasts: where each recipient's template parameters come from, and how the sender paces
//! itself.

use std::time::Duration;

use nexus_kernel::Error;
use serde_json::Value;

/// Most recipients' sends tried before a recipient fails (throttling answers included).
pub const MAX_ATTEMPTS: i32 = 12;

/// Checks parameter sources: `name`, `phone`, `field:<key>` or `text:<literal>`.
pub fn check_specs(specs: &[String]) -> Result<(), Error> {
    let bad = |s: &str| Error::invalid("messaging.whatsapp_broadcast_param_invalid").with_param("name", s.to_owned());
    if specs.len() > 20 {
        return Err(bad("…"));
    }
    for s in specs {
        let ok = match s.split_once(':') {
            None => matches!(s.as_str(), "name" | "phone"),
            Some(("field", key)) => crate::domain::fields::valid_key(key),
            Some(("text", lit)) => crate::domain::whatsapp::one_line(lit) && lit.chars().count() <= 1_024,
            _ => false,
        };
        if !ok {
            return Err(bad(s));
        }
    }
    Ok(())
}

/// The recipient's parameters from its snapshot `[name, phone, fields]`; `None` when one is
/// blank (Meta refuses empty parameters).
pub fn resolve(specs: &[String], snapshot: &Value) -> Option<Vec<String>> {
    specs
        .iter()
        .map(|s| {
            let v = match s.split_once(':') {
                None if s == "name" => snapshot.get(0).and_then(Value::as_str).map(str::to_owned),
                None => snapshot.get(1).and_then(Value::as_str).map(str::to_owned),
                Some(("field", key)) => snapshot.get(2).and_then(|f| f.get(key)).map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
                Some((_, lit)) => Some(lit.to_owned()),
            };
            v.filter(|v| !v.trim().is_empty()).map(|v| v.replace('\n', " "))
        })
        .collect()
}

/// When a throttled recipient is tried again: 1 s doubling per attempt, at most a minute.
pub fn retry_after(attempts: i32) -> Duration {
    Duration::from_secs(1u64 << attempts.clamp(0, 6).unsigned_abs()).min(Duration::from_secs(60))
}

/// The pace of one number: at most `rate` sends a second; each throttling answer stretches the
/// interval by a quarter (up to a second) and each success takes a tenth off, so steady
/// throttling settles the pace where Meta stops complaining and a stray one costs little.
#[derive(Debug, Clone)]
pub struct Pace {
    base: Duration,
    interval: Duration,
}

impl Pace {
    pub fn new(rate: u32) -> Self {
        let base = Duration::from_secs(1) / rate.max(1);
        Self { base, interval: base }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn throttled(&mut self) {
        self.interval = self.interval.mul_f64(1.25).min(Duration::from_secs(1));
    }

    pub fn succeeded(&mut self) {
        self.interval = self.interval.mul_f64(0.9).max(self.base);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_come_from_the_contact() {
        let specs: Vec<String> = ["name", "field:tier", "text:Hola"].iter().map(|s| (*s).to_owned()).collect();
        check_specs(&specs).unwrap();
        let snap = json!(["Ana", "+34612340000", {"tier": "Gold"}]);
        assert_eq!(resolve(&specs, &snap).unwrap(), vec!["Ana", "Gold", "Hola"]);
        assert!(resolve(&specs, &json!(["", "+3461", {}])).is_none());
        assert!(check_specs(&["email".to_owned()]).is_err());
    }

    #[test]
    fn throttling_slows_the_pace_and_success_wins_it_back() {
        let mut p = Pace::new(80);
        let base = p.interval();
        p.throttled();
        assert!(p.interval() > base);
        for _ in 0..200 {
            p.succeeded();
        }
        assert_eq!(p.interval(), base);
        assert_eq!(retry_after(0), Duration::from_secs(1));
        assert_eq!(retry_after(10), Duration::from_secs(60));
    }
}
