//! `/v1/commerce/catalogue` and `/v1/commerce/products`: supplier catalogue search, import with
//! variants (priced by the workspace's rules, the exchange rate recorded on every price), the
//! imported products and their push to a store.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_proto::nexus::commerce::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{AmountBody, PageQuery, amount, commerce_client as client, next_cursor, page_request, ts};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::Authenticated;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_catalogue))
        .routes(routes!(import_product))
        .routes(routes!(list_products))
        .routes(routes!(get_product))
        .routes(routes!(publish_product))
        .routes(routes!(localize_product))
        .routes(routes!(import_dsers))
        .routes(routes!(import_dsers_orders))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"connection_id": "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "currency": "USD",
    "csv": "Product ID,Product Title,Variant ID,SKU,Variant,Cost,Currency,Stock\n1005001,Ceramic Mug,11,MUG-BLK,Color:Black,3.10,USD,40\n"}))]
pub struct DsersImportBody {
    /// The supplier connection the products come from (usually AliExpress).
    #[schema(min_length = 1)]
    pub connection_id: String,
    /// The product export as DSers wrote it (columns found by name: Product ID, Product Title,
    /// Variant ID, SKU, Variant, Cost, Currency, Stock, Image URL, Category).
    pub csv: String,
    pub currency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DsersRowErrorBody {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DsersReportBody {
    pub rows: u64,
    pub imported: u32,
    pub already_imported: u32,
    pub errors: Vec<DsersRowErrorBody>,
}

/// Import a DSers product export (DSers has no public API; its CSV exports are the way in).
/// Products already imported are left as they are; unusable rows are reported by line.
#[utoipa::path(post, path = "/v1/commerce/dsers/products", tag = "commerce", security(("bearer" = []), ("api_key" = [])), request_body = DsersImportBody,
    responses((status = 200, description = "What was imported", body = DsersReportBody), (status = 400, description = "The file lacks the needed columns or is not text", body = ErrorEnvelope),
        (status = 404, description = "No such connection in this workspace", body = ErrorEnvelope)))]
pub async fn import_dsers(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<DsersImportBody>,
) -> Result<Json<DsersReportBody>, ApiError> {
    let req = pb::DsersImportRequest {
        connection_id: b.connection_id,
        csv: b.csv.into_bytes(),
        currency: b.currency.unwrap_or_default(),
    };
    let r = client(&state).import_dsers_products(req).await?.into_inner();
    Ok(Json(dsers_report(r)))
}

fn dsers_report(r: pb::DsersImportReport) -> DsersReportBody {
    DsersReportBody {
        rows: r.rows,
        imported: r.imported,
        already_imported: r.already_imported,
        errors: r.errors.into_iter().map(|e| DsersRowErrorBody { line: e.line, reason: e.reason }).collect(),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"csv": "Order No.,Order Date,Customer Name,Email,Product Title,SKU,Quantity,Price,Currency,Shipping Cost\n#1001,2026-11-02 10:00:00,Ana Silva,ana@example.com,Ceramic Mug,MUG-BLK,2,9.90,USD,3.00\n"}))]
pub struct DsersOrdersImportBody {
    /// The order export as DSers wrote it, one row per order line (columns found by name: Order
    /// No., Order Date, Customer Name, Email, Phone, Address, City, Province, Zip, Country,
    /// Product Title, SKU, Variant, Quantity, Price, Currency, Shipping Cost, Payment Status).
    pub csv: String,
}

/// Import a DSers order export: rows grouped into orders by order number, lines matched to
/// imported variants by SKU, paid orders recorded as sales. An order imported before is left as
/// it is; unusable rows are reported by line (an order with one is left out whole).
#[utoipa::path(post, path = "/v1/commerce/dsers/orders", tag = "commerce", security(("bearer" = []), ("api_key" = [])), request_body = DsersOrdersImportBody,
    responses((status = 200, description = "What was imported", body = DsersReportBody), (status = 400, description = "The file lacks the needed columns, is not text or is larger than 5 MiB", body = ErrorEnvelope)))]
pub async fn import_dsers_orders(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<DsersOrdersImportBody>,
) -> Result<Json<DsersReportBody>, ApiError> {
    let req = pb::DsersOrdersImportRequest { csv: b.csv.into_bytes() };
    Ok(Json(dsers_report(client(&state).import_dsers_orders(req).await?.into_inner())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A supplier connection.
    #[param(example = "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub connection_id: String,
    #[param(example = "mug", max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub keyword: Option<String>,
    #[param(example = "Home", max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub category: Option<String>,
    /// Decimal, in the supplier's currency; at most `max_price`.
    #[param(example = "5.00", pattern = r"^([0-9]{1,15}(\.[0-9]{1,4})?)?$")]
    pub min_price: Option<String>,
    #[param(example = "25.00", pattern = r"^([0-9]{1,15}(\.[0-9]{1,4})?)?$")]
    pub max_price: Option<String>,
    /// Warehouse country (ISO 3166 alpha-2).
    #[param(example = "CN", pattern = "^([A-Za-z]{2})?$")]
    pub ship_from: Option<String>,
    #[param(example = 1, minimum = 1, maximum = 10000)]
    pub page: Option<u32>,
    #[param(example = 20, maximum = 100)]
    pub page_size: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogueItemBody {
    pub supplier_product_id: String,
    pub title: String,
    pub category: String,
    pub image: String,
    pub price: Option<AmountBody>,
    pub ship_from: String,
    pub variants: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogueBody {
    pub items: Vec<CatalogueItemBody>,
    /// The supplier (`local` for the sample catalogue).
    pub provider: String,
}

/// Search a supplier's catalogue.
#[utoipa::path(get, path = "/v1/commerce/catalogue", tag = "commerce", security(("bearer" = []), ("api_key" = [])), params(SearchQuery),
    responses((status = 200, description = "A page of supplier products", body = CatalogueBody), (status = 400, description = "Invalid criteria", body = ErrorEnvelope),
        (status = 404, description = "No such connection in this workspace", body = ErrorEnvelope), (status = 409, description = "This supplier cannot be searched by keyword", body = ErrorEnvelope)))]
pub async fn search_catalogue(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<CatalogueBody>, ApiError> {
    let req = pb::SearchCatalogueRequest {
        connection_id: q.connection_id,
        keyword: q.keyword.unwrap_or_default(),
        category: q.category.unwrap_or_default(),
        min_price: q.min_price.unwrap_or_default(),
        max_price: q.max_price.unwrap_or_default(),
        ship_from: q.ship_from.unwrap_or_default(),
        page: q.page.unwrap_or(1),
        page_size: q.page_size.unwrap_or(0),
    };
    let r = client(&state).search_catalogue(req).await?.into_inner();
    Ok(Json(CatalogueBody {
        items: r
            .items
            .into_iter()
            .map(|i| CatalogueItemBody {
                supplier_product_id: i.supplier_product_id,
                title: i.title,
                category: i.category,
                image: i.image,
                price: amount(i.price),
                ship_from: i.ship_from,
                variants: i.variants,
            })
            .collect(),
        provider: r.provider,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"connection_id": "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "supplier_product_id": "LOC0001", "currency": "USD"}))]
pub struct ImportRequest {
    #[schema(min_length = 1)]
    pub connection_id: String,
    /// The supplier's product id: 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub supplier_product_id: String,
    /// Store currency of the prices; absent: the workspace's reporting currency.
    pub currency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductVariantBody {
    pub id: String,
    pub supplier_variant_id: String,
    pub sku: String,
    pub options: BTreeMap<String, String>,
    pub cost: Option<AmountBody>,
    pub price: Option<AmountBody>,
    pub compare_at: Option<String>,
    /// The conversion behind the price: cost currency to price currency, on `rate_day`.
    pub rate: String,
    pub rate_day: String,
    /// local (offline rates) or ecb.
    pub rate_source: String,
    pub stock: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductBody {
    #[schema(example = "prod_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    pub connection_id: String,
    pub supplier: String,
    pub supplier_product_id: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub images: Vec<String>,
    /// draft, published, out_of_stock or archived.
    pub status: String,
    pub store_product_id: Option<String>,
    pub variants: Vec<ProductVariantBody>,
    /// The title and description in the store's other languages (`POST …/localize`).
    pub translations: Vec<ProductTranslationBody>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductTranslationBody {
    /// en, es, pt, he or ar.
    #[schema(example = "es")]
    pub language: String,
    pub title: String,
    pub description: String,
    /// openai (a model translated) or local (no model configured: the source text under a
    /// "[<language>]" label, not a translation).
    #[schema(example = "openai")]
    pub provider: String,
    pub model: String,
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    pub items: Vec<ProductBody>,
    pub next_cursor: Option<String>,
}

fn product(p: pb::Product) -> ProductBody {
    ProductBody {
        id: p.id,
        connection_id: p.connection_id,
        supplier: p.supplier,
        supplier_product_id: p.supplier_product_id,
        title: p.title,
        description: p.description,
        category: p.category,
        images: p.images,
        status: p.status,
        store_product_id: Some(p.store_product_id).filter(|s| !s.is_empty()),
        variants: p
            .variants
            .into_iter()
            .map(|v| ProductVariantBody {
                id: v.id,
                supplier_variant_id: v.supplier_variant_id,
                sku: v.sku,
                options: v.options.into_iter().collect(),
                cost: amount(v.cost),
                price: amount(v.price),
                compare_at: Some(v.compare_at).filter(|s| !s.is_empty()),
                rate: v.rate,
                rate_day: v.rate_day,
                rate_source: v.rate_source,
                stock: v.stock,
            })
            .collect(),
        translations: p
            .translations
            .into_iter()
            .map(|t| ProductTranslationBody {
                language: t.language,
                title: t.title,
                description: t.description,
                provider: t.provider,
                model: t.model,
                updated_at: ts(t.updated_at),
            })
            .collect(),
        created_at: ts(p.created_at),
        updated_at: ts(p.updated_at),
    }
}

/// Import a supplier product with its variants (importing it again answers the same product).
#[utoipa::path(post, path = "/v1/commerce/catalogue/import", tag = "commerce", security(("bearer" = []), ("api_key" = [])), request_body = ImportRequest,
    responses((status = 201, description = "Imported", body = ProductBody), (status = 400, description = "Invalid id or currency", body = ErrorEnvelope),
        (status = 404, description = "No such connection or supplier product", body = ErrorEnvelope), (status = 409, description = "No exchange rate for the day", body = ErrorEnvelope)))]
pub async fn import_product(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiJson(b): ApiJson<ImportRequest>,
) -> Result<(StatusCode, Json<ProductBody>), ApiError> {
    let req = pb::ImportProductRequest {
        connection_id: b.connection_id,
        supplier_product_id: b.supplier_product_id,
        currency: b.currency.unwrap_or_default(),
    };
    Ok((StatusCode::CREATED, Json(product(client(&state).import_product(req).await?.into_inner()))))
}

/// Imported products, newest first.
#[utoipa::path(get, path = "/v1/commerce/products", tag = "commerce", security(("bearer" = []), ("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of products", body = ProductList), (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope)))]
pub async fn list_products(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ProductList>, ApiError> {
    let r = client(&state).list_products(pb::ListRequest { page: page_request(q) }).await?.into_inner();
    Ok(Json(ProductList { items: r.products.into_iter().map(product).collect(), next_cursor: next_cursor(r.page) }))
}

/// One product with its variants, costs, prices and rates.
#[utoipa::path(get, path = "/v1/commerce/products/{id}", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "prod_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")),
    responses((status = 200, description = "The product", body = ProductBody), (status = 404, description = "No such product in this workspace", body = ErrorEnvelope)))]
pub async fn get_product(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProductBody>, ApiError> {
    Ok(Json(product(client(&state).get_product(pb::GetByIdRequest { id }).await?.into_inner())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"store_connection_id": "conn_0192f0c5c2b87c31a1f1e4f2b1a0c9d8"}))]
pub struct ProductPublishRequest {
    pub store_connection_id: String,
}

/// Push a product to a store (idempotent: pushing again sets the same store product).
#[utoipa::path(post, path = "/v1/commerce/products/{id}/publish", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "prod_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")), request_body = ProductPublishRequest,
    responses((status = 200, description = "Published", body = ProductBody), (status = 400, description = "Not a store connection", body = ErrorEnvelope),
        (status = 404, description = "No such product or connection", body = ErrorEnvelope), (status = 422, description = "The store refused the product", body = ErrorEnvelope)))]
pub async fn publish_product(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ProductPublishRequest>,
) -> Result<Json<ProductBody>, ApiError> {
    let req = pb::PublishProductRequest { product_id: id, store_connection_id: b.store_connection_id };
    Ok(Json(product(client(&state).publish_product(req).await?.into_inner())))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"languages": ["es", "ar"]}))]
pub struct ProductLocalizeRequest {
    /// Each of en, es, pt, he, ar once; absent or empty: the languages of the workspace's stores.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::vocab::translation_languages)]
    pub languages: Vec<String>,
    /// The language of the imported title and description; absent: en.
    #[schema(example = "en")]
    pub source_language: Option<String>,
}

/// Translate a product's title and description into the store's languages (content service;
/// credits: content.generation). Stored with the product; the store push keeps the source texts.
#[utoipa::path(post, path = "/v1/commerce/products/{id}/localize", tag = "commerce", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "prod_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")), request_body = ProductLocalizeRequest,
    responses((status = 200, description = "Localized", body = ProductBody),
        (status = 400, description = "A language not among en, es, pt, he, ar, named twice, or none to localize into", body = ErrorEnvelope),
        (status = 402, description = "Not enough credits", body = ErrorEnvelope),
        (status = 404, description = "No such product in this workspace", body = ErrorEnvelope),
        (status = 503, description = "The translation service is not available", body = ErrorEnvelope)))]
pub async fn localize_product(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ProductLocalizeRequest>,
) -> Result<Json<ProductBody>, ApiError> {
    let req = pb::LocalizeProductRequest {
        product_id: id,
        languages: b.languages,
        source_language: b.source_language.unwrap_or_default(),
    };
    Ok(Json(product(client(&state).localize_product(req).await?.into_inner())))
}
