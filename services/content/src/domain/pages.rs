//! Landing pages: the section schema, its validation, section names, and slug rules.

use chrono::{DateTime, Utc};
use nexus_kernel::Error;
use serde::{Deserialize, Serialize};

use super::text_field;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hero {
    pub headline: String,
    pub subheadline: String,
    pub cta_label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Benefit {
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Testimonial {
    pub quote: String,
    pub author: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faq {
    pub q: String,
    pub a: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallToAction {
    pub headline: String,
    pub button: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormField {
    Name,
    Email,
    Phone,
    Message,
}

impl FormField {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Message => "message",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadForm {
    pub fields: Vec<FormField>,
    pub submit_label: String,
    pub consent_text: String,
}

/// Every section of a page. Each edit stores a complete copy as a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sections {
    pub hero: Hero,
    pub benefits: Vec<Benefit>,
    pub social_proof: Vec<Testimonial>,
    pub faq: Vec<Faq>,
    pub cta: CallToAction,
    pub lead_form: LeadForm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionName {
    Hero,
    Benefits,
    SocialProof,
    Faq,
    Cta,
    LeadForm,
}

impl SectionName {
    pub const ALL: [SectionName; 6] =
        [Self::Hero, Self::Benefits, Self::SocialProof, Self::Faq, Self::Cta, Self::LeadForm];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hero => "hero",
            Self::Benefits => "benefits",
            Self::SocialProof => "social_proof",
            Self::Faq => "faq",
            Self::Cta => "cta",
            Self::LeadForm => "lead_form",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL.into_iter().find(|n| n.as_str() == s).ok_or_else(|| {
            Error::invalid("content.unknown_section")
                .with_param("section", s.chars().take(40).collect::<String>())
                .with_violation("section", "unknown")
        })
    }
}

const MAX_ITEMS: usize = 8;

fn items<T>(field: &'static str, v: &[T], min: usize) -> Result<(), Error> {
    if v.len() < min || v.len() > MAX_ITEMS {
        return Err(Error::invalid("content.invalid_section")
            .with_param("field", field)
            .with_violation(field, if v.len() < min { "too_few" } else { "too_many" }));
    }
    Ok(())
}

fn clean(field: &'static str, v: &mut String, max: usize) -> Result<(), Error> {
    *v = text_field(field, v, max, true)?;
    Ok(())
}

impl Sections {
    /// Checks lengths and counts and trims text. Used on every version, whatever produced it.
    pub fn validate(&mut self) -> Result<(), Error> {
        let h = &mut self.hero;
        clean("hero.headline", &mut h.headline, 120)?;
        clean("hero.subheadline", &mut h.subheadline, 300)?;
        clean("hero.cta_label", &mut h.cta_label, 40)?;
        if let Some(id) = &h.image_id
            && super::ImageId::parse(id).is_err()
        {
            return Err(Error::invalid("content.invalid_section")
                .with_param("field", "hero.image_id")
                .with_violation("hero.image_id", "invalid"));
        }
        items("benefits", &self.benefits, 1)?;
        for b in &mut self.benefits {
            clean("benefits.title", &mut b.title, 80)?;
            clean("benefits.body", &mut b.body, 400)?;
        }
        items("social_proof", &self.social_proof, 0)?;
        for t in &mut self.social_proof {
            clean("social_proof.quote", &mut t.quote, 400)?;
            clean("social_proof.author", &mut t.author, 80)?;
        }
        items("faq", &self.faq, 0)?;
        for f in &mut self.faq {
            clean("faq.q", &mut f.q, 200)?;
            clean("faq.a", &mut f.a, 800)?;
        }
        clean("cta.headline", &mut self.cta.headline, 120)?;
        clean("cta.button", &mut self.cta.button, 40)?;
        let form = &mut self.lead_form;
        let mut seen = std::collections::HashSet::new();
        if form.fields.is_empty() || !form.fields.iter().all(|f| seen.insert(*f)) {
            return Err(Error::invalid("content.invalid_section")
                .with_param("field", "lead_form.fields")
                .with_violation("lead_form.fields", "invalid"));
        }
        if !form.fields.iter().any(|f| matches!(f, FormField::Email | FormField::Phone)) {
            // A lead nobody can contact is no lead.
            return Err(
                Error::invalid("content.lead_form_needs_contact").with_violation("lead_form.fields", "needs_contact")
            );
        }
        clean("lead_form.submit_label", &mut form.submit_label, 40)?;
        form.consent_text = text_field("lead_form.consent_text", &form.consent_text, 400, false)?;
        Ok(())
    }

    /// Replaces one section with `json`, which must match that section's schema.
    pub fn replace(&mut self, name: SectionName, json: &str) -> Result<(), Error> {
        let bad = |e: serde_json::Error| {
            Error::invalid("content.invalid_section")
                .with_param("field", name.as_str())
                .with_violation(name.as_str(), e.to_string().chars().take(120).collect::<String>())
        };
        if json.len() > 64 * 1024 {
            return Err(Error::new(nexus_kernel::ErrorKind::PayloadTooLarge, "request.body_too_large")
                .with_param("limit", "65536"));
        }
        // Changed on a copy: a rejected edit leaves the page as it was.
        let mut next = self.clone();
        match name {
            SectionName::Hero => next.hero = serde_json::from_str(json).map_err(bad)?,
            SectionName::Benefits => next.benefits = serde_json::from_str(json).map_err(bad)?,
            SectionName::SocialProof => next.social_proof = serde_json::from_str(json).map_err(bad)?,
            SectionName::Faq => next.faq = serde_json::from_str(json).map_err(bad)?,
            SectionName::Cta => next.cta = serde_json::from_str(json).map_err(bad)?,
            SectionName::LeadForm => next.lead_form = serde_json::from_str(json).map_err(bad)?,
        }
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// Copies one section from `other` (a regenerated page) into `self`.
    pub fn take_section(&mut self, name: SectionName, other: Sections) {
        match name {
            SectionName::Hero => {
                // A regenerated hero keeps the chosen image.
                let image = self.hero.image_id.take();
                self.hero = other.hero;
                self.hero.image_id = image;
            }
            SectionName::Benefits => self.benefits = other.benefits,
            SectionName::SocialProof => self.social_proof = other.social_proof,
            SectionName::Faq => self.faq = other.faq,
            SectionName::Cta => self.cta = other.cta,
            SectionName::LeadForm => self.lead_form = other.lead_form,
        }
    }
}

/// Words that would shadow product routes or mislead visitors.
const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "dashboard",
    "docs",
    "help",
    "login",
    "logout",
    "nexus",
    "nexusone",
    "official",
    "p",
    "pages",
    "security",
    "signin",
    "signup",
    "static",
    "status",
    "support",
    "v1",
    "webhooks",
    "www",
];

/// Slugs: 3–60 of `a-z`, `0-9` and single inner hyphens; not a reserved word. Input is trimmed
/// and lower-cased first.
pub fn parse_slug(raw: &str) -> Result<String, Error> {
    let slug = raw.trim().to_ascii_lowercase();
    let bad = |why: &str| Error::invalid("content.invalid_slug").with_violation("slug", why);
    if slug.len() < 3 || slug.len() > 60 {
        return Err(bad("length"));
    }
    if !slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(bad("characters"));
    }
    if slug.starts_with('-') || slug.ends_with('-') || slug.contains("--") {
        return Err(bad("hyphens"));
    }
    if RESERVED_SLUGS.contains(&slug.as_str()) {
        return Err(Error::invalid("content.slug_reserved")
            .with_param("slug", slug.clone())
            .with_violation("slug", "reserved"));
    }
    Ok(slug)
}

/// Lead contact details as submitted, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeadInput {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub message: String,
}

/// A plain check of an address's shape (one `@`, a dotted domain, no spaces); delivery is the
/// real test.
pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ',' | ';'))
}

fn valid_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (6..=15).contains(&digits)
        && s.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
}

impl LeadInput {
    /// Validates a submission against the form it came from.
    pub fn validate(&self, form: &LeadForm) -> Result<LeadInput, Error> {
        let has = |f: FormField| form.fields.contains(&f);
        let name = if has(FormField::Name) { text_field("name", &self.name, 120, false)? } else { String::new() };
        let email = if has(FormField::Email) { text_field("email", &self.email, 254, false)? } else { String::new() };
        let phone = if has(FormField::Phone) { text_field("phone", &self.phone, 32, false)? } else { String::new() };
        let message =
            if has(FormField::Message) { text_field("message", &self.message, 2_000, false)? } else { String::new() };
        let unprocessable = |code: &'static str, field: &'static str| {
            Error::new(nexus_kernel::ErrorKind::Unprocessable, code).with_violation(field, "invalid")
        };
        if !email.is_empty() && !valid_email(&email) {
            return Err(unprocessable("content.invalid_email", "email"));
        }
        if !phone.is_empty() && !valid_phone(&phone) {
            return Err(unprocessable("content.invalid_phone", "phone"));
        }
        if email.is_empty() && phone.is_empty() {
            return Err(unprocessable(
                "content.lead_contact_required",
                if has(FormField::Email) { "email" } else { "phone" },
            ));
        }
        Ok(LeadInput { name, email: email.to_lowercase(), phone, message })
    }
}

/// A stored page at its current version, with its counters.
#[derive(Debug, Clone)]
pub struct MagicPage {
    pub id: uuid::Uuid,
    pub title: String,
    pub language: String,
    pub brief: super::generation::Brief,
    pub status: String,
    pub slug: Option<String>,
    pub current_version: i32,
    pub published_version: Option<i32>,
    pub provider: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub sections: Sections,
    pub views: i64,
    pub leads: i64,
}

/// One kept version of a page.
#[derive(Debug, Clone)]
pub struct PageVersion {
    pub version: i32,
    pub change: String,
    pub sections: Sections,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(parse_slug(" Summer-Sale-2026 ").unwrap(), "summer-sale-2026");
        for bad in ["ab", "-abc", "abc-", "a--b", "abc_d", "ação", "admin", &"a".repeat(61), "a b c"] {
            assert!(parse_slug(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_slug("admin").unwrap_err().code(), "content.slug_reserved");
    }

    #[test]
    fn emails_and_phones() {
        assert!(valid_email("ana@example.com"));
        for bad in ["ana", "ana@", "@x.com", "ana@localhost", "a b@x.com", "ana@x..com", "<a>@x.com"] {
            assert!(!valid_email(bad), "{bad}");
        }
        assert!(valid_phone("+55 (11) 91234-5678"));
        assert!(!valid_phone("call me"));
    }

    #[test]
    fn sections_replace_checks_the_schema() {
        let mut s = Sections {
            hero: Hero { headline: "H".into(), subheadline: "S".into(), cta_label: "Go".into(), image_id: None },
            benefits: vec![Benefit { title: "t".into(), body: "b".into() }],
            social_proof: vec![],
            faq: vec![],
            cta: CallToAction { headline: "c".into(), button: "b".into() },
            lead_form: LeadForm {
                fields: vec![FormField::Email],
                submit_label: "Send".into(),
                consent_text: String::new(),
            },
        };
        s.validate().unwrap();
        assert!(s.replace(SectionName::Hero, r#"{"headline":"x"}"#).is_err());
        assert!(
            s.replace(SectionName::Hero, r#"{"headline":"x","subheadline":"y","cta_label":"z","evil":1}"#).is_err()
        );
        assert!(
            s.replace(SectionName::LeadForm, r#"{"fields":["name"],"submit_label":"x","consent_text":""}"#).is_err()
        );
        s.replace(SectionName::Faq, r#"[{"q":" Why? ","a":"Because."}]"#).unwrap();
        assert_eq!(s.faq[0].q, "Why?");
    }
}
