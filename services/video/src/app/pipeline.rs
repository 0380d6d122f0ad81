//! The render job: queued → synthesizing_voice → rendering → storing → done, or failed /
//! canceled from any working state. The state lives on the video row in Postgres, so jobs
//! survive restarts and run on any replica: workers claim due rows with `FOR UPDATE SKIP
//! LOCKED` under a lease (a worker that dies loses its jobs to another when the lease runs
//! out), and every update names the state and lease it expects, so a job canceled or taken
//! over meanwhile is dropped, never moved twice. Each change is recorded in
//! `video_transitions` in the same transaction, and the end of a job settles its credits and
//! monthly count through the outbox.
//!
//! Transient provider errors (rate limits, outages, timeouts) are tried again after a growing
//! pause (or the wait the provider asked for), up to `pipeline.max_attempts`; anything else
//! fails the job with its error code, shown to the user in their language.

use std::sync::Arc;
use std::time::Duration;

use nexus_kernel::{Error, TenantId, WorkspaceId};
use nexus_platform::db;
use nexus_proto::events;
use nexus_providers::did::{CreateTalk, DidError, LOCAL_RESULT_PREFIX, Script, Talk, TalkStatus};
use nexus_providers::elevenlabs::ElevenLabsError;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::App;
use super::storage;
use crate::domain::music::Music;
use crate::domain::{Aspect, Avatar, Status, VideoId, charge_for};
use crate::events::{Settle, settle_in};
use crate::repo::videos::{self as repo, Ended, Job};

/// Jobs one worker claims at a time: one, so no claimed job waits behind another while its
/// lease runs (workers are many instead, `pipeline.workers` per replica).
const CLAIM_BATCH: i64 = 1;
/// The longest pause between two attempts of a step.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a step did not go through.
#[derive(Debug, Clone)]
pub struct StepError {
    pub code: String,
    pub detail: String,
    pub transient: bool,
    /// The wait the provider asked for.
    pub wait: Option<Duration>,
}

impl StepError {
    fn permanent(code: &str, detail: impl Into<String>) -> Self {
        Self { code: code.into(), detail: detail.into(), transient: false, wait: None }
    }

    fn internal(e: &Error) -> Self {
        Self { code: e.code().into(), detail: e.to_string(), transient: true, wait: None }
    }
}

impl From<ElevenLabsError> for StepError {
    fn from(e: ElevenLabsError) -> Self {
        let wait = match &e {
            ElevenLabsError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        };
        let transient = e.is_transient();
        let detail = e.to_string();
        Self { code: Error::from(e).code().to_owned(), detail, transient, wait }
    }
}

impl From<DidError> for StepError {
    fn from(e: DidError) -> Self {
        let wait = match &e {
            DidError::RateLimited { retry_after } => *retry_after,
            _ => None,
        };
        let transient = e.is_transient();
        let detail = e.to_string();
        Self { code: Error::from(e).code().to_owned(), detail, transient, wait }
    }
}

/// What a step left the job as.
enum Next {
    /// Moved on, still held: run the next step now.
    Continue(Job),
    /// Released (waiting for the provider, or final, or no longer ours).
    Stop,
}

/// Claims and runs due jobs until `stop`. A job cut off by `stop` stays claimed until its lease
/// runs out, then another worker (or this service after a restart) picks it up where its last
/// committed state says.
pub async fn worker(app: Arc<App>, n: usize, stop: CancellationToken) {
    tracing::debug!(worker = n, "video worker started");
    loop {
        if stop.is_cancelled() {
            return;
        }
        let claimed = app.claim().await;
        let idle = match claimed {
            Ok(jobs) if !jobs.is_empty() => {
                for job in jobs {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = app.run(job) => {}
                    }
                }
                false
            }
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = ?e, "claiming video jobs failed");
                true
            }
        };
        if idle {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(app.cfg.pipeline.idle_poll) => {}
            }
        }
    }
}

fn tenant_of(job: &Job) -> TenantId {
    WorkspaceId::from_uuid(job.tenant_id)
}

/// The `user_data` a job's talk carries: how the job finds its talk again.
fn marker(job: &Job) -> String {
    VideoId::from_uuid(job.id).to_string()
}

impl App {
    async fn claim(&self) -> Result<Vec<Job>, Error> {
        let mut tx = db::system(&self.pool).await?;
        let jobs = repo::claim(&mut tx, Uuid::new_v4(), self.cfg.pipeline.lease.as_secs_f64(), CLAIM_BATCH).await?;
        db::commit(tx).await?;
        Ok(jobs)
    }

    /// Runs a claimed job's steps until it waits, ends, or is no longer ours.
    #[tracing::instrument(skip_all, fields(video = %VideoId::from_uuid(job.id), status = %job.status))]
    pub(crate) async fn run(&self, mut job: Job) {
        loop {
            let Some(token) = job.lease_token else { return };
            let status = Status::parse(&job.status).unwrap_or(Status::Failed);
            let step = match status {
                Status::Queued => self.start(job.clone(), token).await,
                Status::SynthesizingVoice => self.synthesize(job.clone(), token).await,
                Status::Rendering => self.render(job.clone(), token).await,
                Status::Storing => self.store(job.clone(), token).await,
                Status::Done | Status::Failed | Status::Canceled => Ok(Next::Stop),
            };
            match step {
                Ok(Next::Continue(next)) => job = next,
                Ok(Next::Stop) => return,
                Err(e) => {
                    if let Err(db_err) = self.step_failed(&job, token, e).await {
                        tracing::warn!(error = ?db_err, "recording a failed step failed; the lease will run out");
                    }
                    return;
                }
            }
        }
    }

    async fn step_failed(&self, job: &Job, token: Uuid, e: StepError) -> Result<(), Error> {
        let attempts = job.attempts + 1;
        if e.transient && attempts < self.cfg.pipeline.max_attempts {
            let backoff = self.backoff(job.attempts);
            let pause = e.wait.map_or(backoff, |w| w.max(backoff));
            tracing::info!(code = %e.code, detail = %e.detail, attempts, ?pause, "video step failed; trying again later");
            let mut tx = db::system(&self.pool).await?;
            repo::later(&mut tx, job.id, token, pause.as_secs_f64(), true, &e.detail).await?;
            return db::commit(tx).await;
        }
        tracing::warn!(code = %e.code, detail = %e.detail, attempts, "video job failed");
        self.fail(job, token, &e.code, &e.detail).await
    }

    /// `pipeline.backoff` doubled per failed attempt, capped, with up to 20 % jitter.
    fn backoff(&self, attempts: i32) -> Duration {
        let base = self.cfg.pipeline.backoff.saturating_mul(1u32 << attempts.clamp(0, 16)).min(MAX_BACKOFF);
        base + base.mul_f64(rand::random_range(0.0..0.2))
    }

    /// Ends a job this worker holds as failed, settling it.
    async fn fail(&self, job: &Job, token: Uuid, code: &str, detail: &str) -> Result<(), Error> {
        let detail: String = detail.chars().take(500).collect();
        let mut tx = db::system(&self.pool).await?;
        if let Some(ended) = repo::end(&mut tx, job.id, Some(token), Status::Failed, code, &detail).await? {
            record_end(&mut tx, &ended, Status::Failed, code, &detail).await?;
        }
        db::commit(tx).await
    }

    /// queued → synthesizing_voice.
    async fn start(&self, mut job: Job, token: Uuid) -> Result<Next, StepError> {
        let moved = self.advance(&job, token, Status::Queued, Status::SynthesizingVoice, "started").await?;
        if !moved {
            return Ok(Next::Stop);
        }
        job.status = Status::SynthesizingVoice.as_str().into();
        job.attempts = 0;
        Ok(Next::Continue(job))
    }

    async fn advance(&self, job: &Job, token: Uuid, from: Status, to: Status, reason: &str) -> Result<bool, StepError> {
        let r = async {
            let mut tx = db::system(&self.pool).await?;
            if !repo::advance(&mut tx, job.id, token, from, to).await? {
                return Ok(false);
            }
            repo::add_transition(&mut tx, job.tenant_id, job.id, from.as_str(), to, reason).await?;
            db::commit(tx).await?;
            Ok(true)
        }
        .await;
        r.map_err(|e: Error| StepError::internal(&e))
    }

    /// synthesizing_voice → rendering: the speech, handed to the renderer.
    async fn synthesize(&self, mut job: Job, token: Uuid) -> Result<Next, StepError> {
        let speech = self.speech.synthesize(&job.voice_id, &job.script, &job.language).await?;
        let ext = if speech.content_type.contains("wav") { "wav" } else { "mp3" };
        let filename = format!("{}.{ext}", marker(&job));
        let characters = speech.characters;
        let audio_url = self.talks.upload_audio(speech.audio, &speech.content_type, &filename).await?;
        let moved = async {
            let mut tx = db::system(&self.pool).await?;
            if !repo::voice_done(&mut tx, job.id, token, characters, &audio_url).await? {
                return Ok(false);
            }
            let reason = format!("speech made: {characters} characters billed");
            repo::add_transition(
                &mut tx,
                job.tenant_id,
                job.id,
                Status::SynthesizingVoice.as_str(),
                Status::Rendering,
                &reason,
            )
            .await?;
            db::commit(tx).await?;
            Ok(true)
        }
        .await
        .map_err(|e: Error| StepError::internal(&e))?;
        if !moved {
            return Ok(Next::Stop);
        }
        job.status = Status::Rendering.as_str().into();
        job.characters_billed = characters;
        job.audio_url = Some(audio_url);
        job.attempts = 0;
        Ok(Next::Continue(job))
    }

    /// rendering: make the talk (once), then read it until it is done.
    ///
    /// D-ID documents no idempotency key for `POST /talks`: a create whose answer is lost (a cut
    /// connection, a crash right after sending) may or may not have made a talk, and sending it
    /// again could make a second, billed one. So before sending, the job records
    /// `talk_state = creating`, and every talk carries the job's id as `user_data` (D-ID echoes
    /// it back on the talk and lists it with `GET /talks`). A job found in `creating` — after a
    /// failed attempt or a restart — looks its talk up by that marker and adopts it; only when
    /// D-ID has none is the talk created. The client never re-sends a create itself once it may
    /// have arrived (see `nexus_providers::did`).
    async fn render(&self, mut job: Job, token: Uuid) -> Result<Next, StepError> {
        match job.talk_state.as_str() {
            "none" => {
                let marked = async {
                    let mut tx = db::system(&self.pool).await?;
                    let marked = repo::talk_creating(&mut tx, job.id, token).await?;
                    db::commit(tx).await?;
                    Ok(marked)
                }
                .await
                .map_err(|e: Error| StepError::internal(&e))?;
                if !marked {
                    return Ok(Next::Stop);
                }
                self.create_talk(&job, token).await
            }
            "creating" => match self.talks.find_talk(&marker(&job)).await? {
                Some(talk) => {
                    tracing::info!(talk = %talk.id, "adopting the talk an earlier attempt made");
                    self.talk_made(&job, token, &talk).await
                }
                None => self.create_talk(&job, token).await,
            },
            _ => {
                let Some(talk_id) = job.talk_id.clone() else {
                    return Err(StepError::permanent("video.render_failed", "created talk without an id"));
                };
                if job.talk_created_at.is_some_and(|at| {
                    (chrono::Utc::now() - at).to_std().unwrap_or_default() > self.cfg.pipeline.give_up_after
                }) {
                    return Err(StepError::permanent("video.render_timeout", "the talk did not finish in time"));
                }
                let talk = self.talks.get_talk(&talk_id).await?;
                match talk.status {
                    TalkStatus::Done => {
                        let Some(url) = talk.result_url.clone() else {
                            return Err(StepError::permanent("video.render_failed", "done talk without a result"));
                        };
                        let duration = talk.duration.unwrap_or(0.0);
                        let moved = async {
                            let mut tx = db::system(&self.pool).await?;
                            if !repo::render_done(&mut tx, job.id, token, &url, duration).await? {
                                return Ok(false);
                            }
                            repo::add_transition(
                                &mut tx,
                                job.tenant_id,
                                job.id,
                                "rendering",
                                Status::Storing,
                                "talk done",
                            )
                            .await?;
                            db::commit(tx).await?;
                            Ok(true)
                        }
                        .await
                        .map_err(|e: Error| StepError::internal(&e))?;
                        if !moved {
                            return Ok(Next::Stop);
                        }
                        job.status = Status::Storing.as_str().into();
                        job.result_url = Some(url);
                        job.duration_seconds = duration;
                        job.attempts = 0;
                        Ok(Next::Continue(job))
                    }
                    TalkStatus::Rejected => Err(StepError::permanent("video.render_rejected", talk.failure())),
                    TalkStatus::Error => Err(StepError::permanent("video.render_failed", talk.failure())),
                    _ => {
                        // Still rendering: read again later (or when the webhook says so).
                        let mut tx = db::system(&self.pool).await.map_err(|e| StepError::internal(&e))?;
                        repo::later(&mut tx, job.id, token, self.cfg.pipeline.talk_poll.as_secs_f64(), false, "")
                            .await
                            .map_err(|e| StepError::internal(&e))?;
                        db::commit(tx).await.map_err(|e| StepError::internal(&e))?;
                        Ok(Next::Stop)
                    }
                }
            }
        }
    }

    async fn create_talk(&self, job: &Job, token: Uuid) -> Result<Next, StepError> {
        let Some(audio_url) = job.audio_url.clone() else {
            return Err(StepError::permanent("video.render_failed", "no speech to render"));
        };
        let source_url = match Avatar::of(&job.avatar_url) {
            Avatar::Uploaded(id) => self.avatar_link(id).map_err(|e| StepError::internal(&e))?,
            Avatar::Url(u) => u,
            Avatar::Catalogue(_, u, _) => u.to_owned(),
        };
        let req = CreateTalk {
            source_url,
            script: Script::Audio { audio_url },
            webhook: self.webhook_url(job),
            user_data: Some(marker(job)),
            name: None,
        };
        let talk = self.talks.create_talk(&req).await?;
        self.talk_made(job, token, &talk).await
    }

    async fn talk_made(&self, job: &Job, token: Uuid, talk: &Talk) -> Result<Next, StepError> {
        let poll = self.cfg.pipeline.talk_poll.as_secs_f64();
        async {
            let mut tx = db::system(&self.pool).await?;
            if repo::talk_created(&mut tx, job.id, token, &talk.id, poll).await? {
                repo::add_transition(
                    &mut tx,
                    job.tenant_id,
                    job.id,
                    "rendering",
                    Status::Rendering,
                    &format!("talk {} created", talk.id),
                )
                .await?;
            }
            db::commit(tx).await
        }
        .await
        .map_err(|e: Error| StepError::internal(&e))?;
        Ok(Next::Stop)
    }

    /// `<webhook_base>/d-id?video=…&token=…`, when webhooks can reach us.
    fn webhook_url(&self, job: &Job) -> Option<String> {
        let base = self.cfg.pipeline.webhook_base.trim_end_matches('/');
        (!base.is_empty() && self.talks.name() == "d-id")
            .then(|| format!("{base}/d-id?video={}&token={}", marker(job), job.webhook_token))
    }

    /// storing → done: the file copied into storage, the video charged by its length.
    async fn store(&self, job: Job, token: Uuid) -> Result<Next, StepError> {
        let Some(url) = job.result_url.clone() else {
            return Err(StepError::permanent("video.render_failed", "no result to store"));
        };
        let key = storage::key_for(job.tenant_id, job.id);
        let work = tempfile::tempdir().map_err(|e| StepError::internal(&Error::internal(e)))?;
        let (size, rendered) = if url.starts_with(LOCAL_RESULT_PREFIX) {
            let rendered = self.render_locally(&job).await?;
            (self.put_file(&key, &rendered.file).await?, Some(rendered))
        } else {
            let size = self.storage.copy_from(&self.outbound, &url, &key).await.map_err(|e| {
                let code = if e.too_large { "video.file_too_large" } else { "video.download_failed" };
                StepError { code: code.into(), detail: e.reason, transient: !e.permanent, wait: None }
            })?;
            (size, None)
        };
        let file = match &rendered {
            Some(r) => r.file.clone(),
            None => {
                // Read back from storage: what is probed is what the owner will download.
                let copy = work.path().join("video.mp4");
                self.storage.download_to(&key, &copy).await.map_err(|e| StepError {
                    code: "video.download_failed".into(),
                    detail: e.to_string(),
                    transient: true,
                    wait: None,
                })?;
                copy
            }
        };
        let music = Music::parse(&job.music).unwrap_or_default();
        let mut size = size;
        let mut file = file;
        if rendered.is_none() && music != Music::None {
            // The provider rendered the speech alone: the music goes under it here.
            let mixed = work.path().join("mixed.mp4");
            let remixed = async {
                let info = super::media::probe(&file).await?;
                super::music::under_video(&file, music, info.duration, &mixed).await
            }
            .await;
            if let Err(e) = remixed {
                let _ = self.storage.delete(&key).await;
                return Err(render_step(e));
            }
            size = self.put_file(&key, &mixed).await?;
            file = mixed;
        }
        let thumbnail_key = storage::thumbnail_key_for(job.tenant_id, job.id);
        let described = async {
            let info = super::media::probe(&file).await?;
            let thumb = work.path().join("thumbnail.jpg");
            super::media::thumbnail(&file, info, &thumb).await?;
            Ok::<_, super::local::RenderError>(info)
        }
        .await;
        let info = match described {
            Ok(info) => info,
            Err(e) => {
                // Not a playable video: it is not delivered, nor kept.
                let _ = self.storage.delete(&key).await;
                return Err(render_step(e));
            }
        };
        self.put_file(&thumbnail_key, &work.path().join("thumbnail.jpg")).await?;
        drop(rendered);
        let duration = info.duration;
        let stored_file = crate::domain::StoredFile {
            key: key.clone(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            duration,
            width: info.width,
            height: info.height,
            thumbnail_key: thumbnail_key.clone(),
        };
        let credits = charge_for(job.estimated_credits, job.minutes, duration);
        let tenant = tenant_of(&job);
        let stored = async {
            let mut tx = db::system(&self.pool).await?;
            let size = stored_file.size;
            if !repo::stored(&mut tx, job.id, token, &stored_file, credits).await? {
                return Ok(false);
            }
            repo::add_transition(&mut tx, job.tenant_id, job.id, "storing", Status::Done, "stored").await?;
            settle_in(&mut tx, tenant, job.id, &job.reservation_id, &job.feature_use_key, Settle::Charge(credits))
                .await?;
            crate::events::video_completed(
                &mut tx,
                tenant,
                events::VideoCompleted {
                    workspace_id: tenant.to_string(),
                    video_id: marker(&job),
                    language: job.language.clone(),
                    provider: job.provider.clone(),
                    duration_seconds: duration,
                    credits,
                    characters_billed: job.characters_billed,
                    size_bytes: size,
                },
            )
            .await?;
            db::commit(tx).await?;
            Ok(true)
        }
        .await
        .map_err(|e: Error| StepError::internal(&e))?;
        if !stored {
            // Canceled while copying: the files are not kept.
            let _ = self.storage.delete(&key).await;
            let _ = self.storage.delete(&thumbnail_key).await;
        }
        Ok(Next::Stop)
    }

    /// Stores a file made or read here.
    async fn put_file(&self, key: &str, file: &std::path::Path) -> Result<u64, StepError> {
        self.storage.put_file(key, file).await.map_err(|e| StepError {
            code: "video.render_failed".into(),
            detail: e.to_string(),
            transient: true,
            wait: None,
        })
    }

    /// Renders a `local:` talk on this machine.
    async fn render_locally(&self, job: &Job) -> Result<super::local::Rendered, StepError> {
        let language = job.language.parse().unwrap_or_default();
        let aspect = Aspect::parse(&job.aspect_ratio).unwrap_or(Aspect::Landscape);
        let avatar = Avatar::of(&job.avatar_url);
        let image = match &avatar {
            Avatar::Uploaded(id) => {
                let row = self
                    .avatar_row(*id)
                    .await
                    .map_err(|e| StepError::internal(&e))?
                    .ok_or_else(|| StepError::permanent("video.avatar_not_found", "the avatar was deleted"))?;
                let data = self.storage.read_all(&row.storage_key).await.map_err(|e| StepError {
                    code: "video.avatar_not_found".into(),
                    detail: e.to_string(),
                    transient: !matches!(e, object_store::Error::NotFound { .. }),
                    wait: None,
                })?;
                Some(data.to_vec())
            }
            _ => None,
        };
        let music = Music::parse(&job.music).unwrap_or_default();
        let local = super::local::LocalJob {
            script: &job.script,
            language,
            aspect,
            captions: job.captions,
            avatar,
            image,
            music,
        };
        super::local::render(&self.outbound, local).await.map_err(render_step)
    }
}

/// A render or probe failure as a step's.
fn render_step(e: super::local::RenderError) -> StepError {
    StepError { code: e.code.into(), detail: e.detail, transient: !e.permanent, wait: None }
}

/// Records how a job ended (failed or canceled) in the transaction that ended it: the
/// transition, the hold and the month's count given back, and `video.failed`.
pub(crate) async fn record_end(
    conn: &mut PgConnection,
    ended: &Ended,
    to: Status,
    code: &str,
    reason: &str,
) -> Result<(), Error> {
    let tenant = WorkspaceId::from_uuid(ended.tenant_id);
    repo::add_transition(&mut *conn, ended.tenant_id, ended.id, &ended.from_status, to, reason).await?;
    settle_in(&mut *conn, tenant, ended.id, &ended.reservation_id, &ended.feature_use_key, Settle::GiveBack).await?;
    crate::events::video_failed(
        conn,
        tenant,
        events::VideoFailed {
            workspace_id: tenant.to_string(),
            video_id: VideoId::from_uuid(ended.id).to_string(),
            provider: ended.provider.clone(),
            status: to.as_str().into(),
            error_code: code.into(),
        },
    )
    .await
}
