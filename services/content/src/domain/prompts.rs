//! Versioned prompt templates, kept as files under `prompts/<name>/v<N>.md` and compiled in.
//! The version used (e.g. `ad_copy/v1`) is stored with every generation, so a result can always
//! be traced to the exact prompt that produced it. A new version is a new file.

use crate::domain::generation::ContentKind;

/// A prompt file: a `## system` part and a `## user` part with `{{placeholders}}`.
#[derive(Debug, Clone, Copy)]
pub struct Prompt {
    pub version: &'static str,
    source: &'static str,
}

macro_rules! prompt {
    ($name:literal, $v:literal) => {
        Prompt {
            version: concat!($name, "/", $v),
            source: include_str!(concat!("../../prompts/", $name, "/", $v, ".md")),
        }
    };
}

pub fn for_kind(kind: ContentKind) -> Prompt {
    match kind {
        ContentKind::AdCopy => prompt!("ad_copy", "v1"),
        ContentKind::SocialPost => prompt!("social_post", "v1"),
        ContentKind::Email => prompt!("email", "v1"),
        ContentKind::ProductDescription => prompt!("product_description", "v1"),
        ContentKind::WhatsappTemplate => prompt!("whatsapp_template", "v1"),
        ContentKind::LandingPageCopy => prompt!("landing_page_copy", "v1"),
    }
}

pub fn page() -> Prompt {
    prompt!("page", "v1")
}

pub fn translate() -> Prompt {
    prompt!("translate", "v1")
}

pub fn agent() -> Prompt {
    prompt!("agent", "v1")
}

/// Replaces `{{name}}` with its value; unknown names stay as written (e.g. WhatsApp's `{{1}}`).
/// Values are inserted once, never re-scanned, so user text cannot inject placeholders.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) if vars.iter().any(|(k, _)| *k == &after[..end]) => {
                let name = &after[..end];
                out.push_str(vars.iter().find(|(k, _)| *k == name).map_or("", |(_, v)| v));
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

impl Prompt {
    /// The system and user messages with `vars` filled in.
    pub fn messages(&self, vars: &[(&str, &str)]) -> (String, String) {
        let (system, user) = self.source.split_once("\n## user\n").unwrap_or((self.source, ""));
        let system = system.trim_start().strip_prefix("## system").unwrap_or(system);
        (render(system.trim(), vars), render(user.trim(), vars))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prompt_has_both_parts_and_fills_its_placeholders() {
        let vars = [
            ("language_name", "Arabic"),
            ("language", "ar"),
            ("tone", "friendly"),
            ("product", "Trail shoes {{tone}}"),
            ("description", "-"),
            ("audience", "runners"),
            ("facts", "- light"),
            ("call_to_action", "Buy"),
            ("variants", "3"),
            ("platform", "X"),
            ("title_limit", "40"),
            ("body_limit", "280"),
            ("name", "Ana"),
            ("instructions", "Be kind"),
            ("snippets", "- We ship"),
            ("message", "Hi"),
        ];
        let mut prompts: Vec<Prompt> = ContentKind::ALL.into_iter().map(for_kind).collect();
        prompts.extend([page(), agent()]);
        for p in prompts {
            let (system, user) = p.messages(&vars);
            assert!(!system.is_empty() && !user.is_empty(), "{}", p.version);
            assert!(!system.contains("## "), "{}", p.version);
            let leftover = format!("{system}{user}").replace("{{1}}", "").replace("{{tone}}", "");
            assert!(!leftover.contains("{{"), "{}: {leftover}", p.version);
            assert!(p.version.ends_with("/v1"));
        }
        // A value is not re-scanned.
        assert_eq!(render("{{a}}", &[("a", "{{b}}"), ("b", "x")]), "{{b}}");
    }
}
