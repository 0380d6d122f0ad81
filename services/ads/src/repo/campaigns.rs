//! The campaign umbrella.

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::campaigns::{Campaign, CampaignSpec};

const COLUMNS: &str =
    "id, name, goal, budget_minor, currency, start_date, end_date, description, status, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    goal: String,
    budget_minor: i64,
    currency: String,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    description: String,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Row {
    fn into_campaign(self) -> Result<Campaign, Error> {
        Ok(Campaign {
            id: self.id,
            spec: CampaignSpec {
                name: self.name,
                goal: self.goal,
                budget_minor: self.budget_minor,
                currency: self
                    .currency
                    .parse()
                    .map_err(|_| Error::internal(format!("stored currency {}", self.currency)))?,
                start_date: self.start_date,
                end_date: self.end_date,
                description: self.description,
            },
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub async fn insert(conn: &mut PgConnection, tenant: TenantId, id: Uuid, s: &CampaignSpec) -> Result<Campaign, Error> {
    let q = format!(
        "INSERT INTO campaigns (id, tenant_id, name, goal, budget_minor, currency, start_date, end_date, description) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    );
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(q))
        .bind(id)
        .bind(tenant.as_uuid())
        .bind(&s.name)
        .bind(&s.goal)
        .bind(s.budget_minor)
        .bind(s.currency.code())
        .bind(s.start_date)
        .bind(s.end_date)
        .bind(&s.description)
        .fetch_one(conn)
        .await
        .db()?;
    row.into_campaign()
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Campaign>, Error> {
    let q = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(conn).await.db()?;
    row.map(Row::into_campaign).transpose()
}

/// Newest first.
pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Campaign>, Error> {
    let q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaigns WHERE {}",
        Keyset::newest_first(1)
    )));
    let rows: Vec<Row> = keyset.bind(q).fetch_all(conn).await.db()?;
    let items = rows.into_iter().map(Row::into_campaign).collect::<Result<Vec<_>, _>>()?;
    Ok(keyset.page(items, |c| (c.created_at, c.id)))
}

/// Replaces the editable fields of a campaign that is not archived; None when there is none.
pub async fn update(conn: &mut PgConnection, id: Uuid, s: &CampaignSpec) -> Result<Option<Campaign>, Error> {
    let q = format!(
        "UPDATE campaigns SET name = $2, goal = $3, budget_minor = $4, currency = $5, start_date = $6, end_date = $7, \
           description = $8, updated_at = now() WHERE id = $1 AND status <> 'archived' RETURNING {COLUMNS}"
    );
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(q))
        .bind(id)
        .bind(&s.name)
        .bind(&s.goal)
        .bind(s.budget_minor)
        .bind(s.currency.code())
        .bind(s.start_date)
        .bind(s.end_date)
        .bind(&s.description)
        .fetch_optional(conn)
        .await
        .db()?;
    row.map(Row::into_campaign).transpose()
}

pub async fn archive(conn: &mut PgConnection, id: Uuid) -> Result<Option<Campaign>, Error> {
    let q = format!("UPDATE campaigns SET status = 'archived', updated_at = now() WHERE id = $1 RETURNING {COLUMNS}");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(conn).await.db()?;
    row.map(Row::into_campaign).transpose()
}
