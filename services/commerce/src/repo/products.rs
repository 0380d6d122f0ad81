//! Imported products, their variants and price history.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::catalogue::{Product, ProductText, Variant};

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
        translations: Vec::new(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

async fn with_variants(conn: &mut PgConnection, rows: Vec<ProductRow>) -> Result<Vec<Product>, Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let q = format!("SELECT {VARIANT_COLUMNS} FROM product_variants WHERE product_id = ANY($1) ORDER BY sku, id");
    let vrows: Vec<VariantRow> = sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(&ids).fetch_all(&mut *conn).await.db()?;
    let mut by_product: BTreeMap<Uuid, Vec<Variant>> = BTreeMap::new();
    for v in vrows {
        let (pid, v) = v.into_variant()?;
        by_product.entry(pid).or_default().push(v);
    }
    let mut texts = translations(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let vs = by_product.remove(&r.id).unwrap_or_default();
            let ts = texts.remove(&r.id).unwrap_or_default();
            Product { translations: ts, ..product(r, vs) }
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct TextRow {
    product_id: Uuid,
    language: String,
    title: String,
    description: String,
    provider: String,
    model: String,
    updated_at: DateTime<Utc>,
}

/// The translations of these products, by product, in language order.
async fn translations(conn: &mut PgConnection, ids: &[Uuid]) -> Result<BTreeMap<Uuid, Vec<ProductText>>, Error> {
    let rows: Vec<TextRow> = sqlx::query_as(
        "SELECT product_id, language, title, description, provider, model, updated_at FROM product_translations \
         WHERE product_id = ANY($1) ORDER BY product_id, language",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
    .db()?;
    let mut out: BTreeMap<Uuid, Vec<ProductText>> = BTreeMap::new();
    for r in rows {
        let language = r.language.parse().map_err(|_| Error::internal(format!("stored language {}", r.language)))?;
        out.entry(r.product_id).or_default().push(ProductText {
            language,
            title: r.title,
            description: r.description,
            provider: r.provider,
            model: r.model,
            updated_at: r.updated_at,
        });
    }
    Ok(out)
}

/// Stores a product's texts in these languages (replacing those it had in them).
pub async fn put_translations(
    conn: &mut PgConnection,
    tenant: TenantId,
    product: Uuid,
    texts: &[ProductText],
) -> Result<(), Error> {
    let ids: Vec<Uuid> = texts.iter().map(|_| Uuid::now_v7()).collect();
    let languages: Vec<&str> = texts.iter().map(|t| t.language.code()).collect();
    let titles: Vec<&str> = texts.iter().map(|t| t.title.as_str()).collect();
    let descriptions: Vec<&str> = texts.iter().map(|t| t.description.as_str()).collect();
    let providers: Vec<&str> = texts.iter().map(|t| t.provider.as_str()).collect();
    let models: Vec<&str> = texts.iter().map(|t| t.model.as_str()).collect();
    sqlx::query(
        "INSERT INTO product_translations (id, tenant_id, product_id, language, title, description, provider, model) \
         SELECT t.id, $1, $2, t.language, t.title, t.description, t.provider, t.model \
         FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) \
           AS t(id, language, title, description, provider, model) \
         ON CONFLICT (product_id, language) DO UPDATE SET title = excluded.title, description = excluded.description, \
           provider = excluded.provider, model = excluded.model, updated_at = now()",
    )
    .bind(tenant.as_uuid())
    .bind(product)
    .bind(&ids)
    .bind(&languages)
    .bind(&titles)
    .bind(&descriptions)
    .bind(&providers)
    .bind(&models)
    .execute(conn)
    .await
    .db()?;
    Ok(())
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

/// One page of the products monitoring checks (not archived), oldest first, after `after`
/// (the last page's `(created_at, id)`): the sweep walks the catalogue a page at a time so that
/// its memory stays one page's whatever the catalogue's size.
pub async fn monitored_page(
    conn: &mut PgConnection,
    tenant: TenantId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Product>, Error> {
    // The tenant spelled out (RLS holds it too): with it the planner walks the
    // `(tenant_id, created_at, id)` index from the cursor instead of sorting the catalogue for
    // every page.
    let q = format!(
        "SELECT {PRODUCT_COLUMNS} FROM dropshipping_products WHERE tenant_id = $4 AND status <> 'archived' \
           AND ($1::timestamptz IS NULL OR (created_at, id) > ($1, $2)) ORDER BY created_at, id LIMIT $3"
    );
    let rows: Vec<ProductRow> = sqlx::query_as(sqlx::AssertSqlSafe(q))
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .bind(tenant.as_uuid())
        .fetch_all(&mut *conn)
        .await
        .db()?;
    with_variants(conn, rows).await
}

/// The supplier connections of the products monitoring checks.
pub async fn monitored_connections(conn: &mut PgConnection) -> Result<Vec<Uuid>, Error> {
    sqlx::query_scalar("SELECT DISTINCT connection_id FROM dropshipping_products WHERE status <> 'archived'")
        .fetch_all(conn)
        .await
        .db()
}

/// These products (those RLS shows), with their variants.
pub async fn get_many(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Product>, Error> {
    let q = format!("SELECT {PRODUCT_COLUMNS} FROM dropshipping_products WHERE id = ANY($1) ORDER BY created_at, id");
    let rows: Vec<ProductRow> = sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(ids).fetch_all(&mut *conn).await.db()?;
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

/// Sets the status of each `(product, status)` that differs, in one statement.
pub async fn set_statuses(conn: &mut PgConnection, statuses: &[(Uuid, &str)]) -> Result<(), Error> {
    if statuses.is_empty() {
        return Ok(());
    }
    let (ids, names): (Vec<Uuid>, Vec<&str>) = statuses.iter().copied().unzip();
    sqlx::query(
        "UPDATE dropshipping_products p SET status = c.status, updated_at = now() \
           FROM unnest($1::uuid[], $2::text[]) AS c(id, status) WHERE p.id = c.id AND p.status <> c.status",
    )
    .bind(&ids)
    .bind(&names)
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

/// Stores these variants' new figures and their history rows: two statements for the lot.
pub async fn change_variants(
    conn: &mut PgConnection,
    tenant: TenantId,
    changes: &[VariantChange<'_>],
) -> Result<(), Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let col = |f: &dyn Fn(&VariantChange<'_>) -> Decimal| changes.iter().map(f).collect::<Vec<Decimal>>();
    let ids: Vec<Uuid> = changes.iter().map(|c| c.variant.id).collect();
    let compare_at: Vec<Option<Decimal>> = changes.iter().map(|c| c.new_compare_at).collect();
    let stock: Vec<i32> = changes.iter().map(|c| c.new_stock).collect();
    let rate_day: Vec<NaiveDate> = changes.iter().map(|c| c.rate_day).collect();
    let rate_source: Vec<&str> = changes.iter().map(|c| c.rate_source).collect();
    let (new_cost, new_price, rate) = (col(&|c| c.new_cost), col(&|c| c.new_price), col(&|c| c.rate));
    sqlx::query(
        "UPDATE product_variants v SET cost = c.cost, price = c.price, compare_at = coalesce(c.compare_at, v.compare_at), \
           stock = c.stock, rate = c.rate, rate_day = c.rate_day, rate_source = c.rate_source, updated_at = now() \
         FROM unnest($1::uuid[], $2::numeric[], $3::numeric[], $4::numeric[], $5::int[], $6::numeric[], $7::date[], $8::text[]) \
           AS c(id, cost, price, compare_at, stock, rate, rate_day, rate_source) WHERE v.id = c.id",
    )
    .bind(&ids)
    .bind(&new_cost)
    .bind(&new_price)
    .bind(&compare_at)
    .bind(&stock)
    .bind(&rate)
    .bind(&rate_day)
    .bind(&rate_source)
    .execute(&mut *conn)
    .await
    .db()?;
    let history: Vec<Uuid> = changes.iter().map(|_| Uuid::now_v7()).collect();
    let old_stock: Vec<i32> = changes.iter().map(|c| c.variant.stock).collect();
    let currency: Vec<&str> = changes.iter().map(|c| c.variant.price_currency.code()).collect();
    let reason: Vec<&str> = changes.iter().map(|c| c.reason).collect();
    sqlx::query(
        "INSERT INTO price_history (id, tenant_id, variant_id, old_cost, new_cost, old_price, new_price, old_stock, new_stock, \
           currency, rate, rate_day, reason) \
         SELECT h.id, $1, h.variant_id, h.old_cost, h.new_cost, h.old_price, h.new_price, h.old_stock, h.new_stock, \
           h.currency, h.rate, h.rate_day, h.reason \
         FROM unnest($2::uuid[], $3::uuid[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[], $8::int[], \
           $9::int[], $10::text[], $11::numeric[], $12::date[], $13::text[]) \
           AS h(id, variant_id, old_cost, new_cost, old_price, new_price, old_stock, new_stock, currency, rate, rate_day, reason)",
    )
    .bind(tenant.as_uuid())
    .bind(&history)
    .bind(&ids)
    .bind(col(&|c| c.variant.cost))
    .bind(&new_cost)
    .bind(col(&|c| c.variant.price))
    .bind(&new_price)
    .bind(&old_stock)
    .bind(&stock)
    .bind(&currency)
    .bind(&rate)
    .bind(&rate_day)
    .bind(&reason)
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

/// The stores these products were pushed to: `(product, store connection)` for those pushed.
pub async fn stores_of(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>, Error> {
    sqlx::query_as(
        "SELECT id, store_connection_id FROM dropshipping_products WHERE id = ANY($1) AND store_connection_id IS NOT NULL",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
    .db()
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
