//! Inbound WhatsApp media: copied into object storage as soon as the message arrives (Meta's
//! media ids expire, so nobody waits for a reader), and served to the workspace afterwards.
//!
//! The webhook stores the message with `media_status = pending` and, in the same transaction,
//! the outbox event the `messaging-media` job consumes. The job asks Meta where the file is,
//! streams it into storage under a per-workspace key while hashing it, checks Meta's SHA-256 and
//! the size cap, and marks the message `stored` or `failed` with a reason. Passing failures
//! (Meta's 5xx, a cut connection) are retried by the consumer with backoff; after the last
//! allowed delivery the message is marked `download_failed` and the event dead-lettered, from
//! where an operator may replay it.

use futures::StreamExt as _;
use futures::stream::BoxStream;
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use nexus_providers::whatsapp::{MediaInfo, WhatsAppError};
use sha2::{Digest as _, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::parse_id;
use super::whatsapp::WhatsApp;
use crate::domain::whatsapp::{MediaFailure, is_sha256_hex, media_key};
use crate::repo::whatsapp as repo;

/// What became of one run of the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    /// Stored now, or nothing left to do (stored before, failed for good, message gone).
    Done,
    /// Failed for good; recorded.
    Failed(MediaFailure),
    /// A passing failure: try again later.
    Retry(String),
}

/// A stored media file opened for reading.
pub struct MediaFile {
    pub content_type: String,
    pub size: u64,
    pub filename: String,
    pub body: BoxStream<'static, Result<bytes::Bytes, object_store::Error>>,
}

/// How a provider error counts: Meta refusing the media (4xx but 429) is final.
fn classify(e: &WhatsAppError) -> Result<MediaFailure, String> {
    match e {
        WhatsAppError::InvalidArgument(m) if m.contains("larger than") => Ok(MediaFailure::TooLarge),
        WhatsAppError::InvalidArgument(_) => Ok(MediaFailure::Gone),
        WhatsAppError::Api { status, .. } if (400..500).contains(status) && *status != 429 => Ok(MediaFailure::Gone),
        other => Err(other.to_string()),
    }
}

impl WhatsApp {
    /// The job's step for one message (`max_attempts`: the consumer's delivery bound). The final
    /// state is written with `tx`, the consumer's transaction that also records the event as
    /// handled; the attempt count is committed on its own first.
    #[tracing::instrument(skip_all, fields(%message))]
    pub async fn copy_media(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        message: Uuid,
        max_attempts: u32,
    ) -> Result<CopyOutcome, Error> {
        let mut own = db::tenant(&self.pool, tenant).await?;
        let Some(row) = repo::media(&mut own, message).await? else { return Ok(CopyOutcome::Done) };
        let replayable = row.media_error.as_deref().is_some_and(MediaFailure::retryable);
        let to_do = match row.media_status.as_deref() {
            Some("pending") => true,
            Some("failed") => replayable,
            _ => false,
        };
        let (Some(media_id), true) = (row.media_id.clone(), to_do) else { return Ok(CopyOutcome::Done) };
        let attempts = repo::count_media_attempt(&mut own, message).await?;
        let number = repo::number(&mut own, row.number_id).await?.ok_or_else(|| Error::internal("message's number"))?;
        db::commit(own).await?;

        let result = self.fetch_into_storage(&number, &media_id, tenant, message).await?;
        match result {
            Ok((key, sha, size, mime)) => {
                let size = i64::try_from(size).map_err(Error::internal)?;
                repo::set_media_stored(tx, message, &key, &sha, size, &mime).await?;
                Ok(CopyOutcome::Done)
            }
            Err(Ok(failure)) => {
                tracing::warn!(reason = failure.as_str(), "whatsapp media not stored");
                repo::set_media_failed(tx, message, failure.as_str()).await?;
                Ok(CopyOutcome::Failed(failure))
            }
            Err(Err(reason)) => {
                if u32::try_from(attempts).unwrap_or(u32::MAX) >= max_attempts {
                    // The consumer dead-letters this delivery: say so on the message, in a
                    // transaction of its own (the consumer's is rolled back).
                    let mut own = db::tenant(&self.pool, tenant).await?;
                    repo::set_media_failed(&mut own, message, MediaFailure::DownloadFailed.as_str()).await?;
                    db::commit(own).await?;
                }
                Ok(CopyOutcome::Retry(reason))
            }
        }
    }

    /// Metadata, then the bytes streamed into storage while hashed. `Err(Ok(_))`: failed for
    /// good; `Err(Err(_))`: a passing failure.
    #[allow(clippy::type_complexity)]
    async fn fetch_into_storage(
        &self,
        number: &repo::NumberRow,
        media_id: &str,
        tenant: TenantId,
        message: Uuid,
    ) -> Result<Result<(String, String, u64, String), Result<MediaFailure, String>>, Error> {
        let max = self.storage.max_bytes;
        let provider = self.provider_for(number)?;
        let token = self.number_token(number)?;
        let info: MediaInfo = match provider.media_info(&token, media_id).await {
            Ok(i) => i,
            Err(e) => return Ok(Err(classify(&e))),
        };
        if info.file_size > max {
            return Ok(Err(Ok(MediaFailure::TooLarge)));
        }
        let expected = info.sha256.to_ascii_lowercase();
        if !is_sha256_hex(&expected) {
            // Nothing to check the bytes against: they are not taken.
            return Ok(Err(Ok(MediaFailure::Sha256Mismatch)));
        }
        let download = match provider.download_media(&token, &info, max).await {
            Ok(d) => d,
            Err(e) => return Ok(Err(classify(&e))),
        };
        let key = media_key(tenant.as_uuid(), message);
        let mut hasher = Sha256::new();
        let body = download.body.inspect(|chunk| {
            if let Ok(bytes) = chunk {
                hasher.update(bytes);
            }
        });
        let written = match self.storage.put_stream(&key, body, max).await {
            Ok(n) => n,
            Err(e) if e.too_large => return Ok(Err(Ok(MediaFailure::TooLarge))),
            Err(e) if e.permanent => return Ok(Err(Ok(MediaFailure::Gone))),
            Err(e) => return Ok(Err(Err(e.reason))),
        };
        let got = hex::encode(hasher.finalize());
        if got != expected {
            // The bytes are not what Meta described: never served.
            if let Err(e) = self.storage.delete(&key).await {
                tracing::warn!(error = %e, "could not remove refused media");
            }
            return Ok(Err(Ok(MediaFailure::Sha256Mismatch)));
        }
        let mime = if info.mime_type.is_empty() { "application/octet-stream".to_owned() } else { info.mime_type };
        Ok(Ok((key, got, written, mime)))
    }

    /// Opens a message's stored media for a member of its workspace.
    #[tracing::instrument(skip_all, fields(workspace = %p.workspace_id))]
    pub async fn open_media(&self, p: &Principal, id: &str) -> Result<MediaFile, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, "messaging.whatsapp_message_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let row = repo::media(&mut tx, id).await?;
        db::commit(tx).await?;
        let row = row.ok_or_else(|| Error::not_found("messaging.whatsapp_message_not_found"))?;
        let (Some(status), Some(_)) = (row.media_status.as_deref(), row.media_id.as_deref()) else {
            return Err(Error::not_found("messaging.whatsapp_media_not_found"));
        };
        let key = match (status, row.media_key) {
            ("stored", Some(key)) => key,
            ("failed", _) => {
                return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.whatsapp_media_failed")
                    .with_param("reason", row.media_error.unwrap_or_default()));
            }
            _ => return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.whatsapp_media_pending")),
        };
        let opened = self
            .storage
            .open(&key, None::<fn(u64) -> Option<(u64, u64)>>)
            .await
            .map_err(|e| Error::unavailable("service.unavailable").with_source(e))?
            .map_err(|_| Error::internal("whole-file read refused"))?;
        let content_type = row.media_mime.unwrap_or_else(|| "application/octet-stream".into());
        Ok(MediaFile {
            filename: format!("{}{}", id.simple(), extension(&content_type)),
            content_type,
            size: opened.size,
            body: opened.body,
        })
    }
}

/// A file name's extension for common WhatsApp media types (none for others).
fn extension(mime: &str) -> &'static str {
    match mime.split(';').next().unwrap_or("").trim() {
        "image/jpeg" => ".jpg",
        "image/png" => ".png",
        "image/webp" => ".webp",
        "video/mp4" => ".mp4",
        "video/3gpp" => ".3gp",
        "audio/ogg" => ".ogg",
        "audio/mpeg" => ".mp3",
        "audio/mp4" | "audio/aac" => ".m4a",
        "application/pdf" => ".pdf",
        _ => "",
    }
}
