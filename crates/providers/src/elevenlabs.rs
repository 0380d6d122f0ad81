//! ElevenLabs text-to-speech (`reference/providers.md` §3): the voices of the account and
//! speech for a script, with the characters billed for it.
//!
//! - `xi-api-key` header (never logged).
//! - `GET /v1/voices`; `POST /v1/text-to-speech/{voice_id}?output_format=…` answers the raw
//!   audio; the characters charged come in the `character-cost` header (the text's length when
//!   it is missing), the request id in `request-id`.
//! - Errors: `{"detail":{"status","message"}}` — `quota_exceeded` and `invalid_api_key` with
//!   401, `too_many_concurrent_requests` / `system_busy` with 429 — or a 422 list of fields.
//! - Retries (at most [`MAX_ATTEMPTS`]): 429 (honouring `Retry-After` up to
//!   [`MAX_RETRY_AFTER`]), 5xx and connection failures before the request was sent. Speech is
//!   not asked again after a cut connection: it may have been billed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{Endpoint, Failed, RetryPolicy, read_limited, retry_after, transport_reason};
use crate::llm::clip;

pub const DEFAULT_BASE_URL: &str = "https://api.elevenlabs.io";
pub const DEFAULT_MODEL: &str = "eleven_multilingual_v2";
pub const DEFAULT_OUTPUT_FORMAT: &str = "mp3_44100_128";
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
pub const MAX_ATTEMPTS: u32 = 3;
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);
/// Speech longer than this is refused (a script of a few minutes is a few MB of MP3).
pub const MAX_AUDIO_BYTES: usize = 32 * 1024 * 1024;
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone, Deserialize)]
pub struct ElevenLabsConfig {
    /// Never logged.
    pub api_key: String,
    pub base_url: String,
    pub model_id: String,
    pub output_format: String,
}

impl ElevenLabsConfig {
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            base_url: DEFAULT_BASE_URL.into(),
            model_id: DEFAULT_MODEL.into(),
            output_format: DEFAULT_OUTPUT_FORMAT.into(),
        }
    }
}

impl fmt::Debug for ElevenLabsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElevenLabsConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("model_id", &self.model_id)
            .field("output_format", &self.output_format)
            .finish()
    }
}

/// A voice of the account (`GET /v1/voices`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Voice {
    pub voice_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub preview_url: Option<String>,
}

/// Speech made for a text.
#[derive(Clone, PartialEq, Eq)]
pub struct Speech {
    pub audio: Vec<u8>,
    /// `audio/mpeg`, `audio/wav`, …
    pub content_type: String,
    /// Characters ElevenLabs charged (`character-cost`).
    pub characters: i64,
    pub request_id: Option<String>,
}

impl fmt::Debug for Speech {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Speech")
            .field("bytes", &self.audio.len())
            .field("content_type", &self.content_type)
            .field("characters", &self.characters)
            .finish()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ElevenLabsError {
    #[error("elevenlabs rate limit ({status}){}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited { status: String, retry_after: Option<Duration> },
    /// 401 `quota_exceeded`: the account's characters are used up; not worth retrying.
    #[error("elevenlabs quota exceeded: {message}")]
    QuotaExceeded { message: String },
    #[error("elevenlabs refused the API key")]
    Auth,
    #[error("elevenlabs: not found: {message}")]
    NotFound { message: String },
    /// 400/422: the text, voice or settings were refused.
    #[error("elevenlabs refused the request: {message}")]
    Invalid { message: String },
    #[error("invalid elevenlabs request: {0}")]
    InvalidArgument(String),
    #[error("elevenlabs did not answer in time")]
    Timeout,
    #[error("elevenlabs error {status}: {detail}")]
    Upstream { status: u16, detail: String },
    #[error("unreadable elevenlabs answer: {0}")]
    Decode(String),
}

impl ElevenLabsError {
    fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let detail = &v["detail"];
        let code = detail["status"].as_str().unwrap_or_default().to_owned();
        let message = clip(
            &detail["message"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    detail.as_array().and_then(|a| a.first()).and_then(|f| f["msg"].as_str()).map(str::to_owned)
                })
                .or_else(|| detail.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("answered {status} without details")),
        );
        match (status, code.as_str()) {
            (_, "quota_exceeded") => Self::QuotaExceeded { message },
            (429, _) | (_, "too_many_concurrent_requests" | "system_busy") => {
                Self::RateLimited { status: if code.is_empty() { "throttled".into() } else { code }, retry_after }
            }
            (401 | 403, _) => Self::Auth,
            (404, _) => Self::NotFound { message },
            (400 | 422, _) => Self::Invalid { message },
            _ => Self::Upstream { status, detail: message },
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Timeout | Self::Decode(_) => true,
            Self::Upstream { status, .. } => *status == 0 || *status >= 500,
            _ => false,
        }
    }

    fn retryable(&self, sent: bool) -> bool {
        match self {
            Self::RateLimited { .. } => true,
            Self::Upstream { status: 0, .. } => !sent,
            Self::Upstream { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

impl From<ElevenLabsError> for nexus_kernel::Error {
    fn from(e: ElevenLabsError) -> Self {
        use nexus_kernel::{Error, ErrorKind};
        match &e {
            ElevenLabsError::RateLimited { retry_after, .. } => crate::llm::rate_limited(*retry_after).with_source(e),
            ElevenLabsError::QuotaExceeded { .. } => {
                Error::new(ErrorKind::Unavailable, "provider.quota_exceeded").with_source(e)
            }
            ElevenLabsError::Invalid { .. } => {
                Error::new(ErrorKind::Unprocessable, "provider.invalid_request").with_source(e)
            }
            ElevenLabsError::Timeout => Error::new(ErrorKind::DeadlineExceeded, "provider.timeout").with_source(e),
            ElevenLabsError::Upstream { status, .. } if *status == 0 || *status >= 500 => {
                Error::new(ErrorKind::Unavailable, "provider.unavailable").with_source(e)
            }
            ElevenLabsError::Decode(_) => Error::new(ErrorKind::Unavailable, "provider.unavailable").with_source(e),
            ElevenLabsError::Auth
            | ElevenLabsError::NotFound { .. }
            | ElevenLabsError::InvalidArgument(_)
            | ElevenLabsError::Upstream { .. } => Error::internal(e),
        }
    }
}

/// What the video pipeline needs from a speech provider: ElevenLabs, or a local stand-in.
#[async_trait::async_trait]
pub trait SpeechSynth: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn voices(&self) -> Result<Vec<Voice>, ElevenLabsError>;
    /// Speech for `text` in `voice_id`; `language` is an ISO 639-1 code.
    async fn synthesize(&self, voice_id: &str, text: &str, language: &str) -> Result<Speech, ElevenLabsError>;
}

/// ElevenLabs API client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ElevenLabsClient {
    inner: Arc<Endpoint<ElevenLabsConfig>>,
}

impl ElevenLabsClient {
    pub fn new(cfg: ElevenLabsConfig, http: reqwest::Client) -> Self {
        Self::with_max_retry_after(cfg, http, MAX_RETRY_AFTER)
    }

    pub fn with_max_retry_after(cfg: ElevenLabsConfig, http: reqwest::Client, max_retry_after: Duration) -> Self {
        let (base, retry) = (cfg.base_url.clone(), RetryPolicy::new(MAX_ATTEMPTS, max_retry_after));
        Self { inner: Arc::new(Endpoint::new(cfg, &base, http, retry, ("elevenlabs", "API key"))) }
    }

    /// `GET /v1/voices`.
    pub async fn list_voices(&self) -> Result<Vec<Voice>, ElevenLabsError> {
        #[derive(Deserialize)]
        struct Voices {
            #[serde(default)]
            voices: Vec<Voice>,
        }
        let (bytes, _) = self.call(Method::GET, "/v1/voices", None, MAX_BODY_BYTES).await?;
        let v: Voices =
            serde_json::from_slice(&bytes).map_err(|e| ElevenLabsError::Decode(format!("unexpected answer: {e}")))?;
        Ok(v.voices)
    }

    /// `POST /v1/text-to-speech/{voice_id}`: the audio and the characters charged.
    pub async fn text_to_speech(&self, voice_id: &str, text: &str, language: &str) -> Result<Speech, ElevenLabsError> {
        if voice_id.is_empty() || voice_id.len() > 64 || !voice_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ElevenLabsError::InvalidArgument("malformed voice id".into()));
        }
        if text.trim().is_empty() {
            return Err(ElevenLabsError::InvalidArgument("empty text".into()));
        }
        let cfg = &self.inner.cfg;
        let mut body = serde_json::json!({"text": text, "model_id": cfg.model_id});
        if !language.is_empty() {
            body["language_code"] = Value::from(language);
        }
        let path = format!("/v1/text-to-speech/{voice_id}?output_format={}", cfg.output_format);
        let (audio, headers) = self.call(Method::POST, &path, Some(&body), MAX_AUDIO_BYTES).await?;
        if audio.is_empty() {
            return Err(ElevenLabsError::Decode("empty audio".into()));
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).map(str::to_owned);
        let characters = header("character-cost")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or_else(|| i64::try_from(text.chars().count()).unwrap_or(i64::MAX));
        let content_type = header(CONTENT_TYPE.as_str())
            .map(|c| c.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "audio/mpeg".into());
        Ok(Speech { audio, content_type, characters, request_id: header("request-id") })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        max: usize,
    ) -> Result<(Vec<u8>, reqwest::header::HeaderMap), ElevenLabsError> {
        let url = format!("{}{path}", self.inner.base);
        let attempt = |_| async {
            self.attempt(&method, &url, body, max).await.map_err(|(err, pause, sent)| {
                let retryable = err.retryable(sent);
                Failed::new(err, retryable, pause)
            })
        };
        let route = path.split('?').next().unwrap_or_default();
        self.inner
            .retry
            .run(attempt, |failed, d| {
                let (attempt, error, retry) = (d.attempt, &failed.error, d.retry);
                tracing::warn!(%method, path = route, attempt, %error, retry, "elevenlabs request failed");
            })
            .await
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        max: usize,
    ) -> Result<(Vec<u8>, reqwest::header::HeaderMap), (ElevenLabsError, Option<Duration>, bool)> {
        let mut req = self
            .inner
            .http
            .request(method.clone(), url)
            .header("xi-api-key", &self.inner.cfg.api_key)
            .header(ACCEPT, if body.is_some() { "audio/*" } else { "application/json" })
            .timeout(REQUEST_TIMEOUT);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| (transport_error(&e), None, !e.is_connect()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if (200..300).contains(&status) {
            if resp.content_length().is_some_and(|n| n > max as u64) {
                return Err((ElevenLabsError::Decode("answer larger than the limit".into()), None, true));
            }
            let mut resp = resp;
            let mut out = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| (transport_error(&e), None, true))? {
                if out.len() + chunk.len() > max {
                    return Err((ElevenLabsError::Decode("answer larger than the limit".into()), None, true));
                }
                out.extend_from_slice(&chunk);
            }
            return Ok((out, headers));
        }
        let bytes = read_limited(resp, MAX_BODY_BYTES).await.map_err(|e| (transport_error(&e), None, true))?;
        let wait = retry_after(&headers);
        Err((ElevenLabsError::from_response(status, &bytes, wait), wait, true))
    }
}

#[async_trait::async_trait]
impl SpeechSynth for ElevenLabsClient {
    fn name(&self) -> &'static str {
        "elevenlabs"
    }
    async fn voices(&self) -> Result<Vec<Voice>, ElevenLabsError> {
        self.list_voices().await
    }
    async fn synthesize(&self, voice_id: &str, text: &str, language: &str) -> Result<Speech, ElevenLabsError> {
        self.text_to_speech(voice_id, text, language).await
    }
}

fn transport_error(e: &reqwest::Error) -> ElevenLabsError {
    if e.is_timeout() {
        ElevenLabsError::Timeout
    } else {
        ElevenLabsError::Upstream { status: 0, detail: format!("could not reach ElevenLabs: {}", transport_reason(e)) }
    }
}

// ---------------------------------------------------------------------------------------------
// Local stand-in

/// Speech for development without a key: a silent 16 kHz mono WAV as long as the text would
/// take to say (about 15 characters a second), billed 0 characters. Labelled `local`.
#[derive(Debug, Default, Clone)]
pub struct LocalSpeech;

/// Characters a second of speech, for the length of local audio and for estimates.
pub const CHARS_PER_SECOND: f64 = 15.0;

impl LocalSpeech {
    pub fn voices_list() -> Vec<Voice> {
        ["local-female", "local-male"]
            .iter()
            .map(|id| Voice {
                voice_id: (*id).into(),
                name: id.replace('-', " "),
                category: Some("local".into()),
                labels: Default::default(),
                preview_url: None,
            })
            .collect()
    }
}

/// A silent PCM WAV of `seconds` (16 kHz, mono, 16-bit).
pub fn silent_wav(seconds: f64) -> Vec<u8> {
    let rate: u32 = 16_000;
    let samples = (seconds.clamp(0.1, 600.0) * f64::from(rate)) as u32;
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(44 + data_len as usize, 0);
    out
}

#[async_trait::async_trait]
impl SpeechSynth for LocalSpeech {
    fn name(&self) -> &'static str {
        "local"
    }
    async fn voices(&self) -> Result<Vec<Voice>, ElevenLabsError> {
        Ok(Self::voices_list())
    }
    async fn synthesize(&self, _voice_id: &str, text: &str, _language: &str) -> Result<Speech, ElevenLabsError> {
        if text.trim().is_empty() {
            return Err(ElevenLabsError::InvalidArgument("empty text".into()));
        }
        let seconds = text.chars().count() as f64 / CHARS_PER_SECOND;
        Ok(Speech { audio: silent_wav(seconds), content_type: "audio/wav".into(), characters: 0, request_id: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_map_to_kinds() {
        let quota = br#"{"detail":{"status":"quota_exceeded","message":"This request exceeds your quota of 10000."}}"#;
        let e = ElevenLabsError::from_response(401, quota, None);
        assert!(matches!(e, ElevenLabsError::QuotaExceeded { .. }), "{e:?}");
        assert!(!e.is_transient());
        let e = ElevenLabsError::from_response(401, br#"{"detail":{"status":"invalid_api_key","message":"x"}}"#, None);
        assert!(matches!(e, ElevenLabsError::Auth));
        let busy = br#"{"detail":{"status":"too_many_concurrent_requests","message":"busy"}}"#;
        let e = ElevenLabsError::from_response(429, busy, Some(Duration::from_secs(1)));
        assert!(matches!(e, ElevenLabsError::RateLimited { .. }) && e.is_transient());
        let e = ElevenLabsError::from_response(
            422,
            br#"{"detail":[{"loc":["body","text"],"msg":"field required","type":"missing"}]}"#,
            None,
        );
        assert!(matches!(e, ElevenLabsError::Invalid { ref message } if message == "field required"), "{e:?}");
    }

    #[test]
    fn local_speech_lasts_as_long_as_the_text() {
        let wav = silent_wav(2.0);
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(wav.len(), 44 + 2 * 16_000 * 2);
    }
}
