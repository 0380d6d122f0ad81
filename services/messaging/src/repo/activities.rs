//! The timeline: activities and tasks.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page, TenantId, UserId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::activity::{self, Activity, ActivityKind, TaskKey};

const COLUMNS: &str = "id, contact_id, kind, body, data, actor, due_at, assignee_id, done_at, occurred_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    contact_id: Uuid,
    kind: String,
    body: String,
    data: Json<serde_json::Value>,
    actor: String,
    due_at: Option<DateTime<Utc>>,
    assignee_id: Option<Uuid>,
    done_at: Option<DateTime<Utc>>,
    occurred_at: DateTime<Utc>,
}

impl Row {
    fn into_activity(self) -> Result<Activity, Error> {
        Ok(Activity {
            id: self.id,
            contact_id: self.contact_id,
            kind: self.kind.parse().map_err(|_| Error::internal(format!("stored activity kind {}", self.kind)))?,
            body: self.body,
            data: self.data.0,
            actor: self.actor,
            due_at: self.due_at,
            assignee_id: self.assignee_id.map(UserId::from_uuid),
            done_at: self.done_at,
            occurred_at: self.occurred_at,
        })
    }
}

fn activities(rows: Vec<Row>) -> Result<Vec<Activity>, Error> {
    rows.into_iter().map(Row::into_activity).collect()
}

/// An activity the platform writes (a lead, a stage change, a merge, a consent change).
pub struct NewActivity<'a> {
    pub contact: Uuid,
    pub kind: &'a str,
    pub body: &'a str,
    pub data: serde_json::Value,
    pub actor: &'a str,
    pub occurred_at: DateTime<Utc>,
    /// The source event's key: the same event adds one activity however often it arrives.
    pub source_key: Option<&'a str>,
}

/// Adds a platform-written activity; `Ok(false)` when one with the same source key exists already.
pub async fn insert(conn: &mut PgConnection, tenant: TenantId, a: &NewActivity<'_>) -> Result<bool, Error> {
    let kind: ActivityKind = a.kind.parse().map_err(|_| Error::internal(format!("activity kind {}", a.kind)))?;
    let entry = activity::NewActivity {
        source_key: a.source_key.map(str::to_owned),
        occurred_at: a.occurred_at,
        body: a.body.to_owned(),
        ..activity::NewActivity::fact(a.contact, kind, a.actor.to_owned(), a.data.clone())
    };
    Ok(record(conn, tenant, &entry).await?.is_some())
}

/// Records an activity and answers it as stored. With a `source_key` already recorded (an event
/// delivered again) nothing is written and `None` is answered.
pub async fn record(
    conn: &mut PgConnection,
    tenant: TenantId,
    a: &activity::NewActivity,
) -> Result<Option<Activity>, Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO activities (id, tenant_id, contact_id, kind, body, data, actor, due_at, assignee_id, source_key, occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (tenant_id, source_key) WHERE source_key IS NOT NULL DO NOTHING RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(tenant.as_uuid())
    .bind(a.contact_id)
    .bind(a.kind.as_str())
    .bind(&a.body)
    .bind(Json(&a.data))
    .bind(&a.actor)
    .bind(a.due_at)
    .bind(a.assignee_id.map(|u| u.as_uuid()))
    .bind(a.source_key.as_deref())
    .bind(a.occurred_at)
    .fetch_optional(conn)
    .await
    .db()?;
    row.map(Row::into_activity).transpose()
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Activity>, Error> {
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM activities WHERE id = $1")))
            .bind(id)
            .fetch_optional(conn)
            .await
            .db()?;
    row.map(Row::into_activity).transpose()
}

/// One page of a contact's timeline, newest first.
pub async fn timeline(conn: &mut PgConnection, contact: Uuid, keyset: &Keyset) -> Result<Page<Activity>, Error> {
    let rows: Vec<Row> = keyset
        .bind(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM activities WHERE contact_id = $1 AND {}",
                Keyset::newest_first_by("occurred_at", "id", 2)
            )))
            .bind(contact),
        )
        .fetch_all(conn)
        .await
        .db()?;
    Ok(keyset.page(activities(rows)?, |a| (a.occurred_at, a.id)))
}

/// Marks a task done (once: completing it again keeps the first time). `None` when there is no
/// such task.
pub async fn complete_task(conn: &mut PgConnection, id: Uuid) -> Result<Option<Activity>, Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE activities SET done_at = now() WHERE id = $1 AND kind = 'task' AND done_at IS NULL RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    match row {
        Some(r) => r.into_activity().map(Some),
        // Already done, or not a task at all.
        None => Ok(get(conn, id).await?.filter(|a| a.kind == ActivityKind::Task)),
    }
}

/// One page of a member's tasks: open ones first, each group by due date.
pub async fn tasks(
    conn: &mut PgConnection,
    assignee: UserId,
    after: Option<TaskKey>,
    limit: u32,
) -> Result<Page<Activity>, Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM activities WHERE kind = 'task' AND assignee_id = $1 \
           AND ($2::boolean IS NULL OR (done_at IS NOT NULL, due_at, id) > ($2, $3::timestamptz, $4::uuid)) \
         ORDER BY done_at IS NOT NULL, due_at, id LIMIT $5"
    )))
    .bind(assignee.as_uuid())
    .bind(after.map(|k| k.done))
    .bind(after.map(|k| k.due_at))
    .bind(after.map(|k| k.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(Page::from_overfetch(activities(rows)?, limit, TaskKey::of))
}
