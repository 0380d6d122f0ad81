//! The contact book: settings, custom fields, creating, reading and searching contacts.

use nexus_kernel::{Error, ErrorKind, Page, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::members::require_member;
use super::{App, parse_id};
use crate::domain::consent::{Channel, Consent, ConsentStatus, PROOF_MAX, Purpose};
use crate::domain::contact::{Contact, ContactInput, ContactQuery, Email, IdentityKind, Region, Stage};
use crate::domain::fields::{FIELDS_MAX, FieldDef, FieldKind};
use crate::events;
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

    /// The workspace's "do not sell or share" (CCPA) and when it last changed.
    #[tracing::instrument(skip_all)]
    pub async fn do_not_sell(&self, p: &Principal) -> Result<(bool, Option<chrono::DateTime<chrono::Utc>>), Error> {
        p.require(Action::Read)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let setting = repo::book::do_not_sell(&mut tx).await?;
        db::commit(tx).await?;
        Ok(setting)
    }

    /// Turns the workspace's "do not sell or share" on or off (like the book's other settings);
    /// a change is announced (`book.do_not_sell_changed`) in the same transaction.
    #[tracing::instrument(skip_all, fields(on))]
    pub async fn set_do_not_sell(&self, p: &Principal, on: bool) -> Result<(), Error> {
        p.require(Action::Write)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if repo::book::save_do_not_sell(&mut tx, p.workspace_id, on).await? {
            events::do_not_sell_changed(&mut tx, p, on).await?;
        }
        db::commit(tx).await
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
        if let Some(owner) = owner_id {
            require_member(&mut tx, p, owner, "owner_id").await?;
        }
        let defs = repo::book::fields(&mut tx).await?;
        let fields = checked_fields(&defs, fields)?;
        let id = Uuid::now_v7();
        let new = repo::contacts::NewContact { draft: &draft, fields: &fields, owner_id };
        repo::contacts::insert(&mut tx, p.workspace_id, id, &new).await?;
        events::contact_created(&mut tx, p.workspace_id, id, "api", draft.stage.unwrap_or_default()).await?;
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
            // A condition on a field the book does not define, or a value the field can never
            // hold, matches no contact: an empty page, as a search for a name nobody has.
            match checked_fields(&defs, fields) {
                Ok(checked) => query.fields = checked.into_iter().collect(),
                Err(_) => {
                    db::commit(tx).await?;
                    return Ok(Page { items: Vec::new(), next_cursor: None });
                }
            }
        }
        // A segment narrows the search like any other criterion (they all must hold).
        query.segment = match query.segment_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(raw) => Some(super::segments::filter_of(&mut tx, parse_id(raw, super::segments::NOT_FOUND)?).await?),
            None => None,
        };
        let found = repo::contacts::search(&mut tx, p.workspace_id, &query, &keyset).await?;
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
    // Member ids are shown as `usr_…`; the bare UUID is accepted too.
    nexus_kernel::UserId::parse(raw)
        .map(|u| Some(u.as_uuid()))
        .map_err(|_| Error::invalid("messaging.invalid_id").with_violation(field, "invalid"))
}

/// Attribute names an update may name (`fields.<key>` for one custom field).
const MASKABLE: &[&str] = &["name", "phone", "email", "language", "tags", "stage", "source", "owner_id", "fields"];

/// What an update changes, as the caller sent it.
#[derive(Debug, Clone, Default)]
pub struct ContactPatch<'a> {
    pub input: ContactInput<'a>,
    pub fields: Map<String, Value>,
    pub owner_id: &'a str,
    /// Attribute names to change; a named attribute given empty is cleared.
    pub mask: Vec<String>,
}

impl App {
    /// Changes the attributes named by the patch's mask. A stage change adds a `stage_change`
    /// activity; an email change moves the contact's email identity.
    #[tracing::instrument(skip_all, fields(contact = %id))]
    pub async fn update_contact(&self, p: &Principal, id: &str, patch: &ContactPatch<'_>) -> Result<Contact, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, NOT_FOUND)?;
        let mask = check_mask(&patch.mask)?;
        let named = |a: &str| mask.iter().any(|m| m == a);
        // Only the named attributes are checked, so a stale value elsewhere cannot block an edit.
        let input = ContactInput {
            name: patch.input.name.filter(|_| named("name")),
            phone: patch.input.phone.filter(|_| named("phone")),
            email: patch.input.email.filter(|_| named("email")),
            language: patch.input.language.filter(|_| named("language")),
            tags: patch.input.tags.filter(|_| named("tags")),
            stage: patch.input.stage.filter(|_| named("stage")),
            source: patch.input.source.filter(|_| named("source")),
        };
        let owner = if named("owner_id") { optional_id(patch.owner_id, "owner_id")? } else { None };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let region = repo::book::default_region(&mut tx).await?;
        let draft = input.check(region.as_deref())?;
        let current = repo::contacts::get_for_update(&mut tx, id).await?.ok_or_else(|| Error::not_found(NOT_FOUND))?;
        if current.anonymized {
            return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.contact_anonymized"));
        }
        if merged_away(&mut tx, id).await? {
            return Err(Error::not_found(NOT_FOUND));
        }
        // Only a new owner is checked: keeping one who has since left is not this edit's doing.
        if let Some(o) = owner.filter(|o| current.owner_id != Some(*o)) {
            require_member(&mut tx, p, o, "owner_id").await?;
        }
        let defs = repo::book::fields(&mut tx).await?;
        let given = checked_fields(&defs, &patch.fields)?;
        let mut fields = current.fields.clone();
        for m in &mask {
            if m == "fields" {
                fields = given.clone();
            } else if let Some(key) = m.strip_prefix("fields.") {
                if !defs.iter().any(|d| d.key == key) {
                    return Err(Error::invalid("messaging.unknown_field")
                        .with_param("field", key.chars().take(40).collect::<String>())
                        .with_violation(m.chars().take(48).collect::<String>(), "unknown"));
                }
                match given.get(key) {
                    Some(v) => fields.insert(key.to_owned(), v.clone()),
                    None => fields.remove(key),
                };
            }
        }
        let next = Next {
            name: if named("name") { draft.name.clone().unwrap_or_default() } else { current.name.clone() },
            phone: if named("phone") {
                draft.phone.as_ref().map(|p| p.as_str().to_owned())
            } else {
                current.phone.clone()
            },
            email: if named("email") {
                draft.email.as_ref().map(|e| e.as_str().to_owned())
            } else {
                current.email.clone()
            },
            language: if named("language") { draft.language } else { current.language },
            tags: if named("tags") { draft.tags.clone().unwrap_or_default() } else { current.tags.clone() },
            stage: if named("stage") { draft.stage.unwrap_or_default() } else { current.stage },
            source: if named("source") { draft.source.clone().unwrap_or_default() } else { current.source.clone() },
            owner_id: if named("owner_id") { owner } else { current.owner_id },
            fields,
        };
        if next.name.is_empty() && next.phone.is_none() && next.email.is_none() {
            return Err(Error::invalid("messaging.contact_needs_identity").with_violation("name", "required"));
        }
        let changed = next.changed_from(&current);
        if changed.is_empty() {
            db::commit(tx).await?;
            return Ok(current);
        }
        next.write(&mut tx, id).await?;
        if current.email != next.email {
            if let Some(old) = &current.email {
                repo::contacts::remove_identity(&mut tx, id, IdentityKind::Email, old).await?;
            }
            if let Some(new) = &next.email
                && !repo::contacts::add_identity(&mut tx, p.workspace_id, id, IdentityKind::Email, new).await?
            {
                return Err(
                    Error::new(ErrorKind::Conflict, "messaging.duplicate_contact").with_violation("email", "taken")
                );
            }
        }
        let actor = p.actor();
        if current.stage != next.stage {
            stage_changed(&mut tx, p.workspace_id, id, (current.stage, next.stage), &actor).await?;
        }
        events::contact_updated(&mut tx, p.workspace_id, id, &changed, (current.stage, next.stage)).await?;
        let contact =
            repo::contacts::get(&mut tx, id).await?.ok_or_else(|| Error::internal("updated contact vanished"))?;
        db::commit(tx).await?;
        Ok(contact)
    }

    /// Merges `merged_id` into `kept_id`: the kept contact keeps its own values and takes the
    /// merged one's where it has none; tags are joined; identities, activities, deals and newer
    /// consents move over; the merged contact stays as a record pointing at the kept one.
    #[tracing::instrument(skip_all, fields(kept = %kept_id, merged = %merged_id))]
    pub async fn merge_contacts(&self, p: &Principal, kept_id: &str, merged_id: &str) -> Result<Contact, Error> {
        p.require(Action::Write)?;
        let kept_id = parse_id(kept_id, NOT_FOUND)?;
        let merged_id = parse_id(merged_id, NOT_FOUND)?;
        if kept_id == merged_id {
            return Err(Error::invalid("messaging.merge_same_contact").with_violation("merged_id", "same"));
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        // Locked in id order, so two merges of the same pair cannot deadlock.
        let (first, second) = if kept_id < merged_id { (kept_id, merged_id) } else { (merged_id, kept_id) };
        let a = repo::contacts::get_for_update(&mut tx, first).await?.ok_or_else(|| Error::not_found(NOT_FOUND))?;
        let b = repo::contacts::get_for_update(&mut tx, second).await?.ok_or_else(|| Error::not_found(NOT_FOUND))?;
        let (kept, merged) = if a.id == kept_id { (a, b) } else { (b, a) };
        for c in [&kept, &merged] {
            if merged_away(&mut tx, c.id).await? {
                return Err(Error::not_found(NOT_FOUND));
            }
            if c.anonymized {
                return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.contact_anonymized"));
            }
        }
        let actor = p.actor();
        repo::contacts::merge(&mut tx, p.workspace_id, kept.id, &merged, &actor).await?;
        let mut tags = kept.tags.clone();
        for t in &merged.tags {
            if !tags.contains(t) && tags.len() < crate::domain::contact::TAGS_MAX {
                tags.push(t.clone());
            }
        }
        let mut fields = merged.fields.clone();
        fields.extend(kept.fields.clone());
        let next = Next {
            name: if kept.name.is_empty() { merged.name.clone() } else { kept.name.clone() },
            phone: kept.phone.clone().or(merged.phone.clone()),
            email: kept.email.clone().or(merged.email.clone()),
            language: kept.language.or(merged.language),
            tags,
            stage: kept.stage,
            source: if kept.source.is_empty() { merged.source.clone() } else { kept.source.clone() },
            owner_id: kept.owner_id.or(merged.owner_id),
            fields,
        };
        next.write(&mut tx, kept.id).await?;
        if kept.email.is_none()
            && let Some(email) = &next.email
        {
            repo::contacts::add_identity(&mut tx, p.workspace_id, kept.id, IdentityKind::Email, email).await?;
        }
        let activity = repo::activities::NewActivity {
            contact: kept.id,
            kind: "merge",
            body: "",
            data: serde_json::json!({ "merged_id": merged.id }),
            actor: &actor,
            occurred_at: chrono::Utc::now(),
            source_key: None,
        };
        repo::activities::insert(&mut tx, p.workspace_id, &activity).await?;
        events::contacts_merged(&mut tx, p.workspace_id, kept.id, merged.id).await?;
        let contact =
            repo::contacts::get(&mut tx, kept.id).await?.ok_or_else(|| Error::internal("kept contact vanished"))?;
        db::commit(tx).await?;
        Ok(contact)
    }

    /// Erases the person from a contact (and from contacts merged into it): personal attributes,
    /// identities, consents, the personal parts of activities. Counts and timelines stay.
    #[tracing::instrument(skip_all, fields(contact = %id))]
    pub async fn anonymize_contact(&self, p: &Principal, id: &str) -> Result<Contact, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, NOT_FOUND)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::contacts::get_for_update(&mut tx, id).await?.ok_or_else(|| Error::not_found(NOT_FOUND))?;
        if merged_away(&mut tx, id).await? {
            return Err(Error::not_found(NOT_FOUND));
        }
        repo::contacts::anonymize(&mut tx, id).await?;
        events::contact_anonymized(&mut tx, p.workspace_id, id).await?;
        let contact = repo::contacts::get(&mut tx, id).await?.ok_or_else(|| Error::internal("contact vanished"))?;
        db::commit(tx).await?;
        Ok(contact)
    }

    /// Gives a contact a channel identity (a WhatsApp number, an email, a shop customer id).
    #[tracing::instrument(skip_all, fields(contact = %id))]
    pub async fn add_identity(&self, p: &Principal, id: &str, kind: &str, value: &str) -> Result<Contact, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, NOT_FOUND)?;
        let kind = kind.trim().parse::<IdentityKind>()?;
        let value = identity_value(kind, value)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let current = repo::contacts::get_for_update(&mut tx, id).await?.ok_or_else(|| Error::not_found(NOT_FOUND))?;
        if merged_away(&mut tx, id).await? {
            return Err(Error::not_found(NOT_FOUND));
        }
        if current.anonymized {
            return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.contact_anonymized"));
        }
        if !repo::contacts::add_identity(&mut tx, p.workspace_id, id, kind, &value).await? {
            return Err(Error::new(ErrorKind::Conflict, "messaging.identity_taken").with_violation("value", "taken"));
        }
        let contact = repo::contacts::get(&mut tx, id).await?.ok_or_else(|| Error::internal("contact vanished"))?;
        db::commit(tx).await?;
        Ok(contact)
    }

    /// Records consent given or withdrawn for a channel and purpose, with where it came from
    /// and the words agreed to.
    #[tracing::instrument(skip_all, fields(contact = %id))]
    pub async fn set_consent(&self, p: &Principal, id: &str, change: &ConsentChange<'_>) -> Result<Contact, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, NOT_FOUND)?;
        let consent = change.check()?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let current = repo::contacts::get_for_update(&mut tx, id).await?.ok_or_else(|| Error::not_found(NOT_FOUND))?;
        if current.anonymized {
            return Err(Error::new(ErrorKind::FailedPrecondition, "messaging.contact_anonymized"));
        }
        if merged_away(&mut tx, id).await? {
            return Err(Error::not_found(NOT_FOUND));
        }
        record_consent(&mut tx, p.workspace_id, id, &consent, &p.actor()).await?;
        let contact = repo::contacts::get(&mut tx, id).await?.ok_or_else(|| Error::internal("contact vanished"))?;
        db::commit(tx).await?;
        Ok(contact)
    }
}

/// A consent change as a caller sent it.
#[derive(Debug, Clone, Default)]
pub struct ConsentChange<'a> {
    pub channel: &'a str,
    pub purpose: &'a str,
    pub status: &'a str,
    pub source: &'a str,
    pub proof: &'a str,
}

impl ConsentChange<'_> {
    pub fn check(&self) -> Result<Consent, Error> {
        let source = self.source.trim();
        if source.is_empty()
            || source.chars().count() > 40
            || !source.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | ':'))
        {
            return Err(Error::invalid("messaging.invalid_consent_source").with_violation("source", "invalid"));
        }
        let proof = self.proof.trim();
        if proof.chars().count() > PROOF_MAX || proof.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Error::invalid("messaging.invalid_proof")
                .with_param("max", PROOF_MAX.to_string())
                .with_violation("proof", "invalid"));
        }
        Ok(Consent {
            channel: self.channel.trim().parse::<Channel>()?,
            purpose: self.purpose.trim().parse::<Purpose>()?,
            status: self.status.trim().parse::<ConsentStatus>()?,
            source: source.to_owned(),
            proof: proof.to_owned(),
            changed_at: chrono::Utc::now(),
        })
    }
}

/// Writes a consent with its `consent` activity and event (inside the caller's transaction).
pub(crate) async fn record_consent(
    tx: &mut PgConnection,
    tenant: TenantId,
    contact: Uuid,
    consent: &Consent,
    actor: &str,
) -> Result<(), Error> {
    repo::contacts::set_consent(tx, tenant, contact, consent, actor).await?;
    let activity = repo::activities::NewActivity {
        contact,
        kind: "consent",
        body: "",
        data: serde_json::json!({
            "channel": consent.channel.as_str(),
            "purpose": consent.purpose.as_str(),
            "status": consent.status.as_str(),
            "source": consent.source,
            "proof": consent.proof,
        }),
        actor,
        occurred_at: consent.changed_at,
        source_key: None,
    };
    repo::activities::insert(tx, tenant, &activity).await?;
    events::consent_changed(tx, tenant, contact, consent).await
}

/// Adds the `stage_change` activity of a contact.
pub(crate) async fn stage_changed(
    tx: &mut PgConnection,
    tenant: TenantId,
    contact: Uuid,
    (from, to): (Stage, Stage),
    actor: &str,
) -> Result<(), Error> {
    let activity = repo::activities::NewActivity {
        contact,
        kind: "stage_change",
        body: "",
        data: serde_json::json!({ "from": from.as_str(), "to": to.as_str() }),
        actor,
        occurred_at: chrono::Utc::now(),
        source_key: None,
    };
    repo::activities::insert(tx, tenant, &activity).await.map(|_| ())
}

/// Whether a contact was merged into another (it is then only a record).
async fn merged_away(tx: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    repo::contacts::merged_into(tx, id).await.map(|m| m.is_some())
}

fn check_mask(mask: &[String]) -> Result<Vec<String>, Error> {
    if mask.is_empty() {
        return Err(Error::invalid("messaging.update_mask_required").with_violation("update_mask", "required"));
    }
    let mut out = Vec::with_capacity(mask.len());
    for m in mask {
        let m = m.trim();
        let ok = MASKABLE.contains(&m) || m.strip_prefix("fields.").is_some_and(|k| !k.is_empty() && k.len() <= 40);
        if !ok {
            return Err(Error::invalid("messaging.invalid_update_mask")
                .with_param("field", m.chars().take(48).collect::<String>())
                .with_violation("update_mask", "invalid"));
        }
        out.push(m.to_owned());
    }
    Ok(out)
}

/// A channel identity's value in its stored form.
pub(crate) fn identity_value(kind: IdentityKind, raw: &str) -> Result<String, Error> {
    let raw = raw.trim();
    let bad = || Error::invalid("messaging.invalid_identity_value").with_violation("value", "invalid");
    match kind {
        // A WhatsApp id is the number in international form without `+`.
        IdentityKind::Whatsapp => {
            let digits = raw.strip_prefix('+').unwrap_or(raw);
            if (7..=15).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0')
            {
                Ok(digits.to_owned())
            } else {
                Err(bad())
            }
        }
        IdentityKind::Email => Email::parse(raw).map(|e| e.as_str().to_owned()).map_err(|_| bad()),
        IdentityKind::ShopCustomer => {
            if raw.is_empty() || raw.chars().count() > 200 || raw.chars().any(char::is_control) {
                Err(bad())
            } else {
                Ok(raw.to_owned())
            }
        }
    }
}

/// A contact's attributes after a change.
struct Next {
    name: String,
    phone: Option<String>,
    email: Option<String>,
    language: Option<nexus_kernel::Locale>,
    tags: Vec<String>,
    stage: Stage,
    source: String,
    owner_id: Option<Uuid>,
    fields: Map<String, Value>,
}

impl Next {
    fn changed_from(&self, c: &Contact) -> Vec<String> {
        let mut changed: Vec<String> = Vec::new();
        let mut note = |name: &str, differs: bool| {
            if differs {
                changed.push(name.to_owned());
            }
        };
        note("name", self.name != c.name);
        note("phone", self.phone != c.phone);
        note("email", self.email != c.email);
        note("language", self.language != c.language);
        note("tags", self.tags != c.tags);
        note("stage", self.stage != c.stage);
        note("source", self.source != c.source);
        note("owner_id", self.owner_id != c.owner_id);
        let keys: std::collections::BTreeSet<&String> = self.fields.keys().chain(c.fields.keys()).collect();
        for k in keys {
            if self.fields.get(k) != c.fields.get(k) {
                changed.push(format!("fields.{k}"));
            }
        }
        changed
    }

    async fn write(&self, tx: &mut PgConnection, id: Uuid) -> Result<(), Error> {
        let a = repo::contacts::Attributes {
            name: &self.name,
            phone: self.phone.as_deref(),
            email: self.email.as_deref(),
            language: self.language,
            tags: &self.tags,
            fields: &self.fields,
            owner_id: self.owner_id,
            stage: self.stage.as_str(),
            source: &self.source,
        };
        repo::contacts::update(tx, id, &a).await
    }
}

/// The contact a channel knows by an identity (a WhatsApp number, a shop customer id, an
/// email): found by that identity, else by the phone or email it implies, else created; the
/// identity is attached, so one person stays one contact. Runs in the caller's tenant
/// transaction (a channel's consumer). Returns the contact and whether it was created.
pub async fn resolve_identity(
    tx: &mut PgConnection,
    tenant: TenantId,
    kind: IdentityKind,
    value: &str,
    name: &str,
    source: &str,
) -> Result<(Uuid, bool), Error> {
    let value = identity_value(kind, value)?;
    if let Some(id) = repo::contacts::by_identity(tx, kind, &value).await? {
        return Ok((id, false));
    }
    let (phone, email) = match kind {
        IdentityKind::Whatsapp => (Some(format!("+{value}")), None),
        IdentityKind::Email => (None, Some(value.clone())),
        IdentityKind::ShopCustomer => (None, None),
    };
    let (id, created) = match repo::contacts::find_by_phone_or_email(tx, phone.as_deref(), email.as_deref()).await? {
        Some(id) => (id, false),
        None => {
            let draft = ContactInput {
                name: Some(name),
                phone: phone.as_deref(),
                email: email.as_deref(),
                source: Some(source),
                ..Default::default()
            }
            .check(None)
            .or_else(|_| {
                ContactInput { phone: phone.as_deref(), email: email.as_deref(), ..Default::default() }.check(None)
            })?;
            let id = Uuid::now_v7();
            let new = repo::contacts::NewContact { draft: &draft, fields: &Map::new(), owner_id: None };
            repo::contacts::insert(tx, tenant, id, &new).await?;
            events::contact_created(tx, tenant, id, source, draft.stage.unwrap_or_default()).await?;
            (id, true)
        }
    };
    repo::contacts::add_identity(tx, tenant, id, kind, &value).await?;
    Ok((id, created))
}
