//! The speech and talking-head providers chosen by configuration: ElevenLabs and D-ID with
//! their keys, else the local stand-ins (development, or chosen by name).

use std::sync::Arc;

use nexus_providers::did::{DidClient, DidConfig, LocalTalks, Talks};
use nexus_providers::elevenlabs::{ElevenLabsClient, ElevenLabsConfig, LocalSpeech, SpeechSynth};

use crate::config::Config;

pub struct Providers {
    pub speech: Arc<dyn SpeechSynth>,
    pub talks: Arc<dyn Talks>,
}

impl Providers {
    pub fn from_config(cfg: &Config) -> anyhow::Result<Self> {
        // The provider APIs are at base URLs we configure (not user-chosen): a plain client.
        let http = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(5)).build()?;
        let speech: Arc<dyn SpeechSynth> = match cfg.voice_provider()? {
            "elevenlabs" => {
                let e = &cfg.elevenlabs;
                let mut c = ElevenLabsConfig::new(e.api_key.expose());
                c.base_url = e.base_url.clone();
                c.model_id = e.model_id.clone();
                c.output_format = e.output_format.clone();
                Arc::new(ElevenLabsClient::new(c, http.clone()))
            }
            _ => Arc::new(LocalSpeech),
        };
        let talks: Arc<dyn Talks> = match cfg.render_provider()? {
            "d-id" => {
                let d = &cfg.did;
                let c = DidConfig { api_key: d.api_key.expose().to_owned(), base_url: d.base_url.clone() };
                Arc::new(DidClient::new(c, http))
            }
            _ => Arc::new(LocalTalks::new()),
        };
        Ok(Self { speech, talks })
    }
}
