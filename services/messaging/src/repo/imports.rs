//! CSV imports: the import record and its errors, and the batch statements that match rows
//! against the book and write them (one statement per batch, not per row).

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use serde_json::{Value, json};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::import::{Counts, Import, ImportConsent, ImportRow, ImportStatus, RowError};

const COLUMNS: &str = "id, status, dry_run, total_rows, created, updated, failed, error_code, created_at, finished_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    status: String,
    dry_run: bool,
    total_rows: i64,
    created: i64,
    updated: i64,
    failed: i64,
    error_code: String,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl Row {
    fn into_import(self) -> Import {
        Import {
            id: self.id,
            status: self.status.parse().unwrap_or(ImportStatus::Failed),
            dry_run: self.dry_run,
            total_rows: self.total_rows,
            created: self.created,
            updated: self.updated,
            failed: self.failed,
            error_code: Some(self.error_code).filter(|c| !c.is_empty()),
            created_at: self.created_at,
            finished_at: self.finished_at,
        }
    }
}

/// A new running import.
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    dry_run: bool,
    mapping: &Value,
    options: &Value,
    created_by: &str,
) -> Result<Import, Error> {
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO imports (id, tenant_id, status, dry_run, mapping, options, created_by) \
         VALUES ($1, $2, 'running', $3, $4, $5, $6) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(tenant.as_uuid())
    .bind(dry_run)
    .bind(Json(mapping))
    .bind(Json(options))
    .bind(created_by)
    .fetch_one(conn)
    .await
    .db()?;
    Ok(row.into_import())
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Import>, Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM imports WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()?;
    Ok(row.map(Row::into_import))
}

/// The counts so far of a running import.
pub async fn progress(conn: &mut PgConnection, id: Uuid, c: Counts) -> Result<(), Error> {
    sqlx::query(
        "UPDATE imports SET total_rows = $2, created = $3, updated = $4, failed = $5 \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(c.total_rows)
    .bind(c.created)
    .bind(c.updated)
    .bind(c.failed)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Ends a running import with its final counts (and, when it failed, why).
/// Marks every import still `running` that started more than `older_than` ago as failed with
/// `code` (every workspace's: a system transaction). Answers how many.
pub async fn fail_stalled(conn: &mut PgConnection, older_than: std::time::Duration, code: &str) -> Result<u64, Error> {
    let n = sqlx::query(
        "UPDATE imports SET status = 'failed', error_code = $2, error_params = '{}', finished_at = now() \
         WHERE status = 'running' AND created_at < now() - make_interval(secs => $1)",
    )
    .bind(older_than.as_secs_f64())
    .bind(code)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(n)
}

pub async fn finish(
    conn: &mut PgConnection,
    id: Uuid,
    c: Counts,
    bytes: u64,
    failure: Option<&Error>,
) -> Result<Import, Error> {
    let (status, code, params) = match failure {
        None => (ImportStatus::Succeeded, String::new(), json!({})),
        Some(e) => {
            let params: serde_json::Map<String, Value> =
                e.params().iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            (ImportStatus::Failed, e.code().to_owned(), Value::Object(params))
        }
    };
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE imports SET status = $2, total_rows = $3, created = $4, updated = $5, failed = $6, bytes = $7, \
           error_code = $8, error_params = $9, finished_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(status.as_str())
    .bind(c.total_rows)
    .bind(c.created)
    .bind(c.updated)
    .bind(c.failed)
    .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
    .bind(code)
    .bind(Json(params))
    .fetch_one(conn)
    .await
    .db()?;
    Ok(row.into_import())
}

/// Records rows' errors (a repeated line and field keeps the first).
pub async fn add_errors(
    conn: &mut PgConnection,
    tenant: TenantId,
    import: Uuid,
    errors: &[RowError],
) -> Result<(), Error> {
    if errors.is_empty() {
        return Ok(());
    }
    let rows: Vec<Value> = errors
        .iter()
        .map(|e| {
            let params: serde_json::Map<String, Value> =
                e.params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            json!({"line": e.line, "field": e.field, "code": e.code, "params": params})
        })
        .collect();
    sqlx::query(
        "INSERT INTO import_errors (tenant_id, import_id, line, field, code, params) \
         SELECT $1, $2, r.line, r.field, r.code, r.params \
         FROM jsonb_to_recordset($3) AS r(line bigint, field text, code text, params jsonb) \
         ON CONFLICT (import_id, line, field) DO NOTHING",
    )
    .bind(tenant.as_uuid())
    .bind(import)
    .bind(Json(Value::Array(rows)))
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Plans each statement of the import transaction for its own values. The book grows by
/// thousands of rows inside that one transaction, unseen by the table statistics, and a cached
/// generic plan made for a near-empty table turns each batch's lookup into a scan that grows
/// with every batch (500 ms and rising by the tenth batch, against a few ms when planned fresh).
pub async fn plan_each_statement(conn: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(conn).await.db()?;
    Ok(())
}

/// One recorded row error with its message parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredError {
    pub line: i64,
    pub field: String,
    pub code: String,
    pub params: Vec<(String, String)>,
}

/// Errors of an import in line order, after `(line, field)` when given; `fetch` rows at most.
pub async fn errors(
    conn: &mut PgConnection,
    import: Uuid,
    after: Option<&(i64, String)>,
    fetch: i64,
) -> Result<Vec<StoredError>, Error> {
    let rows: Vec<ErrorRow> = sqlx::query_as(
        "SELECT line, field, code, params FROM import_errors \
         WHERE import_id = $1 AND ($2::bigint IS NULL OR (line, field) > ($2, $3)) \
         ORDER BY line, field LIMIT $4",
    )
    .bind(import)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1.clone()).unwrap_or_default())
    .bind(fetch)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|r| StoredError {
            line: r.line,
            field: r.field,
            code: r.code,
            params: r
                .params
                .0
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect(),
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct ErrorRow {
    line: i64,
    field: String,
    code: String,
    params: Json<serde_json::Map<String, Value>>,
}

/// Live contacts holding any of `phones` (E.164) or `emails` (as a contact's email or an email
/// identity), as `("p:<phone>" | "e:<email>", contact id)`: the keys of [`ImportRow::keys`].
/// The tenant is named although RLS confines the rows anyway: the policy's `OR` hides it from
/// the planner, and the unique indexes that make this a lookup lead with `tenant_id`.
pub async fn matches(
    conn: &mut PgConnection,
    tenant: TenantId,
    phones: &[String],
    emails: &[String],
) -> Result<Vec<(String, Uuid)>, Error> {
    // Joined from the keys (not `= ANY(array)`), so each key is one probe of the unique index.
    sqlx::query_as(
        "SELECT 'p:' || c.phone, c.id FROM unnest($2::text[]) AS k(v) \
           JOIN contacts c ON c.tenant_id = $1 AND c.phone = k.v AND c.merged_into IS NULL \
         UNION \
         SELECT 'e:' || c.email, c.id FROM unnest($3::text[]) AS k(v) \
           JOIN contacts c ON c.tenant_id = $1 AND c.email = k.v AND c.merged_into IS NULL \
         UNION \
         SELECT 'e:' || i.value, i.contact_id FROM unnest($3::text[]) AS k(v) \
           JOIN contact_identities i ON i.tenant_id = $1 AND i.kind = 'email' AND i.value = k.v \
           JOIN contacts c ON c.id = i.contact_id AND c.merged_into IS NULL",
    )
    .bind(tenant.as_uuid())
    .bind(phones)
    .bind(emails)
    .fetch_all(conn)
    .await
    .db()
}

/// A row as JSON for `jsonb_to_recordset`: absent attributes are null (kept on update).
fn row_json(id: Uuid, r: &ImportRow) -> Value {
    let d = &r.draft;
    json!({
        "id": id,
        "name": d.name,
        "phone": d.phone.as_ref().map(|p| p.as_str()),
        "email": d.email.as_ref().map(|e| e.as_str()),
        "language": d.language.map(|l| l.code()),
        "tags": d.tags,
        "fields": if r.fields.is_empty() { Value::Null } else { Value::Object(r.fields.clone()) },
        "owner_id": r.owner_id,
        "stage": d.stage.map(|s| s.as_str()),
        "source": d.source,
    })
}

const RECORD: &str = "r(id uuid, name text, phone text, email text, language text, tags text[], fields jsonb, \
                      owner_id uuid, stage text, source text)";

/// Creates contacts from checked rows, one statement for the batch; `source` where a row gives none.
pub async fn insert_contacts(
    conn: &mut PgConnection,
    tenant: TenantId,
    rows: &[(Uuid, &ImportRow)],
    source: &str,
) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let data: Vec<Value> = rows.iter().map(|(id, r)| row_json(*id, r)).collect();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO contacts (id, tenant_id, name, phone, email, language, tags, fields, owner_id, stage, source) \
         SELECT r.id, $1, coalesce(r.name, ''), r.phone, r.email, r.language, coalesce(r.tags, '{{}}'), \
                coalesce(r.fields, '{{}}'), r.owner_id, coalesce(r.stage, 'lead'), coalesce(r.source, $3) \
         FROM jsonb_to_recordset($2) AS {RECORD}"
    )))
    .bind(tenant.as_uuid())
    .bind(Json(Value::Array(data)))
    .bind(source)
    .execute(conn)
    .await
    .map_err(super::contacts::duplicate)?;
    Ok(())
}

/// Updates matched contacts from rows: given attributes replace, tags are added (up to the
/// limit of a contact), custom fields merged.
pub async fn update_contacts(conn: &mut PgConnection, rows: &[(Uuid, &ImportRow)]) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let data: Vec<Value> = rows.iter().map(|(id, r)| row_json(*id, r)).collect();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE contacts c SET name = coalesce(r.name, c.name), phone = coalesce(r.phone, c.phone), \
           email = coalesce(r.email, c.email), language = coalesce(r.language, c.language), \
           tags = (c.tags || ARRAY(SELECT t FROM unnest(coalesce(r.tags, '{{}}')) AS t WHERE t <> ALL (c.tags)))[1:{max}], \
           fields = c.fields || coalesce(r.fields, '{{}}'), owner_id = coalesce(r.owner_id, c.owner_id), \
           stage = coalesce(r.stage, c.stage), source = coalesce(r.source, c.source), updated_at = now() \
         FROM jsonb_to_recordset($1) AS {RECORD} \
         WHERE c.id = r.id",
        max = crate::domain::contact::TAGS_MAX
    )))
    .bind(Json(Value::Array(data)))
    .execute(conn)
    .await
    .map_err(super::contacts::duplicate)?;
    Ok(())
}

/// Gives contacts their emails as identities (an address held by another contact stays there).
pub async fn add_email_identities(
    conn: &mut PgConnection,
    tenant: TenantId,
    pairs: &[(Uuid, String)],
) -> Result<(), Error> {
    if pairs.is_empty() {
        return Ok(());
    }
    let (ids, emails): (Vec<Uuid>, Vec<String>) = pairs.iter().cloned().unzip();
    sqlx::query(
        "INSERT INTO contact_identities (tenant_id, kind, value, contact_id) \
         SELECT $1, 'email', e, c FROM unnest($2::uuid[], $3::text[]) AS x(c, e) \
         ON CONFLICT (tenant_id, kind, value) DO NOTHING",
    )
    .bind(tenant.as_uuid())
    .bind(ids)
    .bind(emails)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// Records the same consent for every contact in `contacts`.
pub async fn set_consents(
    conn: &mut PgConnection,
    tenant: TenantId,
    contacts: &[Uuid],
    c: &ImportConsent,
    actor: &str,
) -> Result<(), Error> {
    if contacts.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO consents (tenant_id, contact_id, channel, purpose, status, source, proof, changed_by) \
         SELECT $1, x, $3, $4, $5, $6, $7, $8 FROM unnest($2::uuid[]) AS x \
         ON CONFLICT (tenant_id, contact_id, channel, purpose) DO UPDATE \
           SET status = excluded.status, source = excluded.source, proof = excluded.proof, \
               changed_by = excluded.changed_by, changed_at = now()",
    )
    .bind(tenant.as_uuid())
    .bind(contacts)
    .bind(c.channel.as_str())
    .bind(c.purpose.as_str())
    .bind(c.status.as_str())
    .bind(&c.source)
    .bind(&c.proof)
    .bind(actor)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}
