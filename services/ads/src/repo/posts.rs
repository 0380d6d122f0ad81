//! Social posts and their targets (one publication on one account), and the scheduler's claims:
//! due targets of every workspace claimed with SKIP LOCKED and a lease; every write of a claimed
//! target is fenced by its claim number, so a replica whose lease ran out records nothing.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::posts::Variant;

/// A post as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Post {
    pub id: Uuid,
    pub campaign_id: Option<Uuid>,
    pub author: Uuid,
    pub approved_by: Option<Uuid>,
    pub status: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub time_zone: String,
    pub body: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One publication of a post, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Target {
    pub id: Uuid,
    pub post_id: Uuid,
    pub connection_id: Uuid,
    pub provider: String,
    pub platform: String,
    pub account: String,
    pub variant: sqlx::types::Json<Variant>,
    pub status: String,
    pub due_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub platform_post_id: Option<String>,
    pub permalink: String,
    pub published_at: Option<DateTime<Utc>>,
    pub error_code: String,
    pub error: String,
    pub likes: i64,
    pub comments: i64,
    pub shares: i64,
    pub views: i64,
}

const POST_COLUMNS: &str =
    "id, campaign_id, author, approved_by, status, scheduled_at, time_zone, body, created_at, updated_at";
/// A target whose publish call may be under way while its status still reads `scheduled`: a
/// single-call publication marked sent by its claim (see [`claim`]). Shown, and guarded, as
/// `publishing`.
const SENDING: &str = "(status = 'scheduled' AND coalesce((progress->>'sent')::boolean, false))";
const TARGET_COLUMNS: &str = "id, post_id, connection_id, provider, platform, account, variant, \
     CASE WHEN status = 'scheduled' AND coalesce((progress->>'sent')::boolean, false) THEN 'publishing' \
       ELSE status END AS status, due_at, \
     attempts, platform_post_id, permalink, published_at, error_code, error, likes, comments, shares, views";

/// A post to insert with its targets.
pub struct NewPost<'a> {
    pub id: Uuid,
    pub campaign_id: Option<Uuid>,
    pub author: Uuid,
    pub approved_by: Option<Uuid>,
    pub status: &'a str,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub time_zone: &'a str,
    pub body: &'a Value,
    pub request_key: Option<&'a str>,
}

pub struct NewTarget<'a> {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub provider: &'a str,
    pub platform: &'a str,
    pub account: &'a str,
    pub variant: &'a Variant,
}

/// Inserts a post: `Ok(id)`, or `Err(earlier)` when its request key was used before.
pub async fn insert(conn: &mut PgConnection, tenant: TenantId, p: &NewPost<'_>) -> Result<Result<Uuid, Uuid>, Error> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO social_posts (id, tenant_id, campaign_id, author, approved_by, status, scheduled_at, time_zone, \
           body, request_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (tenant_id, request_key) DO NOTHING RETURNING id",
    )
    .bind(p.id)
    .bind(tenant.as_uuid())
    .bind(p.campaign_id)
    .bind(p.author)
    .bind(p.approved_by)
    .bind(p.status)
    .bind(p.scheduled_at)
    .bind(p.time_zone)
    .bind(p.body)
    .bind(p.request_key)
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    if let Some(id) = inserted {
        return Ok(Ok(id));
    }
    let earlier: Uuid = sqlx::query_scalar("SELECT id FROM social_posts WHERE request_key = $1")
        .bind(p.request_key)
        .fetch_one(conn)
        .await
        .db()?;
    Ok(Err(earlier))
}

/// Inserts the targets of a post (due when the post is scheduled).
pub async fn insert_targets(
    conn: &mut PgConnection,
    tenant: TenantId,
    post: Uuid,
    due: Option<DateTime<Utc>>,
    targets: &[NewTarget<'_>],
) -> Result<(), Error> {
    for t in targets {
        sqlx::query(
            "INSERT INTO social_post_targets (id, tenant_id, post_id, connection_id, provider, platform, account, \
               variant, due_at, next_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(t.id)
        .bind(tenant.as_uuid())
        .bind(post)
        .bind(t.connection_id)
        .bind(t.provider)
        .bind(t.platform)
        .bind(t.account)
        .bind(sqlx::types::Json(t.variant))
        .bind(due)
        .execute(&mut *conn)
        .await
        .db()?;
    }
    Ok(())
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Post>, Error> {
    post(conn, id, "").await
}

/// [`get`], locked for a change.
pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<Post>, Error> {
    post(conn, id, " FOR UPDATE").await
}

async fn post(conn: &mut PgConnection, id: Uuid, lock: &'static str) -> Result<Option<Post>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {POST_COLUMNS} FROM social_posts WHERE id = $1{lock}")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
}

pub async fn targets(conn: &mut PgConnection, post: Uuid) -> Result<Vec<Target>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TARGET_COLUMNS} FROM social_post_targets WHERE post_id = $1 ORDER BY id"
    )))
    .bind(post)
    .fetch_all(conn)
    .await
    .db()
}

/// The posts scheduled (or drafted for a time) in `[from, to)`, oldest first, at most `limit`.
pub async fn calendar(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Post>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {POST_COLUMNS} FROM social_posts WHERE scheduled_at >= $1 AND scheduled_at < $2 \
         ORDER BY scheduled_at, id LIMIT $3"
    )))
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()
}

/// Sets a post's status and time, and makes its unpublished targets due at that time (or not
/// due: a draft, a post waiting for approval, a cancelled one). Published targets stay.
pub async fn set_schedule(
    conn: &mut PgConnection,
    post: Uuid,
    status: &str,
    at: Option<DateTime<Utc>>,
    approved_by: Option<Uuid>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE social_posts SET status = $2, scheduled_at = coalesce($3, scheduled_at), \
           approved_by = coalesce($4, approved_by), updated_at = now() WHERE id = $1",
    )
    .bind(post)
    .bind(status)
    .bind(at)
    .bind(approved_by)
    .execute(&mut *conn)
    .await
    .db()?;
    let (target_status, due) = match status {
        "scheduled" => ("scheduled", at),
        "cancelled" => ("cancelled", None),
        _ => ("scheduled", None),
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE social_post_targets SET status = $2, due_at = $3, next_at = $3, attempts = 0, \
           error_code = '', error = '', updated_at = now() \
         WHERE post_id = $1 AND status IN ('scheduled', 'failed') AND NOT {SENDING}"
    )))
    .bind(post)
    .bind(target_status)
    .bind(due)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// What replacing a post changes.
pub struct PostChange<'a> {
    pub campaign_id: Option<Uuid>,
    pub status: &'a str,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub time_zone: &'a str,
    pub body: &'a Value,
    pub approved_by: Option<Uuid>,
}

/// Replaces a post's fields and drops its targets (none has started: the caller checked, under
/// the post's lock); the new ones are inserted next.
pub async fn replace(conn: &mut PgConnection, post: Uuid, c: &PostChange<'_>) -> Result<(), Error> {
    sqlx::query(
        "UPDATE social_posts SET campaign_id = $2, status = $3, scheduled_at = $4, time_zone = $5, body = $6, \
           approved_by = $7, updated_at = now() WHERE id = $1",
    )
    .bind(post)
    .bind(c.campaign_id)
    .bind(c.status)
    .bind(c.scheduled_at)
    .bind(c.time_zone)
    .bind(c.body)
    .bind(c.approved_by)
    .execute(&mut *conn)
    .await
    .db()?;
    sqlx::query("DELETE FROM social_post_targets WHERE post_id = $1").bind(post).execute(conn).await.db()?;
    Ok(())
}

/// Whether any target of the post may already be on its platform (publishing or published).
pub async fn any_started(conn: &mut PgConnection, post: Uuid) -> Result<bool, Error> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM social_post_targets WHERE post_id = $1 \
           AND (status IN ('publishing', 'published') OR {SENDING}))"
    )))
    .bind(post)
    .fetch_one(conn)
    .await
    .db()
}

/// A target claimed by this replica, with what its publish needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub post_id: Uuid,
    pub connection_id: Uuid,
    pub provider: String,
    pub platform: String,
    pub account: String,
    pub variant: sqlx::types::Json<Variant>,
    pub status: String,
    pub due_at: Option<DateTime<Utc>>,
    pub claims: i32,
    pub attempts: i32,
    pub progress: Value,
    /// Marked `sent` by this claim (see [`claim`]).
    pub marked: bool,
}

/// Claims up to `limit` due targets of every workspace for `lease` (system transaction): of
/// scheduled posts, on connections that are usable and not paused; rows another replica holds
/// are skipped. A publication that goes out in one call found again by looking (a Facebook page
/// post, a TikTok init) and has not been sent is marked `sent` by the same statement, before any
/// call (with `sent_at`, its first send, kept once set): `marked` tells the caller it needs no
/// lookup and no mark of its own. That mark is made in the progress alone, its status left
/// `scheduled` (read and guarded as `publishing`, see [`SENDING`]): a change of status would be
/// an audit event per publication for a state that lasts one call, and most of a claim's cost.
///
/// The due rows are read in `next_at` order from the due index, the post's and connection's
/// conditions checked per row as it is read (scalar subqueries the planner cannot turn into
/// joins), so a claim reads about `limit` rows however many are due. Written as joins, the
/// planner (blind to selectivity behind the row-level security predicate) joined every due
/// target to its post and sorted them all, each round. JIT is off for the statement: the
/// estimate of that scan is high enough to trigger compilation costing more than the claim.
pub async fn claim(conn: &mut PgConnection, lease: chrono::Duration, limit: i64) -> Result<Vec<Claimed>, Error> {
    let until: DateTime<Utc> = Utc::now() + lease;
    sqlx::query("SET LOCAL jit = off").execute(&mut *conn).await.db()?;
    sqlx::query_as(
        "WITH due AS MATERIALIZED ( \
           SELECT d.id, d.provider <> 'local' AND d.platform IN ('facebook', 'tiktok') \
                 AND coalesce((d.progress->>'sent')::boolean, false) = false \
                 AND NOT d.progress ? 'publish_id' AS single \
           FROM social_post_targets d \
           WHERE d.status IN ('scheduled', 'publishing') AND d.next_at <= now() \
             AND (d.claimed_until IS NULL OR d.claimed_until < now()) \
             AND (SELECT p.status = 'scheduled' FROM social_posts p WHERE p.id = d.post_id) \
             AND (SELECT c.status IN ('active', 'expiring') AND c.posting_paused_at IS NULL \
                  FROM connections c WHERE c.id = d.connection_id) \
           ORDER BY d.next_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED) \
         UPDATE social_post_targets t SET claimed_until = $1, claims = t.claims + 1, \
           progress = CASE WHEN due.single THEN t.progress || jsonb_build_object('sent', true, \
             'sent_at', coalesce(t.progress->'sent_at', to_jsonb(now()))) ELSE t.progress END \
         FROM due WHERE t.id = due.id \
         RETURNING t.id, t.tenant_id, t.post_id, t.connection_id, t.provider, t.platform, t.account, t.variant, \
           t.status, t.due_at, t.claims, t.attempts, t.progress, due.single AS marked",
    )
    .bind(until)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()
}

/// Extends the leases of claims this replica still holds (system transaction), each fenced by
/// its claim number; the ids still held (a missing one was taken over or finished).
pub async fn extend_claims(
    conn: &mut PgConnection,
    held: &[(Uuid, i32)],
    until: DateTime<Utc>,
) -> Result<Vec<Uuid>, Error> {
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = held.iter().map(|h| h.0).collect();
    let claims: Vec<i32> = held.iter().map(|h| h.1).collect();
    sqlx::query_scalar(
        "UPDATE social_post_targets t SET claimed_until = $3 \
         FROM unnest($1::uuid[], $2::int[]) AS u(id, claims) \
         WHERE t.id = u.id AND t.claims = u.claims AND t.status IN ('scheduled', 'publishing') \
         RETURNING t.id",
    )
    .bind(&ids)
    .bind(&claims)
    .bind(until)
    .fetch_all(conn)
    .await
    .db()
}

/// Added to a limit's window (see [`admit`]).
pub const LIMIT_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a publish call may be sent now under an account's limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    /// Counted: the target is marked sent now.
    Sent,
    /// At the limit: the wait until the oldest counted send leaves the window.
    Wait(std::time::Duration),
    /// The platform reports the account's quota used up by posts made elsewhere too: no send of
    /// ours leaving the window is known to free a place.
    Full,
    /// The claim was lost.
    Lost,
}

/// One publish call on `account` of `platform` under a limit of `limit` calls per `window`, for
/// every replica (system transaction; the database clock is the shared one, read as it runs,
/// not as of the transaction's start): under the account's lock, held to the end of the
/// transaction so replicas count one at a time, counts the account's targets sent within the
/// window and, below the limit, marks this one sent now (fenced by its claim). The window is
/// stretched by [`LIMIT_MARGIN`]: the platform starts its clock when the call arrives, a moment
/// after the mark.
///
/// `reported`: the platform's own (used, allowed) reading of the account, which counts posts other
/// tools made. Those (its count less the account's publishes of ours within the window) take
/// their places out of the allowance first.
pub async fn admit(
    conn: &mut PgConnection,
    id: Uuid,
    claims: i32,
    (platform, account): (&str, &str),
    (limit, window): (u32, std::time::Duration),
    reported: Option<(u32, u32)>,
) -> Result<Admission, Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('ads.post_limit:' || $1 || ':' || $2, 0))")
        .bind(platform)
        .bind(account)
        .execute(&mut *conn)
        .await
        .db()?;
    let window = (window + LIMIT_MARGIN).as_secs_f64();
    // Seconds until each counted send leaves the window, soonest first.
    let leaving: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM sent_at + make_interval(secs => $3) - clock_timestamp())::float8 \
         FROM social_post_targets WHERE platform = $1 AND account = $2 AND id <> $4 \
           AND sent_at > clock_timestamp() - make_interval(secs => $3) ORDER BY sent_at",
    )
    .bind(platform)
    .bind(account)
    .bind(window)
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .db()?;
    let mut limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
    if let Some((used, allowed)) = reported {
        let ours: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM social_post_targets WHERE platform = $1 AND account = $2 \
               AND status = 'published' AND sent_at > clock_timestamp() - make_interval(secs => $3)",
        )
        .bind(platform)
        .bind(account)
        .bind(window)
        .fetch_one(&mut *conn)
        .await
        .db()?;
        let elsewhere = u64::from(used).saturating_sub(u64::try_from(ours).unwrap_or(0));
        let room = u64::from(allowed).saturating_sub(elsewhere);
        if room == 0 {
            return Ok(Admission::Full);
        }
        limit = limit.min(usize::try_from(room).unwrap_or(usize::MAX));
    }
    if leaving.len() >= limit {
        // Enough of them must leave that this one fits.
        let secs = leaving[leaving.len() - limit].max(0.0);
        return Ok(Admission::Wait(std::time::Duration::from_secs_f64(secs)));
    }
    let r = sqlx::query(
        "UPDATE social_post_targets SET sent_at = clock_timestamp() \
         WHERE id = $1 AND claims = $2 AND status IN ('scheduled', 'publishing')",
    )
    .bind(id)
    .bind(claims)
    .execute(conn)
    .await
    .db()?;
    Ok(if r.rows_affected() == 1 { Admission::Sent } else { Admission::Lost })
}

/// Which of these platform ids another target of the account already holds: a listing's post
/// that is a twin's (same caption) and not this target's.
pub async fn held_by_others(
    conn: &mut PgConnection,
    id: Uuid,
    (platform, account): (&str, &str),
    candidates: &[&str],
) -> Result<std::collections::HashSet<String>, Error> {
    if candidates.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT platform_post_id FROM social_post_targets \
         WHERE platform = $1 AND account = $2 AND id <> $3 AND platform_post_id = ANY($4)",
    )
    .bind(platform)
    .bind(account)
    .bind(id)
    .bind(candidates)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().collect())
}

/// Records what is known of the publish so far (`publishing`: a call may have happened),
/// fenced by the claim; false when the claim was lost.
pub async fn checkpoint(
    conn: &mut PgConnection,
    id: Uuid,
    claims: i32,
    status: &str,
    progress: &Value,
) -> Result<bool, Error> {
    let r = sqlx::query(
        "UPDATE social_post_targets SET status = $3, progress = $4, updated_at = now() \
         WHERE id = $1 AND claims = $2 AND status IN ('scheduled', 'publishing')",
    )
    .bind(id)
    .bind(claims)
    .bind(status)
    .bind(progress)
    .execute(conn)
    .await
    .db()?;
    Ok(r.rows_affected() == 1)
}

/// Records the target published (fenced); false when the claim was lost.
pub async fn published(
    conn: &mut PgConnection,
    id: Uuid,
    claims: i32,
    platform_id: &str,
    permalink: &str,
    progress: &Value,
) -> Result<Option<DateTime<Utc>>, Error> {
    sqlx::query_scalar(
        "UPDATE social_post_targets SET status = 'published', platform_post_id = $3, permalink = $4, \
           progress = $5, published_at = now(), claimed_until = NULL, error_code = '', error = '', updated_at = now() \
         WHERE id = $1 AND claims = $2 AND status IN ('scheduled', 'publishing') RETURNING published_at",
    )
    .bind(id)
    .bind(claims)
    .bind(platform_id)
    .bind(permalink)
    .bind(progress)
    .fetch_optional(conn)
    .await
    .db()
}

/// A connection's sealed credentials and when its token expires.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedCredentials {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub provider: String,
    pub credentials: String,
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// The sealed credentials of these connections (system transaction; removed ones are absent).
pub async fn credentials(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<SealedCredentials>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT id, tenant_id, provider, credentials, token_expires_at FROM connections \
         WHERE id = ANY($1) AND status <> 'disconnected'",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
    .db()
}

/// A claimed target found published.
pub struct Done<'a> {
    pub id: Uuid,
    pub claims: i32,
    pub platform_id: &'a str,
    pub permalink: &'a str,
    pub progress: &'a Value,
    /// When the platform confirmed it.
    pub at: DateTime<Utc>,
}

/// Records many targets published in one statement (fenced by each one's claim); when each
/// still held was recorded.
pub async fn published_many(
    conn: &mut PgConnection,
    done: &[Done<'_>],
) -> Result<std::collections::HashMap<Uuid, DateTime<Utc>>, Error> {
    let ids: Vec<Uuid> = done.iter().map(|d| d.id).collect();
    let claims: Vec<i32> = done.iter().map(|d| d.claims).collect();
    let platform_ids: Vec<&str> = done.iter().map(|d| d.platform_id).collect();
    let permalinks: Vec<&str> = done.iter().map(|d| d.permalink).collect();
    let progress: Vec<&Value> = done.iter().map(|d| d.progress).collect();
    let at: Vec<DateTime<Utc>> = done.iter().map(|d| d.at).collect();
    let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        "UPDATE social_post_targets t SET status = 'published', platform_post_id = u.platform_id, \
           permalink = u.permalink, progress = u.progress, published_at = u.at, claimed_until = NULL, \
           error_code = '', error = '', updated_at = now() \
         FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[]) \
           AS u(id, claims, platform_id, permalink, progress, at) \
         WHERE t.id = u.id AND t.claims = u.claims AND t.status IN ('scheduled', 'publishing') \
         RETURNING t.id, t.published_at",
    )
    .bind(&ids)
    .bind(&claims)
    .bind(&platform_ids)
    .bind(&permalinks)
    .bind(&progress)
    .bind(&at)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().collect())
}

/// Records the target failed for good with the platform's reason (fenced).
pub async fn failed(conn: &mut PgConnection, id: Uuid, claims: i32, code: &str, reason: &str) -> Result<bool, Error> {
    let r = sqlx::query(
        "UPDATE social_post_targets SET status = 'failed', claimed_until = NULL, error_code = $3, error = $4, \
           updated_at = now() WHERE id = $1 AND claims = $2 AND status IN ('scheduled', 'publishing')",
    )
    .bind(id)
    .bind(claims)
    .bind(code)
    .bind(reason)
    .execute(conn)
    .await
    .db()?;
    Ok(r.rows_affected() == 1)
}

/// Where a released claim leaves its target.
pub struct Later<'a> {
    pub next: DateTime<Utc>,
    pub status: &'a str,
    pub progress: &'a Value,
    /// Whether an attempt is counted (a transient failure; not a wait for processing).
    pub counted: bool,
    pub error: &'a str,
}

/// Releases the claim until `l.next` with what is known (fenced).
pub async fn later(conn: &mut PgConnection, id: Uuid, claims: i32, l: &Later<'_>) -> Result<bool, Error> {
    let r = sqlx::query(
        "UPDATE social_post_targets SET next_at = $3, status = $4, progress = $5, claimed_until = NULL, \
           attempts = attempts + $6::int, error = $7, updated_at = now() \
         WHERE id = $1 AND claims = $2 AND status IN ('scheduled', 'publishing')",
    )
    .bind(id)
    .bind(claims)
    .bind(l.next)
    .bind(l.status)
    .bind(l.progress)
    .bind(i32::from(l.counted))
    .bind(l.error)
    .execute(conn)
    .await
    .db()?;
    Ok(r.rows_affected() == 1)
}

/// Pauses a connection's queue; true when it was not paused before (the notice is sent once).
pub async fn pause_connection(conn: &mut PgConnection, connection: Uuid) -> Result<bool, Error> {
    let r = sqlx::query(
        "UPDATE connections SET posting_paused_at = now(), updated_at = now() \
         WHERE id = $1 AND posting_paused_at IS NULL",
    )
    .bind(connection)
    .execute(conn)
    .await
    .db()?;
    Ok(r.rows_affected() == 1)
}

/// Published targets whose engagement is oldest (or never read), claimed for `lease`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Published {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub post_id: Uuid,
    pub connection_id: Uuid,
    pub provider: String,
    pub platform: String,
    pub account: String,
    pub platform_post_id: String,
}

pub async fn claim_engagement(
    conn: &mut PgConnection,
    older_than: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Published>, Error> {
    sqlx::query_as(
        "UPDATE social_post_targets t SET engagement_at = now() \
         FROM (SELECT id FROM social_post_targets WHERE status = 'published' \
               AND (engagement_at IS NULL OR engagement_at < $1) \
               ORDER BY engagement_at NULLS FIRST LIMIT $2 FOR UPDATE SKIP LOCKED) d \
         WHERE t.id = d.id \
         RETURNING t.id, t.tenant_id, t.post_id, t.connection_id, t.provider, t.platform, t.account, \
           coalesce(t.platform_post_id, '') AS platform_post_id",
    )
    .bind(older_than)
    .bind(limit)
    .fetch_all(conn)
    .await
    .db()
}

pub async fn set_engagement(
    conn: &mut PgConnection,
    id: Uuid,
    e: &nexus_providers::marketing::Engagement,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE social_post_targets SET likes = $2, comments = $3, shares = $4, views = $5, engagement_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(e.likes)
    .bind(e.comments)
    .bind(e.shares)
    .bind(e.views)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// The workspace's queue slots.
pub async fn slots(conn: &mut PgConnection) -> Result<Vec<crate::domain::posts::QueueSlot>, Error> {
    let rows: Vec<(i16, chrono::NaiveTime, String)> =
        sqlx::query_as("SELECT weekday, time_of_day, time_zone FROM post_queue_slots ORDER BY weekday, time_of_day")
            .fetch_all(conn)
            .await
            .db()?;
    Ok(rows
        .into_iter()
        .map(|(w, time, time_zone)| crate::domain::posts::QueueSlot {
            weekday: u8::try_from(w).unwrap_or(1),
            time,
            time_zone,
        })
        .collect())
}

/// Replaces the workspace's queue slots.
pub async fn set_slots(
    conn: &mut PgConnection,
    tenant: TenantId,
    slots: &[crate::domain::posts::QueueSlot],
) -> Result<(), Error> {
    sqlx::query("DELETE FROM post_queue_slots").execute(&mut *conn).await.db()?;
    for s in slots {
        sqlx::query(
            "INSERT INTO post_queue_slots (id, tenant_id, weekday, time_of_day, time_zone) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(tenant.as_uuid())
        .bind(i16::from(s.weekday))
        .bind(s.time)
        .bind(&s.time_zone)
        .execute(&mut *conn)
        .await
        .db()?;
    }
    Ok(())
}

/// Holds the workspace's queue until the transaction ends, so two posts added at once do not
/// take the same slot.
pub async fn lock_queue(conn: &mut PgConnection, tenant: TenantId) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('ads.post_queue:' || $1::text, 0))")
        .bind(tenant.as_uuid())
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// The times held by posts waiting to go out (scheduled or proposed) in `[from, to)`.
pub async fn held_times(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<std::collections::HashSet<DateTime<Utc>>, Error> {
    let rows: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT scheduled_at FROM social_posts WHERE status IN ('scheduled', 'pending_approval') \
           AND scheduled_at >= $1 AND scheduled_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().collect())
}
