//! Saved segments, and the one translation of a segment filter into SQL.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{like_literal, violated_constraint};
use crate::domain::segment::{FieldCondition, FieldValue, Filter, Op};

/// Appends `f` as one boolean SQL expression over the `contacts` table (referenced by that name,
/// unaliased, in the caller's `FROM`): the segment's audience. Anonymized contacts are no longer
/// a person one can reach, so no segment selects them.
pub(crate) fn push_filter(qb: &mut QueryBuilder<Postgres>, f: &Filter) {
    qb.push("(contacts.anonymized_at IS NULL AND ");
    push_condition(qb, f);
    qb.push(")");
}

/// One condition. Every value is bound, never written into the SQL, and every condition is true
/// or false — never NULL — so `not` is the exact complement.
fn push_condition(qb: &mut QueryBuilder<Postgres>, f: &Filter) {
    match f {
        Filter::All(items) | Filter::Any(items) if items.is_empty() => {
            qb.push(if matches!(f, Filter::All(_)) { "TRUE" } else { "FALSE" });
        }
        Filter::All(items) | Filter::Any(items) => {
            let joint = if matches!(f, Filter::All(_)) { " AND " } else { " OR " };
            qb.push("(");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    qb.push(joint);
                }
                push_condition(qb, item);
            }
            qb.push(")");
        }
        Filter::Not(inner) => {
            qb.push("NOT (");
            push_condition(qb, inner);
            qb.push(")");
        }
        Filter::Tag(t) => {
            qb.push("contacts.tags @> ").push_bind(vec![t.clone()]).push("::text[]");
        }
        Filter::Stage(s) => {
            qb.push("contacts.stage = ").push_bind(s.as_str());
        }
        Filter::Text(t) => {
            qb.push("contacts.search LIKE ").push_bind(format!("%{}%", like_literal(t)));
        }
        Filter::Consent { channel, purpose } => {
            qb.push("EXISTS (SELECT 1 FROM consents cs WHERE cs.contact_id = contacts.id AND cs.channel = ")
                .push_bind(channel.as_str())
                .push(" AND cs.purpose = ")
                .push_bind(purpose.as_str())
                .push(" AND cs.status = 'granted')");
        }
        Filter::Created { after, before } => {
            qb.push("(TRUE");
            if let Some(a) = after {
                qb.push(" AND contacts.created_at >= ").push_bind(*a);
            }
            if let Some(b) = before {
                qb.push(" AND contacts.created_at < ").push_bind(*b);
            }
            qb.push(")");
        }
        Filter::Field(c) => push_field(qb, c),
        Filter::Nothing => {
            qb.push("FALSE");
        }
    }
}

fn push_field(qb: &mut QueryBuilder<Postgres>, c: &FieldCondition) {
    // `contains` exists only for text and choice fields (the domain refuses it for the others).
    let cmp = match c.op {
        Op::Eq => " = ",
        Op::Ne => " <> ",
        Op::Lt => " < ",
        Op::Gt => " > ",
        Op::Contains => "",
    };
    // Contacts without the field compare as NULL; coalesce makes that "no".
    qb.push("coalesce(");
    match &c.value {
        FieldValue::Text(v) if c.op == Op::Contains => {
            qb.push("strpos(lower(contacts.fields ->> ")
                .push_bind(c.key.clone())
                .push("), ")
                .push_bind(v.clone())
                .push(") > 0");
        }
        FieldValue::Text(v) => {
            // Byte order, so `lt`/`gt` do not depend on the database's locale.
            qb.push("(contacts.fields ->> ")
                .push_bind(c.key.clone())
                .push(") COLLATE \"C\"")
                .push(cmp)
                .push_bind(v.clone());
        }
        // Stored values were checked against the field's kind; the guards only keep a stray value
        // from failing the whole query.
        FieldValue::Number(v) => {
            qb.push("(CASE WHEN contacts.fields ->> ")
                .push_bind(c.key.clone())
                .push(" ~ '^-?[0-9]+(\\.[0-9]+)?$' THEN (contacts.fields ->> ")
                .push_bind(c.key.clone())
                .push(")::numeric END)")
                .push(cmp)
                .push_bind(*v);
        }
        FieldValue::Date(v) => {
            qb.push("(CASE WHEN contacts.fields ->> ")
                .push_bind(c.key.clone())
                .push(" ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN (contacts.fields ->> ")
                .push_bind(c.key.clone())
                .push(")::date END)")
                .push(cmp)
                .push_bind(*v);
        }
    }
    qb.push(", FALSE)");
}

/// Live contacts matching `f` now.
pub async fn count(conn: &mut PgConnection, f: &Filter) -> Result<i64, Error> {
    let mut qb: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT count(*) FROM contacts WHERE merged_into IS NULL AND ");
    push_filter(&mut qb, f);
    qb.build_query_scalar().fetch_one(conn).await.db()
}

/// A saved segment as stored (its count is the use case's to add).
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: Uuid,
    pub name: String,
    pub filter: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    filter: Json<serde_json::Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Stored {
    fn from(r: Row) -> Stored {
        Stored { id: r.id, name: r.name, filter: r.filter.0, created_at: r.created_at, updated_at: r.updated_at }
    }
}

const COLUMNS: &str = "id, name, filter, created_at, updated_at";

fn name_taken(e: sqlx::Error) -> Error {
    if violated_constraint(&e) == Some("segments_tenant_id_name_key") {
        Error::new(ErrorKind::Conflict, "messaging.segment_name_taken").with_violation("name", "taken")
    } else {
        nexus_platform::db::error(e)
    }
}

pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    name: &str,
    filter: &serde_json::Value,
) -> Result<Stored, Error> {
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO segments (id, tenant_id, name, filter) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(tenant.as_uuid())
    .bind(name)
    .bind(Json(filter))
    .fetch_one(conn)
    .await
    .map_err(name_taken)?;
    Ok(row.into())
}

/// Changes a segment's name and filter; `None` when there is no such segment.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    name: &str,
    filter: &serde_json::Value,
) -> Result<Option<Stored>, Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE segments SET name = $2, filter = $3, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(Json(filter))
    .fetch_optional(conn)
    .await
    .map_err(name_taken)?;
    Ok(row.map(Into::into))
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Stored>, Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM segments WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()?;
    Ok(row.map(Into::into))
}

/// One page of segments, newest first.
pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Stored>, Error> {
    let rows: Vec<Row> = keyset
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM segments WHERE {}",
            Keyset::newest_first(1)
        ))))
        .fetch_all(conn)
        .await
        .db()?;
    Ok(keyset.page(rows.into_iter().map(Stored::from).collect(), |s| (s.created_at, s.id)))
}

/// Deletes a segment; false when there was none.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    let gone = sqlx::query("DELETE FROM segments WHERE id = $1").bind(id).execute(conn).await.db()?;
    Ok(gone.rows_affected() > 0)
}

/// Queues every live contact matching `f` with a phone, not opted out of WhatsApp and with
/// WhatsApp marketing consent, as a recipient of the broadcast (once each); answers how many.
pub async fn queue_broadcast(
    conn: &mut PgConnection,
    tenant: nexus_kernel::TenantId,
    broadcast: Uuid,
    f: &Filter,
    at: DateTime<Utc>,
) -> Result<u64, Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "INSERT INTO wa_broadcast_recipients (broadcast_id, contact_id, tenant_id, to_number, params, next_at) \
         SELECT ",
    );
    qb.push_bind(broadcast)
        .push(", contacts.id, ")
        .push_bind(tenant.as_uuid())
        .push(", ltrim(contacts.phone, '+'), jsonb_build_array(contacts.name, contacts.phone, contacts.fields), ")
        .push_bind(at)
        .push(
            " FROM contacts WHERE contacts.merged_into IS NULL AND contacts.phone IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM consents c WHERE c.contact_id = contacts.id AND c.channel = 'whatsapp' \
                             AND c.status = 'withdrawn') \
             AND EXISTS (SELECT 1 FROM consents c WHERE c.contact_id = contacts.id AND c.channel = 'whatsapp' \
                         AND c.purpose = 'marketing' AND c.status = 'granted') AND ",
        );
    push_filter(&mut qb, f);
    qb.push(" ON CONFLICT (broadcast_id, contact_id) DO NOTHING");
    Ok(qb.build().execute(conn).await.db()?.rows_affected())
}
