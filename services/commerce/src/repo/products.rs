//! Imported products, their variants and price history.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::catalogue::{Product, Variant};

const PRODUCT_COLUMNS: &str = "id, connection_id, supplier, supplier_product_id, title, description, category, images, \
                               status, store_product_id, created_at, updated_at";
const VARIANT_COLUMNS: &str = "id, product_id, supplier_variant_id, sku, options, cost, cost_currency, price, compare_at, \
                               price_currency, rate, rate_day, rate_source, stock, store_variant_id";

#[derive(sqlx::FromRow)]
struct ProductRow {
    id: Uuid,
    connection_id: Uuid,
    supplier: String,
    supplier_product_id: String,
    title: String,
    description: String,
    category: String,
    images: Json<Vec<String>>,
    status: String,
    store_product_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct VariantRow {
    id: Uuid,
    product_id: Uuid,
    supplier_variant_id: String,
    sku: String,
    options: Json<BTreeMap<String, String>>,
    cost: Decimal,
    cost_currency: String,
    price: Decimal,
    compare_at: Option<Decimal>,
    price_currency: String,
    rate: Decimal,
    rate_day: NaiveDate,
    rate_source: String,
    stock: i32,
    store_variant_id: Option<String>,
}

impl VariantRow {
    fn into_variant(self) -> Result<(Uuid, Variant), Error> {
        let cur = |s: &str| s.parse().map_err(|_| Error::internal(format!("stored currency {s}")));
        Ok((
            self.product_id,
            Variant {
                id: self.id,
                supplier_variant_id: self.supplier_variant_id,
                sku: self.sku,
                options: self.options.0,
                cost: self.cost,
                cost_currency: cur(&self.cost_currency)?,
                price: self.price,
                compare_at: self.compare_at,
                price_currency: cur(&self.price_currency)?,
                rate: self.rate,
                rate_day: self.rate_day,
                rate_source: self.rate_source,
                stock: self.stock,
                store_variant_id: self.store_variant_id,
            },
        ))
    }
}

fn product(r: ProductRow, variants: Vec<Variant>) -> Product {
    Product {
        id: r.id,
        connection_id: r.connection_id,
        supplier: r.supplier,
        supplier_product_id: r.supplier_product_id,
        title: r.title,
        description: r.description,
        category: r.category,
        images: r.images.0,
        status: r.status,
        store_product_id: r.store_product_id,
        variants,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

async fn with_variants(conn: &mut PgConnection, rows: Vec<ProductRow>) -> Result<Vec<Product>, Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let q = format!("SELECT {VARIANT_COLUMNS} FROM product_variants WHERE product_id = ANY($1) ORDER BY sku, id");
    let vrows: Vec<VariantRow> = sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(&ids).fetch_all(conn).await.db()?;
    let mut by_product: BTreeMap<Uuid, Vec<Variant>> = BTreeMap::new();
    for v in vrows {
        let (pid, v) = v.into_variant()?;
        by_product.entry(pid).or_default().push(v);
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let vs = by_product.remove(&r.id).unwrap_or_default();
            product(r, vs)
        })
        .collect())
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Product>, Error> {
    let q = format!("SELECT {PRODUCT_COLUMNS} FROM dropshipping_products WHERE id = $1");
    let row: Option<ProductRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await.db()?;
    match row {
        Some(r) => Ok(with_variants(conn, vec![r]).await?.pop()),
        None => Ok(None),
    }
}

pub async fn find_by_supplier(
    conn: &mut PgConnection,
    supplier: &str,
    supplier_product_id: &str,
) -> Result<Option<Product>, Error> {
    let q =
        format!("SELECT {PRODUCT_COLUMNS} FROM dropshipping_products WHERE supplier = $1 AND supplier_product_id = $2");
    let row: Option<ProductRow> = sqlx::query_as(sqlx::AssertSqlSafe(q))
        .bind(supplier)
        .bind(supplier_product_id)
        .fetch_optional(&mut *conn)
        .await
        .db()?;
    match row {
        Some(r) => Ok(with_variants(conn, vec![r]).await?.pop()),
        None => Ok(None),
    }
}

pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Product>, Error> {
    let q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PRODUCT_COLUMNS} FROM dropshipping_products WHERE {}",
        Keyset::newest_first(1)
    )));
    let rows: Vec<ProductRow> = keyset.bind(q).fetch_all(&mut *conn).await.db()?;
    let items = with_variants(conn, rows).await?;
    Ok(keyset.page(items, |p| (p.created_at, p.id)))
}

/// Every product of the workspace that monitoring checks (not archived).
pub async fn monitored(conn: &mut PgConnection) -> Result<Vec<Product>, Error> {
    let q = format!(
        "SELECT {PRODUCT_COLUMNS} FROM dropshipping_products WHERE status <> 'archived' ORDER BY created_at, id"
    );
    let rows: Vec<ProductRow> = sqlx::query_as(sqlx::AssertSqlSafe(q)).fetch_all(&mut *conn).await.db()?;
    with_variants(conn, rows).await
}

pub async fn insert(conn: &mut PgConnection, tenant: TenantId, p: &Product) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO dropshipping_products (id, tenant_id, connection_id, supplier, supplier_product_id, title, description, \
           category, images, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(p.id)
    .bind(tenant.as_uuid())
    .bind(p.connection_id)
    .bind(&p.supplier)
    .bind(&p.supplier_product_id)
    .bind(&p.title)
    .bind(&p.description)
    .bind(&p.category)
    .bind(Json(&p.images))
    .bind(&p.status)
    .execute(&mut *conn)
    .await
    .db()?;
    for v in &p.variants {
        sqlx::query(
            "INSERT INTO product_variants (id, tenant_id, product_id, supplier_variant_id, sku, options, cost, cost_currency, \
               price, compare_at, price_currency, rate, rate_day, rate_source, stock) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(v.id)
        .bind(tenant.as_uuid())
        .bind(p.id)
        .bind(&v.supplier_variant_id)
        .bind(&v.sku)
        .bind(Json(&v.options))
        .bind(v.cost)
        .bind(v.cost_currency.code())
        .bind(v.price)
        .bind(v.compare_at)
        .bind(v.price_currency.code())
        .bind(v.rate)
        .bind(v.rate_day)
        .bind(&v.rate_source)
        .bind(v.stock)
        .execute(&mut *conn)
        .await
        .db()?;
    }
    Ok(())
}

pub async fn set_status(conn: &mut PgConnection, id: Uuid, status: &str) -> Result<(), Error> {
    sqlx::query("UPDATE dropshipping_products SET status = $2, updated_at = now() WHERE id = $1 AND status <> $2")
        .bind(id)
        .bind(status)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Records the store's ids after a push.
pub async fn published(
    conn: &mut PgConnection,
    id: Uuid,
    store: Uuid,
    store_product_id: &str,
    variants: &[(Uuid, String)],
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE dropshipping_products SET store_connection_id = $2, store_product_id = $3, \
           status = CASE WHEN status = 'out_of_stock' THEN status ELSE 'published' END, updated_at = now() WHERE id = $1",
    )
        .bind(id)
        .bind(store)
        .bind(store_product_id)
        .execute(&mut *conn)
        .await
        .db()?;
    for (variant, store_id) in variants {
        sqlx::query("UPDATE product_variants SET store_variant_id = $2 WHERE id = $1")
            .bind(variant)
            .bind(store_id)
            .execute(&mut *conn)
            .await
            .db()?;
    }
    Ok(())
}

/// A variant's new cost, price and stock, with its history row.
pub struct VariantChange<'a> {
    pub variant: &'a Variant,
    pub new_cost: Decimal,
    pub new_price: Decimal,
    pub new_compare_at: Option<Decimal>,
    pub new_stock: i32,
    pub rate: Decimal,
    pub rate_day: NaiveDate,
    pub rate_source: &'a str,
    pub reason: &'a str,
}

pub async fn change_variant(conn: &mut PgConnection, tenant: TenantId, c: &VariantChange<'_>) -> Result<(), Error> {
    sqlx::query(
        "UPDATE product_variants SET cost = $2, price = $3, compare_at = coalesce($4, compare_at), stock = $5, rate = $6, \
           rate_day = $7, rate_source = $8, updated_at = now() WHERE id = $1",
    )
    .bind(c.variant.id)
    .bind(c.new_cost)
    .bind(c.new_price)
    .bind(c.new_compare_at)
    .bind(c.new_stock)
    .bind(c.rate)
    .bind(c.rate_day)
    .bind(c.rate_source)
    .execute(&mut *conn)
    .await
    .db()?;
    sqlx::query(
        "INSERT INTO price_history (id, tenant_id, variant_id, old_cost, new_cost, old_price, new_price, old_stock, new_stock, \
           currency, rate, rate_day, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.as_uuid())
    .bind(c.variant.id)
    .bind(c.variant.cost)
    .bind(c.new_cost)
    .bind(c.variant.price)
    .bind(c.new_price)
    .bind(c.variant.stock)
    .bind(c.new_stock)
    .bind(c.variant.price_currency.code())
    .bind(c.rate)
    .bind(c.rate_day)
    .bind(c.reason)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// The variants (with their product) carrying these SKUs: how store order lines find theirs.
pub async fn variants_by_sku(conn: &mut PgConnection, skus: &[String]) -> Result<Vec<(Uuid, Variant)>, Error> {
    let q = format!("SELECT {VARIANT_COLUMNS} FROM product_variants WHERE sku = ANY($1)");
    let rows: Vec<VariantRow> = sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(skus).fetch_all(conn).await.db()?;
    rows.into_iter().map(VariantRow::into_variant).collect()
}

pub async fn variants_by_id(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<(Uuid, Variant)>, Error> {
    let q = format!("SELECT {VARIANT_COLUMNS} FROM product_variants WHERE id = ANY($1)");
    let rows: Vec<VariantRow> = sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(ids).fetch_all(conn).await.db()?;
    rows.into_iter().map(VariantRow::into_variant).collect()
}

/// The store a product was pushed to.
pub async fn store_of(conn: &mut PgConnection, id: Uuid) -> Result<Option<Uuid>, Error> {
    sqlx::query_scalar("SELECT store_connection_id FROM dropshipping_products WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
        .map(Option::flatten)
}

/// Workspaces with products to monitor (a system transaction: the sweep's one cross-tenant read).
pub async fn tenants(conn: &mut PgConnection) -> Result<Vec<TenantId>, Error> {
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT DISTINCT tenant_id FROM dropshipping_products WHERE status <> 'archived'")
            .fetch_all(conn)
            .await
            .db()?;
    Ok(ids.into_iter().map(TenantId::from_uuid).collect())
}
