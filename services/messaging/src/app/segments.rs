//! Saved segments: filters over the contact book, counted live whenever they are read.

use nexus_kernel::{Error, Page, PageRequest};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{App, parse_id};
use crate::domain::segment::{self, Filter, Segment};
use crate::repo;

pub(crate) const NOT_FOUND: &str = "messaging.segment_not_found";

/// The filter of a saved segment of the transaction's workspace, read against today's field
/// definitions — for contact search, exports and audiences. Another workspace's segment is
/// "not found".
pub(crate) async fn filter_of(tx: &mut PgConnection, id: Uuid) -> Result<Filter, Error> {
    let stored = repo::segments::get(tx, id).await?.ok_or_else(|| Error::not_found(NOT_FOUND))?;
    let defs = repo::book::fields(tx).await?;
    Filter::from_stored(&stored.filter, &defs)
}

/// A stored segment with its count now.
async fn counted(tx: &mut PgConnection, stored: repo::segments::Stored, filter: &Filter) -> Result<Segment, Error> {
    let count = repo::segments::count(tx, filter).await?;
    Ok(Segment {
        id: stored.id,
        name: stored.name,
        filter: stored.filter,
        count,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    })
}

impl App {
    /// Creates a segment (empty `id`) or changes one's name and filter.
    #[tracing::instrument(skip_all)]
    pub async fn save_segment(&self, p: &Principal, id: &str, name: &str, filter_json: &str) -> Result<Segment, Error> {
        p.require(Action::Write)?;
        let name = segment::name(name)?;
        let id = if id.trim().is_empty() { None } else { Some(parse_id(id, NOT_FOUND)?) };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let defs = repo::book::fields(&mut tx).await?;
        let filter = Filter::parse(filter_json, &defs)?;
        let canonical = filter.to_json();
        let stored = match id {
            None => repo::segments::insert(&mut tx, p.workspace_id, &name, &canonical).await?,
            Some(id) => repo::segments::update(&mut tx, id, &name, &canonical)
                .await?
                .ok_or_else(|| Error::not_found(NOT_FOUND))?,
        };
        let saved = counted(&mut tx, stored, &filter).await?;
        db::commit(tx).await?;
        Ok(saved)
    }

    #[tracing::instrument(skip_all, fields(segment = %id))]
    pub async fn segment(&self, p: &Principal, id: &str) -> Result<Segment, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, NOT_FOUND)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let stored = repo::segments::get(&mut tx, id).await?.ok_or_else(|| Error::not_found(NOT_FOUND))?;
        let defs = repo::book::fields(&mut tx).await?;
        let filter = Filter::from_stored(&stored.filter, &defs)?;
        let found = counted(&mut tx, stored, &filter).await?;
        db::commit(tx).await?;
        Ok(found)
    }

    /// Segments newest first, each counted now.
    #[tracing::instrument(skip_all)]
    pub async fn segments(&self, p: &Principal, page: &PageRequest) -> Result<Page<Segment>, Error> {
        p.require(Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let found = repo::segments::list(&mut tx, &keyset).await?;
        let defs = repo::book::fields(&mut tx).await?;
        let mut items = Vec::with_capacity(found.items.len());
        for stored in found.items {
            let filter = Filter::from_stored(&stored.filter, &defs)?;
            items.push(counted(&mut tx, stored, &filter).await?);
        }
        db::commit(tx).await?;
        Ok(Page { items, next_cursor: found.next_cursor })
    }

    #[tracing::instrument(skip_all, fields(segment = %id))]
    pub async fn delete_segment(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, NOT_FOUND)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if !repo::segments::delete(&mut tx, id).await? {
            return Err(Error::not_found(NOT_FOUND));
        }
        db::commit(tx).await
    }
}
