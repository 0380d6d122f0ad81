//! The LLM-backed generator: the versioned prompt files over any OpenAI-compatible chat model,
//! with structured JSON output. Streams are read as they come: the text of every `title` and
//! `body` is pulled out of the partial JSON and passed on as deltas.

use std::sync::Arc;

use futures::StreamExt;
use nexus_kernel::{Error, ErrorKind, Locale};
use nexus_providers::llm::{
    ChatChunk, ChatMessage, ChatModel, ChatRequest, LlmError, ResponseFormat, StreamAccumulator,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::app::generator::{CopyOutput, Delta, GenError, Metering, TextGenerator};
use crate::domain::agents::{AgentSpec, Turn};
use crate::domain::generation::{Brief, GenerationInput, Usage, Variant};
use crate::domain::pages::{FormField, Sections};
use crate::domain::prompts;
use crate::domain::translation::{Translated, TranslationInput};

pub struct LlmGenerator {
    pub model: Arc<dyn ChatModel>,
    /// Tokens generated at most when a request names no limit.
    pub default_max_tokens: u32,
}

fn language_name(l: Locale) -> &'static str {
    match l {
        Locale::En => "English",
        Locale::Es => "Spanish",
        Locale::Pt => "Portuguese (Brazil)",
        Locale::He => "Hebrew",
        Locale::Ar => "Arabic",
    }
}

fn brief_vars(b: &Brief) -> Vec<(&'static str, String)> {
    let facts = if b.facts.is_empty() {
        "-".to_owned()
    } else {
        b.facts.iter().map(|f| format!("- {f}")).collect::<Vec<_>>().join("\n")
    };
    let or_dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
    vec![
        ("language_name", language_name(b.language).to_owned()),
        ("language", b.language.code().to_owned()),
        ("tone", b.tone.as_str().to_owned()),
        ("product", b.product.clone()),
        ("description", or_dash(&b.description)),
        ("audience", or_dash(&b.audience)),
        ("facts", facts),
        ("call_to_action", or_dash(&b.call_to_action)),
    ]
}

fn borrowed<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn usage(u: Option<nexus_providers::llm::Usage>, req: &ChatRequest, acc: Option<&StreamAccumulator>) -> Usage {
    match u {
        Some(u) => Usage::new(i64::from(u.prompt_tokens), i64::from(u.completion_tokens)),
        None => Usage::new(
            i64::from(req.estimated_prompt_tokens()),
            acc.map_or(0, |a| i64::from(a.estimated_completion_tokens())),
        ),
    }
}

fn variants_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"variants": {"type": "array", "items": {
            "type": "object",
            "properties": {"title": {"type": "string"}, "body": {"type": "string"}},
            "required": ["title", "body"], "additionalProperties": false}}},
        "required": ["variants"], "additionalProperties": false
    })
}

fn sections_schema() -> Value {
    let pair = |a: &str, b: &str| json!({"type": "object", "properties": {a: {"type": "string"}, b: {"type": "string"}}, "required": [a, b], "additionalProperties": false});
    json!({
        "type": "object",
        "properties": {
            "hero": {"type": "object", "properties": {"headline": {"type": "string"}, "subheadline": {"type": "string"}, "cta_label": {"type": "string"}},
                "required": ["headline", "subheadline", "cta_label"], "additionalProperties": false},
            "benefits": {"type": "array", "items": pair("title", "body")},
            "social_proof": {"type": "array", "items": pair("quote", "author")},
            "faq": {"type": "array", "items": pair("q", "a")},
            "cta": pair("headline", "button"),
            "submit_label": {"type": "string"}
        },
        "required": ["hero", "benefits", "social_proof", "faq", "cta", "submit_label"],
        "additionalProperties": false
    })
}

fn translations_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"translations": {"type": "array", "items": {
            "type": "object",
            "properties": {"language": {"type": "string"}, "texts": {"type": "array", "items": {"type": "string"}}},
            "required": ["language", "texts"], "additionalProperties": false}}},
        "required": ["translations"], "additionalProperties": false
    })
}

#[derive(Deserialize)]
struct TranslationsOut {
    translations: Vec<TranslatedOut>,
}

#[derive(Deserialize)]
struct TranslatedOut {
    language: String,
    texts: Vec<String>,
}

#[derive(Deserialize)]
struct VariantsOut {
    variants: Vec<Variant>,
}

fn failed(why: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unavailable, "provider.generation_failed").with_source(std::io::Error::other(why.into()))
}

/// Pulls the (possibly unfinished) `title` and `body` strings of each element of `variants` out
/// of partial JSON text, so a stream can be shown while the model writes.
pub fn partial_variants(json: &str) -> Vec<Variant> {
    let mut out: Vec<Variant> = Vec::new();
    let mut stack: Vec<char> = Vec::new();
    let mut expect_key = false;
    let mut key = String::new();
    let mut chars = json.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' => {
                stack.push('{');
                expect_key = true;
                if stack.len() == 3 && stack[1] == '[' {
                    out.push(Variant::default());
                }
            }
            '[' => stack.push('['),
            '}' | ']' => {
                stack.pop();
                expect_key = false;
            }
            ',' => expect_key = stack.last() == Some(&'{'),
            ':' => expect_key = false,
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => break,
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => {}
                            Some('u') => {
                                let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                                    s.push(ch);
                                }
                            }
                            Some(other) => s.push(other),
                            None => break,
                        },
                        Some(ch) => s.push(ch),
                    }
                }
                if expect_key && stack.last() == Some(&'{') {
                    key = s;
                } else if stack.len() == 3
                    && stack[1] == '['
                    && let Some(v) = out.last_mut()
                {
                    match key.as_str() {
                        "title" => v.title = s,
                        "body" => v.body = s,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out
}

impl LlmGenerator {
    fn copy_request(&self, input: &GenerationInput) -> ChatRequest {
        let limits = input.limits();
        let mut vars = brief_vars(&input.brief);
        vars.extend([
            ("variants", input.variants.to_string()),
            ("platform", input.platform.map_or("any channel", |p| p.label()).to_owned()),
            ("title_limit", limits.title.to_string()),
            ("body_limit", limits.body.to_string()),
        ]);
        let (system, user) = prompts::for_kind(input.kind).messages(&borrowed(&vars));
        let mut req = ChatRequest::new(vec![ChatMessage::system(system), ChatMessage::user(user)]);
        req.max_tokens = Some(input.max_tokens.unwrap_or(self.default_max_tokens));
        req.response_format =
            ResponseFormat::JsonSchema { name: "copy".into(), schema: variants_schema(), strict: true };
        req
    }
}

#[async_trait::async_trait]
impl TextGenerator for LlmGenerator {
    fn provider(&self) -> &'static str {
        "openai"
    }

    fn metering(&self) -> Metering {
        Metering::Tokens
    }

    async fn copy(
        &self,
        input: &GenerationInput,
        deltas: Option<&mpsc::Sender<Delta>>,
    ) -> Result<CopyOutput, GenError> {
        let req = self.copy_request(input);
        let prompt_version = prompts::for_kind(input.kind).version.to_owned();
        let Some(tx) = deltas else {
            let done = self.model.complete(&req).await.map_err(|e| GenError::Failed(e.into()))?;
            let out: VariantsOut =
                serde_json::from_str(&done.content).map_err(|e| GenError::Failed(failed(e.to_string())))?;
            if out.variants.iter().all(|v| v.body.trim().is_empty()) {
                return Err(GenError::Failed(failed("no text")));
            }
            let model = if done.model.is_empty() { self.model.name().to_owned() } else { done.model.clone() };
            return Ok(CopyOutput {
                variants: out.variants,
                usage: usage(done.usage, &req, None),
                model,
                prompt_version,
            });
        };
        let mut stream = self.model.stream(&req).await.map_err(|e| GenError::Failed(e.into()))?;
        let mut acc = StreamAccumulator::new();
        let mut sent: Vec<(usize, usize)> = Vec::new();
        let cut = |acc: &StreamAccumulator, cause: Error| GenError::Cut {
            partial: partial_variants(acc.content()),
            usage: usage(None, &req, Some(acc)),
            cause,
        };
        while let Some(item) = stream.next().await {
            let chunk = match item {
                Ok(c) => c,
                Err(LlmError::StreamCut { partial }) => {
                    return Err(cut(&partial, Error::new(ErrorKind::Unavailable, "provider.stream_interrupted")));
                }
                Err(e) => return Err(cut(&acc, e.into())),
            };
            acc.push(&chunk);
            if !matches!(chunk, ChatChunk::Content(_)) {
                continue;
            }
            // Pass on whatever text of each variant is new since the last chunk.
            for (i, v) in partial_variants(acc.content()).iter().enumerate() {
                if sent.len() <= i {
                    sent.push((0, 0));
                }
                let (title_sent, body_sent) = &mut sent[i];
                for (field, text, done) in [("title", &v.title, title_sent), ("body", &v.body, body_sent)] {
                    let n = text.chars().count();
                    if n > *done {
                        let piece: String = text.chars().skip(*done).collect();
                        *done = n;
                        let idx = u32::try_from(i).unwrap_or(u32::MAX);
                        if tx.send(Delta { variant: idx, field, text: piece }).await.is_err() {
                            // The caller went away: dropping the stream stops the model.
                            drop(stream);
                            return Err(cut(&acc, Error::new(ErrorKind::Unavailable, "content.stream_cancelled")));
                        }
                    }
                }
            }
        }
        let model = if acc.model().is_empty() { self.model.name().to_owned() } else { acc.model().to_owned() };
        let u = usage(acc.usage(), &req, Some(&acc));
        let out: VariantsOut =
            serde_json::from_str(acc.content()).map_err(|e| GenError::Failed(failed(e.to_string())))?;
        Ok(CopyOutput { variants: out.variants, usage: u, model, prompt_version })
    }

    async fn page(&self, brief: &Brief, _variation: u32) -> Result<(Sections, Usage, String), Error> {
        let vars = brief_vars(brief);
        let (system, user) = prompts::page().messages(&borrowed(&vars));
        let mut req = ChatRequest::new(vec![ChatMessage::system(system), ChatMessage::user(user)]);
        req.max_tokens = Some(self.default_max_tokens.max(1_500));
        req.response_format =
            ResponseFormat::JsonSchema { name: "landing_page".into(), schema: sections_schema(), strict: true };
        let done = self.model.complete(&req).await?;
        let mut v: Value = serde_json::from_str(&done.content).map_err(|e| failed(e.to_string()))?;
        let submit = v.get("submit_label").and_then(Value::as_str).unwrap_or_default().to_owned();
        if let Some(o) = v.as_object_mut() {
            o.remove("submit_label");
            o.insert(
                "lead_form".into(),
                json!({"fields": [FormField::Name, FormField::Email, FormField::Message], "submit_label": submit, "consent_text": ""}),
            );
        }
        let mut sections: Sections = serde_json::from_value(v).map_err(|e| failed(e.to_string()))?;
        sections.validate().map_err(|e| failed(format!("page does not fit the schema: {e}")))?;
        let model = if done.model.is_empty() { self.model.name().to_owned() } else { done.model.clone() };
        Ok((sections, usage(done.usage, &req, None), model))
    }

    async fn translate(&self, input: &TranslationInput) -> Result<(Vec<Translated>, Usage, String), Error> {
        let targets: Vec<String> =
            input.targets.iter().map(|l| format!("{} ({})", language_name(*l), l.code())).collect();
        let texts = serde_json::to_string(&input.texts).map_err(|e| failed(e.to_string()))?;
        let (system, user) = prompts::translate().messages(&[
            ("source_name", language_name(input.source)),
            ("source", input.source.code()),
            ("targets", &targets.join(", ")),
            ("texts", &texts),
        ]);
        let mut req = ChatRequest::new(vec![ChatMessage::system(system), ChatMessage::user(user)]);
        req.max_tokens = Some(input.output_tokens(self.default_max_tokens));
        req.response_format =
            ResponseFormat::JsonSchema { name: "translations".into(), schema: translations_schema(), strict: true };
        let done = self.model.complete(&req).await?;
        let out: TranslationsOut = serde_json::from_str(&done.content).map_err(|e| failed(e.to_string()))?;
        // Every language asked for, each with as many texts as given: anything else is a model
        // that did not follow the schema's intent, and nothing of it is used.
        let mut translated = Vec::with_capacity(input.targets.len());
        for &language in &input.targets {
            let found = out
                .translations
                .iter()
                .find(|t| t.language == language.code())
                .ok_or_else(|| failed(format!("no {} translation", language.code())))?;
            if found.texts.len() != input.texts.len() {
                return Err(failed(format!("{} texts in {}", found.texts.len(), language.code())));
            }
            let texts = found
                .texts
                .iter()
                .zip(&input.texts)
                .map(|(t, source)| if source.trim().is_empty() { String::new() } else { t.trim().to_owned() })
                .collect();
            translated.push(Translated { language, texts });
        }
        let model = if done.model.is_empty() { self.model.name().to_owned() } else { done.model.clone() };
        Ok((translated, usage(done.usage, &req, None), model))
    }

    async fn reply(
        &self,
        agent: &AgentSpec,
        history: &[Turn],
        snippets: &[&str],
        message: &str,
    ) -> Result<(String, Usage, String), Error> {
        let knowledge = if snippets.is_empty() {
            "-".to_owned()
        } else {
            snippets.iter().map(|s| format!("- {s}")).collect::<Vec<_>>().join("\n")
        };
        let vars = [
            ("name", agent.name.as_str()),
            ("language_name", language_name(agent.language)),
            ("language", agent.language.code()),
            ("instructions", if agent.instructions.is_empty() { "-" } else { agent.instructions.as_str() }),
            ("snippets", knowledge.as_str()),
            ("message", message),
        ];
        let (system, user) = prompts::agent().messages(&vars);
        let mut messages = vec![ChatMessage::system(system)];
        messages.extend(
            history
                .iter()
                .map(|t| if t.from_user { ChatMessage::user(&t.content) } else { ChatMessage::assistant(&t.content) }),
        );
        messages.push(ChatMessage::user(user));
        let mut req = ChatRequest::new(messages);
        req.max_tokens = Some(400);
        let done = self.model.complete(&req).await?;
        let text = done.content.trim().to_owned();
        if text.is_empty() {
            return Err(failed("empty reply"));
        }
        let model = if done.model.is_empty() { self.model.name().to_owned() } else { done.model.clone() };
        Ok((text, usage(done.usage, &req, None), model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_json_gives_the_text_written_so_far() {
        let full =
            r#"{"variants":[{"title":"Hola \"mundo\"","body":"Línea 1\nLínea 2 \u00e9"},{"title":"Dos","body":"Sigue"#;
        let v = partial_variants(full);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].title, "Hola \"mundo\"");
        assert_eq!(v[0].body, "Línea 1\nLínea 2 é");
        assert_eq!((v[1].title.as_str(), v[1].body.as_str()), ("Dos", "Sigue"));
        assert!(partial_variants("{\"varia").is_empty());
        // Every prefix parses without panicking, and text only grows.
        let mut last = 0;
        for end in (0..=full.len()).filter(|i| full.is_char_boundary(*i)) {
            let n: usize =
                partial_variants(&full[..end]).iter().map(|v| v.title.chars().count() + v.body.chars().count()).sum();
            assert!(n + 8 >= last, "{end}");
            last = n;
        }
    }
}
