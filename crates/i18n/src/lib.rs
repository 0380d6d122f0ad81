//! User-facing text of NexusOne in five locales (en, es, pt, he, ar), from Fluent files under
//! `locales/<code>/*.ftl` compiled into the binary.
//!
//! Error codes are dotted (`request.not_found`); Fluent ids cannot hold dots, so the message id is
//! the code with dots turned into dashes (`request-not_found`).

use std::borrow::Cow;
use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid};
pub use nexus_kernel::{Locale, TextDirection};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        // Isolation marks (U+2068/U+2069) around arguments help mixed-direction rendering in
        // browsers but corrupt values in JSON and logs; pages add their own `dir` markup.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

fn langid(locale: Locale) -> LanguageIdentifier {
    match locale {
        Locale::En => langid!("en"),
        Locale::Es => langid!("es"),
        Locale::Pt => langid!("pt"),
        Locale::He => langid!("he"),
        Locale::Ar => langid!("ar"),
    }
}

/// Fluent message id for a dotted error code.
pub fn message_id(code: &str) -> String {
    code.replace('.', "-")
}

/// Looks up a message in `locale`, falling back to English; `None` if no locale has it.
pub fn try_message(locale: Locale, id: &str, args: &[(&str, &str)]) -> Option<String> {
    let args: HashMap<Cow<'static, str>, FluentValue<'_>> =
        args.iter().map(|(k, v)| (Cow::Owned((*k).to_owned()), FluentValue::from(v.to_string()))).collect();
    LOCALES.try_lookup_with_args(&langid(locale), id, &args)
}

/// The localized message for an error code. Unknown codes fall back to the generic message of
/// the HTTP status class, so a client never sees a bare code as prose.
pub fn error_message(locale: Locale, code: &str, params: &[(String, String)], http_status: u16) -> String {
    let args: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    try_message(locale, &message_id(code), &args)
        .or_else(|| {
            let generic = if http_status >= 500 { "internal" } else { "request-invalid" };
            try_message(locale, generic, &[])
        })
        .unwrap_or_else(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use fluent_syntax::ast::Entry;
    use nexus_kernel::ErrorKind;

    use super::*;

    fn ids_in(locale: Locale) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("locales").join(locale.code());
        let mut ids = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let src = std::fs::read_to_string(&path).unwrap();
            let res = fluent_syntax::parser::parse(src.as_str())
                .unwrap_or_else(|(_, errs)| panic!("{}: {errs:?}", path.display()));
            for e in res.body {
                if let Entry::Message(m) = e {
                    assert!(ids.insert(m.id.name.to_owned()), "duplicate id {} in {}", m.id.name, path.display());
                }
            }
        }
        ids
    }

    #[test]
    fn every_locale_has_exactly_the_english_keys() {
        let en = ids_in(Locale::En);
        assert!(en.len() > 20);
        for l in Locale::ALL {
            let other = ids_in(l);
            let missing: Vec<_> = en.difference(&other).collect();
            let extra: Vec<_> = other.difference(&en).collect();
            assert!(missing.is_empty() && extra.is_empty(), "{l}: missing {missing:?}, extra {extra:?}");
        }
    }

    #[test]
    fn every_generic_error_code_has_a_message() {
        // Arguments the gateway supplies with these codes.
        let args =
            [("method", "PATCH"), ("limit", "1048576"), ("retry_after", "30"), ("max", "100"), ("detail", "name")];
        for l in Locale::ALL {
            for k in ErrorKind::ALL {
                let id = message_id(k.generic_code());
                assert!(try_message(l, &id, &args).is_some(), "{l} lacks {id}");
            }
        }
    }

    #[test]
    fn messages_are_translated_and_take_arguments() {
        let en = error_message(Locale::En, "request.body_too_large", &[("limit".into(), "1024".into())], 413);
        let ar = error_message(Locale::Ar, "request.body_too_large", &[("limit".into(), "1024".into())], 413);
        assert!(en.contains("1024") && ar.contains("1024"));
        assert_ne!(en, ar);
        for l in [Locale::Es, Locale::Pt, Locale::He, Locale::Ar] {
            assert_ne!(
                error_message(l, "request.not_found", &[], 404),
                error_message(Locale::En, "request.not_found", &[], 404)
            );
        }
    }

    #[test]
    fn unknown_codes_fall_back_to_a_generic_message() {
        let m = error_message(Locale::Es, "no.such_code", &[], 400);
        assert_eq!(m, try_message(Locale::Es, "request-invalid", &[]).unwrap());
        let m = error_message(Locale::He, "no.such_code", &[], 502);
        assert_eq!(m, try_message(Locale::He, "internal", &[]).unwrap());
    }

    /// Variable names each English message in `file` refers to, by message id.
    fn english_variables(file: &str) -> Vec<(String, BTreeSet<String>)> {
        use fluent_syntax::ast::{Expression, InlineExpression, Pattern, PatternElement};

        fn in_pattern(p: &Pattern<&str>, vars: &mut BTreeSet<String>) {
            for el in &p.elements {
                if let PatternElement::Placeable { expression } = el {
                    in_expression(expression, vars);
                }
            }
        }
        fn in_expression(e: &Expression<&str>, vars: &mut BTreeSet<String>) {
            match e {
                Expression::Inline(i) => in_inline(i, vars),
                Expression::Select { selector, variants } => {
                    in_inline(selector, vars);
                    for v in variants {
                        in_pattern(&v.value, vars);
                    }
                }
            }
        }
        fn in_inline(i: &InlineExpression<&str>, vars: &mut BTreeSet<String>) {
            match i {
                InlineExpression::VariableReference { id } => {
                    vars.insert(id.name.to_owned());
                }
                InlineExpression::Placeable { expression } => in_expression(expression, vars),
                _ => {}
            }
        }

        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("locales").join(Locale::En.code()).join(file);
        let src = std::fs::read_to_string(&path).unwrap();
        let res = fluent_syntax::parser::parse(src.as_str())
            .unwrap_or_else(|(_, errs)| panic!("{}: {errs:?}", path.display()));
        let mut out = Vec::new();
        for e in &res.body {
            if let Entry::Message(m) = e {
                let mut vars = BTreeSet::new();
                if let Some(p) = &m.value {
                    in_pattern(p, &mut vars);
                }
                out.push((m.id.name.to_owned(), vars));
            }
        }
        out
    }

    const SAMPLE_LINK: &str = "https://app.nexusone.test/auth/verify?token=Zx81-Qp_3&lang=he#go";

    #[test]
    fn every_mail_template_renders_with_its_arguments_in_every_locale() {
        let templates: Vec<_> = english_variables("mail.ftl")
            .into_iter()
            .filter(|(id, _)| id.starts_with("mail-") && (id.ends_with("-subject") || id.ends_with("-body")))
            .collect();
        assert_eq!(templates.len(), 22);
        for l in Locale::ALL {
            let role = try_message(l, "role-admin", &[]).unwrap_or_else(|| panic!("{l} lacks role-admin"));
            let args = mail_args(&role, ["47", "38", "13"]);
            for (id, vars) in &templates {
                let text = try_message(l, id, &args).unwrap_or_else(|| panic!("{l} lacks {id}"));
                // An unresolved variable renders as `{$name}`.
                assert!(!text.contains(['{', '}']), "{l} {id}: {text}");
                if l != Locale::En {
                    assert_ne!(text, try_message(Locale::En, id, &args).unwrap(), "{l} {id}");
                }
                for v in vars {
                    let value = args
                        .iter()
                        .find(|(k, _)| *k == v.as_str())
                        .map(|(_, value)| *value)
                        .unwrap_or_else(|| panic!("no sample value for ${v} used by {id}"));
                    assert!(text.contains(value), "{l} {id} lacks ${v} ({value}): {text}");
                }
                if id.ends_with("-body") {
                    // Greeting, paragraphs separated by blank lines, no leaked indentation.
                    assert!(text.lines().count() >= 5, "{l} {id}: {text}");
                    assert!(text.contains("\n\n"), "{l} {id}: {text}");
                    assert!(text.lines().all(|line| line == line.trim()), "{l} {id}: {text}");
                    if vars.contains("link") {
                        assert!(text.lines().any(|line| line == SAMPLE_LINK), "{l} {id}: {text}");
                    }
                } else {
                    assert!(!text.contains('\n'), "{l} {id}: {text}");
                }
            }
        }
    }

    #[test]
    fn every_webhook_disabled_reason_is_translated() {
        let en = try_message(Locale::En, "mail-webhook_disabled-reason-failing", &[]).unwrap();
        for l in Locale::ALL.into_iter().filter(|l| *l != Locale::En) {
            let text = try_message(l, "mail-webhook_disabled-reason-failing", &[]).unwrap();
            assert_ne!(text, en, "{l}");
        }
    }

    /// Sample values for every variable the mail templates use; `hms` = hours, minutes, days.
    fn mail_args<'a>(role: &'a str, hms: [&'a str; 3]) -> [(&'a str, &'a str); 13] {
        [
            ("name", "Zoë Quill"),
            ("link", SAMPLE_LINK),
            ("hours", hms[0]),
            ("minutes", hms[1]),
            ("days", hms[2]),
            ("inviter", "Kai Moreno"),
            ("workspace", "Acme Growth"),
            ("role", role),
            ("provider", "Google"),
            ("url", "https://hooks.example.com/in"),
            ("reason", "every delivery failed"),
            ("platform", "Instagram"),
            ("account", "17841405822304914"),
        ]
    }

    #[test]
    fn rtl_mail_bodies_keep_the_link_unchanged() {
        for l in [Locale::He, Locale::Ar] {
            assert_eq!(l.direction(), TextDirection::Rtl);
            let role = try_message(l, "role-member", &[]).unwrap();
            let args = mail_args(&role, ["24", "15", "7"]);
            for id in [
                "mail-verify_email-body",
                "mail-reset_password-body",
                "mail-invite-body",
                "mail-password_changed-body",
                "mail-account_locked-body",
                "mail-identity_linked-body",
                "mail-ads_post_failed-body",
                "mail-ads_account_paused-body",
            ] {
                let text = try_message(l, id, &args).unwrap();
                assert!(text.contains(SAMPLE_LINK), "{l} {id}: {text}");
                assert!(text.lines().any(|line| line == SAMPLE_LINK), "{l} {id}: {text}");
                // A platform's own (left-to-right) text stands on a line of its own too.
                if id.starts_with("mail-ads_") {
                    assert!(text.lines().any(|line| line == "every delivery failed"), "{l} {id}: {text}");
                }
                // No bidi controls sneak in (isolation is off; pages add their own markup).
                assert!(
                    !text.chars().any(|c| matches!(
                        c,
                        '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                    )),
                    "{l} {id}"
                );
            }
        }
    }
}
