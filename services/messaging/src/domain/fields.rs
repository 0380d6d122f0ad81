//! Custom fields: typed attributes a workspace defines for its contacts.

use std::str::FromStr;

use chrono::NaiveDate;
use nexus_kernel::Error;
use rust_decimal::Decimal;
use serde_json::Value;

/// Fields one workspace may define, options of a choice field, and the longest text value.
pub const FIELDS_MAX: usize = 100;
pub const OPTIONS_MAX: usize = 50;
pub const OPTION_MAX: usize = 100;
pub const TEXT_MAX: usize = 1_000;
pub const LABEL_MAX: usize = 100;

nexus_kernel::word_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum FieldKind: invalid "messaging.invalid_field_kind", param "kind" {
        Text = "text",
        Number = "number",
        Date = "date",
        Choice = "choice",
    }
}

/// A field definition, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    /// `snake_case`, stable: values are stored under it.
    pub key: String,
    pub label: String,
    pub kind: FieldKind,
    /// Allowed values of a choice field (empty for the others).
    pub options: Vec<String>,
}

/// A custom field's key: a lowercase letter, then up to 39 lowercase letters, digits or `_`.
pub fn valid_key(key: &str) -> bool {
    (1..=40).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl FieldDef {
    pub fn new(key: &str, label: &str, kind: FieldKind, options: &[String]) -> Result<FieldDef, Error> {
        let key = key.trim();
        if !valid_key(key) {
            return Err(Error::invalid("messaging.invalid_field_key").with_violation("key", "invalid"));
        }
        let label = label.trim();
        if label.is_empty() || label.chars().count() > LABEL_MAX || label.chars().any(char::is_control) {
            return Err(Error::invalid("messaging.invalid_field_label").with_violation("label", "invalid"));
        }
        let mut opts: Vec<String> = Vec::new();
        if kind == FieldKind::Choice {
            for o in options {
                let o = o.trim();
                if o.is_empty() || o.chars().count() > OPTION_MAX || o.chars().any(char::is_control) {
                    return Err(Error::invalid("messaging.invalid_field_options").with_violation("options", "invalid"));
                }
                if !opts.iter().any(|x| x == o) {
                    opts.push(o.to_owned());
                }
            }
            if opts.is_empty() || opts.len() > OPTIONS_MAX {
                return Err(Error::invalid("messaging.invalid_field_options")
                    .with_param("max", OPTIONS_MAX.to_string())
                    .with_violation("options", "invalid"));
            }
        } else if !options.is_empty() {
            return Err(Error::invalid("messaging.invalid_field_options").with_violation("options", "invalid"));
        }
        Ok(FieldDef { key: key.to_owned(), label: label.to_owned(), kind, options: opts })
    }

    /// A value from JSON (API): the stored JSON value, or the reason it does not fit.
    /// `null` clears the field.
    pub fn check(&self, v: &Value) -> Result<Value, Error> {
        match (self.kind, v) {
            (_, Value::Null) => Ok(Value::Null),
            (FieldKind::Number, Value::Number(n)) => self.parse(&n.to_string()),
            (_, Value::String(s)) => self.parse(s),
            _ => Err(self.bad()),
        }
    }

    /// A value from text (CSV import, a segment filter): numbers as decimals, dates as
    /// `YYYY-MM-DD`, choices by their exact option. Stored as JSON: numbers as strings of the
    /// exact decimal, so nothing is lost to floating point.
    pub fn parse(&self, raw: &str) -> Result<Value, Error> {
        let s = raw.trim();
        match self.kind {
            FieldKind::Text => {
                if s.chars().count() > TEXT_MAX || s.chars().any(|c| c.is_control() && c != '\n') {
                    return Err(self.bad());
                }
                Ok(Value::String(s.to_owned()))
            }
            FieldKind::Number => Decimal::from_str(s)
                .or_else(|_| Decimal::from_scientific(s))
                .map(|d| Value::String(d.normalize().to_string()))
                .map_err(|_| self.bad()),
            FieldKind::Date => {
                NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| Value::String(d.to_string())).map_err(|_| self.bad())
            }
            FieldKind::Choice => self
                .options
                .iter()
                .find(|o| o.as_str() == s)
                .map(|o| Value::String(o.clone()))
                .ok_or_else(|| self.bad()),
        }
    }

    fn bad(&self) -> Error {
        Error::invalid("messaging.invalid_field_value")
            .with_param("field", self.key.clone())
            .with_param("kind", self.kind.as_str())
            .with_violation(format!("fields.{}", self.key), "invalid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(kind: FieldKind) -> FieldDef {
        let opts: Vec<String> = if kind == FieldKind::Choice { vec!["Gold".into(), "Silver".into()] } else { vec![] };
        FieldDef::new("tier_1", "Tier", kind, &opts).unwrap()
    }

    #[test]
    fn definitions_are_checked() {
        for key in ["", "Tier", "1tier", "tier-1", &"k".repeat(41)] {
            assert_eq!(
                FieldDef::new(key, "L", FieldKind::Text, &[]).unwrap_err().code(),
                "messaging.invalid_field_key",
                "{key}"
            );
        }
        assert!(FieldDef::new("t", "L", FieldKind::Choice, &[]).is_err());
        assert!(FieldDef::new("t", "L", FieldKind::Text, &["x".into()]).is_err());
        let d = FieldDef::new("t", " Tier ", FieldKind::Choice, &["a".into(), " a ".into(), "b".into()]).unwrap();
        assert_eq!((d.label.as_str(), d.options.len()), ("Tier", 2));
    }

    #[test]
    fn values_fit_their_kind() {
        assert_eq!(def(FieldKind::Number).check(&json!(12.50)).unwrap(), json!("12.5"));
        assert_eq!(def(FieldKind::Number).parse("0.1").unwrap(), json!("0.1"));
        assert_eq!(def(FieldKind::Number).parse("1e3").unwrap(), json!("1000"));
        assert!(def(FieldKind::Number).parse("twelve").is_err());
        assert_eq!(def(FieldKind::Date).parse("2026-02-28").unwrap(), json!("2026-02-28"));
        assert!(def(FieldKind::Date).parse("2026-02-30").is_err());
        assert_eq!(def(FieldKind::Choice).check(&json!("Gold")).unwrap(), json!("Gold"));
        let e = def(FieldKind::Choice).check(&json!("gold")).unwrap_err();
        assert_eq!((e.code(), e.violations()[0].field.as_str()), ("messaging.invalid_field_value", "fields.tier_1"));
        assert!(def(FieldKind::Text).check(&json!(5)).is_err());
        assert!(def(FieldKind::Text).parse(&"x".repeat(TEXT_MAX + 1)).is_err());
        assert_eq!(def(FieldKind::Text).check(&Value::Null).unwrap(), Value::Null);
    }
}
