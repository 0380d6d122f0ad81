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
    let args: HashMap<Cow<'static, str>, FluentValue<'_>> = args
        .iter()
        .map(|(k, v)| {
            (
                Cow::Owned((*k).to_owned()),
                FluentValue::from(v.to_string()),
            )
        })
        .collect();
    LOCALES.try_lookup_with_args(&langid(locale), id, &args)
}

/// The localized message for an error code. Unknown codes fall back to the generic message of
/// the HTTP status class, so a client never sees a bare code as prose.
pub fn error_message(
    locale: Locale,
    code: &str,
    params: &[(String, String)],
    http_status: u16,
) -> String {
    let args: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    try_message(locale, &message_id(code), &args)
        .or_else(|| {
            let generic = if http_status >= 500 {
                "internal"
            } else {
                "request-invalid"
            };
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
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("locales")
            .join(locale.code());
        let mut ids = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let src = std::fs::read_to_string(&path).unwrap();
            let res = fluent_syntax::parser::parse(src.as_str())
                .unwrap_or_else(|(_, errs)| panic!("{}: {errs:?}", path.display()));
            for e in res.body {
                if let Entry::Message(m) = e {
                    assert!(
                        ids.insert(m.id.name.to_owned()),
                        "duplicate id {} in {}",
                        m.id.name,
                        path.display()
                    );
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
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{l}: missing {missing:?}, extra {extra:?}"
            );
        }
    }

    #[test]
    fn every_generic_error_code_has_a_message() {
        // Arguments the gateway supplies with these codes.
        let args = [
            ("method", "PATCH"),
            ("limit", "1048576"),
            ("retry_after", "30"),
            ("max", "100"),
            ("detail", "name"),
        ];
        for l in Locale::ALL {
            for k in ErrorKind::ALL {
                let id = message_id(k.generic_code());
                assert!(try_message(l, &id, &args).is_some(), "{l} lacks {id}");
            }
        }
    }

    #[test]
    fn messages_are_translated_and_take_arguments() {
        let en = error_message(
            Locale::En,
            "request.body_too_large",
            &[("limit".into(), "1024".into())],
            413,
        );
        let ar = error_message(
            Locale::Ar,
            "request.body_too_large",
            &[("limit".into(), "1024".into())],
            413,
        );
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
}
