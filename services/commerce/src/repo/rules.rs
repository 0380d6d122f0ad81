//! Pricing rules and commission rules.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::commissions::{CommissionKind, CommissionRule, CommissionScope, Tier};
use crate::domain::pricing::{PricingRule, Rounding, Scope};

#[derive(sqlx::FromRow)]
struct PricingRow {
    id: Uuid,
    scope: String,
    scope_ref: String,
    markup_percent: Decimal,
    markup_fixed: Decimal,
    compare_at_percent: Option<Decimal>,
    rounding: String,
    currency: String,
    min_margin_percent: Decimal,
    max_auto_increase_percent: Decimal,
}

impl PricingRow {
    fn into_rule(self) -> Result<(Uuid, PricingRule), Error> {
        Ok((
            self.id,
            PricingRule {
                scope: Scope::parse(&self.scope, &self.scope_ref)?,
                markup_percent: self.markup_percent,
                markup_fixed: self.markup_fixed,
                compare_at_percent: self.compare_at_percent,
                rounding: Rounding::parse(&self.rounding)?,
                currency: self.currency.parse()?,
                min_margin_percent: self.min_margin_percent,
                max_auto_increase_percent: self.max_auto_increase_percent,
            },
        ))
    }
}

const PRICING_COLUMNS: &str = "id, scope, scope_ref, markup_percent, markup_fixed, compare_at_percent, rounding, currency, \
                               min_margin_percent, max_auto_increase_percent";

pub async fn pricing_rules(conn: &mut PgConnection) -> Result<Vec<(Uuid, PricingRule)>, Error> {
    let q = format!("SELECT {PRICING_COLUMNS} FROM pricing_rules ORDER BY scope, scope_ref");
    let rows: Vec<PricingRow> = sqlx::query_as(sqlx::AssertSqlSafe(q)).fetch_all(conn).await.db()?;
    rows.into_iter().map(PricingRow::into_rule).collect()
}

/// Creates the rule of a scope, or replaces it.
pub async fn put_pricing_rule(conn: &mut PgConnection, tenant: TenantId, r: &PricingRule) -> Result<Uuid, Error> {
    sqlx::query_scalar(
        "INSERT INTO pricing_rules (id, tenant_id, scope, scope_ref, markup_percent, markup_fixed, compare_at_percent, rounding, \
           currency, min_margin_percent, max_auto_increase_percent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (tenant_id, scope, scope_ref) DO UPDATE SET markup_percent = EXCLUDED.markup_percent, \
           markup_fixed = EXCLUDED.markup_fixed, compare_at_percent = EXCLUDED.compare_at_percent, rounding = EXCLUDED.rounding, \
           currency = EXCLUDED.currency, min_margin_percent = EXCLUDED.min_margin_percent, \
           max_auto_increase_percent = EXCLUDED.max_auto_increase_percent, updated_at = now() RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.as_uuid())
    .bind(r.scope.kind())
    .bind(r.scope.reference())
    .bind(r.markup_percent)
    .bind(r.markup_fixed)
    .bind(r.compare_at_percent)
    .bind(r.rounding.as_str())
    .bind(r.currency.code())
    .bind(r.min_margin_percent)
    .bind(r.max_auto_increase_percent)
    .fetch_one(conn)
    .await
    .db()
}

pub async fn delete_pricing_rule(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    let n = sqlx::query("DELETE FROM pricing_rules WHERE id = $1").bind(id).execute(conn).await.db()?.rows_affected();
    Ok(n > 0)
}

#[derive(sqlx::FromRow)]
struct CommissionRow {
    id: Uuid,
    scope: String,
    scope_ref: String,
    beneficiary: String,
    kind: String,
    value: Decimal,
    tiers: Json<Vec<Tier>>,
    cap: Option<Decimal>,
    currency: String,
}

const COMMISSION_COLUMNS: &str = "id, scope, scope_ref, beneficiary, kind, value, tiers, cap, currency";

impl CommissionRow {
    fn into_rule(self) -> Result<CommissionRule, Error> {
        Ok(CommissionRule {
            id: self.id,
            scope: CommissionScope::parse(&self.scope, &self.scope_ref)?,
            beneficiary: self.beneficiary,
            kind: CommissionKind::parse(&self.kind)?,
            value: self.value,
            tiers: self.tiers.0,
            cap: self.cap,
            currency: self.currency.parse()?,
        })
    }
}

pub async fn commission_rules(conn: &mut PgConnection) -> Result<Vec<CommissionRule>, Error> {
    let q = format!("SELECT {COMMISSION_COLUMNS} FROM commission_rules ORDER BY created_at, id");
    let rows: Vec<CommissionRow> = sqlx::query_as(sqlx::AssertSqlSafe(q)).fetch_all(conn).await.db()?;
    rows.into_iter().map(CommissionRow::into_rule).collect()
}

/// Every rule of the workspace, locked: sales of one workspace compute their commissions one
/// after the other, so volume tiers and caps see every earlier commission.
pub async fn commission_rules_locked(conn: &mut PgConnection) -> Result<Vec<CommissionRule>, Error> {
    let q = format!("SELECT {COMMISSION_COLUMNS} FROM commission_rules ORDER BY created_at, id FOR UPDATE");
    let rows: Vec<CommissionRow> = sqlx::query_as(sqlx::AssertSqlSafe(q)).fetch_all(conn).await.db()?;
    rows.into_iter().map(CommissionRow::into_rule).collect()
}

pub async fn put_commission_rule(conn: &mut PgConnection, tenant: TenantId, r: &CommissionRule) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO commission_rules (id, tenant_id, scope, scope_ref, beneficiary, kind, value, tiers, cap, currency) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (id) DO UPDATE SET scope = EXCLUDED.scope, scope_ref = EXCLUDED.scope_ref, beneficiary = EXCLUDED.beneficiary, \
           kind = EXCLUDED.kind, value = EXCLUDED.value, tiers = EXCLUDED.tiers, cap = EXCLUDED.cap, currency = EXCLUDED.currency",
    )
    .bind(r.id)
    .bind(tenant.as_uuid())
    .bind(r.scope.kind())
    .bind(r.scope.reference())
    .bind(&r.beneficiary)
    .bind(r.kind.as_str())
    .bind(r.value)
    .bind(Json(&r.tiers))
    .bind(r.cap)
    .bind(r.currency.code())
    .execute(conn)
    .await
    .db()?;
    Ok(())
}
