//! Custom audiences: members normalized and SHA-256 hashed here, so only hashes leave the
//! service, uploaded to a chosen Meta ad account (batches of one session) or TikTok advertiser.
//! The members come from the client, or from a saved segment of the contact book (messaging),
//! read page by page and sent in platform batches as they fill, so a segment of any size is
//! never held whole; its contacts without marketing consent are left out. A TikTok audience
//! made from a segment is kept by difference (`audience_diff`).

use nexus_kernel::{Error, ErrorKind, Page, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use uuid::Uuid;

use super::ad_platform::{AdPlatform, HashKind, ad_account_kind};
use super::audience_diff::{DiffSink, DiffTarget};
use super::contact_book::ContactBook;
use super::platforms::platform_error;
use super::{App, id_of, require};
use crate::domain::AudienceId;
use crate::domain::audiences::{
    Batcher, hash_members, lookalike_spec, may_target, normalize_email, normalize_phone, sha256_hex,
};
use crate::domain::connections::Provider;
use crate::repo;
use crate::repo::audiences::Audience;

const NOT_FOUND: &str = "ads.audience_not_found";

/// What a client sent: the members of a CRM segment, or the segment itself.
#[derive(Debug, Clone, Default)]
pub struct AudienceRequest {
    pub connection_id: String,
    pub ad_account: String,
    pub name: String,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    /// A saved segment of the contact book, instead of `emails` and `phones`.
    pub segment_id: String,
}

/// A lookalike as a client asks for it.
#[derive(Debug, Clone, Default)]
pub struct LookalikeRequest {
    pub name: String,
    pub countries: Vec<String>,
    pub ratio_percent: i32,
}

/// What reading a segment into an audience counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upload {
    /// Hashes sent.
    pub members: u64,
    /// Emails and phones that were not usable (not an email, no country code).
    pub dropped: u64,
    /// Contacts left out: anonymized, or without marketing consent.
    pub excluded: u64,
}

/// Where a segment's hashes go: one platform audience, one batcher per kind of hash, and Meta's
/// upload sessions (one per kind when adding; one for both when replacing, whose last batch is
/// what swaps the members). A new platform audience is created with the first batch, so a
/// segment with no usable contact creates nothing.
pub(super) struct Sink<'a> {
    platform: AdPlatform<'a>,
    token: &'a str,
    account: &'a str,
    name: &'a str,
    local_key: Uuid,
    audience: Option<String>,
    /// The estimated total Meta's session asks for (the segment's size).
    estimated: u64,
    replace: bool,
    emails: Batcher,
    phones: Batcher,
    sessions: [u64; 2],
    seqs: [u32; 2],
}

/// Where [`pour`] sends a segment's hashes.
pub(super) trait HashSink {
    async fn push(&mut self, kind: HashKind, hash: String) -> Result<(), Error>;
}

impl HashSink for Sink<'_> {
    async fn push(&mut self, kind: HashKind, hash: String) -> Result<(), Error> {
        let full = match kind {
            HashKind::Email => self.emails.push(hash),
            HashKind::Phone => self.phones.push(hash),
        };
        match full {
            Some(batch) => self.send(kind, &batch, false).await,
            None => Ok(()),
        }
    }
}

impl<'a> Sink<'a> {
    pub(super) fn new(t: Target<'a>, audience: Option<String>, estimated: u64, replace: bool) -> Self {
        let batch = match t.platform {
            AdPlatform::TikTok(_) => nexus_providers::tiktok::AUDIENCE_BATCH,
            _ => nexus_providers::meta::AUDIENCE_BATCH,
        };
        let session = u64::from(rand_session());
        Sink {
            platform: t.platform,
            token: t.token,
            account: t.account,
            name: t.name,
            local_key: t.local_key,
            audience,
            estimated,
            replace,
            emails: Batcher::new(batch),
            phones: Batcher::new(batch),
            sessions: [session, session + 1],
            seqs: [0, 0],
        }
    }

    /// Sends what is held as the last batches; the platform audience's id, if there is one and
    /// anything was sent.
    pub(super) async fn finish(mut self) -> Result<Option<String>, Error> {
        let (emails, phones) = (self.emails.finish(), self.phones.finish());
        if emails.is_none() && phones.is_none() {
            return Ok(None);
        }
        if let Some(batch) = emails {
            // Replacing, the session's last batch is the very last one sent.
            let last = !self.replace || phones.is_none();
            self.send(HashKind::Email, &batch, last).await?;
        }
        if let Some(batch) = phones {
            self.send(HashKind::Phone, &batch, true).await?;
        }
        Ok(self.audience)
    }

    async fn send(&mut self, kind: HashKind, batch: &[String], last: bool) -> Result<(), Error> {
        let provider = self.platform.provider();
        let e = |e| platform_error(provider, e);
        let audience = match &self.audience {
            Some(a) => a.clone(),
            None => {
                let a = self.platform.create_audience(self.token, self.account, self.name, self.local_key).await;
                let a = a.map_err(e)?;
                self.audience = Some(a.clone());
                a
            }
        };
        let slot = if self.replace || kind == HashKind::Email { 0 } else { 1 };
        self.seqs[slot] += 1;
        let place = nexus_providers::meta::UploadBatch {
            session_id: self.sessions[slot],
            seq: self.seqs[slot],
            last,
            estimated_total: self.estimated.max(batch.len() as u64),
        };
        let sent = if self.replace {
            self.platform.replace_audience_batch(self.token, &audience, kind, batch, place).await
        } else {
            self.platform.add_audience_batch(self.token, self.account, &audience, kind, batch, place).await
        };
        sent.map_err(e)
    }
}

impl App {
    pub async fn create_audience(&self, p: &Principal, req: AudienceRequest) -> Result<Audience, Error> {
        require(p, Action::Write)?;
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::invalid("ads.audience_invalid")
                .with_param("field", "name")
                .with_violation("name", "length"));
        }
        let segment = req.segment_id.trim();
        let members_sent = !(req.emails.is_empty() && req.phones.is_empty());
        if !segment.is_empty() && members_sent {
            return Err(Error::invalid("ads.audience_invalid")
                .with_param("field", "segment_id")
                .with_violation("segment_id", "with_members"));
        }
        // Checked (and hashed) before any platform call.
        let hashed = if segment.is_empty() { Some(hash_members(&req.emails, &req.phones)?) } else { None };
        self.sharing_allowed(p.workspace_id).await?;
        let stored = self.stored_connection(p, &req.connection_id).await?;
        let c = &stored.record;
        let platform = self.ad_platform(c.provider)?;
        let kind = ad_account_kind(c.provider);
        if !c.accounts.iter().any(|a| a.kind == kind && a.external_id == req.ad_account.trim() && a.chosen) {
            return Err(Error::invalid("ads.account_unknown")
                .with_param("account", req.ad_account.chars().take(60).collect::<String>())
                .with_violation("ad_account", "unknown"));
        }
        let token = self.open_tokens(c.id, &stored.credentials)?.access_token;
        let account = req.ad_account.trim();
        let id = Uuid::now_v7();
        let (platform_id, counts) = match hashed {
            Some(hashed) => {
                let session = u64::from(rand_session());
                let audience = platform
                    .upload_audience(&token, account, name, &hashed.emails, &hashed.phones, session)
                    .await
                    .map_err(|e| platform_error(c.provider, e))?;
                let members = (hashed.emails.len() + hashed.phones.len()) as u64;
                (audience, Upload { members, dropped: hashed.dropped as u64, excluded: 0 })
            }
            None => {
                let target = Target { platform, token: &token, account, name, local_key: id };
                self.upload_segment(p.workspace_id, segment, target).await?
            }
        };
        let now = chrono::Utc::now();
        let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        let row = Audience {
            id,
            connection_id: c.id,
            ad_account: account.to_owned(),
            name: name.to_owned(),
            platform_id,
            members: count(counts.members),
            dropped: count(counts.dropped),
            created_at: now,
            segment_id: segment.to_owned(),
            excluded: count(counts.excluded),
            refresh_status: "ready".into(),
            refresh_error: String::new(),
            refreshed_at: (!segment.is_empty()).then_some(now),
            kind: "custom".into(),
            origin_id: None,
            countries: Vec::new(),
            ratio_percent: 0,
        };
        let every = chrono::Duration::from_std(self.cfg.audiences.refresh_every).unwrap_or(chrono::Duration::hours(24));
        let next = (!segment.is_empty()).then(|| now + every);
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let stored = repo::audiences::insert(&mut tx, p.workspace_id, &row, next).await?;
        db::commit(tx).await?;
        Ok(stored)
    }

    /// Reads a segment page by page into a new platform audience; its id and the counts. A
    /// segment without one usable, consenting contact is refused and creates nothing. A TikTok
    /// audience's hashes are kept (under the audience's id `t.local_key`) for its refreshes.
    async fn upload_segment(&self, tenant: TenantId, segment: &str, t: Target<'_>) -> Result<(String, Upload), Error> {
        let book = self.book()?;
        let (counts, audience) = match t.platform {
            AdPlatform::TikTok(tiktok) => {
                let key = t.local_key;
                let target = DiffTarget {
                    pool: &self.pool,
                    tenant,
                    key,
                    // Below the first refresh's stamp, so what it does not find is removed.
                    generation: 0,
                    tiktok,
                    token: t.token,
                    advertiser: t.account,
                    name: t.name,
                    audience: None,
                };
                let mut sink = DiffSink::new(target);
                let poured = match pour(book, tenant, segment, &mut sink).await {
                    Ok(counts) => sink.finish().await.map(|a| (counts, a)),
                    Err(e) => Err(e),
                };
                if poured.is_err() || matches!(poured, Ok((_, None))) {
                    // No audience row will name these hashes.
                    let mut tx = db::tenant(&self.pool, tenant).await?;
                    repo::audience_members::forget_all(&mut tx, key).await?;
                    db::commit(tx).await?;
                }
                poured?
            }
            _ => {
                let estimated = book.segment_size(tenant, segment).await?;
                let mut sink = Sink::new(t, None, estimated, false);
                let counts = pour(book, tenant, segment, &mut sink).await?;
                (counts, sink.finish().await?)
            }
        };
        match audience {
            Some(audience) => Ok((audience, counts)),
            None => Err(Error::invalid("ads.audience_empty").with_violation("segment_id", "empty")),
        }
    }

    /// Refuses when the workspace said "do not sell or share" (CCPA) in its contact book: no
    /// contact of it goes to an ad platform. Without a contact book (no messaging service
    /// configured) there is no such setting to read, and only members sent by a client exist.
    pub(super) async fn sharing_allowed(&self, tenant: TenantId) -> Result<(), Error> {
        match &self.contact_book {
            Some(book) if book.do_not_sell(tenant).await? => {
                Err(Error::new(ErrorKind::FailedPrecondition, "ads.do_not_sell"))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn book(&self) -> Result<&dyn ContactBook, Error> {
        self.contact_book
            .as_deref()
            .ok_or_else(|| Error::new(ErrorKind::FailedPrecondition, "ads.segments_unavailable"))
    }

    pub async fn audience(&self, p: &Principal, raw_id: &str) -> Result<Audience, Error> {
        require(p, Action::Read)?;
        let id = audience_id(raw_id)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let found = repo::audiences::get(&mut tx, id).await?;
        db::commit(tx).await?;
        found.ok_or_else(|| Error::not_found(NOT_FOUND))
    }

    pub async fn list_audiences(&self, p: &Principal, page: &PageRequest) -> Result<Page<Audience>, Error> {
        require(p, Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let page = repo::audiences::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(page)
    }

    /// A lookalike of a custom audience, made in the source's connection and ad account; checked
    /// before any platform call.
    pub async fn create_lookalike(
        &self,
        p: &Principal,
        raw_source: &str,
        ask: LookalikeRequest,
    ) -> Result<Audience, Error> {
        require(p, Action::Write)?;
        // Checked before anything is looked up; the default name needs the source's.
        lookalike_spec("", &ask.name, &ask.countries, ask.ratio_percent)?;
        let source = self.audience(p, raw_source).await?;
        let spec = lookalike_spec(&source.name, &ask.name, &ask.countries, ask.ratio_percent)?;
        if source.kind != "custom" {
            return Err(Error::invalid("ads.audience_invalid")
                .with_param("field", "id")
                .with_violation("id", "lookalike_source"));
        }
        let (platform, token, provider) = self.audience_platform(p, &source).await?;
        let id = Uuid::now_v7();
        let platform_id = platform
            .create_lookalike(&token, &source.ad_account, &source.platform_id, &spec, id)
            .await
            .map_err(|e| platform_error(provider, e))?;
        let row = Audience {
            id,
            connection_id: source.connection_id,
            ad_account: source.ad_account.clone(),
            name: spec.name,
            platform_id,
            members: 0,
            dropped: 0,
            created_at: chrono::Utc::now(),
            segment_id: String::new(),
            excluded: 0,
            refresh_status: "ready".into(),
            refresh_error: String::new(),
            refreshed_at: None,
            kind: "lookalike".into(),
            origin_id: Some(source.id),
            countries: spec.countries,
            ratio_percent: spec.ratio_percent,
        };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let stored = repo::audiences::insert(&mut tx, p.workspace_id, &row, None).await?;
        db::commit(tx).await?;
        Ok(stored)
    }

    /// The platform an audience lives on, with its connection's access token. A removed
    /// connection has no tokens left to act with.
    async fn audience_platform(
        &self,
        p: &Principal,
        a: &Audience,
    ) -> Result<(AdPlatform<'_>, String, Provider), Error> {
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let stored = repo::connections::get(&mut tx, a.connection_id).await?;
        db::commit(tx).await?;
        let stored = stored
            .filter(|s| s.record.status != crate::domain::connections::status::DISCONNECTED)
            .ok_or_else(|| Error::new(ErrorKind::FailedPrecondition, "ads.connection_required"))?;
        let provider: Provider = stored.record.provider;
        let platform = self.ad_platform(provider)?;
        let token = self.open_tokens(stored.record.id, &stored.credentials)?.access_token;
        Ok((platform, token, provider))
    }

    /// Deletes the audience at the platform (one already gone there counts as deleted), then here.
    pub async fn delete_audience(&self, p: &Principal, raw_id: &str) -> Result<(), Error> {
        require(p, Action::Write)?;
        let a = self.audience(p, raw_id).await?;
        let (platform, token, provider) = self.audience_platform(p, &a).await?;
        platform
            .delete_audience(&token, &a.ad_account, &a.platform_id)
            .await
            .map_err(|e| platform_error(provider, e))?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::audiences::delete(&mut tx, a.id).await?;
        repo::audience_members::forget_all(&mut tx, a.id).await?;
        db::commit(tx).await?;
        Ok(())
    }
}

/// The platform audience a segment is read into.
pub(super) struct Target<'a> {
    pub platform: AdPlatform<'a>,
    pub token: &'a str,
    pub account: &'a str,
    pub name: &'a str,
    pub local_key: Uuid,
}

pub(super) fn audience_id(raw: &str) -> Result<Uuid, Error> {
    id_of::<AudienceId>(raw, NOT_FOUND, AudienceId::as_uuid)
}

/// An upload session id (Meta groups the batches of one upload by it).
fn rand_session() -> u32 {
    let b = Uuid::new_v4().into_bytes();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads every page of a segment into `sink`: each consenting contact's email and phone,
/// normalized and hashed. What was sent, dropped and left out.
pub(super) async fn pour(
    book: &dyn ContactBook,
    tenant: TenantId,
    segment: &str,
    sink: &mut impl HashSink,
) -> Result<Upload, Error> {
    let mut counts = Upload::default();
    let mut cursor = String::new();
    loop {
        let (contacts, next) = book.page(tenant, segment, &cursor).await?;
        for contact in contacts {
            if !may_target(&contact) {
                counts.excluded += 1;
                continue;
            }
            for (kind, raw) in [(HashKind::Email, &contact.email), (HashKind::Phone, &contact.phone)] {
                if raw.trim().is_empty() {
                    continue;
                }
                let normalized = match kind {
                    HashKind::Email => normalize_email(raw),
                    HashKind::Phone => normalize_phone(raw),
                };
                match normalized {
                    Some(n) => {
                        sink.push(kind, sha256_hex(&n)).await?;
                        counts.members += 1;
                    }
                    None => counts.dropped += 1,
                }
            }
        }
        if next.is_empty() {
            return Ok(counts);
        }
        cursor = next;
    }
}
