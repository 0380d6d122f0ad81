//! Use cases. gRPC handlers call these with the verified caller; every state change commits
//! with its outbox event; credits and the monthly count are held before any provider call and
//! settled through the outbox when the job ends.

pub mod avatars;
pub mod downloads;
pub mod local;
pub mod media;
pub mod music;
pub mod pipeline;
pub mod providers;
pub mod scripts;
pub mod storage;
pub mod videos;
pub mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_kernel::Error;
use nexus_providers::did::Talks;
use nexus_providers::elevenlabs::{SpeechSynth, Voice};
use sqlx::PgPool;

use crate::config::Config;

pub use nexus_platform::credits::{Credits, GrpcCredits, Hold};

pub struct App {
    pub pool: PgPool,
    pub cfg: Arc<Config>,
    pub credits: Arc<dyn Credits>,
    pub speech: Arc<dyn SpeechSynth>,
    pub talks: Arc<dyn Talks>,
    pub storage: storage::Storage,
    /// Provider outputs are at URLs the provider chose: the safe client.
    pub outbound: nexus_platform::outbound::OutboundClient,
    /// The speech provider's voices, read at most every [`VOICES_TTL`].
    pub voices: tokio::sync::Mutex<Option<(Instant, Vec<Voice>)>>,
    /// Keys of signed download links.
    pub links: crate::domain::links::LinkKeys,
    /// Scripts from the content service, for requests with a topic.
    pub scripts: scripts::ScriptWriter,
}

/// How long the list of voices is kept before it is read again.
pub const VOICES_TTL: Duration = Duration::from_secs(600);

pub use nexus_platform::identity::caller_locale;

/// Client idempotency keys: at most 200 printable characters.
pub fn check_key(key: &str) -> Result<(), Error> {
    if key.len() > 200 || key.chars().any(char::is_control) {
        return Err(Error::invalid("video.invalid_idempotency_key").with_violation("idempotency_key", "invalid"));
    }
    Ok(())
}
