//! Contacts and their channel identities.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, Locale, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{like_literal, violated_constraint};
use crate::domain::contact::{Contact, ContactDraft, ContactQuery, IdentityKind};
use crate::domain::import::Selection;

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
    fn into_contact(self, identities: Vec<(IdentityKind, String)>) -> Contact {
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
    let identities = identities_of(conn, &[row.id]).await?.remove(&row.id).unwrap_or_default();
    Ok(row.into_contact(identities))
}

/// A live or merged contact by id (RLS confines it to the transaction's workspace).
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Contact>, Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM contacts WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .db()?;
    let Some(row) = row else { return Ok(None) };
    let identities = identities_of(conn, &[row.id]).await?.remove(&row.id).unwrap_or_default();
    Ok(Some(row.into_contact(identities)))
}

/// One page of live contacts matching `q`, newest first.
pub async fn search(conn: &mut PgConnection, q: &ContactQuery, keyset: &Keyset) -> Result<Page<Contact>, Error> {
    let mut b: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM contacts WHERE merged_into IS NULL"));
    push_query(&mut b, q);
    if let Some(after) = keyset.after {
        b.push(" AND (created_at, id) < (").push_bind(after.at).push(", ").push_bind(after.id).push(")");
    }
    b.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(keyset.fetch);
    let rows: Vec<Row> = b.build_query_as().fetch_all(&mut *conn).await.db()?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut identities = identities_of(conn, &ids).await?;
    let contacts = rows.into_iter().map(|r| {
        let own = identities.remove(&r.id).unwrap_or_default();
        r.into_contact(own)
    });
    Ok(keyset.page(contacts.collect(), |c| (c.created_at, c.id)))
}

/// The conditions of `q`, each as ` AND …`, after a `WHERE` over `contacts`: one place that says
/// what a query selects, for search and export alike.
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
}

/// The next `limit` live contacts of `selection` after `after`, oldest first (so contacts added
/// while an export runs come at its end), without identities: what an export writes.
pub async fn export_page(
    conn: &mut PgConnection,
    selection: &Selection,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Contact>, Error> {
    let mut b: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM contacts WHERE merged_into IS NULL"));
    match selection {
        Selection::Query(q) => push_query(&mut b, q),
    }
    if let Some((at, id)) = after {
        b.push(" AND (created_at, id) > (").push_bind(at).push(", ").push_bind(id).push(")");
    }
    b.push(" ORDER BY created_at, id LIMIT ").push_bind(limit);
    let rows: Vec<Row> = b.build_query_as().fetch_all(&mut *conn).await.db()?;
    Ok(rows.into_iter().map(|r| r.into_contact(Vec::new())).collect())
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

async fn identities_of(
    conn: &mut PgConnection,
    contacts: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, Vec<(IdentityKind, String)>>, Error> {
    let mut out: std::collections::HashMap<Uuid, Vec<(IdentityKind, String)>> = std::collections::HashMap::new();
    if contacts.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT contact_id, kind, value FROM contact_identities WHERE contact_id = ANY($1) ORDER BY created_at, kind, value",
    )
    .bind(contacts)
    .fetch_all(conn)
    .await
    .db()?;
    for (contact, kind, value) in rows {
        if let Ok(kind) = kind.parse::<IdentityKind>() {
            out.entry(contact).or_default().push((kind, value));
        }
    }
    Ok(out)
}
