//! The sales pipeline of a workspace: ordered stages ending in won or lost, and deals on it with
//! amounts in exact money.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::{Currency, Error, Money, UserId};
use rust_decimal::Decimal;

/// Stages one pipeline may have, and the length of a stage name or deal title.
pub const STAGES_MAX: usize = 30;
pub const STAGE_NAME_MAX: usize = 60;
pub const TITLE_MAX: usize = 200;

nexus_kernel::word_enum! {
    /// What reaching a stage means for a deal: open stages move on, won and lost close it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Outcome: invalid "messaging.invalid_outcome", param "outcome" {
        #[default]
        Open = "open",
        Won = "won",
        Lost = "lost",
    }
}

impl Outcome {
    pub const fn closes(self) -> bool {
        !matches!(self, Outcome::Open)
    }
}

/// A stage as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineStage {
    pub id: uuid::Uuid,
    pub name: String,
    pub outcome: Outcome,
}

/// One stage of a pipeline being saved: an existing stage (by id) keeps its deals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageDraft {
    pub id: Option<uuid::Uuid>,
    pub name: String,
    pub outcome: Outcome,
}

/// The pipeline a workspace starts with until it saves its own.
pub const DEFAULT_PIPELINE: &[(&str, Outcome)] = &[
    ("New", Outcome::Open),
    ("Qualified", Outcome::Open),
    ("Proposal", Outcome::Open),
    ("Negotiation", Outcome::Open),
    ("Won", Outcome::Won),
    ("Lost", Outcome::Lost),
];

/// The id of the default pipeline's stage at `position` for `workspace`. The same id whether the
/// stage is only shown (the workspace never wrote to its pipeline) or stored (at its first
/// write), so an id read from the shown pipeline stays valid for the write that stores it.
pub fn default_stage_id(workspace: uuid::Uuid, position: usize) -> uuid::Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("nexus.messaging.pipeline.default:{workspace}:{position}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// [`DEFAULT_PIPELINE`] as `workspace` sees it before storing it.
pub fn default_pipeline(workspace: uuid::Uuid) -> Vec<PipelineStage> {
    DEFAULT_PIPELINE
        .iter()
        .enumerate()
        .map(|(position, (name, outcome))| PipelineStage {
            id: default_stage_id(workspace, position),
            name: (*name).to_owned(),
            outcome: *outcome,
        })
        .collect()
}

/// Checks a whole ordered pipeline: 1..=[`STAGES_MAX`] stages, names present, short, printable
/// and unique (ignoring case), ids not repeated, and at least one open stage for new deals.
pub fn check_pipeline(stages: &[(Option<&str>, &str, &str)]) -> Result<Vec<StageDraft>, Error> {
    let bad = |detail: &str| {
        Error::invalid("messaging.invalid_pipeline")
            .with_param("max", STAGES_MAX.to_string())
            .with_violation("items", detail.to_owned())
    };
    if stages.is_empty() || stages.len() > STAGES_MAX {
        return Err(bad("count"));
    }
    let mut out: Vec<StageDraft> = Vec::with_capacity(stages.len());
    for (i, (id, name, outcome)) in stages.iter().enumerate() {
        let id = match id.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(raw) => Some(uuid::Uuid::parse_str(raw).map_err(|_| {
                Error::not_found("messaging.stage_not_found")
                    .with_param("stage", raw.chars().take(40).collect::<String>())
            })?),
        };
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() || name.chars().count() > STAGE_NAME_MAX || name.chars().any(char::is_control) {
            return Err(Error::invalid("messaging.invalid_stage_name")
                .with_param("max", STAGE_NAME_MAX.to_string())
                .with_violation(format!("items[{i}].name"), "invalid"));
        }
        let outcome = if outcome.trim().is_empty() { Outcome::Open } else { outcome.trim().parse()? };
        if out.iter().any(|s| s.name.to_lowercase() == name.to_lowercase()) {
            return Err(Error::invalid("messaging.duplicate_stage_name")
                .with_param("name", name.clone())
                .with_violation(format!("items[{i}].name"), "duplicate"));
        }
        if id.is_some() && out.iter().any(|s| s.id == id) {
            return Err(bad("duplicate_id"));
        }
        out.push(StageDraft { id, name, outcome });
    }
    if !out.iter().any(|s| s.outcome == Outcome::Open) {
        return Err(Error::invalid("messaging.pipeline_needs_open_stage").with_violation("items", "no_open_stage"));
    }
    Ok(out)
}

/// A deal as the use cases see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Deal {
    pub id: uuid::Uuid,
    pub contact_id: uuid::Uuid,
    pub title: String,
    pub stage_id: uuid::Uuid,
    pub amount: Money,
    pub expected_close: Option<NaiveDate>,
    pub owner_id: Option<UserId>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A deal's attributes, checked. `None` leaves an attribute as it is on update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DealDraft {
    pub contact_id: Option<uuid::Uuid>,
    pub title: Option<String>,
    pub stage_id: Option<uuid::Uuid>,
    pub amount: Option<Money>,
    /// `Some(None)` clears the date.
    pub expected_close: Option<Option<NaiveDate>>,
    pub owner_id: Option<Option<UserId>>,
}

/// Attributes a caller may set on a deal.
pub const MASK_FIELDS: &[&str] = &["contact_id", "title", "stage_id", "amount", "expected_close", "owner_id"];

/// A deal as a request gives it: ids and dates as text, the amount in minor units.
#[derive(Debug, Clone, Default)]
pub struct DealInput<'a> {
    pub contact_id: &'a str,
    pub title: &'a str,
    /// Empty on a new deal: the pipeline's first open stage.
    pub stage_id: &'a str,
    /// Minor units and currency; `None` when the request has none.
    pub amount: Option<(i64, &'a str)>,
    pub expected_close: &'a str,
    pub owner_id: &'a str,
}

impl DealInput<'_> {
    /// Checks a new deal (`mask` `None`: contact, title and amount required) or the attributes an
    /// update names in its mask (at least one).
    pub fn check(&self, mask: Option<&[String]>) -> Result<DealDraft, Error> {
        let wants = |f: &str| mask.is_none_or(|m| m.iter().any(|x| x.trim() == f));
        if let Some(m) = mask {
            if let Some(bad) = m.iter().find(|x| !MASK_FIELDS.contains(&x.trim())) {
                return Err(Error::invalid("messaging.invalid_update_mask")
                    .with_param("field", bad.chars().take(40).collect::<String>())
                    .with_violation("update_mask", "unknown"));
            }
            if m.is_empty() {
                return Err(Error::invalid("messaging.update_mask_required").with_violation("update_mask", "required"));
            }
        }
        let mut d = DealDraft::default();
        if wants("contact_id") {
            // An id that cannot exist is as unknown as another workspace's.
            let id = uuid::Uuid::parse_str(self.contact_id.trim())
                .map_err(|_| Error::not_found("messaging.contact_not_found"))?;
            d.contact_id = Some(id);
        }
        if wants("title") {
            d.title = Some(title(self.title)?);
        }
        if wants("stage_id") && !(mask.is_none() && self.stage_id.trim().is_empty()) {
            let id = uuid::Uuid::parse_str(self.stage_id.trim()).map_err(|_| {
                Error::not_found("messaging.stage_not_found")
                    .with_param("stage", self.stage_id.chars().take(40).collect::<String>())
            })?;
            d.stage_id = Some(id);
        }
        if wants("amount") {
            let (minor, currency) = self
                .amount
                .ok_or_else(|| Error::invalid("messaging.invalid_amount").with_violation("amount", "required"))?;
            d.amount = Some(amount(minor, currency)?);
        }
        if wants("expected_close") {
            d.expected_close = Some(close_date(self.expected_close)?);
        }
        if wants("owner_id") {
            let raw = self.owner_id.trim();
            d.owner_id = Some(if raw.is_empty() { None } else { Some(super::activity::member_id(raw, "owner_id")?) });
        }
        Ok(d)
    }
}

pub fn title(raw: &str) -> Result<String, Error> {
    let t = raw.trim();
    if t.is_empty() || t.chars().count() > TITLE_MAX || t.chars().any(char::is_control) {
        return Err(Error::invalid("messaging.invalid_deal_title")
            .with_param("max", TITLE_MAX.to_string())
            .with_violation("title", "invalid"));
    }
    Ok(t.to_owned())
}

/// `YYYY-MM-DD`; empty clears.
pub fn close_date(raw: &str) -> Result<Option<NaiveDate>, Error> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| Error::invalid("messaging.invalid_close_date").with_violation("expected_close", "invalid"))
}

/// An amount in minor units with its currency: a supported currency, not negative.
pub fn amount(amount_minor: i64, currency: &str) -> Result<Money, Error> {
    let currency: Currency = currency.trim().parse()?;
    if amount_minor < 0 {
        return Err(Error::invalid("messaging.invalid_amount").with_violation("amount.amount_minor", "negative"));
    }
    Ok(Money::new(amount_minor, currency))
}

/// An amount written as a decimal (`"19.99"`) in `currency`: exact, never rounded — more
/// fractional digits than the currency has are refused.
pub fn amount_from_decimal(raw: &str, currency: &str) -> Result<Money, Error> {
    let currency: Currency = currency.trim().parse()?;
    let bad = || Error::invalid("messaging.invalid_amount").with_violation("amount", "invalid");
    let d = Decimal::from_str(raw.trim()).map_err(|_| bad())?.normalize();
    if d.is_sign_negative() || d.scale() > u32::from(currency.minor_digits()) {
        return Err(bad());
    }
    let minor = d.checked_mul(Decimal::from(10i64.pow(u32::from(currency.minor_digits())))).ok_or_else(bad)?;
    let minor = i64::try_from(minor).map_err(|_| bad())?;
    Ok(Money::new(minor, currency))
}

/// The exact decimal of an amount (`1999 USD` → `19.99`).
pub fn to_decimal(m: Money) -> Decimal {
    Decimal::new(m.amount_minor, u32::from(m.currency.minor_digits()))
}

/// The total of amounts that must share one currency (a stage's value, a contact's deals):
/// mixing currencies is refused rather than converted.
pub fn total(amounts: &[Money]) -> Result<Option<Money>, Error> {
    let mut it = amounts.iter();
    let Some(first) = it.next() else { return Ok(None) };
    it.try_fold(*first, |acc, m| acc.checked_add(*m)).map(Some)
}

/// When a deal entering a stage of `outcome` is closed: won and lost stages close it (keeping an
/// earlier close time when it moves between closing stages), open stages reopen it.
pub fn closed_at(outcome: Outcome, was: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if outcome.closes() { Some(was.unwrap_or(now)) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_amounts_are_exact() {
        let price = amount_from_decimal("19.99", "USD").unwrap();
        assert_eq!(price.amount_minor, 1999);
        // Three of them, added and multiplied, come to exactly 59.97 (floats give 59.970000000000006).
        let three = total(&[price, price, price]).unwrap().unwrap();
        assert_eq!(three, price.mul_ratio(3, 1).unwrap());
        assert_eq!(to_decimal(three).to_string(), "59.97");
        let dimes = [amount_from_decimal("0.1", "USD").unwrap(), amount_from_decimal("0.2", "USD").unwrap()];
        assert_eq!(to_decimal(total(&dimes).unwrap().unwrap()).to_string(), "0.30");
        assert_eq!(amount_from_decimal("1500", "JPY").unwrap().amount_minor, 1500);
        assert_eq!(amount_from_decimal("1.250", "KWD").unwrap().amount_minor, 1250);
        assert_eq!(amount_from_decimal("19.990", "USD").unwrap().amount_minor, 1999);
        for (raw, cur) in [
            ("19.999", "USD"),
            ("19.5", "JPY"),
            ("-1", "USD"),
            ("1e400", "USD"),
            ("ten", "USD"),
            ("79228162514264337593543950335", "USD"),
            ("92233720368547758.08", "USD"),
        ] {
            assert_eq!(amount_from_decimal(raw, cur).unwrap_err().code(), "messaging.invalid_amount", "{raw} {cur}");
        }
        assert_eq!(amount_from_decimal("1", "XYZ").unwrap_err().code(), "money.unsupported_currency");
    }

    #[test]
    fn mixed_currencies_are_refused() {
        let usd = amount(1999, "USD").unwrap();
        let eur = amount(1999, "EUR").unwrap();
        assert_eq!(total(&[usd, eur]).unwrap_err().code(), "money.currency_mismatch");
        assert_eq!(total(&[]).unwrap(), None);
        assert_eq!(amount(-1, "USD").unwrap_err().code(), "messaging.invalid_amount");
        assert_eq!(amount(1, "usd").unwrap_err().code(), "money.unsupported_currency");
    }

    #[test]
    fn pipelines_are_checked() {
        let ok = check_pipeline(&[(None, " Lead  in ", ""), (None, "Won", "won")]).unwrap();
        assert_eq!((ok[0].name.as_str(), ok[0].outcome, ok[1].outcome), ("Lead in", Outcome::Open, Outcome::Won));
        assert_eq!(check_pipeline(&[]).unwrap_err().code(), "messaging.invalid_pipeline");
        let many: Vec<String> = (0..=STAGES_MAX).map(|i| format!("s{i}")).collect();
        let many: Vec<_> = many.iter().map(|n| (None, n.as_str(), "open")).collect();
        assert_eq!(check_pipeline(&many).unwrap_err().code(), "messaging.invalid_pipeline");
        let dup = check_pipeline(&[(None, "Won", "won"), (None, "won", "open")]).unwrap_err();
        assert_eq!(dup.code(), "messaging.duplicate_stage_name");
        assert_eq!(check_pipeline(&[(None, "Won", "won")]).unwrap_err().code(), "messaging.pipeline_needs_open_stage");
        assert_eq!(check_pipeline(&[(None, "A", "maybe")]).unwrap_err().code(), "messaging.invalid_outcome");
        assert_eq!(check_pipeline(&[(None, "", "open")]).unwrap_err().code(), "messaging.invalid_stage_name");
        assert_eq!(check_pipeline(&[(Some("x"), "A", "open")]).unwrap_err().code(), "messaging.stage_not_found");
        let defaults: Vec<_> = DEFAULT_PIPELINE.iter().map(|(n, o)| (None, *n, o.as_str())).collect();
        assert_eq!(check_pipeline(&defaults).unwrap().len(), DEFAULT_PIPELINE.len());
    }

    #[test]
    fn deal_input_and_update_masks() {
        let contact = uuid::Uuid::now_v7().to_string();
        let input =
            DealInput { contact_id: &contact, title: "Annual plan", amount: Some((1999, "USD")), ..Default::default() };
        let d = input.check(None).unwrap();
        assert_eq!((d.stage_id, d.amount.unwrap().amount_minor, d.owner_id), (None, 1999, Some(None)));
        let no_amount = DealInput { amount: None, ..input.clone() };
        assert_eq!(no_amount.check(None).unwrap_err().code(), "messaging.invalid_amount");
        let only_title = input.check(Some(&["title".into()])).unwrap();
        assert_eq!((only_title.title.as_deref(), only_title.amount), (Some("Annual plan"), None));
        assert_eq!(input.check(Some(&["price".into()])).unwrap_err().code(), "messaging.invalid_update_mask");
        assert_eq!(input.check(Some(&[])).unwrap_err().code(), "messaging.update_mask_required");
        let bad_stage = DealInput { stage_id: "nope", ..input.clone() };
        assert_eq!(bad_stage.check(Some(&["stage_id".into()])).unwrap_err().code(), "messaging.stage_not_found");
        let bad_owner = DealInput { owner_id: "bob", ..input.clone() };
        assert_eq!(bad_owner.check(None).unwrap_err().code(), "messaging.invalid_member_id");
    }

    #[test]
    fn closing_stages_set_the_close_time_once() {
        let t0 = Utc::now();
        let t1 = t0 + chrono::Duration::hours(1);
        assert_eq!(closed_at(Outcome::Won, None, t0), Some(t0));
        assert_eq!(closed_at(Outcome::Lost, Some(t0), t1), Some(t0));
        assert_eq!(closed_at(Outcome::Open, Some(t0), t1), None);
        assert_eq!(title(" Annual plan ").unwrap(), "Annual plan");
        assert_eq!(title("").unwrap_err().code(), "messaging.invalid_deal_title");
        assert_eq!(close_date("2026-13-01").unwrap_err().code(), "messaging.invalid_close_date");
        assert_eq!(close_date("").unwrap(), None);
    }
}
