//! Social posts: write one (checked against every target platform's limits now, not at publish
//! time), propose it for approval or schedule it, approve, reschedule, cancel, read the calendar.
//! Publishing is the scheduler's ([`super::scheduler`]).

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal, Role};
use uuid::Uuid;

use super::{App, id_of, require};
use crate::domain::connections::{AccountKind, Provider, status};
use crate::domain::post_import::{self, RowError};
use crate::domain::posts::{
    CreatorLimits, Media, Platform, PostSpec, QueueSlot, check, check_publish_at_time, check_slots, check_spec,
    check_time, post_status, target_status,
};
use crate::domain::{CampaignId, ConnectionId, PostId};
use crate::repo;
use crate::repo::posts::{NewPost, NewTarget, Post, Target};
use sha2::{Digest, Sha256};

fn post_id(raw: &str) -> Result<Uuid, Error> {
    id_of::<PostId>(raw, "ads.post_not_found", PostId::as_uuid)
}

/// A post with its publications.
#[derive(Debug, Clone)]
pub struct PostView {
    pub post: Post,
    pub targets: Vec<Target>,
}

/// What an import did: rows read, posts created (or that would be, in a dry run), rows refused.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub rows: u32,
    pub created: u32,
    pub errors: Vec<RowError>,
    pub posts: Vec<Uuid>,
}

/// A target checked and ready to store.
struct Checked {
    connection: Uuid,
    provider: Provider,
    platform: Platform,
    account: String,
    variant: crate::domain::posts::Variant,
}

impl App {
    /// Writes a post: a draft, a proposal (members), or scheduled (admins). Every target's
    /// variant is checked against its platform's limits first; nothing is stored when one fails.
    pub async fn create_post(&self, p: &Principal, spec: PostSpec) -> Result<PostView, Error> {
        require(p, Action::Write)?;
        let now = Utc::now();
        check_spec(&spec, now)?;
        let (checked, media) = self.check_targets(p.workspace_id, &spec, Some(p.user_id.as_uuid())).await?;
        let campaign = match &spec.campaign_id {
            Some(raw) => Some(id_of::<CampaignId>(raw, "ads.campaign_not_found", CampaignId::as_uuid)?),
            None => None,
        };
        let admin = p.role >= Role::Admin;
        let status = if spec.draft {
            post_status::DRAFT
        } else if admin {
            post_status::SCHEDULED
        } else {
            post_status::PENDING_APPROVAL
        };
        let body = serde_json::json!({"text": spec.text, "link": spec.link, "media": media});
        let time_zone = if spec.time_zone.is_empty() { "UTC" } else { spec.time_zone.as_str() };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let at = if spec.queue {
            Some(queue_slot(&mut tx, p.workspace_id, now).await?)
        } else if spec.draft {
            spec.scheduled_at
        } else {
            Some(spec.scheduled_at.unwrap_or(now))
        };
        if let Some(c) = campaign
            && repo::campaigns::get(&mut tx, c).await?.is_none()
        {
            return Err(Error::not_found("ads.campaign_not_found"));
        }
        let new = NewPost {
            id: Uuid::now_v7(),
            campaign_id: campaign,
            author: p.user_id.as_uuid(),
            approved_by: (status == post_status::SCHEDULED).then(|| p.user_id.as_uuid()),
            status,
            scheduled_at: at,
            time_zone,
            body: &body,
            request_key: spec.request_key.as_deref(),
        };
        let id = match repo::posts::insert(&mut tx, p.workspace_id, &new).await? {
            Ok(id) => id,
            Err(earlier) => {
                // The same request again: the post it made, unchanged.
                db::commit(tx).await?;
                return self.post_view(p.workspace_id, earlier).await;
            }
        };
        let view = store_targets(&mut tx, p.workspace_id, id, status, at, &checked).await?;
        db::commit(tx).await?;
        Ok(view)
    }

    /// Checks a post as [`App::create_post`] would, storing nothing (an import's dry run).
    pub async fn check_post(&self, p: &Principal, spec: &PostSpec) -> Result<(), Error> {
        require(p, Action::Write)?;
        check_spec(spec, Utc::now())?;
        self.check_targets(p.workspace_id, spec, None).await.map(drop)
    }

    /// Posts from a CSV file, one a row (see [`crate::domain::post_import`]): each row created
    /// (or, in a dry run, checked) on its own, refused rows named by line, column and reason. The
    /// rows' request keys come from the file's digest, so importing the same file again creates
    /// nothing twice.
    pub async fn import_posts(&self, p: &Principal, text: &str, dry_run: bool) -> Result<ImportReport, Error> {
        require(p, Action::Write)?;
        if text.len() > post_import::BYTES_MAX {
            return Err(Error::invalid("ads.import_too_large")
                .with_param("max_mb", (post_import::BYTES_MAX / (1024 * 1024)).to_string()));
        }
        let digest = hex::encode(&Sha256::digest(text.as_bytes())[..12]);
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
        let mut records = reader.records();
        let head = match records.next() {
            Some(Ok(h)) => h,
            _ => return Err(Error::invalid("ads.import_column_missing").with_param("column", "connection_id")),
        };
        let at = post_import::header(&head)?;
        let mut report = ImportReport::default();
        for record in records {
            report.rows += 1;
            if report.rows as usize > post_import::ROWS_MAX {
                return Err(
                    Error::invalid("ads.import_too_many_rows").with_param("max", post_import::ROWS_MAX.to_string())
                );
            }
            let row = match record {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, csv::Position::line);
                    report.errors.push(RowError::of(line, &Error::invalid("ads.import_row_unreadable")));
                    continue;
                }
            };
            let line = row.position().map_or(0, csv::Position::line);
            let spec = match post_import::row_spec(&at, &row, format!("import:{digest}:{line}")) {
                Ok(s) => s,
                Err(e) => {
                    report.errors.push(RowError::of(line, &e));
                    continue;
                }
            };
            let done = if dry_run {
                self.check_post(p, &spec).await.map(|()| None)
            } else {
                self.create_post(p, spec).await.map(|v| Some(v.post.id))
            };
            match done {
                Ok(id) => {
                    report.created += 1;
                    report.posts.extend(id);
                }
                Err(e) if e.kind() == ErrorKind::Internal || e.kind() == ErrorKind::PermissionDenied => return Err(e),
                Err(e) => report.errors.push(RowError::of(line, &e)),
            }
        }
        Ok(report)
    }

    /// Checks each target: its connection and account exist in this workspace, the account
    /// posts somewhere, and the variant fits that platform. Content images the post names are
    /// imported into the library for `by` (see [`App::media_facts_of`]); with the targets comes
    /// the post's shared media as stored (an imported image named by its item).
    async fn check_targets(
        &self,
        tenant: TenantId,
        spec: &PostSpec,
        by: Option<Uuid>,
    ) -> Result<(Vec<Checked>, Vec<Media>), Error> {
        let mut out = Vec::with_capacity(spec.targets.len());
        let mut facts = super::media_refs::FactsCache::new();
        for (i, t) in spec.targets.iter().enumerate() {
            let at = |e: Error| e.with_param("target", i.to_string());
            let connection =
                id_of::<ConnectionId>(&t.connection_id, "ads.connection_not_found", ConnectionId::as_uuid)?;
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let stored = repo::connections::get(&mut tx, connection).await?;
            db::commit(tx).await?;
            let stored = stored
                .filter(|s| s.record.status != status::DISCONNECTED)
                .ok_or_else(|| Error::not_found("ads.connection_not_found"))?;
            let account = stored.record.accounts.iter().find(|a| a.external_id == t.account);
            let named = || t.account.chars().take(80).collect::<String>();
            let platform = match account {
                None => None,
                // An advertiser is a real account of the connection, but one TikTok lets no post
                // through: said as such, not as an unknown account.
                Some(a) if a.kind == AccountKind::Advertiser => {
                    return Err(Error::invalid("ads.account_cannot_post")
                        .with_param("account", named())
                        .with_violation(format!("targets[{i}].account"), "not_postable"));
                }
                Some(a) => Platform::of_account(a.kind),
            }
            .ok_or_else(|| {
                Error::invalid("ads.account_unknown")
                    .with_param("account", named())
                    .with_violation(format!("targets[{i}].account"), "unknown")
            })?;
            let mut variant = t.variant.clone().with_defaults(&spec.text, spec.link.as_deref(), &spec.media);
            self.media_facts_of(tenant, &mut variant.media, &mut facts, by).await.map_err(at)?;
            let creator = match (stored.record.provider, platform) {
                (Provider::TikTokCreator, Platform::TikTok) => {
                    // A creator's token may be near its end: renewed first where it can be.
                    let token = self.connection_token(tenant, connection).await?;
                    self.creator_limits(&token).await.map_err(at)?
                }
                _ => CreatorLimits::default(),
            };
            check(platform, &variant, &creator, !spec.draft).map_err(at)?;
            out.push(Checked {
                connection,
                provider: stored.record.provider,
                platform,
                account: t.account.clone(),
                variant,
            });
        }
        Ok((out, Self::imported(&spec.media, &facts)))
    }

    /// What the TikTok creator may post now (their privacy options and longest video).
    async fn creator_limits(&self, token: &str) -> Result<CreatorLimits, Error> {
        let Some(client) = &self.tiktok_posts else { return Ok(CreatorLimits::default()) };
        let info = client
            .creator_info(token)
            .await
            .map_err(|e| super::platforms::platform_error(Provider::TikTokCreator, e))?;
        Ok(CreatorLimits {
            privacy_options: info.privacy_level_options,
            max_duration_secs: info.max_video_post_duration_sec,
        })
    }

    pub async fn post(&self, p: &Principal, raw_id: &str) -> Result<PostView, Error> {
        require(p, Action::Read)?;
        self.post_view(p.workspace_id, post_id(raw_id)?).await
    }

    async fn post_view(&self, tenant: TenantId, id: Uuid) -> Result<PostView, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let view = load(&mut tx, id).await?;
        db::commit(tx).await?;
        Ok(view)
    }

    /// An admin approves a proposed post: it is scheduled for its time (now, if that passed).
    pub async fn approve_post(&self, p: &Principal, raw_id: &str) -> Result<PostView, Error> {
        require(p, Action::Write)?;
        if p.role < Role::Admin {
            return Err(Error::forbidden("auth.role_insufficient"));
        }
        let id = post_id(raw_id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let post =
            repo::posts::get_for_update(&mut tx, id).await?.ok_or_else(|| Error::not_found("ads.post_not_found"))?;
        if post.status != post_status::PENDING_APPROVAL && post.status != post_status::DRAFT {
            return Err(not_changeable(&post.status));
        }
        // A draft was checked as a draft: what only scheduled posts must meet is checked now.
        for (i, t) in repo::posts::targets(&mut tx, id).await?.iter().enumerate() {
            let platform: Platform = t.platform.parse()?;
            let creator = if platform == Platform::TikTok && t.provider != Provider::Local.as_str() {
                let token = self.connection_token(p.workspace_id, t.connection_id).await?;
                self.creator_limits(&token).await?
            } else {
                CreatorLimits::default()
            };
            check(platform, &t.variant.0, &creator, true).map_err(|e| e.with_param("target", i.to_string()))?;
        }
        let at = post.scheduled_at.filter(|t| *t > Utc::now()).unwrap_or_else(Utc::now);
        repo::posts::set_schedule(&mut tx, id, post_status::SCHEDULED, Some(at), Some(p.user_id.as_uuid())).await?;
        let view = load(&mut tx, id).await?;
        announce_scheduled(&mut tx, p.workspace_id, &view).await?;
        db::commit(tx).await?;
        Ok(view)
    }

    /// Replaces a post that has not started publishing: its text, media, accounts and their
    /// variants, time and campaign, checked as a new one. A member's change to an approved post
    /// sends it back for approval; an admin's keeps it scheduled.
    pub async fn update_post(&self, p: &Principal, raw_id: &str, spec: PostSpec) -> Result<PostView, Error> {
        require(p, Action::Write)?;
        let id = post_id(raw_id)?;
        let now = Utc::now();
        check_spec(&spec, now)?;
        if spec.queue || spec.request_key.is_some() {
            return Err(Error::invalid("ads.post_invalid")
                .with_param("field", "queue")
                .with_violation("queue", "update"));
        }
        // The post first: another workspace's id is "not found" whatever the body says.
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::posts::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("ads.post_not_found"))?;
        db::commit(tx).await?;
        let (checked, media) = self.check_targets(p.workspace_id, &spec, Some(p.user_id.as_uuid())).await?;
        let campaign = match &spec.campaign_id {
            Some(raw) => Some(id_of::<CampaignId>(raw, "ads.campaign_not_found", CampaignId::as_uuid)?),
            None => None,
        };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let post =
            repo::posts::get_for_update(&mut tx, id).await?.ok_or_else(|| Error::not_found("ads.post_not_found"))?;
        if post.status == post_status::CANCELLED || repo::posts::any_started(&mut tx, id).await? {
            return Err(not_changeable(&post.status));
        }
        if let Some(c) = campaign
            && repo::campaigns::get(&mut tx, c).await?.is_none()
        {
            return Err(Error::not_found("ads.campaign_not_found"));
        }
        let status = if spec.draft {
            post_status::DRAFT
        } else if p.role >= Role::Admin {
            post_status::SCHEDULED
        } else {
            post_status::PENDING_APPROVAL
        };
        let at = if spec.draft { spec.scheduled_at } else { Some(spec.scheduled_at.unwrap_or(now)) };
        let body = serde_json::json!({"text": spec.text, "link": spec.link, "media": media});
        let time_zone = if spec.time_zone.is_empty() { "UTC" } else { spec.time_zone.as_str() };
        let approved_by = (status == post_status::SCHEDULED).then(|| p.user_id.as_uuid());
        let change = repo::posts::PostChange {
            campaign_id: campaign,
            status,
            scheduled_at: at,
            time_zone,
            body: &body,
            approved_by,
        };
        repo::posts::replace(&mut tx, id, &change).await?;
        let view = store_targets(&mut tx, p.workspace_id, id, status, at, &checked).await?;
        db::commit(tx).await?;
        Ok(view)
    }

    /// Moves a post that has not started publishing to another time (its approval stays).
    pub async fn reschedule_post(&self, p: &Principal, raw_id: &str, at: DateTime<Utc>) -> Result<PostView, Error> {
        require(p, Action::Write)?;
        let id = post_id(raw_id)?;
        check_time(at, Utc::now())?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let post =
            repo::posts::get_for_update(&mut tx, id).await?.ok_or_else(|| Error::not_found("ads.post_not_found"))?;
        if post.status == post_status::CANCELLED || repo::posts::any_started(&mut tx, id).await? {
            return Err(not_changeable(&post.status));
        }
        // A YouTube release time must stay after the upload.
        for (i, t) in repo::posts::targets(&mut tx, id).await?.iter().enumerate() {
            if let Some(release) = t.variant.0.publish_at {
                check_publish_at_time(release, Some(at), Utc::now())
                    .map_err(|e| e.with_param("target", i.to_string()))?;
            }
        }
        let scheduled = post.status == post_status::SCHEDULED;
        repo::posts::set_schedule(&mut tx, id, &post.status, Some(at), None).await?;
        let view = load(&mut tx, id).await?;
        if scheduled {
            announce_scheduled(&mut tx, p.workspace_id, &view).await?;
        }
        db::commit(tx).await?;
        Ok(view)
    }

    /// Cancels what has not gone out yet; what was published stays published. A publication
    /// in progress cannot be called back.
    pub async fn cancel_post(&self, p: &Principal, raw_id: &str) -> Result<PostView, Error> {
        require(p, Action::Write)?;
        let id = post_id(raw_id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let post =
            repo::posts::get_for_update(&mut tx, id).await?.ok_or_else(|| Error::not_found("ads.post_not_found"))?;
        let targets = repo::posts::targets(&mut tx, id).await?;
        if post.status == post_status::CANCELLED || targets.iter().any(|t| t.status == target_status::PUBLISHING) {
            return Err(not_changeable(&post.status));
        }
        repo::posts::set_schedule(&mut tx, id, post_status::CANCELLED, None, None).await?;
        let view = load(&mut tx, id).await?;
        db::commit(tx).await?;
        Ok(view)
    }

    /// The posts of `[from, to)` (at most 92 days), for the calendar.
    pub async fn post_calendar(
        &self,
        p: &Principal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<PostView>, Error> {
        require(p, Action::Read)?;
        if to <= from || to - from > chrono::Duration::days(92) {
            return Err(Error::invalid("ads.calendar_range_invalid").with_violation("to", "range"));
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let posts = repo::posts::calendar(&mut tx, from, to, 2_000).await?;
        let mut out = Vec::with_capacity(posts.len());
        for post in posts {
            let targets = repo::posts::targets(&mut tx, post.id).await?;
            out.push(PostView { post, targets });
        }
        db::commit(tx).await?;
        Ok(out)
    }
}

/// Weeks ahead the queue looks for a free slot.
const QUEUE_WEEKS: u32 = 12;

/// The earliest free slot of the workspace's queue, held (advisory lock) until the transaction
/// ends.
async fn queue_slot(
    conn: &mut sqlx::PgConnection,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Error> {
    repo::posts::lock_queue(conn, tenant).await?;
    let slots = repo::posts::slots(conn).await?;
    let horizon = now + chrono::Duration::weeks(i64::from(QUEUE_WEEKS) + 1);
    let held = repo::posts::held_times(conn, now, horizon).await?;
    crate::domain::posts::next_free_slot(&slots, &held, now, QUEUE_WEEKS)
        .ok_or_else(|| Error::new(ErrorKind::FailedPrecondition, "ads.queue_full"))
}

impl App {
    pub async fn queue_slots(&self, p: &Principal) -> Result<Vec<QueueSlot>, Error> {
        require(p, Action::Read)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let slots = repo::posts::slots(&mut tx).await?;
        db::commit(tx).await?;
        Ok(slots)
    }

    /// Replaces the queue's slots (posts already given a slot keep their time).
    pub async fn set_queue_slots(&self, p: &Principal, slots: Vec<QueueSlot>) -> Result<Vec<QueueSlot>, Error> {
        require(p, Action::Write)?;
        check_slots(&slots)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::posts::lock_queue(&mut tx, p.workspace_id).await?;
        repo::posts::set_slots(&mut tx, p.workspace_id, &slots).await?;
        let slots = repo::posts::slots(&mut tx).await?;
        db::commit(tx).await?;
        Ok(slots)
    }
}

fn not_changeable(status: &str) -> Error {
    Error::new(ErrorKind::FailedPrecondition, "ads.post_not_changeable").with_param("status", status.to_owned())
}

/// Stores a post's checked targets (due at `at` when it is scheduled, announced then) and reads
/// the post back.
async fn store_targets(
    conn: &mut sqlx::PgConnection,
    tenant: TenantId,
    id: Uuid,
    status: &str,
    at: Option<DateTime<Utc>>,
    checked: &[Checked],
) -> Result<PostView, Error> {
    let targets: Vec<NewTarget<'_>> = checked
        .iter()
        .map(|c| NewTarget {
            id: Uuid::now_v7(),
            connection_id: c.connection,
            provider: c.provider.as_str(),
            platform: c.platform.as_str(),
            account: &c.account,
            variant: &c.variant,
        })
        .collect();
    let due = (status == post_status::SCHEDULED).then_some(at).flatten();
    repo::posts::insert_targets(conn, tenant, id, due, &targets).await?;
    let view = load(conn, id).await?;
    if status == post_status::SCHEDULED {
        announce_scheduled(conn, tenant, &view).await?;
    }
    Ok(view)
}

async fn load(conn: &mut sqlx::PgConnection, id: Uuid) -> Result<PostView, Error> {
    let post = repo::posts::get(conn, id).await?.ok_or_else(|| Error::not_found("ads.post_not_found"))?;
    let targets = repo::posts::targets(conn, id).await?;
    Ok(PostView { post, targets })
}

async fn announce_scheduled(conn: &mut sqlx::PgConnection, tenant: TenantId, view: &PostView) -> Result<(), Error> {
    for t in view.targets.iter().filter(|t| t.status == target_status::SCHEDULED) {
        crate::events::post_scheduled(conn, tenant, t).await?;
    }
    Ok(())
}
