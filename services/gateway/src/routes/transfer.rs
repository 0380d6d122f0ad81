//! `/v1/contacts/imports` and `/v1/contacts/export`: the contact book in and out as CSV
//! (messaging's ContactTransfer). Both stream: an upload goes to the service chunk by chunk as it
//! arrives, and an export goes to the client page by page; neither file is ever held whole.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use nexus_kernel::ErrorKind;
use nexus_proto::nexus::messaging::v1 as pb;
use nexus_proto::nexus::messaging::v1::import_chunk::Part;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{
    UPLOAD_TIME, UploadParts, csv_schema, finish_upload, is_csv, next_cursor, paging, transfer_client as client, ts,
    upload_client, upload_messages,
};
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiPath, ApiQuery};
use crate::identity::Authenticated;

/// The largest file an import takes: the messaging service's own limit (64 MiB).
pub const MAX_IMPORT_BYTES: u64 = 64 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    // The import reads its body as a stream and counts it against MAX_IMPORT_BYTES itself: the
    // global `DefaultBodyLimit` only binds extractors that buffer, which this route has none of.
    OpenApiRouter::new()
        .routes(routes!(import_contacts))
        .routes(routes!(get_import))
        .routes(routes!(list_import_errors))
        .routes(routes!(export_contacts))
}

/// A CSV file (UTF-8, comma-separated, a header row first): a binary string in the document.
#[derive(Debug)]
pub struct CsvFile;

impl utoipa::PartialSchema for CsvFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        csv_schema(
            "CSV, UTF-8, comma-separated; the first row names the columns.",
            "name,phone,email\nAna Silva,+5511987654321,ana@example.com\n",
        )
    }
}

impl ToSchema for CsvFile {}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7", "status": "succeeded", "dry_run": false,
    "total_rows": 1200, "created": 1150, "updated": 40, "failed": 10,
    "created_at": "2026-11-25T10:00:00+00:00", "finished_at": "2026-11-25T10:00:04+00:00"}))]
pub struct ImportBody {
    pub id: String,
    /// running, succeeded or failed.
    pub status: String,
    /// A dry run checks every row like a real import and writes no contact.
    pub dry_run: bool,
    /// Data rows read (the header not counted).
    pub total_rows: i64,
    pub created: i64,
    /// Rows that matched an existing contact by phone or email.
    pub updated: i64,
    /// Rows refused; each is listed under `/v1/contacts/imports/{id}/errors`.
    pub failed: i64,
    pub created_at: Option<String>,
    pub finished_at: Option<String>,
}

fn import(i: pb::Import) -> ImportBody {
    ImportBody {
        id: i.id,
        status: i.status,
        dry_run: i.dry_run,
        total_rows: i.total_rows,
        created: i.created,
        updated: i.updated,
        failed: i.failed,
        created_at: ts(i.created_at),
        finished_at: ts(i.finished_at),
    }
}

/// The import's options. Query parameters rather than a form part, so the body is the file as
/// it is and can be streamed. Unknown parameters are refused: a misspelt `dry_run` must not
/// turn a trial into a real import.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Check every row and report the counts and errors without writing any contact.
    #[param(example = false)]
    pub dry_run: Option<bool>,
    /// Comma-separated tags added to every imported contact (at most 20; letters, digits, spaces
    /// and `-_:.`).
    #[param(example = "fair-2026,newsletter", pattern = r"^[\w .:-]{0,64}(,[\w .:-]{0,64}){0,19}$")]
    pub tags: Option<String>,
    /// JSON object from CSV header to target: `name`, `phone`, `email`, `language`, `tags`,
    /// `stage`, `source`, `owner_id` or `fields.<key>`. Columns not named are ignored. Absent:
    /// headers that are themselves target names are taken as they are.
    #[param(
        example = r#"{"Full Name":"name","Mobile":"phone","E-mail":"email","Tier":"fields.tier"}"#,
        max_length = 20000
    )]
    pub mapping: Option<String>,
    /// Record consent for every imported contact on this channel (whatsapp, email, sms or ads);
    /// with `consent_purpose`.
    #[param(example = "whatsapp", pattern = "^(|whatsapp|email|sms|ads)$")]
    pub consent_channel: Option<String>,
    #[param(example = "marketing", pattern = "^(|marketing|transactional)$")]
    pub consent_purpose: Option<String>,
    /// Default granted.
    #[param(example = "granted", pattern = "^(|granted|withdrawn)$")]
    pub consent_status: Option<String>,
    /// Where the list's consent came from; default `import`.
    #[param(example = "fair-2026", max_length = 64)]
    pub consent_source: Option<String>,
    /// The words the people agreed to.
    #[param(example = "I agree to receive offers on WhatsApp.", max_length = 2000)]
    pub consent_proof: Option<String>,
}

impl ImportQuery {
    fn options(self) -> Result<pb::ImportOptions, ApiError> {
        let mapping: HashMap<String, String> = match self.mapping.as_deref().map(str::trim) {
            None | Some("") => HashMap::new(),
            Some(raw) => serde_json::from_str(raw).map_err(|_| {
                ApiError::new(ErrorKind::InvalidArgument, "request.invalid_query")
                    .with_param("detail", "mapping: a JSON object of header to target")
                    .with_field("mapping", "invalid")
            })?,
        };
        let tags = self
            .tags
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        let consent_given = [
            &self.consent_channel,
            &self.consent_purpose,
            &self.consent_status,
            &self.consent_source,
            &self.consent_proof,
        ]
        .iter()
        .any(|c| c.as_deref().is_some_and(|c| !c.trim().is_empty()));
        // The service checks the consent (a channel and a purpose are required once any part is
        // given), so a half-given consent is refused rather than dropped.
        let consent = consent_given.then(|| pb::SetConsentRequest {
            contact_id: String::new(),
            channel: self.consent_channel.unwrap_or_default(),
            purpose: self.consent_purpose.unwrap_or_default(),
            status: self.consent_status.unwrap_or_default(),
            source: self.consent_source.unwrap_or_default(),
            proof: self.consent_proof.unwrap_or_default(),
        });
        Ok(pb::ImportOptions { mapping, dry_run: self.dry_run.unwrap_or(false), tags, consent })
    }
}

fn too_large() -> ApiError {
    ApiError::new(ErrorKind::PayloadTooLarge, "messaging.import_too_large")
        .with_param("max", MAX_IMPORT_BYTES.to_string())
}

/// The import's messages, one a piece of the body (see [`upload_messages`]).
fn import_parts() -> UploadParts<pb::ImportChunk> {
    UploadParts {
        data: |piece| pb::ImportChunk { part: Some(Part::Data(piece.to_vec())) },
        end: || pb::ImportChunk { part: Some(Part::End(true)) },
        // No part: the service refuses it at once, failing and rolling back the import.
        broken: || pb::ImportChunk { part: None },
        max_bytes: MAX_IMPORT_BYTES,
    }
}

/// A page of an import's errors (they page by line, so their cursor differs from the lists').
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportErrorsQuery {
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(example = "eyJsaW5lIjozLCJmaWVsZCI6InBob25lIn0")]
    pub cursor: Option<String>,
}

/// Import contacts from a CSV file sent as the request body. Rows are matched to existing
/// contacts by phone, then email; refused rows are counted and listed under the import's
/// errors while the others are written. The import finishes within the call. At most 64 MiB
/// and 100,000 rows, sent within 10 minutes; a file that does not arrive whole imports nothing.
#[utoipa::path(post, path = "/v1/contacts/imports", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    params(ImportQuery),
    request_body(content = CsvFile, content_type = "text/csv", description = "The file, UTF-8, a header row first"),
    responses((status = 201, description = "The finished import with its counts", body = ImportBody),
        (status = 400, description = "Invalid options or mapping, a mapping to an undefined field, an empty or malformed file, or an upload that broke off", body = ErrorEnvelope),
        (status = 403, description = "Viewers cannot import", body = ErrorEnvelope),
        (status = 504, description = "The file did not arrive within 10 minutes; nothing was imported", body = ErrorEnvelope),
        (status = 413, description = "Over 64 MiB or 100,000 rows; nothing was imported", body = ErrorEnvelope),
        (status = 415, description = "The body is not text/csv (UTF-8)", body = ErrorEnvelope)))]
pub async fn import_contacts(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ImportBody>), ApiError> {
    if !is_csv(&headers) {
        return Err(ApiError::new(ErrorKind::UnsupportedMediaType, "request.unsupported_media_type"));
    }
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_IMPORT_BYTES) {
        return Err(too_large());
    }
    let options = q.options()?;
    let (cut_tx, cut_rx) = oneshot::channel();
    let first = pb::ImportChunk { part: Some(Part::Options(options)) };
    let messages = futures::stream::once(async move { first }).chain(upload_messages(
        body,
        Instant::now() + UPLOAD_TIME,
        cut_tx,
        import_parts(),
    ));
    let mut upstream = upload_client(&state);
    let call = async move { upstream.import_contacts(messages).await };
    let done = finish_upload(call, cut_rx, "messaging.import_interrupted").await?;
    Ok((StatusCode::CREATED, Json(import(done))))
}

/// An import's status and counts (while it runs, the counts move).
#[utoipa::path(get, path = "/v1/contacts/imports/{id}", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")),
    responses((status = 200, description = "The import", body = ImportBody),
        (status = 404, description = "No such import in this workspace", body = ErrorEnvelope)))]
pub async fn get_import(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ImportBody>, ApiError> {
    Ok(Json(import(client(&state).get_import(pb::GetByIdRequest { id }).await?.into_inner())))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"line": 7, "field": "phone", "code": "messaging.invalid_phone",
    "message": "El número de teléfono no es válido."}))]
pub struct ImportErrorBody {
    /// Line of the file (the header is line 1).
    pub line: i64,
    /// The target the bad value was for (`phone`, `fields.tier`, …), or `row`.
    pub field: String,
    pub code: String,
    /// The reason in the caller's language (their account setting, else `Accept-Language`).
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportErrorList {
    pub items: Vec<ImportErrorBody>,
    pub next_cursor: Option<String>,
}

/// The rows an import refused, in line order.
#[utoipa::path(get, path = "/v1/contacts/imports/{id}/errors", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7"), ImportErrorsQuery),
    responses((status = 200, description = "A page of refused rows", body = ImportErrorList),
        (status = 400, description = "Invalid page size or cursor", body = ErrorEnvelope),
        (status = 404, description = "No such import in this workspace", body = ErrorEnvelope)))]
pub async fn list_import_errors(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ImportErrorsQuery>,
) -> Result<Json<ImportErrorList>, ApiError> {
    let req = pb::ListImportErrorsRequest { import_id: id, page: paging(q.limit, q.cursor) };
    let r = client(&state).list_import_errors(req).await?.into_inner();
    Ok(Json(ImportErrorList {
        items: r
            .items
            .into_iter()
            .map(|e| ImportErrorBody { line: e.line, field: e.field, code: e.code, message: e.message })
            .collect(),
        next_cursor: next_cursor(r.page),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only the contacts of this saved segment; absent: the whole book.
    #[param(example = "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7")]
    pub segment_id: Option<String>,
}

/// The contact book (or a segment of it) as CSV: name, phone, email, language, tags, stage,
/// source, owner_id, then a `fields.<key>` column per custom field; oldest first. Cells a
/// spreadsheet would run as formulas are escaped. Sent as it is read, so large books start
/// downloading at once.
#[utoipa::path(get, path = "/v1/contacts/export", tag = "contacts", security(("bearer" = []), ("api_key" = [])),
    params(ExportQuery),
    responses((status = 200, description = "The CSV file", content_type = "text/csv", body = CsvFile,
            headers(("content-disposition" = String, description = "attachment; filename=\"contacts-YYYY-MM-DD.csv\""))),
        (status = 400, description = "Unknown query parameter", body = ErrorEnvelope),
        (status = 404, description = "No such segment in this workspace", body = ErrorEnvelope)))]
pub async fn export_contacts(
    State(state): State<AppState>,
    _a: Authenticated,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let req = pb::ExportRequest { segment_id: q.segment_id.unwrap_or_default() };
    let mut stream = client(&state).export_contacts(req).await?.into_inner();
    // The first chunk (the header row and first page) is awaited before answering, so a failure
    // to start is an error response rather than a 200 with a broken body.
    let first = stream.message().await?.map(|c| Bytes::from(c.data));
    let rest = stream.map(|c| {
        c.map(|c| Bytes::from(c.data)).map_err(|s| {
            // Headers are gone: the only way left to tell the client is to cut the body short
            // (no final chunk), so it cannot take a partial file for a whole one.
            tracing::warn!(grpc_code = ?s.code(), grpc_message = %s.message(), "export broke off");
            std::io::Error::other(s.message().to_owned())
        })
    });
    let body = Body::from_stream(futures::stream::iter(first.map(Ok)).chain(rest));
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    let name = format!("attachment; filename=\"contacts-{}.csv\"", chrono::Utc::now().format("%Y-%m-%d"));
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
