//! Read-only iCal feeds of the post calendar: a member makes one (the token is shown once and
//! kept only as its SHA-256), calendar apps read it with the token in the address, and revoking
//! it stops it at once. An anonymous reader with a valid token sees that workspace's calendar
//! (times, platforms and text of its posts) and nothing else; a wrong or revoked token is the
//! same "not found" as any other.

use chrono::Utc;
use nexus_kernel::{Error, TenantId};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{App, id_of, require};
use crate::domain::FeedId;
use crate::domain::ical::{CalendarEntry, render};
use crate::domain::{PostId, posts::Variant};
use crate::repo;
use crate::repo::feeds::Feed;

/// A feed covers the posts of this many days back and ahead.
const DAYS_BACK: i64 = 30;
const DAYS_AHEAD: i64 = 180;
const NAME_MAX: usize = 100;

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn not_found() -> Error {
    Error::not_found("ads.feed_not_found")
}

impl App {
    /// A new feed and its token (shown this once).
    pub async fn create_feed(&self, p: &Principal, name: &str) -> Result<(Feed, String), Error> {
        require(p, Action::Write)?;
        let name = name.trim();
        if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
            return Err(Error::invalid("ads.post_invalid")
                .with_param("field", "name")
                .with_violation("name", "invalid"));
        }
        let token = nexus_providers::oidc::random_token();
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let feed = repo::feeds::insert(
            &mut tx,
            p.workspace_id,
            Uuid::now_v7(),
            &token_hash(&token),
            name,
            p.user_id.as_uuid(),
        )
        .await?;
        db::commit(tx).await?;
        Ok((feed, token))
    }

    pub async fn list_feeds(&self, p: &Principal) -> Result<Vec<Feed>, Error> {
        require(p, Action::Read)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let feeds = repo::feeds::list(&mut tx).await?;
        db::commit(tx).await?;
        Ok(feeds)
    }

    pub async fn revoke_feed(&self, p: &Principal, raw_id: &str) -> Result<Feed, Error> {
        require(p, Action::Write)?;
        let id = id_of::<FeedId>(raw_id, "ads.feed_not_found", FeedId::as_uuid)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let feed = repo::feeds::revoke(&mut tx, id).await?.ok_or_else(not_found)?;
        db::commit(tx).await?;
        Ok(feed)
    }

    /// The calendar of the feed whose token this is, as iCalendar text (no caller: the token is
    /// the key).
    pub async fn feed_ics(&self, token: &str) -> Result<String, Error> {
        if token.is_empty() || token.len() > 200 {
            return Err(not_found());
        }
        let mut sys = db::system(&self.pool).await?;
        let found = repo::feeds::live_by_hash(&mut sys, &token_hash(token)).await?;
        db::commit(sys).await?;
        let (tenant, name) = found.ok_or_else(not_found)?;
        let now = Utc::now();
        let mut tx = db::tenant(&self.pool, TenantId::from_uuid(tenant)).await?;
        let posts = repo::posts::calendar(
            &mut tx,
            now - chrono::Duration::days(DAYS_BACK),
            now + chrono::Duration::days(DAYS_AHEAD),
            2_000,
        )
        .await?;
        let mut entries = Vec::with_capacity(posts.len());
        for post in posts {
            let Some(at) = post.scheduled_at else { continue };
            let targets = repo::posts::targets(&mut tx, post.id).await?;
            let platforms: Vec<&str> = targets.iter().map(|t| t.platform.as_str()).collect();
            let text = targets.first().map(|t| caption_of(&t.variant.0)).unwrap_or_default();
            let short: String = text.chars().take(80).collect();
            let links: Vec<String> = targets
                .iter()
                .filter(|t| !t.permalink.is_empty())
                .map(|t| format!("{}: {}", t.platform, t.permalink))
                .collect();
            let description = if links.is_empty() { text.clone() } else { format!("{text}\n\n{}", links.join("\n")) };
            entries.push(CalendarEntry {
                uid: format!("{}@nexusone", PostId::from_uuid(post.id)),
                at,
                summary: format!("{}: {short}", platforms.join(", ")),
                description,
                status: post.status,
                updated: post.updated_at,
            });
        }
        db::commit(tx).await?;
        let title = if name.is_empty() { "NexusOne posts".to_owned() } else { name };
        Ok(render(&title, &entries, now))
    }
}

fn caption_of(v: &Variant) -> String {
    if v.title.is_empty() { v.caption.clone() } else { v.title.clone() }
}
