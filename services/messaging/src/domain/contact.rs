//! A contact: one person of a workspace's audience, whatever channel they came through.

use nexus_kernel::{Error, Locale};

/// Longest display name kept.
pub const NAME_MAX: usize = 200;
/// Tags per contact and the length of one.
pub const TAGS_MAX: usize = 50;
pub const TAG_MAX: usize = 64;
/// Free-text source (`csv-import`, `page:spring-sale`, …).
pub const SOURCE_MAX: usize = 64;

nexus_kernel::word_enum! {
    /// Where a contact stands with the business.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Stage: invalid "messaging.invalid_stage", param "stage" {
        Subscriber = "subscriber",
        #[default]
        Lead = "lead",
        Qualified = "qualified",
        Opportunity = "opportunity",
        Customer = "customer",
        Evangelist = "evangelist",
        Other = "other",
    }
}

nexus_kernel::word_enum! {
    /// How a channel knows the person: one identity belongs to one contact of a workspace.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum IdentityKind: invalid "messaging.invalid_identity", param "kind" {
        /// A WhatsApp user id (`wa_id`, digits of the number).
        Whatsapp = "whatsapp",
        /// An address a page lead or an import gave.
        Email = "email",
        /// A customer id in a connected shop.
        ShopCustomer = "shop_customer",
    }
}

/// A phone number in E.164 (`+5511987654321`), parsed with the numbering plan of its region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses what a person typed. Without a leading `+` (or international prefix) the number is
    /// read in `default_region` (ISO 3166 alpha-2, the workspace's setting).
    pub fn parse(raw: &str, default_region: Option<&str>) -> Result<Phone, Error> {
        let bad = || Error::invalid("messaging.invalid_phone").with_violation("phone", "invalid");
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > 32 {
            return Err(bad());
        }
        let region = match default_region {
            Some(r) if !r.is_empty() => Some(Region::parse(r)?.id),
            _ => None,
        };
        let number = phonenumber::parse(region, raw).map_err(|_| bad())?;
        if !phonenumber::is_valid(&number) {
            return Err(bad());
        }
        Ok(Phone(number.format().mode(phonenumber::Mode::E164).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// WhatsApp's `wa_id` of this number: its digits.
    pub fn wa_id(&self) -> String {
        self.0.trim_start_matches('+').to_owned()
    }
}

/// A region for reading national numbers (ISO 3166 alpha-2, e.g. `BR`, `IL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    id: phonenumber::country::Id,
}

impl Region {
    pub fn parse(code: &str) -> Result<Region, Error> {
        code.trim()
            .to_ascii_uppercase()
            .parse::<phonenumber::country::Id>()
            .map(|id| Region { id })
            .map_err(|_| Error::invalid("messaging.invalid_region").with_violation("default_region", "invalid"))
    }

    pub fn code(&self) -> String {
        let code: &str = self.id.as_ref();
        code.to_owned()
    }
}

/// An email address, trimmed and lower-cased so one address is one person.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, Error> {
        let bad = || Error::invalid("messaging.invalid_email").with_violation("email", "invalid");
        let s = raw.trim().to_lowercase();
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let domain_ok = domain.len() >= 3
            && domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.chars().any(|c| matches!(c, '<' | '>' | '"' | ',' | ';' | '(' | ')'));
        if domain_ok && local_ok { Ok(Email(s)) } else { Err(bad()) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tag as stored: trimmed, lower-case, inner whitespace collapsed.
pub fn tag(raw: &str) -> Result<String, Error> {
    let t = raw.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let ok = !t.is_empty()
        && t.chars().count() <= TAG_MAX
        && t.chars().all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | ':' | '.'));
    if ok {
        Ok(t)
    } else {
        Err(Error::invalid("messaging.invalid_tag").with_param("tag", raw.chars().take(80).collect::<String>()))
    }
}

/// Tags of a contact: each valid, no repeats (first spelling kept), at most [`TAGS_MAX`].
pub fn tags(raw: &[String]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for r in raw {
        let t = tag(r)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > TAGS_MAX {
        return Err(Error::invalid("messaging.too_many_tags").with_param("max", TAGS_MAX.to_string()));
    }
    Ok(out)
}

/// What a caller may set on a contact, checked. `None` leaves a field as it is on update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactDraft {
    pub name: Option<String>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub language: Option<Locale>,
    pub tags: Option<Vec<String>>,
    pub stage: Option<Stage>,
    pub source: Option<String>,
}

/// Raw contact input from an API call, an import row or an event.
#[derive(Debug, Clone, Default)]
pub struct ContactInput<'a> {
    pub name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
    pub language: Option<&'a str>,
    pub tags: Option<&'a [String]>,
    pub stage: Option<&'a str>,
    pub source: Option<&'a str>,
}

impl ContactInput<'_> {
    /// Checks every field, collecting one violation per bad field so a form (or an import row)
    /// learns everything at once. Empty strings mean "not given".
    pub fn check(&self, default_region: Option<&str>) -> Result<ContactDraft, Error> {
        fn given(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|s| !s.is_empty())
        }
        let mut violations: Vec<(&str, String)> = Vec::new();
        let mut draft = ContactDraft::default();
        if let Some(name) = given(self.name) {
            if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
                violations.push(("name", "messaging.invalid_name".into()));
            } else {
                draft.name = Some(name.to_owned());
            }
        }
        if let Some(p) = given(self.phone) {
            match Phone::parse(p, default_region) {
                Ok(p) => draft.phone = Some(p),
                Err(_) => violations.push(("phone", "messaging.invalid_phone".into())),
            }
        }
        if let Some(e) = given(self.email) {
            match Email::parse(e) {
                Ok(e) => draft.email = Some(e),
                Err(_) => violations.push(("email", "messaging.invalid_email".into())),
            }
        }
        if let Some(l) = given(self.language) {
            match l.parse::<Locale>() {
                Ok(l) => draft.language = Some(l),
                Err(_) => violations.push(("language", "messaging.invalid_language".into())),
            }
        }
        if let Some(t) = self.tags {
            match tags(t) {
                Ok(t) => draft.tags = Some(t),
                Err(e) => violations.push(("tags", e.code().to_owned())),
            }
        }
        if let Some(s) = given(self.stage) {
            match s.parse::<Stage>() {
                Ok(s) => draft.stage = Some(s),
                Err(_) => violations.push(("stage", "messaging.invalid_stage".into())),
            }
        }
        if let Some(s) = given(self.source) {
            if s.chars().count() > SOURCE_MAX || s.chars().any(char::is_control) {
                violations.push(("source", "messaging.invalid_source".into()));
            } else {
                draft.source = Some(s.to_owned());
            }
        }
        let top = match violations.as_slice() {
            [] => return Ok(draft),
            [(_, code)] => code.clone(),
            _ => "messaging.invalid_contact".to_owned(),
        };
        Err(violations.into_iter().fold(Error::invalid(top), |e, (field, code)| e.with_violation(field, code)))
    }
}

/// A contact can be reached or found only through a phone, an email or a name.
pub fn identifiable(d: &ContactDraft) -> bool {
    d.phone.is_some() || d.email.is_some() || d.name.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalize_to_e164_in_the_workspace_region() {
        assert_eq!(Phone::parse("(11) 98765-4321", Some("BR")).unwrap().as_str(), "+5511987654321");
        assert_eq!(Phone::parse("+55 11 98765 4321", None).unwrap().as_str(), "+5511987654321");
        assert_eq!(Phone::parse("050-234-5678", Some("il")).unwrap().as_str(), "+972502345678");
        assert_eq!(Phone::parse("+1 (415) 555-2671", Some("BR")).unwrap().as_str(), "+14155552671");
        assert_eq!(Phone::parse("+972502345678", None).unwrap().wa_id(), "972502345678");
        for bad in ["", "12", "not a phone", "+999 123", "98765-4321", &"9".repeat(40)] {
            let e = Phone::parse(bad, None).unwrap_err();
            assert_eq!(e.code(), "messaging.invalid_phone", "{bad}");
        }
        assert_eq!(Phone::parse("1", Some("XX")).unwrap_err().code(), "messaging.invalid_region");
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(Email::parse("  Ana.Silva@Example.COM ").unwrap().as_str(), "ana.silva@example.com");
        for bad in ["ana", "ana@", "@x.io", "a b@x.io", "ana@x", "ana@.x.io", "ana@x..io", "<a>@x.io", "a@-x.io"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_are_normalized_and_bounded() {
        let t = tags(&["  VIP ".into(), "vip".into(), "Black   Friday".into()]).unwrap();
        assert_eq!(t, vec!["vip", "black friday"]);
        assert_eq!(tag("no<script>").unwrap_err().code(), "messaging.invalid_tag");
        let many: Vec<String> = (0..=TAGS_MAX).map(|i| format!("t{i}")).collect();
        assert_eq!(tags(&many).unwrap_err().code(), "messaging.too_many_tags");
    }

    #[test]
    fn input_names_every_bad_field() {
        let draft = ContactInput {
            name: Some(" Ana "),
            phone: Some("11 98765 4321"),
            language: Some("pt"),
            stage: Some("customer"),
            ..Default::default()
        }
        .check(Some("BR"))
        .unwrap();
        assert_eq!(draft.name.as_deref(), Some("Ana"));
        assert_eq!(draft.phone.unwrap().as_str(), "+5511987654321");
        assert_eq!(draft.stage, Some(Stage::Customer));

        let one = ContactInput { email: Some("nope"), ..Default::default() }.check(None).unwrap_err();
        assert_eq!(one.code(), "messaging.invalid_email");
        let two = ContactInput { email: Some("nope"), phone: Some("12"), language: Some("fr"), ..Default::default() }
            .check(None)
            .unwrap_err();
        assert_eq!(two.code(), "messaging.invalid_contact");
        let fields: Vec<_> = two.violations().iter().map(|v| (v.field.as_str(), v.code.as_str())).collect();
        assert_eq!(
            fields,
            vec![
                ("phone", "messaging.invalid_phone"),
                ("email", "messaging.invalid_email"),
                ("language", "messaging.invalid_language")
            ]
        );
    }
}

/// A contact as the use cases see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: uuid::Uuid,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub language: Option<Locale>,
    pub tags: Vec<String>,
    /// Custom field values by key, as stored (see `fields::FieldDef::parse`).
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub owner_id: Option<uuid::Uuid>,
    pub stage: Stage,
    pub source: String,
    pub identities: Vec<(IdentityKind, String)>,
    pub consents: Vec<crate::domain::consent::Consent>,
    pub anonymized: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// What a contact search asks for; every part given must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactQuery {
    /// Lower-cased, at least [`SEARCH_MIN`] characters: a part of the name, email or phone.
    pub text: Option<String>,
    pub tags: Vec<String>,
    pub stage: Option<Stage>,
    /// Equality on stored custom field values.
    pub fields: Vec<(String, serde_json::Value)>,
    /// A saved segment the contacts must match, as the caller named it.
    pub segment_id: Option<String>,
    /// That segment's filter, resolved by the use case in its transaction.
    pub segment: Option<super::segment::Filter>,
}

/// Shortest text a search accepts (trigram matching needs three characters to use its index).
pub const SEARCH_MIN: usize = 3;

impl ContactQuery {
    /// Checks a search's text and tags.
    pub fn new(text: &str, tags: &[String], stage: &str) -> Result<ContactQuery, Error> {
        let text = text.trim().to_lowercase();
        let text = if text.is_empty() {
            None
        } else if text.chars().count() < SEARCH_MIN || text.chars().count() > 200 {
            return Err(Error::invalid("messaging.invalid_search")
                .with_param("min", SEARCH_MIN.to_string())
                .with_violation("text", "invalid"));
        } else {
            Some(text)
        };
        let stage = if stage.trim().is_empty() { None } else { Some(stage.trim().parse::<Stage>()?) };
        Ok(ContactQuery { text, tags: self::tags(tags)?, stage, ..Default::default() })
    }
}
