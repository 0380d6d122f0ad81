//! The contact book: settings, custom fields, creating, reading and searching contacts.

use nexus_kernel::{Error, ErrorKind, Page, PageRequest};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{App, parse_id};
use crate::domain::contact::{Contact, ContactInput, ContactQuery, IdentityKind, Region};
use crate::domain::fields::{FIELDS_MAX, FieldDef, FieldKind};
use crate::repo;

const NOT_FOUND: &str = "messaging.contact_not_found";

impl App {
    #[tracing::instrument(skip_all)]
    pub async fn default_region(&self, p: &Principal) -> Result<Option<String>, Error> {
        p.require(Action::Read)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let region = repo::book::default_region(&mut tx).await?;
        db::commit(tx).await?;
        Ok(region)
    }

    #[tracing::instrument(skip_all)]
    pub async fn set_default_region(&self, p: &Principal, region: &str) -> Result<Option<String>, Error> {
        p.require(Action::Write)?;
        let region = if region.trim().is_empty() { String::new() } else { Region::parse(region)?.code() };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::book::save_default_region(&mut tx, p.workspace_id, &region).await?;
        db::commit(tx).await?;
        Ok(Some(region).filter(|r| !r.is_empty()))
    }

    #[tracing::instrument(skip_all, fields(key = %key))]
    pub async fn define_field(
        &self,
        p: &Principal,
        key: &str,
        label: &str,
        kind: &str,
        options: &[String],
    ) -> Result<FieldDef, Error> {
        p.require(Action::Write)?;
        let def = FieldDef::new(key, label, kind.parse::<FieldKind>()?, options)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if repo::book::field_count(&mut tx).await? >= FIELDS_MAX as i64
            && !repo::book::fields(&mut tx).await?.iter().any(|f| f.key == def.key)
        {
            return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.too_many_fields")
                .with_param("max", FIELDS_MAX.to_string()));
        }
        let saved = repo::book::save_field(&mut tx, p.workspace_id, &def).await?.ok_or_else(|| {
            Error::new(ErrorKind::FailedPrecondition, "messaging.field_kind_fixed").with_param("key", def.key.clone())
        })?;
        db::commit(tx).await?;
        Ok(saved)
    }

    #[tracing::instrument(skip_all)]
    pub async fn fields(&self, p: &Principal) -> Result<Vec<FieldDef>, Error> {
        p.require(Action::Read)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let fields = repo::book::fields(&mut tx).await?;
        db::commit(tx).await?;
        Ok(fields)
    }

    #[tracing::instrument(skip_all, fields(key = %key))]
    pub async fn delete_field(&self, p: &Principal, key: &str) -> Result<(), Error> {
        p.require(Action::Write)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if !repo::book::delete_field(&mut tx, key.trim()).await? {
            return Err(Error::not_found("messaging.field_not_found"));
        }
        db::commit(tx).await
    }

    /// Creates a contact from checked input; its email becomes an identity, so a later lead or
    /// import with the same address finds it.
    #[tracing::instrument(skip_all)]
    pub async fn create_contact(
        &self,
        p: &Principal,
        input: &ContactInput<'_>,
        fields: &Map<String, Value>,
        owner_id: &str,
    ) -> Result<Contact, Error> {
        p.require(Action::Write)?;
        let owner_id = optional_id(owner_id, "owner_id")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let region = repo::book::default_region(&mut tx).await?;
        let draft = input.check(region.as_deref())?;
        if !crate::domain::contact::identifiable(&draft) {
            return Err(Error::invalid("messaging.contact_needs_identity").with_violation("name", "required"));
        }
        let defs = repo::book::fields(&mut tx).await?;
        let fields = checked_fields(&defs, fields)?;
        let id = Uuid::now_v7();
        let new = repo::contacts::NewContact { draft: &draft, fields: &fields, owner_id };
        repo::contacts::insert(&mut tx, p.workspace_id, id, &new).await?;
        if let Some(email) = &draft.email {
            repo::contacts::add_identity(&mut tx, p.workspace_id, id, IdentityKind::Email, email.as_str()).await?;
        }
        let contact =
            repo::contacts::get(&mut tx, id).await?.ok_or_else(|| Error::internal("inserted contact vanished"))?;
        db::commit(tx).await?;
        Ok(contact)
    }

    #[tracing::instrument(skip_all, fields(contact = %id))]
    pub async fn contact(&self, p: &Principal, id: &str) -> Result<Contact, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, NOT_FOUND)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let contact = repo::contacts::get(&mut tx, id).await?.ok_or_else(|| Error::not_found(NOT_FOUND))?;
        db::commit(tx).await?;
        Ok(contact)
    }

    #[tracing::instrument(skip_all)]
    pub async fn search_contacts(
        &self,
        p: &Principal,
        mut query: ContactQuery,
        fields: &Map<String, Value>,
        page: &PageRequest,
    ) -> Result<Page<Contact>, Error> {
        p.require(Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if !fields.is_empty() {
            let defs = repo::book::fields(&mut tx).await?;
            query.fields = checked_fields(&defs, fields)?.into_iter().collect();
        }
        // A segment narrows the search like any other criterion (they all must hold).
        query.segment = match query.segment_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(raw) => Some(super::segments::filter_of(&mut tx, parse_id(raw, super::segments::NOT_FOUND)?).await?),
            None => None,
        };
        let found = repo::contacts::search(&mut tx, &query, &keyset).await?;
        db::commit(tx).await?;
        Ok(found)
    }
}

/// Custom field values checked against the workspace's definitions (unknown keys refused).
fn checked_fields(defs: &[FieldDef], raw: &Map<String, Value>) -> Result<Map<String, Value>, Error> {
    let mut out = Map::new();
    for (key, value) in raw {
        let def = defs.iter().find(|d| &d.key == key).ok_or_else(|| {
            Error::invalid("messaging.unknown_field")
                .with_param("field", key.chars().take(40).collect::<String>())
                .with_violation(format!("fields.{}", key.chars().take(40).collect::<String>()), "unknown")
        })?;
        let v = def.check(value)?;
        if !v.is_null() {
            out.insert(key.clone(), v);
        }
    }
    Ok(out)
}

fn optional_id(raw: &str, field: &'static str) -> Result<Option<Uuid>, Error> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(raw).map(Some).map_err(|_| Error::invalid("messaging.invalid_id").with_violation(field, "invalid"))
}
