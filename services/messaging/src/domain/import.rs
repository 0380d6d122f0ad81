//! CSV import and export of contacts: the header mapping, the checks of one row, dedupe within a
//! file, and the cell escaping that keeps an exported file from running formulas. No I/O: the use
//! case feeds rows in and writes what comes out.
//!
//! Decisions:
//! - A row whose phone or email appeared on an earlier row of the same file is an error row
//!   (`messaging.duplicate_row`, naming the earlier line), not an update: two rows for one person
//!   rarely agree, and guessing which one wins would change data the user did not mean to change.
//! - A row matching one contact of the book (by phone or email) updates it: given cells replace
//!   the stored values, tags are added, custom fields merged. A row whose phone and email belong to
//!   two different contacts is an error row (`messaging.import_conflict`): merging is a deliberate act.
//! - Empty cells mean "not given", never "erase". A row with fewer cells than the header has the
//!   rest empty; cells past the header are ignored; blank lines are skipped (line numbers still
//!   count them, as an editor does).
//! - Phones without a country code are read in the workspace's default region.

use std::collections::HashMap;

use nexus_kernel::{Error, ErrorKind};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::consent::{Channel, ConsentStatus, PROOF_MAX, Purpose};
use super::contact::{ContactDraft, ContactInput, identifiable, tag, tags};
use super::fields::FieldDef;

/// Data rows one import may hold (the header not counted).
pub const MAX_ROWS: u64 = 100_000;
/// Bytes one import may send: 100,000 rows of a few hundred bytes each, with room to spare.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Columns a mapping may name.
pub const MAPPING_MAX: usize = 200;
/// Longest header cell kept in a mapping.
pub const HEADER_MAX: usize = 200;
/// Tags the options may add to every row.
pub const OPTION_TAGS_MAX: usize = 20;

/// What an import may take; tests lower them to reach the limits with small files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_rows: u64,
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_rows: MAX_ROWS, max_bytes: MAX_BYTES }
    }
}

impl Limits {
    pub fn too_large(&self) -> Error {
        Error::new(ErrorKind::PayloadTooLarge, "messaging.import_too_large")
            .with_param("max", self.max_bytes.to_string())
    }

    pub fn too_many_rows(&self) -> Error {
        Error::new(ErrorKind::PayloadTooLarge, "messaging.import_too_many_rows")
            .with_param("max", self.max_rows.to_string())
    }
}

/// A contact attribute a CSV column can fill.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Name,
    Phone,
    Email,
    Language,
    Tags,
    Stage,
    Source,
    OwnerId,
    /// A custom field by key (`fields.<key>`).
    Field(String),
}

impl Target {
    /// Parses a mapping target; a custom field must be defined in the workspace.
    pub fn parse(raw: &str, defs: &[FieldDef]) -> Result<Target, Error> {
        let t = raw.trim();
        Ok(match t {
            "name" => Target::Name,
            "phone" => Target::Phone,
            "email" => Target::Email,
            "language" => Target::Language,
            "tags" => Target::Tags,
            "stage" => Target::Stage,
            "source" => Target::Source,
            "owner_id" => Target::OwnerId,
            _ => {
                let shown: String = t.chars().take(60).collect();
                let Some(key) = t.strip_prefix("fields.") else {
                    return Err(Error::invalid("messaging.unknown_mapping_target")
                        .with_param("target", shown)
                        .with_violation("mapping", "unknown"));
                };
                if !defs.iter().any(|d| d.key == key) {
                    return Err(Error::invalid("messaging.unknown_field")
                        .with_param("field", key.chars().take(40).collect::<String>())
                        .with_violation("mapping", "unknown"));
                }
                Target::Field(key.to_owned())
            }
        })
    }

    /// The column name an export writes and an import with no mapping recognizes.
    pub fn column(&self) -> String {
        match self {
            Target::Name => "name".into(),
            Target::Phone => "phone".into(),
            Target::Email => "email".into(),
            Target::Language => "language".into(),
            Target::Tags => "tags".into(),
            Target::Stage => "stage".into(),
            Target::Source => "source".into(),
            Target::OwnerId => "owner_id".into(),
            Target::Field(k) => format!("fields.{k}"),
        }
    }

    /// Error field name of a cell of this column.
    fn field(&self) -> String {
        self.column()
    }
}

/// The standard columns, in export order; custom fields follow.
pub const STANDARD: [Target; 8] = [
    Target::Name,
    Target::Phone,
    Target::Email,
    Target::Language,
    Target::Tags,
    Target::Stage,
    Target::Source,
    Target::OwnerId,
];

/// Header → target, checked against the workspace's fields before any row is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Sorted by header, so the stored mapping reads the same every time.
    entries: Vec<(String, Target)>,
}

impl Mapping {
    /// Checks a requested mapping. An empty one maps every header that names a target itself
    /// (what an export writes), decided once the header is read.
    pub fn new(raw: &HashMap<String, String>, defs: &[FieldDef]) -> Result<Mapping, Error> {
        if raw.len() > MAPPING_MAX {
            return Err(Error::invalid("messaging.invalid_mapping")
                .with_param("max", MAPPING_MAX.to_string())
                .with_violation("mapping", "too_long"));
        }
        let mut entries: Vec<(String, Target)> = Vec::with_capacity(raw.len());
        for (header, target) in raw {
            let header = header.trim();
            if header.is_empty() || header.chars().count() > HEADER_MAX || header.chars().any(char::is_control) {
                return Err(Error::invalid("messaging.invalid_mapping")
                    .with_param("max", MAPPING_MAX.to_string())
                    .with_violation("mapping", "invalid_header"));
            }
            let target = Target::parse(target, defs)?;
            if let Some((other, _)) = entries.iter().find(|(_, t)| *t == target) {
                return Err(Error::invalid("messaging.duplicate_mapping")
                    .with_param("target", target.column())
                    .with_param("header", other.clone())
                    .with_violation("mapping", "duplicate"));
            }
            entries.push((header.to_owned(), target));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if !entries.is_empty()
            && !entries.iter().any(|(_, t)| matches!(t, Target::Name | Target::Phone | Target::Email))
        {
            return Err(Error::invalid("messaging.mapping_needs_identity").with_violation("mapping", "no_identity"));
        }
        Ok(Mapping { entries })
    }

    pub fn entries(&self) -> &[(String, Target)] {
        &self.entries
    }

    /// Which column of `header` feeds which target. Every mapped header must be present (trimmed,
    /// compared without case); with an empty mapping, headers naming a target are taken.
    pub fn resolve(&self, header: &[&str], defs: &[FieldDef]) -> Result<Columns, Error> {
        let cells: Vec<String> =
            header.iter().map(|h| h.trim().trim_start_matches('\u{feff}').trim().to_owned()).collect();
        let mut columns: Vec<(usize, Target)> = Vec::new();
        if self.entries.is_empty() {
            for (i, h) in cells.iter().enumerate() {
                if let Ok(t) = Target::parse(&h.to_lowercase(), defs) {
                    if columns.iter().any(|(_, x)| *x == t) {
                        return Err(Error::invalid("messaging.duplicate_mapping")
                            .with_param("target", t.column())
                            .with_param("header", h.clone())
                            .with_violation("mapping", "duplicate"));
                    }
                    columns.push((i, t));
                }
            }
            if !columns.iter().any(|(_, t)| matches!(t, Target::Name | Target::Phone | Target::Email)) {
                return Err(Error::invalid("messaging.mapping_needs_identity").with_violation("mapping", "no_identity"));
            }
        } else {
            for (wanted, target) in &self.entries {
                let at = cells
                    .iter()
                    .position(|h| h == wanted)
                    .or_else(|| cells.iter().position(|h| h.to_lowercase() == wanted.to_lowercase()))
                    .ok_or_else(|| {
                        Error::invalid("messaging.mapping_header_missing")
                            .with_param("header", wanted.clone())
                            .with_violation("mapping", "missing_header")
                    })?;
                columns.push((at, target.clone()));
            }
        }
        Ok(Columns { columns })
    }
}

/// The resolved mapping: which cell of a row feeds which target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    columns: Vec<(usize, Target)>,
}

/// A problem with one row: its 1-based line, the column it concerns (empty: the whole row), the
/// error code and the parameters of its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub code: String,
    pub params: Vec<(String, String)>,
}

/// A checked row, ready to be matched against the book.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub line: u64,
    pub draft: ContactDraft,
    pub fields: Map<String, Value>,
    pub owner_id: Option<Uuid>,
}

impl ImportRow {
    /// The keys that identify this row's person: its phone and its email.
    pub fn keys(&self) -> Vec<String> {
        let mut k = Vec::with_capacity(2);
        if let Some(p) = &self.draft.phone {
            k.push(format!("p:{}", p.as_str()));
        }
        if let Some(e) = &self.draft.email {
            k.push(format!("e:{}", e.as_str()));
        }
        k
    }
}

/// Reverses [`escape_cell`]: the `'` put before a formula on export is dropped.
pub fn unescape_cell(cell: &str) -> &str {
    if quoted_formula(cell) { &cell[1..] } else { cell }
}

/// Characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn needs_escape(cell: &str) -> bool {
    cell.starts_with(FORMULA_START)
}

/// One or more `'` before a formula character.
fn quoted_formula(cell: &str) -> bool {
    cell.starts_with('\'') && needs_escape(cell.trim_start_matches('\''))
}

/// A cell as exported: one starting with `=`, `+`, `-`, `@`, tab or carriage return is prefixed
/// with `'`, so a spreadsheet shows it as text instead of running it. A value that already is
/// quotes before such a character gets one more, so [`unescape_cell`] gives back exactly what
/// was stored.
pub fn escape_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    if needs_escape(cell) || quoted_formula(cell) { format!("'{cell}").into() } else { cell.into() }
}

/// Tags of one cell: separated by `;` or `,` (neither can be part of a tag).
fn cell_tags(cell: &str) -> Vec<String> {
    cell.split([';', ',']).map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

impl Columns {
    /// Checks one data row (its cells as read, `line` where it starts) with the workspace's
    /// region and fields; `extra_tags` (already checked) are added to every row.
    pub fn row(
        &self,
        line: u64,
        cells: &[&str],
        region: Option<&str>,
        defs: &[FieldDef],
        extra_tags: &[String],
    ) -> Result<ImportRow, Vec<RowError>> {
        let mut errors: Vec<RowError> = Vec::new();
        let mut input = ContactInput::default();
        let mut raw_tags: Vec<String> = Vec::new();
        let mut fields = Map::new();
        let mut owner_id = None;
        let err =
            |field: String, e: &Error| RowError { line, field, code: e.code().to_owned(), params: e.params().to_vec() };
        for (at, target) in &self.columns {
            let cell = unescape_cell(cells.get(*at).copied().unwrap_or("")).trim();
            if cell.is_empty() {
                continue;
            }
            match target {
                Target::Name => input.name = Some(cell),
                Target::Phone => input.phone = Some(cell),
                Target::Email => input.email = Some(cell),
                Target::Language => input.language = Some(cell),
                Target::Stage => input.stage = Some(cell),
                Target::Source => input.source = Some(cell),
                Target::Tags => raw_tags = cell_tags(cell),
                Target::OwnerId => match Uuid::parse_str(cell) {
                    Ok(id) => owner_id = Some(id),
                    Err(_) => errors.push(err(target.field(), &Error::invalid("messaging.invalid_id"))),
                },
                Target::Field(key) => {
                    // Resolved against these definitions, so the key is there.
                    if let Some(def) = defs.iter().find(|d| &d.key == key) {
                        match def.parse(cell) {
                            Ok(v) => {
                                fields.insert(key.clone(), v);
                            }
                            Err(e) => errors.push(err(target.field(), &e)),
                        }
                    }
                }
            }
        }
        // Tags are checked one by one so the row names the bad one; the options' tags follow.
        let mut all_tags: Vec<String> = Vec::new();
        for t in &raw_tags {
            match tag(t) {
                Ok(t) => all_tags.push(t),
                Err(e) => errors.push(err("tags".into(), &e)),
            }
        }
        all_tags.extend(extra_tags.iter().cloned());
        let all_tags = if all_tags.is_empty() { None } else { Some(all_tags) };
        input.tags = all_tags.as_deref();
        let draft = match input.check(region) {
            Ok(d) => Some(d),
            Err(e) => {
                for v in e.violations() {
                    // The domain names the cell's column, except for tags checked above.
                    let params = if v.code == e.code() {
                        e.params().to_vec()
                    } else if v.code == "messaging.too_many_tags" {
                        vec![("max".to_owned(), super::contact::TAGS_MAX.to_string())]
                    } else {
                        Vec::new()
                    };
                    errors.push(RowError { line, field: v.field.clone(), code: v.code.clone(), params });
                }
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let draft = draft.unwrap_or_default();
        if !identifiable(&draft) {
            return Err(vec![RowError {
                line,
                field: String::new(),
                code: "messaging.contact_needs_identity".into(),
                params: Vec::new(),
            }]);
        }
        Ok(ImportRow { line, draft, fields, owner_id })
    }
}

/// The phones and emails seen so far in a file, by the line that first had them.
#[derive(Debug, Default)]
pub struct Seen {
    keys: HashMap<String, u64>,
    contacts: HashMap<Uuid, u64>,
}

impl Seen {
    /// Records `row`'s keys; the error when an earlier row had one of them.
    pub fn admit(&mut self, row: &ImportRow) -> Result<(), RowError> {
        let keys = row.keys();
        for k in &keys {
            if let Some(first) = self.keys.get(k) {
                let field = if k.starts_with("p:") { "phone" } else { "email" };
                return Err(duplicate(row.line, field, *first));
            }
        }
        for k in keys {
            self.keys.insert(k, row.line);
        }
        Ok(())
    }

    /// Records that `row` matched `contact` of the book; the error when an earlier row did (the
    /// two rows share no key, but name the same person through different ones).
    pub fn admit_contact(&mut self, row: &ImportRow, contact: Uuid) -> Result<(), RowError> {
        match self.contacts.entry(contact) {
            std::collections::hash_map::Entry::Occupied(first) => Err(duplicate(row.line, "", *first.get())),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(row.line);
                Ok(())
            }
        }
    }
}

fn duplicate(line: u64, field: &str, first: u64) -> RowError {
    RowError {
        line,
        field: field.to_owned(),
        code: "messaging.duplicate_row".into(),
        params: vec![("line".into(), first.to_string())],
    }
}

/// Consent given to every imported contact (e.g. a list collected with opt-in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportConsent {
    pub channel: Channel,
    pub purpose: Purpose,
    pub status: ConsentStatus,
    pub source: String,
    pub proof: String,
}

impl ImportConsent {
    /// Checks the options' consent; all-empty means none.
    pub fn new(channel: &str, purpose: &str, status: &str, source: &str, proof: &str) -> Result<Option<Self>, Error> {
        if [channel, purpose, status, source, proof].iter().all(|s| s.trim().is_empty()) {
            return Ok(None);
        }
        let channel = channel.trim().parse::<Channel>().map_err(|e| e.with_violation("consent.channel", "invalid"))?;
        let purpose = purpose.trim().parse::<Purpose>().map_err(|e| e.with_violation("consent.purpose", "invalid"))?;
        let status = if status.trim().is_empty() { ConsentStatus::Granted } else { status.trim().parse()? };
        let source = if source.trim().is_empty() { "import".to_owned() } else { source.trim().to_owned() };
        if source.chars().count() > 64 || source.chars().any(char::is_control) {
            return Err(Error::invalid("messaging.invalid_source").with_violation("consent.source", "invalid"));
        }
        let proof = proof.trim().to_owned();
        if proof.chars().count() > PROOF_MAX {
            return Err(Error::invalid("messaging.invalid_proof")
                .with_param("max", PROOF_MAX.to_string())
                .with_violation("consent.proof", "too_long"));
        }
        Ok(Some(ImportConsent { channel, purpose, status, source, proof }))
    }
}

/// The options' tags, checked (added to every row).
pub fn option_tags(raw: &[String]) -> Result<Vec<String>, Error> {
    if raw.len() > OPTION_TAGS_MAX {
        return Err(Error::invalid("messaging.too_many_tags").with_param("max", OPTION_TAGS_MAX.to_string()));
    }
    tags(raw).map_err(|e| e.with_violation("tags", "invalid"))
}

nexus_kernel::word_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum ImportStatus: invalid "messaging.invalid_import_status", param "status" {
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

/// An import as the use cases see it. While it runs, the counts grow batch by batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub id: Uuid,
    pub status: ImportStatus,
    pub dry_run: bool,
    /// Data rows read so far (the header not counted).
    pub total_rows: i64,
    /// Contacts created and updated (for a dry run: that would have been).
    pub created: i64,
    pub updated: i64,
    /// Rows that could not be taken (see the import's errors).
    pub failed: i64,
    /// Why a failed import stopped.
    pub error_code: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Counts of an import so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total_rows: i64,
    pub created: i64,
    pub updated: i64,
    pub failed: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fields::FieldKind;

    fn defs() -> Vec<FieldDef> {
        vec![FieldDef::new("tier", "Tier", FieldKind::Choice, &["Gold".into()]).unwrap()]
    }

    fn cols(header: &[&str], raw: &[(&str, &str)]) -> Result<Columns, Error> {
        let raw: HashMap<String, String> = raw.iter().map(|(h, t)| ((*h).into(), (*t).into())).collect();
        Mapping::new(&raw, &defs())?.resolve(header, &defs())
    }

    #[test]
    fn cells_that_start_a_formula_are_escaped_and_come_back_unchanged() {
        for v in ["=1+2", "+5511987654321", "-5", "@SUM(A1)", "\tx", "\rx", "'=x", "''=x", "'plain", "plain", "", "'"] {
            let out = escape_cell(v);
            assert!(!out.starts_with(FORMULA_START), "{v:?} -> {out:?}");
            assert_eq!(unescape_cell(&out), v, "{v:?} -> {out:?}");
        }
        assert_eq!(escape_cell("=1+2"), "'=1+2");
        assert_eq!(escape_cell("Ana"), "Ana");
    }

    #[test]
    fn mappings_name_known_targets_once_and_an_identity() {
        assert!(cols(&["Name"], &[("Name", "name")]).is_ok());
        let code = |r: Result<Columns, Error>| r.unwrap_err().code().to_owned();
        assert_eq!(code(cols(&["T"], &[("T", "fields.nope"), ("N", "name")])), "messaging.unknown_field");
        assert_eq!(code(cols(&["N"], &[("N", "nickname")])), "messaging.unknown_mapping_target");
        assert_eq!(code(cols(&["A", "B"], &[("A", "email"), ("B", "email")])), "messaging.duplicate_mapping");
        assert_eq!(code(cols(&["T"], &[("T", "fields.tier")])), "messaging.mapping_needs_identity");
        assert_eq!(code(cols(&["Name"], &[("Full name", "name")])), "messaging.mapping_header_missing");
        // Headers match without case or surrounding space; with no mapping, headers that name a
        // target are taken (a BOM before the first is ignored).
        assert!(cols(&[" NAME "], &[("name", "name")]).is_ok());
        let auto = cols(&["\u{feff}name", "colour", "fields.tier"], &[]).unwrap();
        assert_eq!(auto.columns, vec![(0, Target::Name), (2, Target::Field("tier".into()))]);
        assert_eq!(code(cols(&["colour"], &[])), "messaging.mapping_needs_identity");
    }

    #[test]
    fn a_row_names_each_bad_cell_and_duplicates_name_the_first_line() {
        let c = cols(&["name", "phone", "email", "fields.tier", "tags", "owner_id"], &[]).unwrap();
        let bad = c.row(7, &["Ana", "12", "x", "Bronze", "ok; no<tag>", "nope"], None, &defs(), &[]).unwrap_err();
        let got: Vec<(u64, &str, &str)> = bad.iter().map(|e| (e.line, e.field.as_str(), e.code.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (7, "fields.tier", "messaging.invalid_field_value"),
                (7, "owner_id", "messaging.invalid_id"),
                (7, "tags", "messaging.invalid_tag"),
                (7, "phone", "messaging.invalid_phone"),
                (7, "email", "messaging.invalid_email"),
            ]
        );
        let empty = c.row(8, &["", "", "", "", "", ""], None, &defs(), &[]).unwrap_err();
        assert_eq!(empty[0].code, "messaging.contact_needs_identity");

        let extra = vec!["fair".to_owned()];
        let ok =
            c.row(2, &["Ana", "'+5511987654321", "ANA@x.io", "Gold", "vip, VIP", ""], None, &defs(), &extra).unwrap();
        assert_eq!(ok.draft.phone.as_ref().map(|p| p.as_str()), Some("+5511987654321"));
        assert_eq!(ok.draft.tags, Some(vec!["vip".to_owned(), "fair".to_owned()]));
        let mut seen = Seen::default();
        seen.admit(&ok).unwrap();
        let again = c.row(9, &["Ana B", "", "ana@x.io", "", "", ""], None, &defs(), &[]).unwrap();
        let e = seen.admit(&again).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str(), e.params.clone()),
            (9, "email", vec![("line".to_owned(), "2".to_owned())])
        );
    }
}
