//! The ports the use cases generate through. The local template generator implements them with
//! no key; an LLM-backed implementation does the same over an OpenAI-compatible API.

use nexus_kernel::Error;
use tokio::sync::mpsc;

use crate::domain::agents::{AgentSpec, Turn};
use crate::domain::generation::{Brief, GenerationInput, Usage, Variant};
use crate::domain::pages::Sections;
use crate::domain::translation::{Translated, TranslationInput};

/// A piece of streamed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub variant: u32,
    /// "title" or "body".
    pub field: &'static str,
    pub text: String,
}

/// Generated copy.
#[derive(Debug, Clone)]
pub struct CopyOutput {
    pub variants: Vec<Variant>,
    pub usage: Usage,
    pub model: String,
    pub prompt_version: String,
}

#[derive(Debug)]
pub enum GenError {
    /// The listener went away or the provider's stream broke after producing `partial`.
    Cut {
        partial: Vec<Variant>,
        usage: Usage,
        cause: Error,
    },
    Failed(Error),
}

impl From<Error> for GenError {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

/// How a generator's work is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metering {
    /// The flat price of the action in the price table.
    Flat,
    /// By tokens used (`credits_for_tokens`).
    Tokens,
}

#[async_trait::async_trait]
pub trait TextGenerator: Send + Sync + 'static {
    /// "local", "openai", …: said in every response.
    fn provider(&self) -> &'static str;

    fn metering(&self) -> Metering;

    /// Copy for `input`. With `deltas`, text is sent as it is produced; a closed channel means
    /// the caller went away, and the generator stops with [`GenError::Cut`].
    async fn copy(&self, input: &GenerationInput, deltas: Option<&mpsc::Sender<Delta>>)
    -> Result<CopyOutput, GenError>;

    /// All sections of a landing page. `variation` changes the wording between calls
    /// (regenerating a section), deterministically.
    async fn page(&self, brief: &Brief, variation: u32) -> Result<(Sections, Usage, String), Error>;

    /// `input`'s texts in each target language, with the usage and the model that made them.
    async fn translate(&self, input: &TranslationInput) -> Result<(Vec<Translated>, Usage, String), Error>;

    /// An agent's reply to `message` after `history`, using `snippets` of its knowledge.
    async fn reply(
        &self,
        agent: &AgentSpec,
        history: &[Turn],
        snippets: &[&str],
        message: &str,
    ) -> Result<(String, Usage, String), Error>;
}
