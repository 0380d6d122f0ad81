use super::*;
use crate::domain::generation::{Platform, RawBrief};
use crate::domain::text::char_len;

fn has_script(l: Locale, text: &str) -> bool {
    match l {
        Locale::He => text.chars().any(|c| ('\u{05d0}'..='\u{05ea}').contains(&c)),
        Locale::Ar => text.chars().any(|c| ('\u{0621}'..='\u{064a}').contains(&c)),
        _ => text.chars().any(|c| c.is_ascii_alphabetic()),
    }
}

fn words(s: &str) -> std::collections::HashSet<String> {
    s.split(|c: char| !c.is_alphabetic()).filter(|w| w.chars().count() >= 3).map(str::to_lowercase).collect()
}

/// Words of a language's bank that the English bank does not have: a Spanish or Portuguese text
/// must use some of them (the script alone cannot tell those from English).
fn marker(l: Locale) -> std::collections::HashSet<String> {
    let en = words(source(Locale::En));
    words(source(l)).difference(&en).cloned().collect()
}

fn brief(l: Locale, facts: &[String], tone: &str) -> Brief {
    Brief::parse(
        RawBrief { product: "Trail Runner X", audience: "", facts, tone, language: l.code(), ..Default::default() },
        Locale::En,
    )
    .unwrap()
}

#[test]
fn every_kind_in_every_language_on_every_platform_fits_and_is_in_the_language() {
    let g = LocalGenerator::new().unwrap();
    let facts =
        ["breathable mesh upper".to_owned(), "weighs only 220 g".to_owned(), "free returns for 30 days".to_owned()];
    let mut checked = 0;
    for l in Locale::ALL {
        let marker = if matches!(l, Locale::Es | Locale::Pt) { marker(l) } else { Default::default() };
        for tone in Tone::ALL {
            for kind in ContentKind::ALL {
                let platforms: Vec<Option<Platform>> = match kind {
                    ContentKind::SocialPost => Platform::ALL.into_iter().map(Some).collect(),
                    ContentKind::AdCopy => std::iter::once(None).chain(Platform::ALL.into_iter().map(Some)).collect(),
                    _ => vec![None],
                };
                for p in platforms {
                    for f in [&facts[..], &[]] {
                        let input = GenerationInput::new(
                            kind.as_str(),
                            p.map_or("", |p| p.as_str()),
                            0,
                            0,
                            brief(l, f, tone.as_str()),
                            4000,
                        )
                        .unwrap();
                        let out = g.variants(&input);
                        let limits = input.limits();
                        assert_eq!(out.len() as u32, input.variants);
                        for v in &out {
                            let what = format!("{l} {} {:?} {}", kind.as_str(), p, tone.as_str());
                            assert!(!v.body.trim().is_empty(), "{what}: empty body");
                            assert!(
                                char_len(&v.body) <= limits.body,
                                "{what}: body {} > {}",
                                char_len(&v.body),
                                limits.body
                            );
                            assert!(char_len(&v.title) <= limits.title, "{what}: title too long");
                            if limits.title > 0 {
                                assert!(!v.title.is_empty(), "{what}: no title");
                            }
                            assert!(has_script(l, &v.body), "{what}: not in {l}: {}", v.body);
                            if !marker.is_empty() {
                                assert!(!words(&v.body).is_disjoint(&marker), "{what}: {v:?}");
                            }
                            assert!(
                                !v.body.contains("{fact") && !v.body.contains("{product}"),
                                "{what}: unfilled: {}",
                                v.body
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 1000, "{checked}");
}

#[test]
fn same_input_same_output_and_variants_differ() {
    let g = LocalGenerator::new().unwrap();
    let input = GenerationInput::new("ad_copy", "", 3, 0, brief(Locale::Es, &[], "urgent"), 4000).unwrap();
    let a = g.variants(&input);
    assert_eq!(a, g.variants(&input));
    assert_ne!(a[0], a[1]);
    assert_ne!(a[1], a[2]);
    let other = GenerationInput::new("ad_copy", "", 3, 0, brief(Locale::Es, &[], "luxury"), 4000).unwrap();
    assert_ne!(a, g.variants(&other));
}

#[test]
fn user_text_is_not_treated_as_placeholders() {
    let g = LocalGenerator::new().unwrap();
    let b =
        Brief::parse(RawBrief { product: "{audience} <b>", language: "en", ..Default::default() }, Locale::En).unwrap();
    let input = GenerationInput::new("email", "", 1, 0, b, 4000).unwrap();
    let v = &g.variants(&input)[0];
    assert!(v.body.contains("{audience} <b>"), "{}", v.body);
}

#[test]
fn pages_and_replies_in_every_language() {
    let g = LocalGenerator::new().unwrap();
    for l in Locale::ALL {
        let mut s = g.sections(&brief(l, &[], "friendly"), 1);
        s.validate().unwrap();
        assert!(has_script(l, &s.hero.headline) || has_script(l, &s.hero.subheadline), "{l}: {:?}", s.hero);
        assert_ne!(g.sections(&brief(l, &[], "friendly"), 2), g.sections(&brief(l, &[], "friendly"), 3));
        let agent = AgentSpec { name: "Nova".into(), instructions: String::new(), language: l, knowledge: vec![] };
        let r = g.answer(&agent, &[], &["Envíos en 24 horas."], "envíos?");
        assert!(r.contains("Envíos en 24 horas.") && r.contains("Nova"), "{r}");
        let r = g.answer(&agent, &[Turn { from_user: true, content: "x".into() }], &[], "?");
        assert!(has_script(l, &r) && !r.contains("Nova"), "{l}: {r}");
    }
}
