//! Churn risk: an explainable model of whether a subject (a workspace's customer, or a workspace
//! of the platform) goes quiet. Logistic regression over standardized features, L2-regularized,
//! trained by full-batch gradient descent — small enough to read, deterministic, and each score
//! splits exactly into per-feature contributions (coefficient × standardized value), which is
//! what "top factors" shows. Quality is measured on a held-out share of subjects chosen by a hash
//! of their id (stable from run to run): rank AUC, a 10-bin reliability table and the Brier score.

use sha2::{Digest, Sha256};

/// The features, in model order. Counts are taken as `ln(1 + x)` before standardizing: activity
/// is heavy-tailed, and one power user should not set the scale for everyone else.
pub const FEATURES: [&str; 8] = [
    "days_since_last_event",
    "events_30d",
    "active_days_30d",
    "credit_charges_30d",
    "credits_burned_30d",
    "failed_payments_30d",
    "feature_breadth_30d",
    "support_signals_30d",
];
pub const N: usize = FEATURES.len();

/// Stable code of the "not enough data" answer.
pub const NOT_ENOUGH_DATA: &str = "analytics.churn_not_enough_data";

/// Whose churn a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Population {
    /// A workspace's own end users (its events' user ids).
    Customers,
    /// The platform's workspaces (operators only).
    Platform,
}

impl Population {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Platform => "platform",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customers" => Some(Self::Customers),
            "platform" => Some(Self::Platform),
            _ => None,
        }
    }
}

/// Raw features of one subject at one instant, as the repository counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Features {
    pub days_since_last: f64,
    pub events: f64,
    pub active_days: f64,
    pub credit_charges: f64,
    pub credits: f64,
    pub failed_payments: f64,
    pub breadth: f64,
    pub support: f64,
}

impl Features {
    /// The model's input: recency as days, counts as `ln(1 + x)`.
    pub fn vector(&self) -> [f64; N] {
        let l = |x: f64| x.max(0.0).ln_1p();
        [
            self.days_since_last.max(0.0),
            l(self.events),
            l(self.active_days),
            l(self.credit_charges),
            l(self.credits),
            l(self.failed_payments),
            l(self.breadth),
            l(self.support),
        ]
    }
}

/// A subject with its features and, for training, whether it churned.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub subject: String,
    pub features: Features,
    pub churned: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// L2 penalty on the coefficients (not the intercept).
    pub l2: f64,
    pub learning_rate: f64,
    pub iterations: usize,
    /// Fewer subjects than this: no model.
    pub min_subjects: usize,
    /// Fewer churned, or fewer retained, subjects than this: no model.
    pub min_per_class: usize,
    /// Share of subjects (percent, by hash of their id) held out for measuring quality.
    pub holdout_percent: u8,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            l2: 0.01,
            learning_rate: 0.5,
            iterations: 500,
            min_subjects: 100,
            min_per_class: 10,
            holdout_percent: 30,
        }
    }
}

/// A trained model: standardization and coefficients per feature, and the intercept.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Model {
    pub features: Vec<String>,
    pub means: Vec<f64>,
    pub stds: Vec<f64>,
    pub coefficients: Vec<f64>,
    pub intercept: f64,
}

/// One feature's part in a score: its contribution to the log-odds (positive raises the risk).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Factor {
    pub feature: String,
    /// The subject's raw (model-input) value of the feature.
    pub value: f64,
    pub contribution: f64,
}

/// One reliability bin: subjects whose predicted risk fell in `[lower, upper)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// Quality on held-out subjects.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quality {
    pub auc: f64,
    pub brier: f64,
    pub bins: Vec<Bin>,
    pub train_subjects: u64,
    pub test_subjects: u64,
    pub churned: u64,
}

/// Why no model was trained: the counts, and the minimums they fell short of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shortfall {
    pub subjects: u64,
    pub churned: u64,
    pub retained: u64,
    pub min_subjects: u64,
    pub min_per_class: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Trained {
    Model { model: Model, quality: Quality },
    NotEnoughData(Shortfall),
}

/// Whether `subject` is in the held-out share: a hash of its id, so the split is the same on
/// every run and on every replica.
pub fn held_out(subject: &str, percent: u8) -> bool {
    let h = Sha256::digest(subject.as_bytes());
    let n = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    n % 100 < u64::from(percent)
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl Model {
    fn standardized(&self, x: &[f64; N]) -> [f64; N] {
        let mut z = [0.0; N];
        for j in 0..N {
            z[j] = (x[j] - self.means[j]) / self.stds[j];
        }
        z
    }

    /// Probability of churn in the outcome window.
    pub fn score(&self, f: &Features) -> f64 {
        let z = self.standardized(&f.vector());
        sigmoid(self.intercept + z.iter().zip(&self.coefficients).map(|(a, b)| a * b).sum::<f64>())
    }

    /// The `k` largest contributions to the log-odds by magnitude, signed, largest first.
    pub fn factors(&self, f: &Features, k: usize) -> Vec<Factor> {
        let x = f.vector();
        let z = self.standardized(&x);
        let mut out: Vec<Factor> = (0..N)
            .map(|j| Factor {
                feature: self.features[j].clone(),
                value: x[j],
                contribution: self.coefficients[j] * z[j],
            })
            .collect();
        out.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()).then(a.feature.cmp(&b.feature)));
        out.truncate(k);
        out
    }

    /// The model is sound to store: one value per feature, finite, no zero scale.
    pub fn is_consistent(&self) -> bool {
        let n = self.features.len();
        n == N
            && [&self.means, &self.stds, &self.coefficients]
                .iter()
                .all(|v| v.len() == n && v.iter().all(|x| x.is_finite()))
            && self.stds.iter().all(|s| *s > 0.0)
            && self.intercept.is_finite()
    }
}

/// Fits the model on `train` (standardization from the training rows only).
pub fn fit(train: &[([f64; N], bool)], cfg: &TrainConfig) -> Model {
    let n = train.len().max(1) as f64;
    let mut means = [0.0; N];
    for (x, _) in train {
        for j in 0..N {
            means[j] += x[j] / n;
        }
    }
    let mut stds = [0.0; N];
    for (x, _) in train {
        for j in 0..N {
            stds[j] += (x[j] - means[j]).powi(2) / n;
        }
    }
    // A feature that never varies carries no information; a unit scale keeps it at zero.
    let stds = stds.map(|v| if v.sqrt() > 1e-9 { v.sqrt() } else { 1.0 });
    let rows: Vec<([f64; N], f64)> = train
        .iter()
        .map(|(x, y)| {
            let mut z = [0.0; N];
            for j in 0..N {
                z[j] = (x[j] - means[j]) / stds[j];
            }
            (z, if *y { 1.0 } else { 0.0 })
        })
        .collect();
    let (mut w, mut b) = ([0.0; N], 0.0);
    // Mean log loss + l2/2 |w|^2 is convex and, on standardized inputs, smooth enough that a
    // fixed step converges; full batch keeps it deterministic.
    for _ in 0..cfg.iterations {
        let (mut gw, mut gb) = ([0.0; N], 0.0);
        for (z, y) in &rows {
            let p = sigmoid(b + z.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>());
            let e = p - y;
            gb += e / n;
            for j in 0..N {
                gw[j] += e * z[j] / n;
            }
        }
        b -= cfg.learning_rate * gb;
        for j in 0..N {
            w[j] -= cfg.learning_rate * (gw[j] + cfg.l2 * w[j]);
        }
    }
    Model {
        features: FEATURES.iter().map(|s| (*s).to_owned()).collect(),
        means: means.to_vec(),
        stds: stds.to_vec(),
        coefficients: w.to_vec(),
        intercept: b,
    }
}

/// Trains on `examples` and measures on the held-out ones, or says why it cannot.
pub fn train(examples: &[Example], cfg: &TrainConfig) -> Trained {
    let churned = examples.iter().filter(|e| e.churned).count() as u64;
    let shortfall = Shortfall {
        subjects: examples.len() as u64,
        churned,
        retained: examples.len() as u64 - churned,
        min_subjects: cfg.min_subjects as u64,
        min_per_class: cfg.min_per_class as u64,
    };
    if examples.len() < cfg.min_subjects
        || shortfall.churned < shortfall.min_per_class
        || shortfall.retained < shortfall.min_per_class
    {
        return Trained::NotEnoughData(shortfall);
    }
    let (test, train): (Vec<&Example>, Vec<&Example>) =
        examples.iter().partition(|e| held_out(&e.subject, cfg.holdout_percent));
    let has_both = |s: &[&Example]| s.iter().any(|e| e.churned) && s.iter().any(|e| !e.churned);
    // Both classes on both sides, or neither fitting nor AUC means anything.
    if !has_both(&train) || !has_both(&test) {
        return Trained::NotEnoughData(shortfall);
    }
    let rows: Vec<([f64; N], bool)> = train.iter().map(|e| (e.features.vector(), e.churned)).collect();
    let model = fit(&rows, cfg);
    let scored: Vec<(f64, bool)> = test.iter().map(|e| (model.score(&e.features), e.churned)).collect();
    let (bins, brier) = calibration(&scored, 10);
    let quality = Quality {
        auc: auc(&scored).unwrap_or(0.5),
        brier,
        bins,
        train_subjects: train.len() as u64,
        test_subjects: test.len() as u64,
        churned,
    };
    Trained::Model { model, quality }
}

/// Area under the ROC curve from ranks (Mann-Whitney U; tied scores share their mean rank): the
/// chance a random churner scores above a random retained subject. None without both classes.
pub fn auc(scored: &[(f64, bool)]) -> Option<f64> {
    let pos = scored.iter().filter(|s| s.1).count();
    let neg = scored.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut sorted: Vec<&(f64, bool)> = scored.iter().collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1].0 == sorted[i].0 {
            j += 1;
        }
        // Ranks i+1..=j+1, averaged over the tie.
        let mean_rank = (i + j + 2) as f64 / 2.0;
        rank_sum += mean_rank * sorted[i..=j].iter().filter(|s| s.1).count() as f64;
        i = j + 1;
    }
    let (p, n) = (pos as f64, neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// `bins` equal-width reliability bins over [0, 1] (empty ones included) and the Brier score
/// (mean squared error of the predicted probability).
pub fn calibration(scored: &[(f64, bool)], bins: usize) -> (Vec<Bin>, f64) {
    let bins = bins.max(1);
    let mut acc = vec![(0u64, 0.0, 0.0); bins];
    let mut se = 0.0;
    for &(p, y) in scored {
        let y = if y { 1.0 } else { 0.0 };
        se += (p - y).powi(2);
        let k = ((p * bins as f64) as usize).min(bins - 1);
        acc[k].0 += 1;
        acc[k].1 += p;
        acc[k].2 += y;
    }
    let out = acc
        .into_iter()
        .enumerate()
        .map(|(k, (count, sp, sy))| {
            let c = count.max(1) as f64;
            Bin {
                lower: k as f64 / bins as f64,
                upper: (k + 1) as f64 / bins as f64,
                count,
                mean_predicted: if count > 0 { sp / c } else { 0.0 },
                observed_rate: if count > 0 { sy / c } else { 0.0 },
            }
        })
        .collect();
    let brier = if scored.is_empty() { 0.0 } else { se / scored.len() as f64 };
    (out, brier)
}

/// Whether a score crossed into high risk: now at or above `threshold`, and not high before.
pub fn crossed_high(was_high: bool, score: f64, threshold: f64) -> bool {
    !was_high && score >= threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(days: f64, events: f64) -> Features {
        Features { days_since_last: days, events, active_days: events.min(30.0), ..Features::default() }
    }

    #[test]
    fn auc_from_known_ranks() {
        // Perfect, reversed, and one swapped pair out of 2x2 = 4 pairs.
        let perfect = [(0.9, true), (0.8, true), (0.2, false), (0.1, false)];
        assert_eq!(auc(&perfect), Some(1.0));
        let reversed = [(0.1, true), (0.2, true), (0.8, false), (0.9, false)];
        assert_eq!(auc(&reversed), Some(0.0));
        let one_swap = [(0.9, true), (0.3, true), (0.5, false), (0.1, false)];
        assert_eq!(auc(&one_swap), Some(0.75));
        // All tied: a coin.
        assert_eq!(auc(&[(0.5, true), (0.5, false), (0.5, true)]), Some(0.5));
        assert_eq!(auc(&[(0.5, true)]), None);
    }

    #[test]
    fn calibration_bins_and_brier() {
        let scored = [(0.05, false), (0.15, false), (0.15, true), (0.95, true), (1.0, true)];
        let (bins, brier) = calibration(&scored, 10);
        assert_eq!(bins.len(), 10);
        assert_eq!(bins[0].count, 1);
        assert_eq!((bins[1].count, bins[1].observed_rate), (2, 0.5));
        assert!((bins[1].mean_predicted - 0.15).abs() < 1e-12);
        // 1.0 lands in the last bin, not past it.
        assert_eq!(bins[9].count, 2);
        assert_eq!(bins[5].count, 0);
        let expected = (0.05f64.powi(2) + 0.15f64.powi(2) + 0.85f64.powi(2) + 0.05f64.powi(2) + 0.0) / 5.0;
        assert!((brier - expected).abs() < 1e-12, "{brier}");
    }

    #[test]
    fn a_separable_set_is_learned_and_explained() {
        // Churners: long silence, little activity; everyone else: recent and busy.
        let examples: Vec<Example> = (0..400)
            .map(|i| {
                let churned = i % 2 == 0;
                let jitter = f64::from(i % 7);
                let features =
                    if churned { f(20.0 + jitter, 1.0 + jitter / 7.0) } else { f(1.0 + jitter / 7.0, 40.0 + jitter) };
                Example { subject: format!("u{i}"), features, churned }
            })
            .collect();
        let Trained::Model { model, quality } = train(&examples, &TrainConfig::default()) else { panic!("no model") };
        assert!(model.is_consistent());
        assert_eq!(quality.auc, 1.0, "{quality:?}");
        assert!(quality.brier < 0.05, "{quality:?}");
        assert_eq!(quality.train_subjects + quality.test_subjects, 400);
        // Recency raises the risk, activity lowers it.
        assert!(model.coefficients[0] > 0.0 && model.coefficients[1] < 0.0, "{model:?}");
        let risky = f(25.0, 1.0);
        assert!(model.score(&risky) > 0.9);
        assert!(model.score(&f(0.5, 45.0)) < 0.1);
        let top = model.factors(&risky, 3);
        assert_eq!(top.len(), 3);
        assert!(top[0].contribution.abs() >= top[1].contribution.abs());
        assert!(top.iter().any(|t| t.feature == "days_since_last_event" && t.contribution > 0.0), "{top:?}");
    }

    #[test]
    fn too_little_data_is_said_plainly() {
        let few: Vec<Example> =
            (0..50).map(|i| Example { subject: format!("u{i}"), features: f(1.0, 3.0), churned: i % 2 == 0 }).collect();
        match train(&few, &TrainConfig::default()) {
            Trained::NotEnoughData(s) => assert_eq!((s.subjects, s.churned, s.min_subjects), (50, 25, 100)),
            Trained::Model { .. } => panic!("a model from 50 subjects"),
        }
        // Enough subjects, but one class almost empty.
        let lopsided: Vec<Example> =
            (0..300).map(|i| Example { subject: format!("u{i}"), features: f(1.0, 3.0), churned: i < 5 }).collect();
        assert!(matches!(train(&lopsided, &TrainConfig::default()), Trained::NotEnoughData(s) if s.churned == 5));
    }

    #[test]
    fn the_holdout_is_stable_and_near_its_share() {
        let ids: Vec<String> = (0..2000).map(|i| format!("user-{i}")).collect();
        let held = ids.iter().filter(|i| held_out(i, 30)).count();
        assert!((500..700).contains(&held), "{held}");
        assert!(ids.iter().all(|i| held_out(i, 30) == held_out(i, 30)));
        assert!(!ids.iter().any(|i| held_out(i, 0)));
    }

    #[test]
    fn crossing_is_from_below_only() {
        assert!(crossed_high(false, 0.8, 0.7));
        assert!(!crossed_high(true, 0.9, 0.7));
        assert!(!crossed_high(false, 0.5, 0.7));
    }
}
