//! WhatsApp message templates: Meta's limits on a template, its review states, and the check of
//! a send's parameters against the template it names.

use nexus_kernel::Error;
use serde_json::{Value, json};

pub const NAME_MAX: usize = 512;
pub const HEADER_MAX: usize = 60;
pub const BODY_MAX: usize = 1_024;
pub const FOOTER_MAX: usize = 60;
pub const BUTTONS_MAX: usize = 10;
pub const URL_BUTTONS_MAX: usize = 2;
pub const BUTTON_TEXT_MAX: usize = 25;

nexus_kernel::word_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Category: invalid "messaging.whatsapp_template_category_invalid", param "category" {
        Marketing = "marketing",
        Utility = "utility",
        Authentication = "authentication",
    }
}

nexus_kernel::word_enum! {
    /// Where Meta's review stands; only `approved` templates are sent.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Review: invalid "messaging.whatsapp_invalid_status", param "status" {
        Draft = "draft",
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
        Paused = "paused",
        Disabled = "disabled",
    }
}

impl Review {
    /// Meta's status word (`APPROVED`, `IN_APPEAL`, …) in our terms; unknown words are pending.
    pub fn from_meta(s: &str) -> Review {
        match s.to_ascii_uppercase().as_str() {
            "APPROVED" => Self::Approved,
            "REJECTED" => Self::Rejected,
            "PAUSED" => Self::Paused,
            "DISABLED" | "DELETED" => Self::Disabled,
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub kind: String,
    pub text: String,
    pub url: String,
}

/// A template as the workspace writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub name: String,
    pub language: String,
    pub category: Category,
    pub header: String,
    pub body: String,
    pub footer: String,
    pub buttons: Vec<Button>,
    pub body_examples: Vec<String>,
}

fn over(s: &str, max: usize) -> bool {
    s.chars().count() > max
}

fn invalid(field: &str) -> Error {
    Error::invalid("messaging.whatsapp_template_field_invalid").with_param("field", field)
}

/// The `{{n}}` parameters of `text`, in order of appearance; `None` when a placeholder is
/// malformed.
pub fn placeholders(text: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        out.push(after[..end].trim().parse::<u32>().ok()?);
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return None;
    }
    Some(out)
}

/// Whether `name` is a template name Meta takes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `code` looks like one of Meta's language codes (`en`, `en_US`, `pt_BR`, `zh_CN`).
pub fn valid_language(code: &str) -> bool {
    let (lang, region) = code.split_once('_').unwrap_or((code, ""));
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && (region.is_empty() || (region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase())))
}

impl Draft {
    /// Meta's limits; answers the number of body parameters.
    pub fn check(&self) -> Result<usize, Error> {
        if !valid_name(&self.name) {
            return Err(invalid("name"));
        }
        if !valid_language(&self.language) {
            return Err(invalid("language"));
        }
        // Header parameters are not supported here (the body carries them): no braces at all.
        if over(&self.header, HEADER_MAX) || self.header.contains(['\n', '{', '}']) {
            return Err(invalid("header"));
        }
        if self.body.trim().is_empty() || over(&self.body, BODY_MAX) {
            return Err(invalid("body"));
        }
        let params = placeholders(&self.body).ok_or_else(|| invalid("body"))?;
        // Numbered 1, 2, … in order, as Meta requires.
        if params.iter().enumerate().any(|(i, n)| usize::try_from(*n).ok() != Some(i + 1)) {
            return Err(invalid("body"));
        }
        let trimmed = self.body.trim();
        if !params.is_empty() && (trimmed.starts_with("{{") || trimmed.ends_with("}}")) {
            return Err(invalid("body"));
        }
        if self.body_examples.len() != params.len() || self.body_examples.iter().any(|e| e.trim().is_empty()) {
            return Err(invalid("body_examples"));
        }
        if over(&self.footer, FOOTER_MAX) || self.footer.contains(['{', '}']) {
            return Err(invalid("footer"));
        }
        if self.buttons.len() > BUTTONS_MAX {
            return Err(invalid("buttons"));
        }
        let urls = self.buttons.iter().filter(|b| b.kind == "url").count();
        if urls > URL_BUTTONS_MAX {
            return Err(invalid("buttons"));
        }
        for b in &self.buttons {
            let kind_ok = match b.kind.as_str() {
                "quick_reply" => b.url.is_empty(),
                "url" => crate::domain::whatsapp::https_link(&b.url, crate::domain::whatsapp::LINK_MAX),
                _ => false,
            };
            if !kind_ok || !crate::domain::whatsapp::one_line(&b.text) || over(&b.text, BUTTON_TEXT_MAX) {
                return Err(invalid("buttons"));
            }
        }
        Ok(params.len())
    }

    /// The components Meta takes.
    pub fn components(&self) -> Value {
        let mut out = Vec::new();
        if !self.header.is_empty() {
            out.push(json!({"type": "HEADER", "format": "TEXT", "text": self.header}));
        }
        let mut body = json!({"type": "BODY", "text": self.body});
        if !self.body_examples.is_empty() {
            body["example"] = json!({"body_text": [self.body_examples]});
        }
        out.push(body);
        if !self.footer.is_empty() {
            out.push(json!({"type": "FOOTER", "text": self.footer}));
        }
        if !self.buttons.is_empty() {
            let bs: Vec<Value> = self
                .buttons
                .iter()
                .map(|b| match b.kind.as_str() {
                    "url" => json!({"type": "URL", "text": b.text, "url": b.url}),
                    _ => json!({"type": "QUICK_REPLY", "text": b.text}),
                })
                .collect();
            out.push(json!({"type": "BUTTONS", "buttons": bs}));
        }
        Value::Array(out)
    }
}

/// A send's parameters against the stored template: approved, and as many parameters as its
/// body has.
pub fn check_send(review: Review, body_params: usize, given: usize) -> Result<(), Error> {
    if review != Review::Approved {
        return Err(Error::new(
            nexus_kernel::ErrorKind::FailedPrecondition,
            "messaging.whatsapp_template_not_approved",
        )
        .with_param("status", review.as_str()));
    }
    if given != body_params {
        return Err(
            Error::invalid("messaging.whatsapp_template_params_mismatch").with_param("max", body_params.to_string())
        );
    }
    Ok(())
}

/// The language content writes for a template language (`pt_BR` → `pt`); `None` when content
/// writes none of it.
pub fn writing_language(template_language: &str) -> Option<&'static str> {
    let lang = template_language.split('_').next().unwrap_or_default();
    ["en", "es", "pt", "he", "ar"].into_iter().find(|l| *l == lang)
}

/// What the `{{1}}` of a written body stands for (content writes it where the customer's name
/// goes), shown to Meta's reviewers as an example in the template's language.
fn example_name(language: &str) -> &'static str {
    match language {
        "es" => "Lucía",
        "pt" => "João",
        "he" => "נועה",
        "ar" => "ليلى",
        _ => "Alex",
    }
}

/// A body content wrote, made a template body: trimmed, with one example per placeholder, and
/// passing every rule a draft must pass (`None` otherwise, e.g. a placeholder content was not
/// asked for).
pub fn written_body(body: &str, language: &str, category: Category) -> Option<(String, Vec<String>)> {
    let body = body.trim().to_owned();
    let writing = writing_language(language)?;
    let params = placeholders(&body)?;
    // Content is asked for the customer's name only; anything more has no example to give.
    if params.len() > 1 || params.iter().any(|p| *p != 1) {
        return None;
    }
    let examples: Vec<String> = params.iter().map(|_| example_name(writing).to_owned()).collect();
    let draft = Draft {
        name: "written".into(),
        language: language.to_owned(),
        category,
        header: String::new(),
        body: body.clone(),
        footer: String::new(),
        buttons: vec![],
        body_examples: examples.clone(),
    };
    draft.check().ok()?;
    Some((body, examples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_bodies_get_examples_in_the_language_or_are_refused() {
        let (body, ex) =
            written_body("  Hi {{1}}! Our sale starts Friday. Reply YES for details. ", "es_MX", Category::Marketing)
                .unwrap();
        assert_eq!(
            (body.as_str(), ex),
            ("Hi {{1}}! Our sale starts Friday. Reply YES for details.", vec!["Lucía".to_owned()])
        );
        assert_eq!(written_body("Your order shipped.", "he", Category::Utility).unwrap().1, Vec::<String>::new());
        assert!(written_body("Hi {{1}}, order {{2}} shipped.", "en", Category::Utility).is_none(), "unasked {{2}}");
        assert!(written_body("{{1}}, hi", "en", Category::Utility).is_none(), "leading placeholder");
        assert!(written_body(&"x".repeat(1_025), "en", Category::Utility).is_none());
        assert!(written_body("Hello {{1}}.", "fr", Category::Utility).is_none(), "content writes no French");
        assert_eq!(writing_language("pt_BR"), Some("pt"));
        assert_eq!(writing_language("zh_CN"), None);
    }

    fn draft(body: &str, examples: &[&str]) -> Draft {
        Draft {
            name: "order_update".into(),
            language: "en_US".into(),
            category: Category::Utility,
            header: "Your order".into(),
            body: body.into(),
            footer: "Reply STOP to opt out".into(),
            buttons: vec![Button { kind: "quick_reply".into(), text: "Thanks".into(), url: String::new() }],
            body_examples: examples.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn meta_limits_on_templates() {
        assert_eq!(draft("Hi {{1}}, order {{2}} shipped.", &["Ana", "#1"]).check().unwrap(), 2);
        assert!(draft("Hi {{2}}, order {{1}} shipped.", &["Ana", "#1"]).check().is_err());
        assert!(draft("Hi {{1}}, order shipped.", &[]).check().is_err(), "examples needed");
        assert!(draft("{{1}} shipped.", &["Ana"]).check().is_err(), "no leading parameter");
        assert!(draft("Hi {{1 shipped.", &["Ana"]).check().is_err());
        assert!(draft(&"x".repeat(1025), &[]).check().is_err());
        let mut d = draft("Hello.", &[]);
        d.buttons =
            (0..11).map(|_| Button { kind: "quick_reply".into(), text: "a".into(), url: String::new() }).collect();
        assert!(d.check().is_err());
        d.buttons = vec![Button { kind: "url".into(), text: "Track".into(), url: "http://x".into() }];
        assert!(d.check().is_err());
        d.buttons.clear();
        d.language = "english".into();
        assert!(d.check().is_err());
        assert!(valid_language("pt_BR") && valid_language("es") && !valid_language("EN"));
    }

    #[test]
    fn sends_must_match_an_approved_template() {
        assert!(check_send(Review::Approved, 2, 2).is_ok());
        assert_eq!(
            check_send(Review::Approved, 2, 1).unwrap_err().code(),
            "messaging.whatsapp_template_params_mismatch"
        );
        assert_eq!(check_send(Review::Pending, 0, 0).unwrap_err().code(), "messaging.whatsapp_template_not_approved");
        assert_eq!(Review::from_meta("APPROVED"), Review::Approved);
        assert_eq!(Review::from_meta("IN_APPEAL"), Review::Pending);
    }
}
