//! One way for every benchmark to report a figure against its same-run baseline and its goal.
//!
//! Each [`Result`] is printed as one line and, when `NEXUS_BENCH_RESULTS` names a file (`make
//! bench` sets it), appended there as a JSON line; `deploy/local/bench_report.py` turns that file
//! into `BENCHMARKS.md`. A benchmark keeps printing its own details (plans, percentiles) as well.

use std::io::Write;

/// What a compared figure must reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// The compared figure must be at least this (a ratio to the baseline, usually).
    AtLeast(f64),
    /// The compared figure must be at most this (a latency or a memory ceiling).
    AtMost(f64),
}

impl Goal {
    pub fn holds(self, value: f64) -> bool {
        match self {
            Goal::AtLeast(g) => value >= g,
            Goal::AtMost(g) => value <= g,
        }
    }

    fn describe(self, unit: &str) -> String {
        let unit = if unit.is_empty() { String::new() } else { format!(" {unit}") };
        match self {
            Goal::AtLeast(g) => format!(">= {g}{unit}"),
            Goal::AtMost(g) => format!("<= {g}{unit}"),
        }
    }
}

/// One benchmark figure: what was measured, the same run's baseline, and the goal it is held to.
#[derive(Debug, Clone)]
pub struct Result<'a> {
    /// `<service>/<bench>`, e.g. `gateway/reads`.
    pub bench: &'a str,
    /// What the figure is, in a few words.
    pub name: &'a str,
    /// The candidate's figure and its unit (`req/s`, `ms`, `MiB`).
    pub value: f64,
    pub unit: &'a str,
    /// The same run's baseline (what it is, its figure, its unit), when the goal is a ratio.
    pub baseline: Option<(&'a str, f64, &'a str)>,
    /// The goal; a ratio goal compares `value / baseline`, any other compares `value`.
    pub goal: Goal,
}

impl Result<'_> {
    /// The figure the goal is checked against: the ratio when there is a baseline.
    pub fn compared(&self) -> f64 {
        match self.baseline {
            Some((_, b, _)) if b > 0.0 => self.value / b,
            // A baseline that measured nothing makes no ratio: the goal cannot hold.
            Some(_) => f64::NAN,
            None => self.value,
        }
    }

    pub fn pass(&self) -> bool {
        self.compared().is_finite() && self.goal.holds(self.compared())
    }

    /// Prints the line and appends the JSON record; returns whether the goal holds.
    pub fn report(&self) -> bool {
        let pass = self.pass();
        let verdict = if pass { "PASS" } else { "MISS" };
        let line = match self.baseline {
            Some((what, b, unit)) => format!(
                "RESULT {}: {} {:.1} {} against {what} {b:.1} {unit}: ratio {:.3} (goal {}) {verdict}",
                self.bench,
                self.name,
                self.value,
                self.unit,
                self.compared(),
                self.goal.describe("")
            ),
            None => format!(
                "RESULT {}: {} {:.1} {} (goal {}) {verdict}",
                self.bench,
                self.name,
                self.value,
                self.unit,
                self.goal.describe(self.unit)
            ),
        };
        #[allow(clippy::print_stdout)] // a benchmark reports on stdout
        {
            println!("{line}");
        }
        if let Ok(path) = std::env::var("NEXUS_BENCH_RESULTS")
            && !path.is_empty()
        {
            let (goal_kind, goal) = match self.goal {
                Goal::AtLeast(g) => ("at_least", g),
                Goal::AtMost(g) => ("at_most", g),
            };
            let record = serde_json::json!({
                "bench": self.bench,
                "name": self.name,
                "value": self.value,
                "unit": self.unit,
                "baseline": self.baseline.map(|(what, b, unit)| serde_json::json!({"what": what, "value": b, "unit": unit})),
                "compared": self.compared(),
                "goal": {"kind": goal_kind, "value": goal},
                "pass": pass,
            });
            // Appends of one short line each: concurrent benches cannot interleave within it.
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| writeln!(f, "{record}"));
            if let Err(e) = written {
                eprintln!("bench results: cannot append to {path}: {e}");
            }
        }
        pass
    }
}

/// Resident set size of a process in MiB (`VmRSS` of `/proc/<pid>/status`), `None` where there
/// is no such file.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_goal_compares_value_over_baseline() {
        let r = Result {
            bench: "x/y",
            name: "n",
            value: 40.0,
            unit: "req/s",
            baseline: Some(("floor", 100.0, "req/s")),
            goal: Goal::AtLeast(0.5),
        };
        assert!((r.compared() - 0.4).abs() < 1e-9);
        assert!(!r.pass());
        let r = Result { value: 50.0, ..r };
        assert!(r.pass());
    }

    #[test]
    fn a_ceiling_compares_the_value_itself_and_a_zero_baseline_never_passes() {
        let r = Result { bench: "x/y", name: "p99", value: 26.0, unit: "ms", baseline: None, goal: Goal::AtMost(50.0) };
        assert!(r.pass());
        assert!(!Result { value: 51.0, ..r.clone() }.pass());
        let zero = Result { baseline: Some(("floor", 0.0, "req/s")), goal: Goal::AtLeast(0.0), ..r };
        assert!(zero.compared().is_nan());
        assert!(!zero.pass());
    }

    #[test]
    fn rss_of_this_process_is_read() {
        let mib = rss_mib(std::process::id()).expect("linux /proc");
        assert!(mib > 1.0 && mib < 4096.0, "{mib}");
    }
}
