//! TikTok audiences are kept by difference. TikTok's segment API adds and removes members but
//! cannot replace them, so the hashes an audience was given are kept here
//! (`audience_members`), and each upload or refresh stamps the ones it finds in the segment,
//! sends only those TikTok does not hold yet, and at the end removes the ones it did not find.
//! Nothing is held beyond one stamping chunk and one platform batch per kind of hash, so a
//! segment of any size streams through. A crash or platform error leaves every hash in a state
//! the next refresh repairs: adds and removals at TikTok can be repeated harmlessly, and a hash
//! is marked held only after its add succeeded, and unmarked before its removal is sent.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db;
use nexus_providers::tiktok::{AUDIENCE_BATCH, TikTokClient};
use sqlx::PgPool;
use uuid::Uuid;

use super::ad_platform::HashKind;
use super::audiences::HashSink;
use super::platforms::platform_error;
use crate::domain::connections::Provider;
use crate::repo::audience_members as members;

/// Hashes stamped per statement.
const STAMP: usize = 2_000;

const KINDS: [HashKind; 2] = [HashKind::Email, HashKind::Phone];

fn slot(kind: HashKind) -> usize {
    match kind {
        HashKind::Email => 0,
        HashKind::Phone => 1,
    }
}

/// How a kind of hash is stored (`audience_members.kind`).
fn stored(kind: HashKind) -> i16 {
    match kind {
        HashKind::Email => 1,
        HashKind::Phone => 2,
    }
}

/// The TikTok audience a segment is diffed into.
pub(super) struct DiffTarget<'a> {
    pub pool: &'a PgPool,
    pub tenant: TenantId,
    /// The audience's id here: its stored hashes are keyed by it.
    pub key: Uuid,
    /// The refresh's stamp; hashes with an older one were not found and are removed.
    pub generation: i64,
    pub tiktok: &'a TikTokClient,
    pub token: &'a str,
    pub advertiser: &'a str,
    pub name: &'a str,
    /// The platform audience; None for a first upload (made with the first batch).
    pub audience: Option<String>,
}

pub(super) struct DiffSink<'a> {
    t: DiffTarget<'a>,
    /// Hashes found, awaiting their stamp.
    found: [Vec<Vec<u8>>; 2],
    /// Hashes TikTok does not hold, awaiting a full batch.
    unsent: [Vec<Vec<u8>>; 2],
    seen: u64,
}

impl HashSink for DiffSink<'_> {
    async fn push(&mut self, kind: HashKind, hash: String) -> Result<(), Error> {
        let bytes = hex::decode(&hash).map_err(|_| Error::internal("a member hash is not hexadecimal"))?;
        self.seen += 1;
        let k = slot(kind);
        self.found[k].push(bytes);
        if self.found[k].len() >= STAMP {
            self.stamp(kind).await?;
        }
        Ok(())
    }
}

impl<'a> DiffSink<'a> {
    pub(super) fn new(t: DiffTarget<'a>) -> Self {
        DiffSink { t, found: Default::default(), unsent: Default::default(), seen: 0 }
    }

    /// Sends what is held, then removes what the segment no longer holds; the platform
    /// audience's id. None when nothing was found: the audience keeps its members (TikTok
    /// cannot be given an empty audience, and an empty segment is more likely a mistake).
    pub(super) async fn finish(mut self) -> Result<Option<String>, Error> {
        for kind in KINDS {
            self.stamp(kind).await?;
            let rest = std::mem::take(&mut self.unsent[slot(kind)]);
            if !rest.is_empty() {
                self.add(kind, rest).await?;
            }
        }
        if self.seen == 0 {
            return Ok(None);
        }
        for kind in KINDS {
            self.remove_stale(kind).await?;
        }
        Ok(self.t.audience)
    }

    /// Stamps the found hashes of `kind`, and sends the new ones in full batches.
    async fn stamp(&mut self, kind: HashKind) -> Result<(), Error> {
        let k = slot(kind);
        let mut found = std::mem::take(&mut self.found[k]);
        if found.is_empty() {
            return Ok(());
        }
        // One statement cannot stamp a row twice; a person twice in a segment is one member.
        found.sort_unstable();
        found.dedup();
        let t = &self.t;
        let mut tx = db::tenant(t.pool, t.tenant).await?;
        let new = members::mark_found(&mut tx, t.tenant, t.key, stored(kind), t.generation, &found).await?;
        db::commit(tx).await?;
        self.unsent[k].extend(new);
        while self.unsent[k].len() >= AUDIENCE_BATCH {
            let batch: Vec<Vec<u8>> = self.unsent[k].drain(..AUDIENCE_BATCH).collect();
            self.add(kind, batch).await?;
        }
        Ok(())
    }

    /// Adds one batch at TikTok (making the audience with the first), then marks it held.
    async fn add(&mut self, kind: HashKind, batch: Vec<Vec<u8>>) -> Result<(), Error> {
        let e = |e| platform_error(Provider::TikTok, e);
        let hex: Vec<String> = batch.iter().map(hex::encode).collect();
        let t = &mut self.t;
        let audience = match &t.audience {
            Some(a) => a.clone(),
            None => {
                let a = t.tiktok.create_audience(t.token, t.advertiser, t.name).await.map_err(e)?;
                t.audience = Some(a.clone());
                a
            }
        };
        t.tiktok.add_audience_members(t.token, t.advertiser, &audience, kind.tiktok(), &hex).await.map_err(e)?;
        let mut tx = db::tenant(t.pool, t.tenant).await?;
        members::set_held(&mut tx, t.key, stored(kind), &batch, true).await?;
        db::commit(tx).await
    }

    /// Removes, a batch at a time, the hashes of `kind` this refresh did not find.
    async fn remove_stale(&mut self, kind: HashKind) -> Result<(), Error> {
        let t = &self.t;
        let Some(audience) = t.audience.as_deref() else { return Ok(()) };
        let code = stored(kind);
        let mut after = Vec::new();
        loop {
            let mut tx = db::tenant(t.pool, t.tenant).await?;
            let stale = members::stale_page(&mut tx, t.key, code, t.generation, &after, AUDIENCE_BATCH as i64).await?;
            if stale.is_empty() {
                db::commit(tx).await?;
                return Ok(());
            }
            members::set_held(&mut tx, t.key, code, &stale, false).await?;
            db::commit(tx).await?;
            let hex: Vec<String> = stale.iter().map(hex::encode).collect();
            t.tiktok
                .remove_audience_members(t.token, t.advertiser, audience, kind.tiktok(), &hex)
                .await
                .map_err(|e| platform_error(Provider::TikTok, e))?;
            let mut tx = db::tenant(t.pool, t.tenant).await?;
            members::forget(&mut tx, t.key, code, t.generation, &stale).await?;
            db::commit(tx).await?;
            after = stale.last().cloned().unwrap_or_default();
        }
    }
}
