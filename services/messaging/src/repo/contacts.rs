//! Contacts and their channel identities.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, Locale, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{like_literal, violated_constraint};
use crate::domain::consent::{Channel, Consent, ConsentStatus, Purpose};
use crate::domain::contact::{Contact, ContactDraft, ContactQuery, IdentityKind};

/// What a contact row is shown with: its identities and consents.
type Extras = (Vec<(IdentityKind, String)>, Vec<Consent>);

const COLUMNS: &str =
    "id, name, phone, email, language, tags, fields, owner_id, stage, source, anonymized_at, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    phone: Option<String>,
    email: Option<String>,
    language: Option<String>,
    tags: Vec<String>,
    fields: Json<serde_json::Map<String, serde_json::Value>>,
    owner_id: Option<Uuid>,
    stage: String,
    source: String,
    anonymized_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Row {
    fn into_contact(self, (identities, consents): Extras) -> Contact {
        Contact {
            id: self.id,
            name: self.name,
            phone: self.phone,
            email: self.email,
            language: self.language.and_then(|l| l.parse::<Locale>().ok()),
            tags: self.tags,
            fields: self.fields.0,
            owner_id: self.owner_id,
            stage: self.stage.parse().unwrap_or_default(),
            source: self.source,
            identities,
            consents,
            anonymized: self.anonymized_at.is_some(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A new contact's attributes, checked by the use case.
#[derive(Debug, Clone)]
pub struct NewContact<'a> {
    pub draft: &'a ContactDraft,
    pub fields: &'a serde_json::Map<String, serde_json::Value>,
    pub owner_id: Option<Uuid>,
}

/// The conflict a second live contact with the same phone or email is.
pub(crate) fn duplicate(e: sqlx::Error) -> Error {
    match violated_constraint(&e) {
        Some("contacts_phone") => {
            Error::new(ErrorKind::Conflict, "messaging.duplicate_contact").with_violation("phone", "taken")
        }
        Some("contacts_email") => {
            Error::new(ErrorKind::Conflict, "messaging.duplicate_contact").with_violation("email", "taken")
        }
        _ => nexus_platform::db::error(e),
    }
}

pub async fn insert(conn: &mut PgConnection, tenant: TenantId, id: Uuid, c: &NewContact<'_>) -> Result<Contact, Error> {
    let d = c.draft;
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO contacts (id, tenant_id, name, phone, email, language, tags, fields, owner_id, stage, source) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(tenant.as_uuid())
    .bind(d.name.clone().unwrap_or_default())
    .bind(d.phone.as_ref().map(|p| p.as_str().to_owned()))
    .bind(d.email.as_ref().map(|e| e.as_str().to_owned()))
    .bind(d.language.map(Locale::code))
    .bind(d.tags.clone().unwrap_or_default())
    .bind(Json(c.fields))
    .bind(c.owner_id)
    .bind(d.stage.unwrap_or_default().as_str())
    .bind(d.source.clone().unwrap_or_default())
    .fetch_one(&mut *conn)
    .await
    .map_err(duplicate)?;
    Ok(decorate(conn, vec![row]).await?.remove(0))
}

/// A live or merged contact by id (RLS confines it to the transaction's workspace).
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Contact>, Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM contacts WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .db()?;
    let Some(row) = row else { return Ok(None) };
    Ok(decorate(conn, vec![row]).await?.pop())
}

/// [`get`] of many contacts at once (those that exist), in no particular order.
pub async fn get_many(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Contact>, Error> {
    let rows: Vec<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM contacts WHERE id = ANY($1)")))
            .bind(ids)
            .fetch_all(&mut *conn)
            .await
            .db()?;
    decorate(conn, rows).await
}

/// [`get`], locking the row for the rest of the transaction (updates, merges, erasure).
pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<Contact>, Error> {
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM contacts WHERE id = $1 FOR UPDATE")))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .db()?;
    let Some(row) = row else { return Ok(None) };
    Ok(decorate(conn, vec![row]).await?.pop())
}

/// One page of live contacts matching `q`, newest first.
pub async fn search(
    conn: &mut PgConnection,
    tenant: TenantId,
    q: &ContactQuery,
    keyset: &Keyset,
) -> Result<Page<Contact>, Error> {
    let rows = match &q.segment {
        None => search_indexed(conn, tenant, q, keyset).await?,
        Some(_) => search_filtered(conn, tenant, q, keyset).await?,
    };
    let contacts = decorate(conn, rows).await?;
    Ok(keyset.page(contacts, |c| (c.created_at, c.id)))
}

/// A search without a segment: `search_contact_ids` (a reviewed `SECURITY DEFINER` function,
/// see its migration) finds the page's ids with the trigram and tag indexes, which RLS keeps
/// from serving the same conditions written here; the rows are then read through the protected
/// table by primary key, so RLS still decides what is returned.
async fn search_indexed(
    conn: &mut PgConnection,
    tenant: TenantId,
    q: &ContactQuery,
    keyset: &Keyset,
) -> Result<Vec<Row>, Error> {
    // Equality on each field is containment of one object holding them all; a key asked for
    // with two different values matches nothing.
    let mut fields = serde_json::Map::new();
    for (key, value) in &q.fields {
        if fields.insert(key.clone(), value.clone()).is_some_and(|before| &before != value) {
            return Ok(Vec::new());
        }
    }
    let fields = (!fields.is_empty()).then_some(Json(serde_json::Value::Object(fields)));
    let limit = i32::try_from(keyset.fetch).unwrap_or(i32::MAX);
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM contacts \
         WHERE id = ANY (ARRAY(SELECT search_contact_ids($1, $2, $3, $4, $5, $6, $7))) AND tenant_id = $8 \
         ORDER BY created_at DESC, id DESC"
    )))
    .bind(q.text.as_deref())
    .bind((!q.tags.is_empty()).then(|| q.tags.clone()))
    .bind(q.stage.as_ref().map(|s| s.as_str()))
    .bind(fields)
    .bind(keyset.after.map(|k| k.at))
    .bind(keyset.after.map(|k| k.id))
    .bind(limit)
    .bind(tenant.as_uuid())
    .fetch_all(&mut *conn)
    .await
    .db()
}

/// A search narrowed by a segment: its filter is a tree of conditions the index-served function
/// does not take, so it runs as one query under RLS (bounded by the workspace's newest-first
/// index, not by the trigram and tag indexes).
async fn search_filtered(
    conn: &mut PgConnection,
    tenant: TenantId,
    q: &ContactQuery,
    keyset: &Keyset,
) -> Result<Vec<Row>, Error> {
    // The workspace is named although RLS confines the query to it anyway: the policy's
    // `tenant_id = … OR system` cannot serve as an index condition, and without one Postgres
    // cannot walk `contacts_recent` newest first. And each search is planned for its own values:
    // a cached generic plan cannot see how rare a word or a tag is.
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut *conn).await.db()?;
    let mut b: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM contacts WHERE merged_into IS NULL AND tenant_id = "));
    b.push_bind(tenant.as_uuid());
    push_query(&mut b, q);
    if let Some(after) = keyset.after {
        b.push(" AND (created_at, id) < (").push_bind(after.at).push(", ").push_bind(after.id).push(")");
    }
    b.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(keyset.fetch);
    b.build_query_as().fetch_all(&mut *conn).await.db()
}

/// The conditions of `q` (a segment's filter included), each as ` AND …`, after a `WHERE` over
/// `contacts`: one place that says what a query selects, for search and export alike.
pub(crate) fn push_query(b: &mut QueryBuilder<Postgres>, q: &ContactQuery) {
    if let Some(t) = &q.text {
        b.push(" AND search LIKE ").push_bind(format!("%{}%", like_literal(t)));
    }
    if !q.tags.is_empty() {
        b.push(" AND tags @> ").push_bind(q.tags.clone());
    }
    if let Some(s) = q.stage {
        b.push(" AND stage = ").push_bind(s.as_str());
    }
    for (key, value) in &q.fields {
        let mut one = serde_json::Map::new();
        one.insert(key.clone(), value.clone());
        b.push(" AND fields @> ").push_bind(Json(serde_json::Value::Object(one)));
    }
    if let Some(f) = &q.segment {
        b.push(" AND ");
        super::segments::push_filter(b, f);
    }
}

/// The next `limit` live contacts matching `q` after `after`, oldest first (so contacts added
/// while an export runs come at its end), without identities or consents: what an export writes.
pub async fn export_page(
    conn: &mut PgConnection,
    tenant: TenantId,
    q: &ContactQuery,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Contact>, Error> {
    let mut b: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM contacts WHERE merged_into IS NULL AND tenant_id = "));
    b.push_bind(tenant.as_uuid());
    push_query(&mut b, q);
    if let Some((at, id)) = after {
        b.push(" AND (created_at, id) > (").push_bind(at).push(", ").push_bind(id).push(")");
    }
    b.push(" ORDER BY created_at, id LIMIT ").push_bind(limit);
    let rows: Vec<Row> = b.build_query_as().fetch_all(&mut *conn).await.db()?;
    Ok(rows.into_iter().map(|r| r.into_contact((Vec::new(), Vec::new()))).collect())
}

/// The live contact holding an identity, if any.
pub async fn by_identity(conn: &mut PgConnection, kind: IdentityKind, value: &str) -> Result<Option<Uuid>, Error> {
    sqlx::query_scalar("SELECT contact_id FROM contact_identities WHERE kind = $1 AND value = $2")
        .bind(kind.as_str())
        .bind(value)
        .fetch_optional(conn)
        .await
        .db()
}

/// Gives `contact` an identity. `Ok(false)` when another contact of the workspace holds it.
pub async fn add_identity(
    conn: &mut PgConnection,
    tenant: TenantId,
    contact: Uuid,
    kind: IdentityKind,
    value: &str,
) -> Result<bool, Error> {
    let holder: Uuid = sqlx::query_scalar(
        "INSERT INTO contact_identities (tenant_id, kind, value, contact_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, kind, value) DO UPDATE SET kind = excluded.kind RETURNING contact_id",
    )
    .bind(tenant.as_uuid())
    .bind(kind.as_str())
    .bind(value)
    .bind(contact)
    .fetch_one(conn)
    .await
    .db()?;
    Ok(holder == contact)
}

/// Rows with their identities and consents, two queries for any number of rows.
async fn decorate(conn: &mut PgConnection, rows: Vec<Row>) -> Result<Vec<Contact>, Error> {
    use std::collections::HashMap;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut extras: HashMap<Uuid, Extras> = HashMap::new();
    if !ids.is_empty() {
        let identities: Vec<(Uuid, String, String)> = sqlx::query_as(
            "SELECT contact_id, kind, value FROM contact_identities WHERE contact_id = ANY($1) \
             ORDER BY created_at, kind, value",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .db()?;
        for (contact, kind, value) in identities {
            if let Ok(kind) = kind.parse::<IdentityKind>() {
                extras.entry(contact).or_default().0.push((kind, value));
            }
        }
        let consents: Vec<ConsentRow> = sqlx::query_as(
            "SELECT contact_id, channel, purpose, status, source, proof, changed_at FROM consents \
             WHERE contact_id = ANY($1) ORDER BY channel, purpose",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .db()?;
        for c in consents {
            let (Ok(channel), Ok(purpose), Ok(status)) =
                (c.channel.parse::<Channel>(), c.purpose.parse::<Purpose>(), c.status.parse::<ConsentStatus>())
            else {
                continue;
            };
            extras.entry(c.contact_id).or_default().1.push(Consent {
                channel,
                purpose,
                status,
                source: c.source,
                proof: c.proof,
                changed_at: c.changed_at,
            });
        }
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let own = extras.remove(&r.id).unwrap_or_default();
            r.into_contact(own)
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct ConsentRow {
    contact_id: Uuid,
    channel: String,
    purpose: String,
    status: String,
    source: String,
    proof: String,
    changed_at: DateTime<Utc>,
}

/// The live contact with this phone or, failing that, this email (the dedupe key of leads and
/// imports).
pub async fn find_by_phone_or_email(
    conn: &mut PgConnection,
    phone: Option<&str>,
    email: Option<&str>,
) -> Result<Option<Uuid>, Error> {
    if phone.is_none() && email.is_none() {
        return Ok(None);
    }
    sqlx::query_scalar(
        "SELECT id FROM contacts WHERE merged_into IS NULL AND ((phone = $1) OR (email = $2)) \
         ORDER BY (phone = $1) DESC NULLS LAST, created_at LIMIT 1",
    )
    .bind(phone)
    .bind(email)
    .fetch_optional(conn)
    .await
    .db()
}

/// Every attribute of a contact as the use case decided it.
pub struct Attributes<'a> {
    pub name: &'a str,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
    pub language: Option<Locale>,
    pub tags: &'a [String],
    pub fields: &'a serde_json::Map<String, serde_json::Value>,
    pub owner_id: Option<Uuid>,
    pub stage: &'a str,
    pub source: &'a str,
}

/// Writes a contact's attributes (the use case read and locked it first).
pub async fn update(conn: &mut PgConnection, id: Uuid, a: &Attributes<'_>) -> Result<(), Error> {
    sqlx::query(
        "UPDATE contacts SET name = $2, phone = $3, email = $4, language = $5, tags = $6, fields = $7, \
         owner_id = $8, stage = $9, source = $10, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(a.name)
    .bind(a.phone)
    .bind(a.email)
    .bind(a.language.map(Locale::code))
    .bind(a.tags)
    .bind(Json(a.fields))
    .bind(a.owner_id)
    .bind(a.stage)
    .bind(a.source)
    .execute(conn)
    .await
    .map_err(duplicate)?;
    Ok(())
}

/// Hides `merged` behind `kept` and moves everything of it to `kept`: identities, activities,
/// deals, and the consents `kept` has no newer record of. Records the merge with a snapshot.
pub async fn merge(
    conn: &mut PgConnection,
    tenant: TenantId,
    kept: Uuid,
    merged: &Contact,
    actor: &str,
) -> Result<(), Error> {
    // Free the merged contact's phone and email first: the unique indexes cover live contacts.
    sqlx::query("UPDATE contacts SET merged_into = $2, updated_at = now() WHERE id = $1")
        .bind(merged.id)
        .bind(kept)
        .execute(&mut *conn)
        .await
        .db()?;
    sqlx::query("UPDATE contact_identities SET contact_id = $2 WHERE contact_id = $1")
        .bind(merged.id)
        .bind(kept)
        .execute(&mut *conn)
        .await
        .db()?;
    sqlx::query("UPDATE activities SET contact_id = $2 WHERE contact_id = $1")
        .bind(merged.id)
        .bind(kept)
        .execute(&mut *conn)
        .await
        .db()?;
    sqlx::query("UPDATE deals SET contact_id = $2, updated_at = now() WHERE contact_id = $1")
        .bind(merged.id)
        .bind(kept)
        .execute(&mut *conn)
        .await
        .db()?;
    // The newer record of each channel and purpose wins.
    sqlx::query(
        "INSERT INTO consents (tenant_id, contact_id, channel, purpose, status, source, proof, changed_by, changed_at) \
         SELECT tenant_id, $2, channel, purpose, status, source, proof, changed_by, changed_at \
         FROM consents WHERE contact_id = $1 \
         ON CONFLICT (tenant_id, contact_id, channel, purpose) DO UPDATE SET \
           status = excluded.status, source = excluded.source, proof = excluded.proof, \
           changed_by = excluded.changed_by, changed_at = excluded.changed_at \
         WHERE consents.changed_at < excluded.changed_at",
    )
    .bind(merged.id)
    .bind(kept)
    .execute(&mut *conn)
    .await
    .db()?;
    sqlx::query("DELETE FROM consents WHERE contact_id = $1").bind(merged.id).execute(&mut *conn).await.db()?;
    let snapshot = serde_json::json!({
        "name": merged.name,
        "phone": merged.phone,
        "email": merged.email,
        "language": merged.language.map(Locale::code),
        "tags": merged.tags,
        "fields": merged.fields,
        "stage": merged.stage.as_str(),
        "source": merged.source,
        "created_at": merged.created_at,
    });
    sqlx::query(
        "INSERT INTO merges (id, tenant_id, kept_id, merged_id, snapshot, actor) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.as_uuid())
    .bind(kept)
    .bind(merged.id)
    .bind(Json(snapshot))
    .bind(actor)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Erases a contact's personal data: attributes, identities, consents (their proofs quote the
/// person), the personal parts of its activities and of merge records. The row, its activity
/// kinds and times and its deals stay, so statistics keep counting.
pub async fn anonymize(conn: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    // Contacts merged into this one are the same person.
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM contacts WHERE id = $1 OR merged_into = $1")
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .db()?;
    sqlx::query(
        "UPDATE contacts SET name = '', phone = NULL, email = NULL, language = NULL, tags = '{}', fields = '{}', \
         owner_id = NULL, source = '', anonymized_at = coalesce(anonymized_at, now()), updated_at = now() \
         WHERE id = ANY($1)",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .db()?;
    sqlx::query("DELETE FROM contact_identities WHERE contact_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .db()?;
    sqlx::query("DELETE FROM consents WHERE contact_id = ANY($1)").bind(&ids).execute(&mut *conn).await.db()?;
    sqlx::query(
        "UPDATE activities SET body = '', data = data - ARRAY['name', 'email', 'phone', 'message', 'proof', 'text'] \
         WHERE contact_id = ANY($1)",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .db()?;
    sqlx::query("UPDATE merges SET snapshot = '{}' WHERE kept_id = ANY($1) OR merged_id = ANY($1)")
        .bind(&ids)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Records the current consent of a contact for a channel and purpose.
pub async fn set_consent(
    conn: &mut PgConnection,
    tenant: TenantId,
    contact: Uuid,
    c: &Consent,
    changed_by: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO consents (tenant_id, contact_id, channel, purpose, status, source, proof, changed_by, changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (tenant_id, contact_id, channel, purpose) DO UPDATE SET status = excluded.status, \
           source = excluded.source, proof = excluded.proof, changed_by = excluded.changed_by, \
           changed_at = excluded.changed_at",
    )
    .bind(tenant.as_uuid())
    .bind(contact)
    .bind(c.channel.as_str())
    .bind(c.purpose.as_str())
    .bind(c.status.as_str())
    .bind(&c.source)
    .bind(&c.proof)
    .bind(changed_by)
    .bind(c.changed_at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// The contact `id` was merged into, if it was.
pub async fn merged_into(conn: &mut PgConnection, id: Uuid) -> Result<Option<Uuid>, Error> {
    sqlx::query_scalar::<_, Option<Uuid>>("SELECT merged_into FROM contacts WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
        .map(Option::flatten)
}

/// Takes an identity away from a contact.
pub async fn remove_identity(
    conn: &mut PgConnection,
    contact: Uuid,
    kind: IdentityKind,
    value: &str,
) -> Result<(), Error> {
    sqlx::query("DELETE FROM contact_identities WHERE contact_id = $1 AND kind = $2 AND value = $3")
        .bind(contact)
        .bind(kind.as_str())
        .bind(value)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Whether a live (not merged) contact with this id exists in the transaction's workspace.
pub async fn exists_live(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM contacts WHERE id = $1 AND merged_into IS NULL)")
        .bind(id)
        .fetch_one(conn)
        .await
        .db()
}
