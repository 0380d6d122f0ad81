//! Creating, reading, listing and canceling videos. Creating holds the credits and counts the
//! month's video before anything is stored or any provider is called; the job then runs in
//! [`super::pipeline`].

use std::time::Instant;

use nexus_kernel::{Error, ErrorKind, Page, PageRequest};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use nexus_proto::events;
use nexus_providers::elevenlabs::Voice;
use rand::Rng as _;

use super::{App, caller_locale, check_key};
use crate::domain::{Estimate, Limits, Status, Transition, Video, VideoId, VideoInput, VideoSpec, parse_video_id};
use crate::events::{FEATURE, Settle, settle_in};
use crate::repo::videos::{self as repo, NewVideo};

/// The priced action of a render minute (subscriptions' price table).
pub const RENDER_MINUTE: &str = "video.render_minute";
/// A hold lasts as long as subscriptions allows (`billing.max_reservation_ttl`); a render that
/// outlives it is charged late from what is available.
const HOLD_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// A cost estimate, with the providers that would be used.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimateView {
    pub estimate: Estimate,
    pub credits: i64,
    pub voice_provider: &'static str,
    pub render_provider: &'static str,
}

impl App {
    fn limits(&self) -> Limits {
        Limits { max_script_chars: self.cfg.videos.max_script_chars, max_title_chars: self.cfg.videos.max_title_chars }
    }

    fn check(&self, p: &Principal, input: &VideoInput) -> Result<VideoSpec, Error> {
        input.check(self.limits(), caller_locale(Some(p)))
    }

    /// The credits a video would hold: the price of a render minute × its minutes. The price is
    /// subscriptions' to say; a throwaway hold would cost a round trip and a ledger row, so the
    /// estimate uses the price table's figure for `video.render_minute`.
    #[tracing::instrument(skip_all)]
    pub async fn estimate(&self, p: &Principal, input: &VideoInput) -> Result<EstimateView, Error> {
        p.require(Action::Read)?;
        let spec = self.check(p, input)?;
        let estimate = Estimate::of(&spec.script);
        Ok(EstimateView {
            estimate,
            credits: estimate.minutes * PRICE_PER_MINUTE,
            voice_provider: self.speech.name(),
            render_provider: self.talks.name(),
        })
    }

    #[tracing::instrument(skip_all)]
    pub async fn create_video(&self, p: &Principal, input: &VideoInput, key: &str) -> Result<Video, Error> {
        p.require(Action::Write)?;
        check_key(key)?;
        let mut spec = self.check(p, input)?;
        self.check_voice(&spec.voice_id).await?;
        if let crate::domain::Avatar::Uploaded(avatar) = crate::domain::Avatar::of(&spec.avatar_url)
            && !self.has_avatar(p.workspace_id, avatar).await?
        {
            return Err(Error::not_found("video.avatar_not_found").with_violation("avatar_url", "unknown"));
        }
        let id = VideoId::new();
        let key = if key.is_empty() { id.to_string() } else { key.to_owned() };
        let tenant = p.workspace_id;
        {
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let existing = repo::by_key(&mut tx, &key).await?;
            db::commit(tx).await?;
            if let Some(v) = existing {
                return Ok(v);
            }
        }
        if let Some((topic, brief)) = &spec.topic {
            let req =
                super::scripts::ScriptRequest { topic, brief, language: spec.language, aspect: spec.aspect, key: &key };
            spec.script = self.scripts.write(tenant, req, self.cfg.videos.max_script_chars).await?;
        }
        let estimate = Estimate::of(&spec.script);
        // Credits first: a refused hold leaves nothing to give back. Then the month's count; a
        // refusal there gives the hold back (through the outbox).
        let hold = self.credits.reserve(RENDER_MINUTE, estimate.minutes, 0, &format!("video:{key}"), HOLD_TTL).await?;
        if hold.status != "held" {
            return Err(Error::new(ErrorKind::Conflict, "video.idempotency_key_reused"));
        }
        let use_key = format!("video:{key}");
        if let Err(e) = self.credits.use_feature(FEATURE, &use_key).await {
            self.give_back(tenant, id, &hold.id, "").await;
            return Err(e);
        }
        let token: String = {
            let mut rng = rand::rng();
            (0..32).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
        };
        let stored = async {
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let new = NewVideo {
                id: id.as_uuid(),
                tenant,
                title: &spec.title,
                script: &spec.script,
                avatar_url: &spec.avatar_url,
                voice_id: &spec.voice_id,
                voice_provider: self.speech.name(),
                provider: self.talks.name(),
                language: spec.language.code(),
                aspect_ratio: spec.aspect.as_str(),
                captions: spec.captions,
                music: spec.music.as_str(),
                characters: estimate.characters,
                minutes: estimate.minutes,
                estimated_credits: hold.amount,
                reservation_id: &hold.id,
                feature_use_key: &use_key,
                webhook_token: &token,
                key: &key,
                created_by: &p.user_id.to_string(),
            };
            let video = repo::insert(&mut tx, &new)
                .await?
                .ok_or_else(|| Error::new(ErrorKind::Conflict, "video.idempotency_key_reused"))?;
            repo::add_transition(&mut tx, tenant.as_uuid(), video.id, "", Status::Queued, "requested").await?;
            crate::events::video_requested(
                &mut tx,
                tenant,
                events::VideoRequested {
                    workspace_id: tenant.to_string(),
                    video_id: id.to_string(),
                    language: video.language.clone(),
                    aspect_ratio: video.aspect_ratio.clone(),
                    characters: video.characters,
                    estimated_credits: video.estimated_credits,
                    voice_provider: video.voice_provider.clone(),
                    provider: video.provider.clone(),
                },
            )
            .await?;
            db::commit(tx).await?;
            Ok(video)
        }
        .await;
        if stored.is_err() {
            self.give_back(tenant, id, &hold.id, &use_key).await;
        }
        stored
    }

    /// Gives a hold (and a counted use, when `use_key` is set) back in a transaction of its own.
    /// If even that cannot be written, the hold expires at its TTL.
    async fn give_back(&self, tenant: nexus_kernel::TenantId, id: VideoId, hold: &str, use_key: &str) {
        let written = async {
            let mut tx = db::tenant(&self.pool, tenant).await?;
            settle_in(&mut tx, tenant, id.as_uuid(), hold, use_key, Settle::GiveBack).await?;
            db::commit(tx).await
        }
        .await;
        if let Err(e) = written {
            tracing::warn!(error = ?e, reservation = %hold, "recording the release failed; the hold will expire");
        }
    }

    #[tracing::instrument(skip_all, fields(video = %id))]
    pub async fn get_video(&self, p: &Principal, id: &str) -> Result<Video, Error> {
        p.require(Action::Read)?;
        let id = parse_video_id(id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let row = repo::get(&mut tx, id.as_uuid()).await?;
        db::commit(tx).await?;
        row.ok_or_else(|| Error::not_found("video.not_found"))
    }

    #[tracing::instrument(skip_all)]
    pub async fn list_videos(&self, p: &Principal, page: &PageRequest) -> Result<Page<Video>, Error> {
        p.require(Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let rows = repo::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(rows)
    }

    #[tracing::instrument(skip_all, fields(video = %id))]
    pub async fn transitions(&self, p: &Principal, id: &str) -> Result<Vec<Transition>, Error> {
        p.require(Action::Read)?;
        let id = parse_video_id(id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if repo::get(&mut tx, id.as_uuid()).await?.is_none() {
            return Err(Error::not_found("video.not_found"));
        }
        let rows = repo::transitions(&mut tx, id.as_uuid()).await?;
        db::commit(tx).await?;
        Ok(rows)
    }

    /// Stops a video that is not finished: its credits and the month's count go back, and a
    /// talk already made is deleted at the provider (best effort).
    #[tracing::instrument(skip_all, fields(video = %id))]
    pub async fn cancel_video(&self, p: &Principal, id: &str) -> Result<Video, Error> {
        p.require(Action::Write)?;
        let id = parse_video_id(id)?;
        let tenant = p.workspace_id;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let Some(current) = repo::get(&mut tx, id.as_uuid()).await? else {
            return Err(Error::not_found("video.not_found"));
        };
        let ended =
            repo::end(&mut tx, id.as_uuid(), None, Status::Canceled, "video.canceled", "canceled by the user").await?;
        let Some(ended) = ended else {
            return Err(
                Error::new(ErrorKind::FailedPrecondition, "video.not_cancelable").with_param("status", current.status)
            );
        };
        super::pipeline::record_end(&mut tx, &ended, Status::Canceled, "video.canceled", "canceled by the user")
            .await?;
        let video = repo::get(&mut tx, id.as_uuid()).await?.ok_or_else(|| Error::not_found("video.not_found"))?;
        db::commit(tx).await?;
        if let Some(talk) = &ended.talk_id
            && let Err(e) = self.talks.delete_talk(talk).await
        {
            tracing::warn!(error = %e, talk, "deleting a canceled video's talk failed");
        }
        Ok(video)
    }

    /// The voices to choose from, cached for [`super::VOICES_TTL`].
    pub async fn voices(&self, p: &Principal) -> Result<Vec<Voice>, Error> {
        p.require(Action::Read)?;
        self.cached_voices().await
    }

    async fn cached_voices(&self) -> Result<Vec<Voice>, Error> {
        let mut cache = self.voices.lock().await;
        if let Some((at, list)) = cache.as_ref()
            && at.elapsed() < super::VOICES_TTL
        {
            return Ok(list.clone());
        }
        let list = self.speech.voices().await.map_err(Error::from)?;
        *cache = Some((Instant::now(), list.clone()));
        Ok(list)
    }

    /// A voice must be one the provider lists, when the list is at hand. Creating a video makes
    /// no provider call (nothing reaches a provider before the credits and the month's count are
    /// held), so with no fresh list the voice is left to the speech step, whose refusal fails
    /// the job and gives everything back.
    async fn check_voice(&self, voice: &str) -> Result<(), Error> {
        let cache = self.voices.lock().await;
        match cache.as_ref() {
            Some((at, known)) if at.elapsed() < super::VOICES_TTL && !known.iter().any(|v| v.voice_id == voice) => {
                // A well-formed id of no voice: not found, as an unknown avatar is.
                Err(Error::not_found("video.unknown_voice").with_violation("voice_id", "unknown"))
            }
            _ => Ok(()),
        }
    }
}

/// Credits of a render minute in the seeded price table (subscriptions migration 0001); used
/// only for estimates shown before a video is created — the hold itself is priced by
/// subscriptions.
pub const PRICE_PER_MINUTE: i64 = 10;
