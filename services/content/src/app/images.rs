//! Images for pages and ads. With no image provider configured, a local placeholder is made at
//! once (deterministic), so pages and posts work offline: a hero is an SVG captioned in the
//! page's language; an ad is a JPEG (what Instagram takes), drawn from its prompt.

use nexus_kernel::{Error, ErrorKind};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};

use super::providers::{ImageFormat, Started};
use super::{App, Outcome, caller_locale, check_key, fresh, settle_in};
use crate::domain::generation::parse_language;
use crate::domain::images::{Image, side};
use crate::domain::render::jpeg::ad_placeholder;
use crate::domain::render::svg::placeholder;
use crate::domain::{ImageId, parse_id, text_field};
use crate::repo::images::{self as repo, NewImage};

/// The longest hold subscriptions grants (`billing.max_reservation_ttl`).
const PROVIDER_JOB_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// What to draw.
#[derive(Debug, Clone, Default)]
pub struct ImageRequest {
    pub purpose: String,
    pub prompt: String,
    pub caption: String,
    pub language: String,
    pub width: u32,
    pub height: u32,
}

impl App {
    #[tracing::instrument(skip_all, fields(purpose = %r.purpose))]
    pub async fn create_image(&self, p: &Principal, r: ImageRequest, key: &str) -> Result<Image, Error> {
        p.require(Action::Write)?;
        check_key(key)?;
        let purpose = match r.purpose.as_str() {
            "hero" | "ad" => r.purpose.clone(),
            other => {
                return Err(Error::invalid("content.unknown_purpose")
                    .with_param("purpose", other.chars().take(40).collect::<String>())
                    .with_violation("purpose", "unknown"));
            }
        };
        let prompt = text_field("prompt", &r.prompt, 1_000, true)?;
        let caption = text_field("caption", &r.caption, 120, false)?;
        let language = parse_language(&r.language, caller_locale(Some(p)))?;
        let (dw, dh) = if purpose == "hero" { (1024, 576) } else { (1024, 1024) };
        let width = if r.width == 0 { dw } else { side(r.width)? };
        let height = if r.height == 0 { dh } else { side(r.height)? };
        let id = ImageId::new();
        let key = if key.is_empty() { id.to_string() } else { key.to_owned() };
        let tenant = p.workspace_id;
        {
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let existing = repo::by_key(&mut tx, &key).await?;
            if let Some(row) = existing {
                return Ok(row);
            }
        }
        // A provider job is settled when it ends (see `job_finished`), which can take a while:
        // hold the credits as long as subscriptions allows; a job that outlives it is free.
        let ttl = if self.images.is_some() { PROVIDER_JOB_TTL } else { self.cfg.generation.reservation_ttl };
        let hold = self.credits.reserve("content.image", 1, 0, &format!("content.image:{key}"), ttl).await?;
        fresh(&hold)?;
        let job = format!("content.image:{id}");
        let stored = async {
            // A provider's image arrives later (webhook or poll); a placeholder is ready now.
            let (provider, status, content_type, data, external_id) = match &self.images {
                Some(p) => match p.start(&prompt, width, height, ImageFormat::of_purpose(&purpose)).await? {
                    Started::Pending(job) => (p.name(), "pending", String::new(), None, Some(job)),
                    Started::Done(job, source) => {
                        let (content_type, data) = self.fetch(source).await.map_err(|why| {
                            tracing::warn!(error = %why, "provider image refused");
                            Error::unavailable("provider.generation_failed")
                        })?;
                        (p.name(), "succeeded", content_type, Some(data), Some(job))
                    }
                },
                None => {
                    let (content_type, data) = if purpose == "ad" {
                        ("image/jpeg", ad_placeholder(&prompt, width, height)?)
                    } else {
                        let text = if caption.is_empty() { &prompt } else { &caption };
                        ("image/svg+xml", placeholder(&prompt, text, language, width, height).into_bytes())
                    };
                    if data.len() > self.cfg.images.max_bytes {
                        return Err(Error::new(ErrorKind::PayloadTooLarge, "content.image_too_large")
                            .with_param("limit", self.cfg.images.max_bytes.to_string()));
                    }
                    ("local", "succeeded", content_type.to_owned(), Some(data), None)
                }
            };
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let new = NewImage {
                id: id.as_uuid(),
                tenant,
                purpose: &purpose,
                provider,
                status,
                prompt: &prompt,
                caption: &caption,
                language: language.code(),
                content_type: &content_type,
                data: data.as_deref(),
                width,
                height,
                external_id: external_id.as_deref(),
                reservation_id: &hold.id,
                key: &key,
            };
            let row = repo::insert(&mut tx, &new).await?;
            // A twin request with the same key (so the same hold) stored first; it settles.
            let row = row.ok_or_else(|| Error::new(ErrorKind::Conflict, "content.idempotency_key_reused"))?;
            // Charged with the image when it is made; a pending provider job is charged (or
            // given back) when it finishes.
            if row.status == "succeeded" {
                settle_in(&mut tx, tenant, &hold, &job, Outcome::Charge(hold.amount)).await?;
            }
            db::commit(tx).await?;
            Ok(row)
        }
        .await;
        // A job that could not start gives everything back.
        self.give_back_on_failure(tenant, &hold, &job, &stored).await;
        stored
    }

    #[tracing::instrument(skip_all, fields(image = %id))]
    pub async fn get_image(&self, p: &Principal, id: &str) -> Result<Image, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, ImageId::parse, "content.image_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let row = repo::get(&mut tx, id.as_uuid()).await?;
        db::commit(tx).await?;
        row.ok_or_else(|| Error::not_found("content.image_not_found"))
    }

    /// A finished image's file, for a service that takes it elsewhere. Unknown or another
    /// workspace's: not found; still drawing or failed: `content.image_not_ready`.
    #[tracing::instrument(skip_all, fields(image = %id))]
    pub async fn read_image(&self, p: &Principal, id: &str) -> Result<ImageFile, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, ImageId::parse, "content.image_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let image =
            repo::get(&mut tx, id.as_uuid()).await?.ok_or_else(|| Error::not_found("content.image_not_found"))?;
        let file = repo::finished(&mut tx, id.as_uuid()).await?;
        db::commit(tx).await?;
        let Some((content_type, data)) = file else {
            return Err(
                Error::new(ErrorKind::FailedPrecondition, "content.image_not_ready").with_param("status", image.status)
            );
        };
        Ok(ImageFile { content_type, data, image })
    }
}

/// A finished image with its bytes.
#[derive(Debug, Clone)]
pub struct ImageFile {
    pub content_type: String,
    pub data: Vec<u8>,
    pub image: Image,
}
