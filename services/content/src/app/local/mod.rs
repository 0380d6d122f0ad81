//! The local provider: a deterministic, template-based generator that works with no key, in all
//! five languages. Phrase banks live in `templates/local/<lang>.json`; the same input always
//! gives the same output (the seed is a hash of the input), and every text is fitted to its
//! platform's limit.

use std::collections::HashMap;

use nexus_kernel::{Error, Locale};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::app::generator::{CopyOutput, Delta, GenError, Metering, TextGenerator};
use crate::domain::agents::{AgentSpec, Turn};
use crate::domain::generation::{Brief, ContentKind, GenerationInput, Tone, Usage, Variant, estimate_tokens};
use crate::domain::pages::{Benefit, CallToAction, Faq, FormField, Hero, LeadForm, Sections, Testimonial};
use crate::domain::text::fit;
use crate::domain::translation::{Translated, TranslationInput};

pub const MODEL: &str = "local-templates-v1";
/// What the local provider's "translations" are: labelled copies of the source text.
pub const UNTRANSLATED_MODEL: &str = "local-untranslated-v1";

#[derive(Debug, Deserialize)]
struct Defaults {
    audience: String,
    fact: String,
    fact2: String,
}

#[derive(Debug, Deserialize)]
struct ToneBank {
    openers: Vec<String>,
    ctas: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct KindBank {
    #[serde(default)]
    titles: Vec<String>,
    bodies: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct FaqBank {
    q: String,
    a: String,
}

#[derive(Debug, Deserialize)]
struct PageBank {
    hero_headlines: Vec<String>,
    hero_subheadlines: Vec<String>,
    benefit_titles: Vec<String>,
    benefit_bodies: Vec<String>,
    quotes: Vec<String>,
    authors: Vec<String>,
    faq: Vec<FaqBank>,
    cta_headlines: Vec<String>,
    cta_buttons: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct AgentBank {
    matched: Vec<String>,
    more: String,
    fallback: Vec<String>,
    greeting: String,
}

#[derive(Debug, Deserialize)]
struct Bank {
    language: String,
    defaults: Defaults,
    tones: HashMap<String, ToneBank>,
    ad_copy: KindBank,
    social_post: KindBank,
    email: KindBank,
    product_description: KindBank,
    whatsapp_template: KindBank,
    landing_page_copy: KindBank,
    page: PageBank,
    agent: AgentBank,
}

impl Bank {
    fn kind(&self, k: ContentKind) -> &KindBank {
        match k {
            ContentKind::AdCopy => &self.ad_copy,
            ContentKind::SocialPost => &self.social_post,
            ContentKind::Email => &self.email,
            ContentKind::ProductDescription => &self.product_description,
            ContentKind::WhatsappTemplate => &self.whatsapp_template,
            ContentKind::LandingPageCopy => &self.landing_page_copy,
        }
    }
}

fn source(l: Locale) -> &'static str {
    match l {
        Locale::En => include_str!("../../../templates/local/en.json"),
        Locale::Es => include_str!("../../../templates/local/es.json"),
        Locale::Pt => include_str!("../../../templates/local/pt.json"),
        Locale::He => include_str!("../../../templates/local/he.json"),
        Locale::Ar => include_str!("../../../templates/local/ar.json"),
    }
}

/// Replaces `{name}` placeholders in one pass (values are never re-scanned, so user text
/// cannot inject placeholders); unknown ones stay as written (e.g. WhatsApp's `{{1}}`).
fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        let name = &after[..name_len];
        match (after[name_len..].starts_with('}'), vars.iter().find(|(k, _)| *k == name)) {
            (true, Some((_, v))) if !name.is_empty() => {
                out.push_str(v);
                rest = &after[name_len + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// Collapses runs of spaces left by empty values and tidies line ends.
fn tidy(s: &str) -> String {
    s.lines()
        .map(|l| l.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// A deterministic pick from `items` for the input `seed` and a per-use `salt`.
fn pick<'a>(items: &'a [String], seed: &[u8; 32], salt: u64) -> &'a str {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(salt.to_le_bytes());
    let d = h.finalize();
    let n = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    &items[usize::try_from(n % items.len() as u64).unwrap_or(0)]
}

fn seed_of(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().into()
}

pub struct LocalGenerator {
    banks: HashMap<Locale, Bank>,
}

impl LocalGenerator {
    /// Loads the phrase banks; fails (at start-up) if a bank does not parse or misses a tone.
    pub fn new() -> anyhow::Result<Self> {
        let mut banks = HashMap::new();
        for l in Locale::ALL {
            let bank: Bank = serde_json::from_str(source(l))
                .map_err(|e| anyhow::anyhow!("templates/local/{}.json: {e}", l.code()))?;
            anyhow::ensure!(bank.language == l.code(), "templates/local/{}.json: wrong language", l.code());
            for t in Tone::ALL {
                let tb = bank
                    .tones
                    .get(t.as_str())
                    .ok_or_else(|| anyhow::anyhow!("{}: tone {} missing", l.code(), t.as_str()))?;
                anyhow::ensure!(
                    !tb.openers.is_empty() && !tb.ctas.is_empty(),
                    "{}: tone {} empty",
                    l.code(),
                    t.as_str()
                );
            }
            for k in ContentKind::ALL {
                anyhow::ensure!(!bank.kind(k).bodies.is_empty(), "{}: {} has no bodies", l.code(), k.as_str());
            }
            banks.insert(l, bank);
        }
        Ok(Self { banks })
    }

    fn bank(&self, l: Locale) -> &Bank {
        // Every locale is loaded in `new`.
        &self.banks[&l]
    }

    /// The variables every template may use, for one brief.
    fn vars(&self, brief: &Brief, seed: &[u8; 32], salt: u64, platform: &str) -> Vec<(&'static str, String)> {
        let bank = self.bank(brief.language);
        let d = &bank.defaults;
        let audience = if brief.audience.is_empty() { d.audience.clone() } else { brief.audience.clone() };
        let (fact, fact2) = match brief.facts.len() {
            0 => (d.fact.clone(), d.fact2.clone()),
            1 => (brief.facts[0].clone(), d.fact2.clone()),
            n => {
                // Rotate through the facts so variants use different ones.
                let i = usize::try_from(salt).unwrap_or(0) % n;
                (brief.facts[i].clone(), brief.facts[(i + 1) % n].clone())
            }
        };
        let fact = fact.trim_end_matches('.').to_owned();
        let fact2 = fact2.trim_end_matches('.').to_owned();
        let tone = &bank.tones[brief.tone.as_str()];
        let cta = if brief.call_to_action.is_empty() {
            pick(&tone.ctas, seed, salt + 101).to_owned()
        } else {
            brief.call_to_action.trim_end_matches(['.', '!']).to_owned()
        };
        let base = [("product", brief.product.clone()), ("audience", audience.clone())];
        let opener = fill(pick(&tone.openers, seed, salt + 202), &base);
        let description =
            if brief.description.is_empty() { String::new() } else { format!("{} ", brief.description.trim()) };
        let description_or_fact = if brief.description.is_empty() {
            format!("{}.", capitalize(&fact))
        } else {
            brief.description.trim().to_owned()
        };
        vec![
            ("product", brief.product.clone()),
            ("audience", audience),
            ("fact_cap", capitalize(&fact)),
            ("fact2_cap", capitalize(&fact2)),
            ("fact", fact),
            ("fact2", fact2),
            ("cta", cta),
            ("opener", opener),
            ("platform", platform.to_owned()),
            ("description", description),
            ("description_or_fact", description_or_fact),
        ]
    }

    /// Copy for a request, already fitted to its limits.
    pub fn variants(&self, input: &GenerationInput) -> Vec<Variant> {
        let bank = self.bank(input.brief.language);
        let kb = bank.kind(input.kind);
        let seed = seed_of(&[&serde_json::to_string(input).unwrap_or_default()]);
        let limits = input.limits();
        let platform = input.platform.map_or("", |p| p.label());
        (0..input.variants)
            .map(|i| {
                let salt = u64::from(i);
                let vars = self.vars(&input.brief, &seed, salt, platform);
                // Variants walk the template list in order from a seeded start, so they differ.
                let start =
                    usize::try_from(u64::from_le_bytes(seed[..8].try_into().unwrap_or([0; 8])) % 97).unwrap_or(0);
                let idx = start + usize::try_from(i).unwrap_or(0);
                let mut body = tidy(&fill(&kb.bodies[idx % kb.bodies.len()], &vars));
                if !kb.tags.is_empty() {
                    let tag: String = input.brief.product.chars().filter(|c| c.is_alphanumeric()).collect();
                    let mut tags = vec![pick(&kb.tags, &seed, salt + 303).to_owned()];
                    if !tag.is_empty() {
                        tags.insert(0, format!("#{tag}"));
                    }
                    body = format!("{body}\n\n{}", tags.join(" "));
                }
                let title = if limits.title > 0 && !kb.titles.is_empty() {
                    fit(&tidy(&fill(&kb.titles[idx % kb.titles.len()], &vars)), limits.title)
                } else {
                    String::new()
                };
                Variant { title, body: fit(&body, limits.body) }
            })
            .collect()
    }

    /// Page sections for a brief; `variation` picks other wordings deterministically.
    pub fn sections(&self, brief: &Brief, variation: u32) -> Sections {
        let bank = self.bank(brief.language);
        let pb = &bank.page;
        let seed = seed_of(&[&serde_json::to_string(brief).unwrap_or_default(), &variation.to_string()]);
        let vars = self.vars(brief, &seed, 0, "");
        let f = |t: &str| tidy(&fill(t, &vars));
        let tone = &bank.tones[brief.tone.as_str()];
        let cta_label = if brief.call_to_action.is_empty() {
            pick(&tone.ctas, &seed, 1).to_owned()
        } else {
            brief.call_to_action.clone()
        };
        let n_benefits = 3 + usize::from(!brief.facts.is_empty() && brief.facts.len() > 2);
        let benefits = (0..n_benefits)
            .map(|i| {
                let body = if i < brief.facts.len() && i >= 2 {
                    format!("{}.", capitalize(brief.facts[i].trim_end_matches('.')))
                } else {
                    f(&pb.benefit_bodies[i % pb.benefit_bodies.len()])
                };
                Benefit { title: f(&pb.benefit_titles[i % pb.benefit_titles.len()]), body }
            })
            .collect();
        let social_proof = (0..3)
            .map(|i| Testimonial {
                quote: f(&pb.quotes[i % pb.quotes.len()]),
                author: pb.authors[i % pb.authors.len()].clone(),
            })
            .collect();
        let faq = pb.faq.iter().map(|q| Faq { q: f(&q.q), a: f(&q.a) }).collect();
        Sections {
            hero: Hero {
                headline: fit(&f(pick(&pb.hero_headlines, &seed, 10)), 120),
                subheadline: fit(&f(pick(&pb.hero_subheadlines, &seed, 11)), 300),
                cta_label: fit(&cta_label, 40),
                image_id: None,
            },
            benefits,
            social_proof,
            faq,
            cta: CallToAction {
                headline: fit(&f(pick(&pb.cta_headlines, &seed, 12)), 120),
                button: fit(&f(pick(&pb.cta_buttons, &seed, 13)), 40),
            },
            lead_form: LeadForm {
                fields: vec![FormField::Name, FormField::Email, FormField::Message],
                submit_label: fit(&cta_label, 40),
                // Empty: the page renders the localized default consent text.
                consent_text: String::new(),
            },
        }
    }

    /// A reply from the agent's knowledge, in the agent's language.
    pub fn answer(&self, agent: &AgentSpec, history: &[Turn], snippets: &[&str], message: &str) -> String {
        let bank = self.bank(agent.language);
        let ab = &bank.agent;
        let seed = seed_of(&[&agent.name, message, &history.len().to_string()]);
        let greet =
            if history.is_empty() { fill(&ab.greeting, &[("name", agent.name.clone())]) + " " } else { String::new() };
        let body = match snippets.first() {
            Some(first) => {
                let mut s = fill(pick(&ab.matched, &seed, 1), &[("snippet", (*first).to_owned())]);
                if let Some(second) = snippets.get(1) {
                    s = format!("{s} {second}");
                }
                format!("{s} {}", ab.more)
            }
            None => pick(&ab.fallback, &seed, 2).to_owned(),
        };
        fit(&format!("{greet}{body}"), 1_000)
    }
}

fn usage_of(prompt: &str, completion: &str) -> Usage {
    Usage::new(estimate_tokens(prompt), estimate_tokens(completion))
}

#[async_trait::async_trait]
impl TextGenerator for LocalGenerator {
    fn provider(&self) -> &'static str {
        "local"
    }

    fn metering(&self) -> Metering {
        Metering::Flat
    }

    async fn copy(
        &self,
        input: &GenerationInput,
        deltas: Option<&mpsc::Sender<Delta>>,
    ) -> Result<CopyOutput, GenError> {
        let variants = self.variants(input);
        let prompt_version = crate::domain::prompts::for_kind(input.kind).version.to_owned();
        let prompt = serde_json::to_string(input).unwrap_or_default();
        if let Some(tx) = deltas {
            let mut sent: Vec<Variant> = Vec::new();
            for (i, v) in variants.iter().enumerate() {
                sent.push(Variant::default());
                let idx = u32::try_from(i).unwrap_or(u32::MAX);
                for (field, text) in [("title", &v.title), ("body", &v.body)] {
                    // Word-sized pieces, as a model would stream them.
                    for piece in unicode_segmentation::UnicodeSegmentation::split_word_bounds(text.as_str()) {
                        if tx.send(Delta { variant: idx, field, text: piece.to_owned() }).await.is_err() {
                            let done: String = sent.iter().map(|v| format!("{}{}", v.title, v.body)).collect();
                            return Err(GenError::Cut {
                                usage: usage_of(&prompt, &done),
                                partial: sent,
                                cause: Error::new(nexus_kernel::ErrorKind::Unavailable, "content.stream_cancelled"),
                            });
                        }
                        if let Some(last) = sent.last_mut() {
                            if field == "title" { last.title.push_str(piece) } else { last.body.push_str(piece) }
                        }
                    }
                }
            }
        }
        let text: String = variants.iter().map(|v| format!("{}\n{}\n", v.title, v.body)).collect();
        Ok(CopyOutput { usage: usage_of(&prompt, &text), variants, model: MODEL.to_owned(), prompt_version })
    }

    async fn page(&self, brief: &Brief, variation: u32) -> Result<(Sections, Usage, String), Error> {
        let sections = self.sections(brief, variation);
        let text = serde_json::to_string(&sections).unwrap_or_default();
        Ok((sections, usage_of(&serde_json::to_string(brief).unwrap_or_default(), &text), MODEL.to_owned()))
    }

    /// No translation without a model: each text comes back as it was, under a label naming
    /// the language it was asked in, so it cannot pass for a translation anywhere it is shown.
    async fn translate(&self, input: &TranslationInput) -> Result<(Vec<Translated>, Usage, String), Error> {
        let out: Vec<Translated> = input
            .targets
            .iter()
            .map(|&language| Translated {
                language,
                texts: input
                    .texts
                    .iter()
                    .map(|t| if t.trim().is_empty() { String::new() } else { format!("[{}] {t}", language.code()) })
                    .collect(),
            })
            .collect();
        let prompt: String = input.texts.concat();
        let completion: String = out.iter().flat_map(|t| t.texts.iter().map(String::as_str)).collect();
        Ok((out, usage_of(&prompt, &completion), UNTRANSLATED_MODEL.to_owned()))
    }

    async fn reply(
        &self,
        agent: &AgentSpec,
        history: &[Turn],
        snippets: &[&str],
        message: &str,
    ) -> Result<(String, Usage, String), Error> {
        let text = self.answer(agent, history, snippets, message);
        let usage = usage_of(&format!("{}{message}", agent.instructions), &text);
        Ok((text, usage, MODEL.to_owned()))
    }
}

#[cfg(test)]
mod tests;
