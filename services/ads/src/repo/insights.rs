//! Daily insights rows.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

/// One row to store.
#[derive(Debug, Clone)]
pub struct Row {
    pub campaign_id: String,
    pub adset_id: String,
    pub ad_id: String,
    pub day: chrono::NaiveDate,
    pub spend_minor: i64,
    pub impressions: i64,
    pub reach: i64,
    pub clicks: i64,
    pub conversions: i64,
    pub revenue_minor: i64,
}

/// Whose rows they are: a build's campaign, or a whole account of a connection.
#[derive(Debug, Clone)]
pub enum Owner {
    Build(Uuid),
    Account { connection: Uuid, ad_account: String },
}

/// Writes a page of rows in one statement; a day synced again replaces its figures.
pub async fn upsert(
    conn: &mut PgConnection,
    tenant: TenantId,
    owner: &Owner,
    currency: &str,
    time_zone: &str,
    rows: &[Row],
) -> Result<(), Error> {
    let col = |f: fn(&Row) -> String| rows.iter().map(f).collect::<Vec<String>>();
    let num = |f: fn(&Row) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    // $2 and $15 name the owner; $15 (typed by its bind) is unused for a build.
    let (table, owner_cols, owner_vals, key) = match owner {
        Owner::Build(_) => ("ad_insights", "build_id", "$2", "build_id, ad_id, day"),
        Owner::Account { .. } => {
            ("account_insights", "connection_id, ad_account", "$2, $15", "connection_id, ad_account, ad_id, day")
        }
    };
    let sql = format!(
        "INSERT INTO {table} (tenant_id, {owner_cols}, campaign_id, adset_id, ad_id, day, currency, time_zone, \
           spend_minor, impressions, reach, clicks, conversions, revenue_minor) \
         SELECT $1, {owner_vals}, c, s, a, d, $3, $4, sp, im, re, cl, co, rv \
         FROM unnest($5::text[], $6::text[], $7::text[], $8::date[], $9::bigint[], $10::bigint[], $11::bigint[], \
                     $12::bigint[], $13::bigint[], $14::bigint[]) AS t(c, s, a, d, sp, im, re, cl, co, rv) \
         ON CONFLICT ({key}) DO UPDATE SET spend_minor = EXCLUDED.spend_minor, \
           impressions = EXCLUDED.impressions, reach = EXCLUDED.reach, clicks = EXCLUDED.clicks, \
           conversions = EXCLUDED.conversions, revenue_minor = EXCLUDED.revenue_minor, synced_at = now()"
    );
    let (owner_id, account) = match owner {
        Owner::Build(b) => (*b, None),
        Owner::Account { connection, ad_account } => (*connection, Some(ad_account.as_str())),
    };
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_uuid())
        .bind(owner_id)
        .bind(currency)
        .bind(time_zone)
        .bind(col(|r| r.campaign_id.clone()))
        .bind(col(|r| r.adset_id.clone()))
        .bind(col(|r| r.ad_id.clone()))
        .bind(rows.iter().map(|r| r.day).collect::<Vec<_>>())
        .bind(num(|r| r.spend_minor))
        .bind(num(|r| r.impressions))
        .bind(num(|r| r.reach))
        .bind(num(|r| r.clicks))
        .bind(num(|r| r.conversions))
        .bind(num(|r| r.revenue_minor))
        .bind(account)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// (days, spend, revenue) stored for a build.
pub async fn totals(conn: &mut PgConnection, build: Uuid) -> Result<(i64, i64, i64), Error> {
    sqlx::query_as(
        "SELECT count(DISTINCT day), coalesce(sum(spend_minor), 0)::bigint, coalesce(sum(revenue_minor), 0)::bigint \
         FROM ad_insights WHERE build_id = $1",
    )
    .bind(build)
    .fetch_one(conn)
    .await
    .db()
}

/// (days, spend, revenue) stored for an account of a connection.
pub async fn account_totals(
    conn: &mut PgConnection,
    connection: Uuid,
    ad_account: &str,
) -> Result<(i64, i64, i64), Error> {
    sqlx::query_as(
        "SELECT count(DISTINCT day), coalesce(sum(spend_minor), 0)::bigint, coalesce(sum(revenue_minor), 0)::bigint \
         FROM account_insights WHERE connection_id = $1 AND ad_account = $2",
    )
    .bind(connection)
    .bind(ad_account)
    .fetch_one(conn)
    .await
    .db()
}
