//! AI agents: what defines one, and which knowledge snippets go with a message.

use nexus_kernel::{Error, Locale};
use serde::{Deserialize, Serialize};

use super::generation::parse_language;
use super::text_field;

pub const MAX_SNIPPETS: usize = 50;
pub const MAX_SNIPPET_CHARS: usize = 2_000;
pub const MAX_MESSAGE_CHARS: usize = 4_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub name: String,
    pub instructions: String,
    pub language: Locale,
    pub knowledge: Vec<String>,
}

impl AgentSpec {
    pub fn parse(
        name: &str,
        instructions: &str,
        language: &str,
        knowledge: &[String],
        fallback: Locale,
    ) -> Result<Self, Error> {
        if knowledge.len() > MAX_SNIPPETS {
            return Err(Error::invalid("content.too_many_snippets")
                .with_param("max", MAX_SNIPPETS.to_string())
                .with_violation("knowledge", "too_many"));
        }
        let knowledge = knowledge
            .iter()
            .map(|k| text_field("knowledge", k, MAX_SNIPPET_CHARS, false))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|k| !k.is_empty())
            .collect();
        Ok(Self {
            name: text_field("name", name, 80, true)?,
            instructions: text_field("instructions", instructions, 4_000, false)?,
            language: parse_language(language, fallback)?,
            knowledge,
        })
    }
}

/// Lower-cased words of at least three letters (any script), for overlap scoring.
fn words(s: &str) -> std::collections::HashSet<String> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 3).map(str::to_lowercase).collect()
}

/// The snippets sharing most words with `message`, best first, at most `n`, none without any
/// shared word. Ties keep the snippets' order.
pub fn relevant_snippets<'a>(knowledge: &'a [String], message: &str, n: usize) -> Vec<&'a str> {
    let asked = words(message);
    let mut scored: Vec<(usize, usize, &str)> = knowledge
        .iter()
        .enumerate()
        .map(|(i, k)| (words(k).intersection(&asked).count(), i, k.as_str()))
        .filter(|(score, _, _)| *score > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(n).map(|(_, _, k)| k).collect()
}

/// A stored agent.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: uuid::Uuid,
    pub spec: AgentSpec,
    /// The language as stored (its code), for replies and the text direction.
    pub language: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A stored message of a conversation.
#[derive(Debug, Clone)]
pub struct Message {
    pub role: String,
    pub content: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A past message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub from_user: bool,
    pub content: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_picked_by_word_overlap() {
        let k = vec![
            "We ship to Brazil and Portugal in 3 days.".to_owned(),
            "Returns are free within 30 days.".to_owned(),
            "Our store opens at 9am.".to_owned(),
        ];
        assert_eq!(relevant_snippets(&k, "Do you ship to Portugal?", 2), vec![k[0].as_str()]);
        assert_eq!(relevant_snippets(&k, "How many days for returns?", 1), vec![k[1].as_str()]);
        assert!(relevant_snippets(&k, "hello", 3).is_empty());
        let ar = vec!["نشحن إلى جميع المدن خلال يومين".to_owned()];
        assert_eq!(relevant_snippets(&ar, "هل تشحن إلى المدن الصغيرة؟", 3).len(), 1);
    }

    #[test]
    fn specs_are_validated() {
        assert!(AgentSpec::parse("", "", "", &[], Locale::En).is_err());
        assert!(AgentSpec::parse("Ana", "", "xx", &[], Locale::En).is_err());
        assert!(AgentSpec::parse("Ana", "", "", &vec!["k".into(); 51], Locale::En).is_err());
        let a = AgentSpec::parse("Ana", "Be kind", "he", &["  ".into(), "k".into()], Locale::En).unwrap();
        assert_eq!((a.language, a.knowledge.len()), (Locale::He, 1));
    }
}
