//! `generations`: stored AI copy with its inputs, usage and cost.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::generation::{Generation, GenerationInput, Usage, Variant};

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    kind: String,
    platform: Option<String>,
    language: String,
    tone: String,
    status: String,
    provider: String,
    model: String,
    prompt_version: String,
    /// The stored request as JSON text: it is only passed on, so it is never parsed here (a
    /// page of 20 parsed and re-serialized it 20 times on every read).
    input: String,
    variants: Json<Vec<Variant>>,
    title_limit: i32,
    body_limit: i32,
    prompt_tokens: i64,
    completion_tokens: i64,
    total_tokens: i64,
    credits: i64,
    created_at: DateTime<Utc>,
}

impl From<Row> for Generation {
    fn from(r: Row) -> Self {
        Generation {
            id: r.id,
            kind: r.kind,
            platform: r.platform,
            language: r.language,
            tone: r.tone,
            status: r.status,
            provider: r.provider,
            model: r.model,
            prompt_version: r.prompt_version,
            input_json: r.input,
            variants: r.variants.0,
            title_limit: r.title_limit,
            body_limit: r.body_limit,
            usage: Usage {
                prompt_tokens: r.prompt_tokens,
                completion_tokens: r.completion_tokens,
                total_tokens: r.total_tokens,
            },
            credits: r.credits,
            created_at: r.created_at,
        }
    }
}

const COLUMNS: &str = "id, kind, platform, language, tone, status, provider, model, prompt_version, input::text AS input, variants, \
    title_limit, body_limit, prompt_tokens, completion_tokens, total_tokens, credits, created_at";

/// A generation to store.
pub struct NewGeneration<'a> {
    pub id: Uuid,
    pub tenant: TenantId,
    pub input: &'a GenerationInput,
    pub status: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    pub prompt_version: &'a str,
    pub variants: &'a [Variant],
    pub usage: Usage,
    pub credits: i64,
    pub reservation_id: &'a str,
    pub key: &'a str,
    pub actor: &'a str,
}

/// Stores a generation; `None` when one with the same idempotency key is already there.
pub async fn insert(conn: &mut PgConnection, g: &NewGeneration<'_>) -> Result<Option<Generation>, Error> {
    let limits = g.input.limits();
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO generations (id, tenant_id, kind, platform, language, tone, status, provider, model, prompt_version, \
           input, variants, title_limit, body_limit, prompt_tokens, completion_tokens, total_tokens, credits, reservation_id, \
           idempotency_key, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
         ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING {COLUMNS}"
    )))
    .bind(g.id)
    .bind(g.tenant.as_uuid())
    .bind(g.input.kind.as_str())
    .bind(g.input.platform.map(|p| p.as_str()))
    .bind(g.input.brief.language.code())
    .bind(g.input.brief.tone.as_str())
    .bind(g.status)
    .bind(g.provider)
    .bind(g.model)
    .bind(g.prompt_version)
    .bind(Json(g.input))
    .bind(Json(g.variants))
    .bind(i32::try_from(limits.title).unwrap_or(i32::MAX))
    .bind(i32::try_from(limits.body).unwrap_or(i32::MAX))
    .bind(g.usage.prompt_tokens)
    .bind(g.usage.completion_tokens)
    .bind(g.usage.total_tokens)
    .bind(g.credits)
    .bind(g.reservation_id)
    .bind(g.key)
    .bind(g.actor)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(Into::into))
}

pub async fn by_key(conn: &mut PgConnection, key: &str) -> Result<Option<Generation>, Error> {
    super::one::<Row, _, _>(conn, &format!("SELECT {COLUMNS} FROM generations"), "idempotency_key", key).await
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Generation>, Error> {
    super::one::<Row, _, _>(conn, &format!("SELECT {COLUMNS} FROM generations"), "id", id).await
}

/// Newest first.
pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Generation>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM generations WHERE {}", Keyset::newest_first(1));
    let rows: Vec<Row> = keyset.bind(sqlx::query_as(sqlx::AssertSqlSafe(sql))).fetch_all(conn).await.db()?;
    Ok(keyset.page(rows.into_iter().map(Generation::from).collect(), |g| (g.created_at, g.id)))
}
