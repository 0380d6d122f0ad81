//! Saved segments: a filter over the contact book, stored as JSON and re-evaluated on use.
//!
//! The language (also documented on `SegmentInput` in the proto):
//! `{"all": [..]}`, `{"any": [..]}`, `{"not": ..}` over
//! `{"tag": "vip"}`, `{"stage": "lead"}`, `{"field": "tier", "op": "eq|ne|lt|gt|contains", "value": "Gold"}`,
//! `{"text": "ana"}`, `{"consent": {"channel": "whatsapp", "purpose": "marketing"}}`,
//! `{"created": {"after": "2026-01-01", "before": "2026-02-01"}}`.
//!
//! Meaning, where it is not obvious: field conditions hold only for contacts that have a value
//! (`ne` is "has a value other than"; `{"not": {"field": .., "op": "eq"}}` also takes contacts
//! without one). Numbers and dates compare by value; text and choice compare as strings
//! (`contains` ignores case). `created` is the half-open range `after <= created < before`;
//! a bare date is midnight UTC. An empty `all` matches everyone, an empty `any` nobody.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::Error;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::consent::{Channel, Purpose};
use super::contact::{SEARCH_MIN, Stage};
use super::fields::{FieldDef, FieldKind};

/// Longest filter text, deepest nesting of conditions, and most conditions in one filter: a
/// segment is evaluated on every read and every broadcast, so its SQL stays small.
pub const FILTER_JSON_MAX: usize = 64 * 1024;
pub const DEPTH_MAX: usize = 5;
pub const NODES_MAX: usize = 50;
pub const NAME_MAX: usize = 100;
const TEXT_MAX: usize = 200;

nexus_kernel::word_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Op: invalid "messaging.invalid_segment_op", param "op" {
        Eq = "eq",
        Ne = "ne",
        Lt = "lt",
        Gt = "gt",
        Contains = "contains",
    }
}

/// A field condition's value in the field's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// Text and choice fields: compared as strings.
    Text(String),
    Number(Decimal),
    Date(NaiveDate),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCondition {
    pub key: String,
    pub op: Op,
    pub value: FieldValue,
}

/// A checked filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
    Tag(String),
    Stage(Stage),
    Field(FieldCondition),
    /// Lower-cased part of a name, email or phone.
    Text(String),
    /// Consent currently granted for the channel and purpose.
    Consent {
        channel: Channel,
        purpose: Purpose,
    },
    Created {
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    },
    /// A stored condition on a field that was deleted or redefined since: matches nobody.
    Nothing,
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::invalid("messaging.invalid_segment_filter")
        .with_param("detail", detail)
        .with_violation("filter_json", "invalid")
}

fn bad_value(what: &str) -> Error {
    Error::invalid("messaging.segment_invalid_value")
        .with_param("field", what.chars().take(40).collect::<String>())
        .with_violation("filter_json", "invalid_value")
}

fn too_deep() -> Error {
    Error::invalid("messaging.segment_filter_too_deep")
        .with_param("max", DEPTH_MAX.to_string())
        .with_violation("filter_json", "too_deep")
}

/// How deeply the JSON text nests, counted before parsing so a hostile filter never reaches the
/// parser's recursion.
fn json_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for c in text.chars() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' => {
                depth += 1;
                max = max.max(depth);
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

struct Parser<'a> {
    fields: &'a [FieldDef],
    /// Stored filters are read leniently: a field gone since the save matches nobody.
    stored: bool,
    nodes: usize,
}

impl Filter {
    /// Parses and checks a filter a person wrote, against the workspace's field definitions.
    pub fn parse(text: &str, fields: &[FieldDef]) -> Result<Filter, Error> {
        if text.len() > FILTER_JSON_MAX {
            return Err(Error::invalid("messaging.segment_filter_too_large")
                .with_param("max", NODES_MAX.to_string())
                .with_violation("filter_json", "too_large"));
        }
        // Each level of conditions is at most two levels of JSON (`{"all": [`).
        if json_depth(text) > 2 * DEPTH_MAX + 2 {
            return Err(too_deep());
        }
        let v: Value = serde_json::from_str(text)
            .map_err(|e| invalid(format!("not JSON: line {} column {}", e.line(), e.column())))?;
        Parser { fields, stored: false, nodes: 0 }.node(&v, 1)
    }

    /// Reads a filter saved earlier (its canonical JSON) against the definitions of today.
    pub fn from_stored(v: &Value, fields: &[FieldDef]) -> Result<Filter, Error> {
        Parser { fields, stored: true, nodes: 0 }.node(v, 1)
    }

    /// The canonical JSON of this filter: what is stored and shown.
    pub fn to_json(&self) -> Value {
        match self {
            Filter::All(v) => json!({ "all": v.iter().map(Filter::to_json).collect::<Vec<_>>() }),
            Filter::Any(v) => json!({ "any": v.iter().map(Filter::to_json).collect::<Vec<_>>() }),
            Filter::Not(f) => json!({ "not": f.to_json() }),
            Filter::Tag(t) => json!({ "tag": t }),
            Filter::Stage(s) => json!({ "stage": s.as_str() }),
            Filter::Field(c) => {
                let value = match &c.value {
                    FieldValue::Text(s) => s.clone(),
                    FieldValue::Number(d) => d.to_string(),
                    FieldValue::Date(d) => d.to_string(),
                };
                json!({ "field": c.key, "op": c.op.as_str(), "value": value })
            }
            Filter::Text(t) => json!({ "text": t }),
            Filter::Consent { channel, purpose } => {
                json!({ "consent": { "channel": channel.as_str(), "purpose": purpose.as_str() } })
            }
            Filter::Created { after, before } => {
                let mut m = Map::new();
                if let Some(a) = after {
                    m.insert("after".into(), Value::String(a.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)));
                }
                if let Some(b) = before {
                    m.insert("before".into(), Value::String(b.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)));
                }
                json!({ "created": m })
            }
            Filter::Nothing => json!({ "any": [] }),
        }
    }
}

impl Parser<'_> {
    fn node(&mut self, v: &Value, depth: usize) -> Result<Filter, Error> {
        if depth > DEPTH_MAX {
            return Err(too_deep());
        }
        self.nodes += 1;
        if self.nodes > NODES_MAX {
            return Err(Error::invalid("messaging.segment_filter_too_large")
                .with_param("max", NODES_MAX.to_string())
                .with_violation("filter_json", "too_large"));
        }
        let Value::Object(m) = v else { return Err(invalid("a condition must be a JSON object")) };
        if m.contains_key("field") {
            return self.field(m);
        }
        let mut entries = m.iter();
        let (Some((key, arg)), None) = (entries.next(), entries.next()) else {
            return Err(invalid("a condition must have exactly one key"));
        };
        match key.as_str() {
            "all" | "any" => {
                let Value::Array(items) = arg else { return Err(invalid(format!("\"{key}\" takes a list"))) };
                let items = items.iter().map(|c| self.node(c, depth + 1)).collect::<Result<Vec<_>, _>>()?;
                Ok(if key == "all" { Filter::All(items) } else { Filter::Any(items) })
            }
            "not" => Ok(Filter::Not(Box::new(self.node(arg, depth + 1)?))),
            "tag" => {
                let s = arg.as_str().ok_or_else(|| bad_value("tag"))?;
                super::contact::tag(s).map(Filter::Tag).map_err(|_| bad_value("tag"))
            }
            "stage" => {
                let s = arg.as_str().ok_or_else(|| bad_value("stage"))?;
                s.trim().parse::<Stage>().map(Filter::Stage).map_err(|_| bad_value("stage"))
            }
            "text" => {
                let s = arg.as_str().ok_or_else(|| bad_value("text"))?.trim().to_lowercase();
                let n = s.chars().count();
                if !(SEARCH_MIN..=TEXT_MAX).contains(&n) || s.chars().any(char::is_control) {
                    return Err(bad_value("text"));
                }
                Ok(Filter::Text(s))
            }
            "consent" => {
                let Value::Object(c) = arg else { return Err(bad_value("consent")) };
                if c.len() != 2 {
                    return Err(bad_value("consent"));
                }
                let word =
                    |k: &str| c.get(k).and_then(Value::as_str).map(str::trim).ok_or_else(|| bad_value("consent"));
                let channel = word("channel")?.parse::<Channel>().map_err(|_| bad_value("consent.channel"))?;
                let purpose = word("purpose")?.parse::<Purpose>().map_err(|_| bad_value("consent.purpose"))?;
                Ok(Filter::Consent { channel, purpose })
            }
            "created" => {
                let Value::Object(c) = arg else { return Err(bad_value("created")) };
                if c.is_empty() || c.keys().any(|k| k != "after" && k != "before") {
                    return Err(bad_value("created"));
                }
                let at = |k: &str| {
                    c.get(k)
                        .map(|v| v.as_str().and_then(instant).ok_or_else(|| bad_value(&format!("created.{k}"))))
                        .transpose()
                };
                let (after, before) = (at("after")?, at("before")?);
                if let (Some(a), Some(b)) = (after, before)
                    && a >= b
                {
                    return Err(bad_value("created"));
                }
                Ok(Filter::Created { after, before })
            }
            other => Err(invalid(format!("unknown condition \"{}\"", other.chars().take(40).collect::<String>()))),
        }
    }

    fn field(&mut self, m: &Map<String, Value>) -> Result<Filter, Error> {
        if m.len() != 3 || !m.contains_key("op") || !m.contains_key("value") {
            return Err(invalid("a field condition has exactly \"field\", \"op\" and \"value\""));
        }
        let key = m.get("field").and_then(Value::as_str).ok_or_else(|| invalid("\"field\" takes a field key"))?.trim();
        let op =
            m.get("op").and_then(Value::as_str).ok_or_else(|| invalid("\"op\" takes a word"))?.trim().parse::<Op>()?;
        let raw = m.get("value").unwrap_or(&Value::Null);
        let Some(def) = self.fields.iter().find(|d| d.key == key) else {
            if self.stored {
                return Ok(Filter::Nothing);
            }
            return Err(Error::invalid("messaging.segment_unknown_field")
                .with_param("field", key.chars().take(40).collect::<String>())
                .with_violation("filter_json", "unknown_field"));
        };
        match self.value(def, op, raw) {
            Ok(value) => Ok(Filter::Field(FieldCondition { key: def.key.clone(), op, value })),
            // The field was redefined since the save (deleting it removed its values).
            Err(_) if self.stored => Ok(Filter::Nothing),
            Err(e) => Err(e),
        }
    }

    fn value(&self, def: &FieldDef, op: Op, raw: &Value) -> Result<FieldValue, Error> {
        let bad = || bad_value(&def.key);
        if raw.is_null() {
            return Err(bad());
        }
        match def.kind {
            FieldKind::Number | FieldKind::Date if op == Op::Contains => {
                Err(Error::invalid("messaging.segment_op_not_for_kind")
                    .with_param("op", op.as_str())
                    .with_param("kind", def.kind.as_str())
                    .with_violation("filter_json", "op"))
            }
            FieldKind::Number => {
                let v = def.check(raw).map_err(|_| bad())?;
                v.as_str().and_then(|s| Decimal::from_str(s).ok()).map(FieldValue::Number).ok_or_else(bad)
            }
            FieldKind::Date => {
                let s = raw.as_str().ok_or_else(bad)?;
                NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map(FieldValue::Date).map_err(|_| bad())
            }
            // A choice compared for equality must be one of its options; other comparisons take any text.
            FieldKind::Choice if matches!(op, Op::Eq | Op::Ne) => {
                def.check(raw).ok().and_then(|v| v.as_str().map(str::to_owned)).map(FieldValue::Text).ok_or_else(bad)
            }
            FieldKind::Text | FieldKind::Choice => {
                let s = raw.as_str().ok_or_else(bad)?.trim();
                if s.chars().count() > super::fields::TEXT_MAX || s.chars().any(char::is_control) {
                    return Err(bad());
                }
                Ok(FieldValue::Text(if op == Op::Contains { s.to_lowercase() } else { s.to_owned() }))
            }
        }
    }
}

/// `2026-01-01` (midnight UTC) or an RFC 3339 time.
fn instant(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// A segment's name: present, short, printable.
pub fn name(raw: &str) -> Result<String, Error> {
    let n = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if n.is_empty() || n.chars().count() > NAME_MAX || n.chars().any(char::is_control) {
        return Err(Error::invalid("messaging.invalid_segment_name")
            .with_param("max", NAME_MAX.to_string())
            .with_violation("name", "invalid"));
    }
    Ok(n)
}

/// A saved segment with its live count.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub id: uuid::Uuid,
    pub name: String,
    /// The canonical filter JSON.
    pub filter: Value,
    pub count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> Vec<FieldDef> {
        vec![
            FieldDef::new("tier", "Tier", FieldKind::Choice, &["Gold".into(), "Silver".into()]).unwrap(),
            FieldDef::new("spend", "Spend", FieldKind::Number, &[]).unwrap(),
            FieldDef::new("birthday", "Birthday", FieldKind::Date, &[]).unwrap(),
            FieldDef::new("city", "City", FieldKind::Text, &[]).unwrap(),
        ]
    }

    fn parse(v: Value) -> Result<Filter, Error> {
        Filter::parse(&v.to_string(), &defs())
    }

    #[test]
    fn every_condition_parses_and_round_trips() {
        let f = parse(json!({"all": [
            {"tag": " VIP "},
            {"stage": "customer"},
            {"field": "tier", "op": "eq", "value": "Gold"},
            {"field": "spend", "op": "gt", "value": 12.50},
            {"field": "birthday", "op": "lt", "value": "2000-01-01"},
            {"field": "city", "op": "contains", "value": "Paulo"},
            {"any": [{"text": "Ana"}, {"not": {"consent": {"channel": "whatsapp", "purpose": "marketing"}}}]},
            {"created": {"after": "2026-01-01", "before": "2026-02-01T12:00:00+02:00"}}
        ]}))
        .unwrap();
        let Filter::All(items) = &f else { panic!("{f:?}") };
        assert_eq!(items[0], Filter::Tag("vip".into()));
        assert_eq!(
            items[3],
            Filter::Field(FieldCondition {
                key: "spend".into(),
                op: Op::Gt,
                value: FieldValue::Number(Decimal::new(125, 1))
            })
        );
        assert_eq!(
            items[5],
            Filter::Field(FieldCondition {
                key: "city".into(),
                op: Op::Contains,
                value: FieldValue::Text("paulo".into())
            })
        );
        let canonical = f.to_json();
        assert_eq!(canonical["all"][7]["created"]["before"], json!("2026-02-01T10:00:00Z"));
        assert_eq!(Filter::parse(&canonical.to_string(), &defs()).unwrap(), f);
        assert_eq!(Filter::from_stored(&canonical, &defs()).unwrap(), f);
        assert_eq!(parse(json!({"all": []})).unwrap(), Filter::All(vec![]));
    }

    #[test]
    fn bad_filters_get_clear_codes() {
        for (bad, code) in [
            (json!([1]), "messaging.invalid_segment_filter"),
            (json!({"tag": "a", "stage": "lead"}), "messaging.invalid_segment_filter"),
            (json!({"colour": "red"}), "messaging.invalid_segment_filter"),
            (json!({"all": {"tag": "a"}}), "messaging.invalid_segment_filter"),
            (json!({"field": "colour", "op": "eq", "value": "red"}), "messaging.segment_unknown_field"),
            (json!({"field": "tier", "op": "like", "value": "G"}), "messaging.invalid_segment_op"),
            (json!({"field": "tier", "op": "eq", "value": "Bronze"}), "messaging.segment_invalid_value"),
            (json!({"field": "spend", "op": "lt", "value": "lots"}), "messaging.segment_invalid_value"),
            (json!({"field": "spend", "op": "contains", "value": "1"}), "messaging.segment_op_not_for_kind"),
            (json!({"field": "birthday", "op": "gt", "value": "2000-02-30"}), "messaging.segment_invalid_value"),
            (json!({"field": "tier", "op": "eq"}), "messaging.invalid_segment_filter"),
            (json!({"stage": "boss"}), "messaging.segment_invalid_value"),
            (json!({"tag": 5}), "messaging.segment_invalid_value"),
            (json!({"text": "an"}), "messaging.segment_invalid_value"),
            (json!({"consent": {"channel": "fax", "purpose": "marketing"}}), "messaging.segment_invalid_value"),
            (json!({"created": {}}), "messaging.segment_invalid_value"),
            (json!({"created": {"after": "2026-02-01", "before": "2026-01-01"}}), "messaging.segment_invalid_value"),
            (json!({"created": {"after": "yesterday"}}), "messaging.segment_invalid_value"),
        ] {
            assert_eq!(parse(bad.clone()).unwrap_err().code(), code, "{bad}");
        }
        assert_eq!(Filter::parse("{\"tag\": ", &defs()).unwrap_err().code(), "messaging.invalid_segment_filter");
        assert_eq!(Filter::parse("", &defs()).unwrap_err().code(), "messaging.invalid_segment_filter");
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let mut f = json!({"tag": "a"});
        for _ in 1..DEPTH_MAX {
            f = json!({"not": f});
        }
        assert!(parse(f.clone()).is_ok());
        assert_eq!(parse(json!({"not": f})).unwrap_err().code(), "messaging.segment_filter_too_deep");
        // Far deeper than the parser's own recursion limit: refused before parsing.
        let hostile = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(Filter::parse(&hostile, &defs()).unwrap_err().code(), "messaging.segment_filter_too_deep");
        let wide = json!({"any": (0..NODES_MAX).map(|i| json!({"tag": format!("t{i}")})).collect::<Vec<_>>()});
        assert_eq!(parse(wide).unwrap_err().code(), "messaging.segment_filter_too_large");
        let huge = json!({"text": "x".repeat(FILTER_JSON_MAX)});
        assert_eq!(parse(huge).unwrap_err().code(), "messaging.segment_filter_too_large");
        // Brackets inside strings do not count as nesting.
        assert!(parse(json!({"field": "city", "op": "eq", "value": "[[[[[[[[[[[[[[[["})).is_ok());
    }

    #[test]
    fn stored_filters_survive_deleted_fields() {
        let stored = json!({"any": [{"field": "gone", "op": "eq", "value": "x"}, {"tag": "vip"}]});
        let f = Filter::from_stored(&stored, &defs()).unwrap();
        assert_eq!(f, Filter::Any(vec![Filter::Nothing, Filter::Tag("vip".into())]));
        let redefined = json!({"field": "spend", "op": "eq", "value": "Gold"});
        assert_eq!(Filter::from_stored(&redefined, &defs()).unwrap(), Filter::Nothing);
    }
}
