//! `videos` (with their job state) and `video_transitions`.
//!
//! Job updates name the state they expect and, for a worker, the lease it holds
//! (`lease_token`): an update that finds the row changed (canceled meanwhile, taken over after
//! the lease ran out) changes nothing and says so, and the worker drops the job.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Status, StoredFile, Transition, Video};

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    title: String,
    status: String,
    language: String,
    aspect_ratio: String,
    captions: bool,
    avatar_url: String,
    voice_id: String,
    voice_provider: String,
    provider: String,
    characters: i64,
    characters_billed: i64,
    estimated_credits: i64,
    credits_charged: i64,
    duration_seconds: f64,
    size_bytes: i64,
    music: String,
    width: i32,
    height: i32,
    thumbnail_key: Option<String>,
    error_code: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<Row> for Video {
    fn from(r: Row) -> Self {
        Video {
            id: r.id,
            title: r.title,
            status: r.status,
            language: r.language,
            aspect_ratio: r.aspect_ratio,
            captions: r.captions,
            avatar_url: r.avatar_url,
            voice_id: r.voice_id,
            voice_provider: r.voice_provider,
            provider: r.provider,
            characters: r.characters,
            characters_billed: r.characters_billed,
            estimated_credits: r.estimated_credits,
            credits_charged: r.credits_charged,
            duration_seconds: r.duration_seconds,
            size_bytes: r.size_bytes,
            music: r.music,
            width: r.width,
            height: r.height,
            thumbnail_key: r.thumbnail_key,
            error_code: r.error_code,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        }
    }
}

const COLUMNS: &str = "id, title, status, language, aspect_ratio, captions, avatar_url, voice_id, voice_provider, \
     provider, characters, characters_billed, estimated_credits, credits_charged, duration_seconds, size_bytes, \
     music, width, height, thumbnail_key, error_code, created_at, updated_at, finished_at";

/// What a worker needs of a claimed job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub status: String,
    pub script: String,
    pub avatar_url: String,
    pub voice_id: String,
    pub language: String,
    pub aspect_ratio: String,
    pub captions: bool,
    pub provider: String,
    pub minutes: i64,
    pub estimated_credits: i64,
    pub characters_billed: i64,
    pub reservation_id: String,
    pub feature_use_key: String,
    pub audio_url: Option<String>,
    pub talk_state: String,
    pub talk_id: Option<String>,
    pub talk_created_at: Option<DateTime<Utc>>,
    pub result_url: Option<String>,
    pub webhook_token: String,
    pub duration_seconds: f64,
    pub attempts: i32,
    pub lease_token: Option<Uuid>,
    pub music: String,
}

const JOB_COLUMNS: &str = "v.id, v.tenant_id, v.status, v.script, v.avatar_url, v.voice_id, v.language, \
     v.aspect_ratio, v.captions, v.provider, v.minutes, v.estimated_credits, v.characters_billed, v.reservation_id, \
     v.feature_use_key, v.audio_url, v.talk_state, v.talk_id, v.talk_created_at, v.result_url, v.webhook_token, \
     v.duration_seconds, v.attempts, v.lease_token, v.music";

/// A video to store.
pub struct NewVideo<'a> {
    pub id: Uuid,
    pub tenant: TenantId,
    pub title: &'a str,
    pub script: &'a str,
    pub avatar_url: &'a str,
    pub voice_id: &'a str,
    pub voice_provider: &'a str,
    pub provider: &'a str,
    pub language: &'a str,
    pub aspect_ratio: &'a str,
    pub captions: bool,
    pub music: &'a str,
    pub characters: i64,
    pub minutes: i64,
    pub estimated_credits: i64,
    pub reservation_id: &'a str,
    pub feature_use_key: &'a str,
    pub webhook_token: &'a str,
    pub key: &'a str,
    pub created_by: &'a str,
}

/// Stores a queued video; `None` when the key was taken meanwhile by a twin request.
pub async fn insert(conn: &mut PgConnection, v: &NewVideo<'_>) -> Result<Option<Video>, Error> {
    let sql = format!(
        "INSERT INTO videos (id, tenant_id, title, script, avatar_url, voice_id, voice_provider, provider, language, \
         aspect_ratio, captions, characters, minutes, estimated_credits, reservation_id, feature_use_key, \
         webhook_token, idempotency_key, created_by, music) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
         ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING {COLUMNS}"
    );
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(v.id)
        .bind(v.tenant.as_uuid())
        .bind(v.title)
        .bind(v.script)
        .bind(v.avatar_url)
        .bind(v.voice_id)
        .bind(v.voice_provider)
        .bind(v.provider)
        .bind(v.language)
        .bind(v.aspect_ratio)
        .bind(v.captions)
        .bind(v.characters)
        .bind(v.minutes)
        .bind(v.estimated_credits)
        .bind(v.reservation_id)
        .bind(v.feature_use_key)
        .bind(v.webhook_token)
        .bind(v.key)
        .bind(v.created_by)
        .bind(v.music)
        .fetch_optional(conn)
        .await
        .db()?;
    Ok(row.map(Video::from))
}

pub async fn by_key(conn: &mut PgConnection, key: &str) -> Result<Option<Video>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM videos WHERE idempotency_key = $1");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(key).fetch_optional(conn).await.db()?;
    Ok(row.map(Video::from))
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Video>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM videos WHERE id = $1");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await.db()?;
    Ok(row.map(Video::from))
}

/// Newest first.
pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Video>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM videos WHERE {}", Keyset::newest_first(1));
    let rows: Vec<Row> = keyset.bind(sqlx::query_as(sqlx::AssertSqlSafe(sql))).fetch_all(conn).await.db()?;
    Ok(keyset.page(rows.into_iter().map(Video::from).collect(), |v| (v.created_at, v.id)))
}

pub async fn add_transition(
    conn: &mut PgConnection,
    tenant: Uuid,
    video: Uuid,
    from: &str,
    to: Status,
    reason: &str,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO video_transitions (tenant_id, video_id, from_status, to_status, reason) VALUES ($1, $2, $3, $4, $5)")
        .bind(tenant)
        .bind(video)
        .bind(from)
        .bind(to.as_str())
        .bind(reason)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

pub async fn transitions(conn: &mut PgConnection, video: Uuid) -> Result<Vec<Transition>, Error> {
    let rows: Vec<(String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT from_status, to_status, reason, at FROM video_transitions WHERE video_id = $1 ORDER BY id",
    )
    .bind(video)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().map(|(from, to, reason, at)| Transition { from, to, reason, at }).collect())
}

// ---------------------------------------------------------------------------------------------
// Jobs

/// Claims up to `limit` due jobs for `lease_secs` under `token`. Rows other workers hold are
/// skipped (`SKIP LOCKED`), and so are jobs whose lease has not run out.
pub async fn claim(conn: &mut PgConnection, token: Uuid, lease_secs: f64, limit: i64) -> Result<Vec<Job>, Error> {
    let sql = format!(
        "UPDATE videos v SET lease_token = $1, lease_until = now() + make_interval(secs => $2) \
         FROM (SELECT id FROM videos \
               WHERE status IN ('queued', 'synthesizing_voice', 'rendering', 'storing') \
                 AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now()) \
               ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) due \
         WHERE v.id = due.id RETURNING {JOB_COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(token).bind(lease_secs).bind(limit).fetch_all(conn).await.db()
}

/// Moves a held job from `from` to `to` (attempts reset, due now, lease kept).
pub async fn advance(conn: &mut PgConnection, id: Uuid, token: Uuid, from: Status, to: Status) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE videos SET status = $4, attempts = 0, next_attempt_at = now(), updated_at = now() \
         WHERE id = $1 AND lease_token = $2 AND status = $3",
    )
    .bind(id)
    .bind(token)
    .bind(from.as_str())
    .bind(to.as_str())
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

/// The speech is made and handed to the renderer: on to `rendering`.
pub async fn voice_done(
    conn: &mut PgConnection,
    id: Uuid,
    token: Uuid,
    characters_billed: i64,
    audio_url: &str,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE videos SET status = 'rendering', characters_billed = $3, audio_url = $4, attempts = 0, \
         next_attempt_at = now(), updated_at = now() \
         WHERE id = $1 AND lease_token = $2 AND status = 'synthesizing_voice'",
    )
    .bind(id)
    .bind(token)
    .bind(characters_billed)
    .bind(audio_url)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

/// Records, before the talk is asked for, that it is about to be: from now on a restart looks
/// the talk up instead of making another.
pub async fn talk_creating(conn: &mut PgConnection, id: Uuid, token: Uuid) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE videos SET talk_state = 'creating', updated_at = now() \
         WHERE id = $1 AND lease_token = $2 AND status = 'rendering' AND talk_state = 'none'",
    )
    .bind(id)
    .bind(token)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

/// The talk exists: its id is kept, the job is read again after `poll_secs` (or sooner, when
/// its webhook arrives) and the lease is given up meanwhile.
pub async fn talk_created(
    conn: &mut PgConnection,
    id: Uuid,
    token: Uuid,
    talk_id: &str,
    poll_secs: f64,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE videos SET talk_state = 'created', talk_id = $3, talk_created_at = now(), attempts = 0, \
         next_attempt_at = now() + make_interval(secs => $4), lease_token = NULL, lease_until = NULL, \
         updated_at = now() \
         WHERE id = $1 AND lease_token = $2 AND status = 'rendering' AND talk_state = 'creating'",
    )
    .bind(id)
    .bind(token)
    .bind(talk_id)
    .bind(poll_secs)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

/// The talk is done: on to `storing` with its file's URL.
pub async fn render_done(
    conn: &mut PgConnection,
    id: Uuid,
    token: Uuid,
    result_url: &str,
    duration: f64,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE videos SET status = 'storing', result_url = $3, duration_seconds = $4, attempts = 0, \
         next_attempt_at = now(), updated_at = now() \
         WHERE id = $1 AND lease_token = $2 AND status = 'rendering'",
    )
    .bind(id)
    .bind(token)
    .bind(result_url)
    .bind(duration)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

/// The file is stored: the video is done and charged `credits`.
pub async fn stored(
    conn: &mut PgConnection,
    id: Uuid,
    token: Uuid,
    file: &StoredFile,
    credits: i64,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE videos SET status = 'done', storage_key = $3, size_bytes = $4, duration_seconds = $5, \
         width = $6, height = $7, thumbnail_key = $8, credits_charged = $9, finished_at = now(), \
         lease_token = NULL, lease_until = NULL, updated_at = now() \
         WHERE id = $1 AND lease_token = $2 AND status = 'storing'",
    )
    .bind(id)
    .bind(token)
    .bind(&file.key)
    .bind(file.size)
    .bind(file.duration)
    .bind(file.width)
    .bind(file.height)
    .bind(&file.thumbnail_key)
    .bind(credits)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

/// Read again after `delay_secs`, lease given up; a failed attempt counts when `failed`.
pub async fn later(
    conn: &mut PgConnection,
    id: Uuid,
    token: Uuid,
    delay_secs: f64,
    failed: bool,
    detail: &str,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE videos SET attempts = attempts + CASE WHEN $4 THEN 1 ELSE 0 END, \
         error_detail = CASE WHEN $4 THEN $5 ELSE error_detail END, \
         next_attempt_at = now() + make_interval(secs => $3), lease_token = NULL, lease_until = NULL, \
         updated_at = now() \
         WHERE id = $1 AND lease_token = $2 AND status IN ('queued', 'synthesizing_voice', 'rendering', 'storing')",
    )
    .bind(id)
    .bind(token)
    .bind(delay_secs)
    .bind(failed)
    .bind(detail)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

/// What ending a job needs to settle it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Ended {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub from_status: String,
    pub provider: String,
    pub reservation_id: String,
    pub feature_use_key: String,
    pub talk_id: Option<String>,
}

/// Ends a job that is not final as `to` (failed or canceled). A worker passes its lease
/// token; a user's cancel passes none (it wins over a worker, whose next update then finds
/// nothing). `None` when the job was final already (or no longer held by `token`).
pub async fn end(
    conn: &mut PgConnection,
    id: Uuid,
    token: Option<Uuid>,
    to: Status,
    code: &str,
    detail: &str,
) -> Result<Option<Ended>, Error> {
    sqlx::query_as(
        "UPDATE videos v SET status = $3, error_code = $4, error_detail = $5, finished_at = now(), \
         lease_token = NULL, lease_until = NULL, updated_at = now() \
         FROM (SELECT id, status AS from_status FROM videos WHERE id = $1 FOR UPDATE) old \
         WHERE v.id = old.id AND v.status IN ('queued', 'synthesizing_voice', 'rendering', 'storing') \
           AND ($2::uuid IS NULL OR v.lease_token = $2) \
         RETURNING v.id, v.tenant_id, old.from_status, v.provider, v.reservation_id, v.feature_use_key, v.talk_id",
    )
    .bind(id)
    .bind(token)
    .bind(to.as_str())
    .bind(code)
    .bind(detail)
    .fetch_optional(conn)
    .await
    .db()
}

/// What a webhook for a job needs: (tenant, status, talk id, webhook token).
pub async fn for_webhook(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<(Uuid, String, Option<String>, String)>, Error> {
    sqlx::query_as("SELECT tenant_id, status, talk_id, webhook_token FROM videos WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
}

/// Makes a rendering job due now (its talk reported back), unless a worker holds it.
pub async fn wake(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE videos SET next_attempt_at = now() \
         WHERE id = $1 AND status = 'rendering' AND talk_state = 'created' AND next_attempt_at > now()",
    )
    .bind(id)
    .execute(conn)
    .await
    .db()?;
    Ok(done.rows_affected() == 1)
}

/// A video's status and thumbnail key (whoever's it is: the caller holds a signed link).
pub async fn thumbnail_of(conn: &mut PgConnection, id: Uuid) -> Result<Option<(String, Option<String>)>, Error> {
    sqlx::query_as("SELECT status, thumbnail_key FROM videos WHERE id = $1").bind(id).fetch_optional(conn).await.db()
}

/// A video's status and stored file (key, size), for downloads and deletion.
pub async fn file_of(conn: &mut PgConnection, id: Uuid) -> Result<Option<(String, Option<String>, i64)>, Error> {
    sqlx::query_as("SELECT status, storage_key, size_bytes FROM videos WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
}

/// Deletes a finished video (its transitions go with it); answers the keys of its file and its
/// thumbnail. `None` when there is no such video or it is still being made.
pub async fn delete_finished(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<(Option<String>, Option<String>)>, Error> {
    sqlx::query_as(
        "DELETE FROM videos WHERE id = $1 AND status IN ('done', 'failed', 'canceled') \
         RETURNING storage_key, thumbnail_key",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .db()
}
