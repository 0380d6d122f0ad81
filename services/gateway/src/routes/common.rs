//! Request and response pieces the route modules share: upstream clients, timestamps, paging,
//! money, idempotency keys, text direction and the signed-in session bodies. Handler modules
//! import from here only, never from one another.

use axum::http::HeaderMap;
use nexus_platform::RequestContext;
use nexus_platform::grpc::ContextChannel;
use nexus_proto::common::{Money, PageInfo, PageRequest};
use nexus_proto::nexus::analytics::v1::TimeRange;
use nexus_proto::nexus::analytics::v1::analytics_client::AnalyticsClient;
use nexus_proto::nexus::auth::v1 as auth_pb;
use nexus_proto::nexus::auth::v1::auth_client::AuthClient;
use nexus_proto::nexus::content::v1::content_client::ContentClient;
use nexus_proto::nexus::messaging::v1::contact_transfer_client::ContactTransferClient;
use nexus_proto::nexus::messaging::v1::contacts_client::ContactsClient;
use nexus_proto::nexus::messaging::v1::crm_client::CrmClient;
use nexus_proto::nexus::messaging::v1::webhooks_client::WebhooksClient;
use nexus_proto::nexus::messaging::v1::whats_app_client::WhatsAppClient;
use nexus_proto::nexus::subscriptions::v1::subscriptions_client::SubscriptionsClient;
use nexus_proto::nexus::video::v1::video_client::VideoClient;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use nexus_kernel::ErrorKind;
use nexus_kernel::money::Currency;

use crate::AppState;
use crate::edge::Edge;
use crate::error::ApiError;

// ---------- upstream clients ----------

/// The context of a call to a public RPC: no caller token goes out, whatever the request
/// carried (public by design: the address is the key).
pub(crate) fn anonymous() -> RequestContext {
    RequestContext { bearer: None, ..RequestContext::current() }
}

pub(crate) fn auth_client(state: &AppState) -> AuthClient<ContextChannel> {
    nexus_platform::sized!(AuthClient::new(state.upstreams.auth.clone()))
}

pub(crate) fn subscriptions_client(state: &AppState) -> SubscriptionsClient<ContextChannel> {
    nexus_platform::sized!(SubscriptionsClient::new(state.upstreams.subscriptions.clone()))
}

pub(crate) fn content_client(state: &AppState) -> ContentClient<ContextChannel> {
    nexus_platform::sized!(ContentClient::new(state.upstreams.content.clone()))
}

pub(crate) fn video_client(state: &AppState) -> VideoClient<ContextChannel> {
    nexus_platform::sized!(VideoClient::new(state.upstreams.video.clone()))
}

pub(crate) fn contacts_client(state: &AppState) -> ContactsClient<ContextChannel> {
    nexus_platform::sized!(ContactsClient::new(state.upstreams.messaging.clone()))
}

pub(crate) fn transfer_client(state: &AppState) -> ContactTransferClient<ContextChannel> {
    nexus_platform::sized!(ContactTransferClient::new(state.upstreams.messaging.clone()))
}

/// [`transfer_client`] on the channel whose deadline allows for a client's upload.
pub(crate) fn upload_client(state: &AppState) -> ContactTransferClient<ContextChannel> {
    nexus_platform::sized!(ContactTransferClient::new(state.upstreams.messaging_uploads.clone()))
}

pub(crate) fn crm_client(state: &AppState) -> CrmClient<ContextChannel> {
    nexus_platform::sized!(CrmClient::new(state.upstreams.messaging.clone()))
}

pub(crate) fn webhooks_client(state: &AppState) -> WebhooksClient<ContextChannel> {
    nexus_platform::sized!(WebhooksClient::new(state.upstreams.messaging.clone()))
}

pub(crate) fn whatsapp_client(state: &AppState) -> WhatsAppClient<ContextChannel> {
    nexus_platform::sized!(WhatsAppClient::new(state.upstreams.messaging.clone()))
}

/// [`whatsapp_client`] on the channel whose deadline allows for a live stream.
pub(crate) fn whatsapp_stream_client(state: &AppState) -> WhatsAppClient<ContextChannel> {
    nexus_platform::sized!(WhatsAppClient::new(state.upstreams.messaging_streams.clone()))
}

pub(crate) fn analytics_client(state: &AppState) -> AnalyticsClient<ContextChannel> {
    nexus_platform::sized!(AnalyticsClient::new(state.upstreams.analytics.clone()))
}

pub(crate) fn ads_client(state: &AppState) -> nexus_proto::nexus::ads::v1::ads_client::AdsClient<ContextChannel> {
    nexus_platform::sized!(nexus_proto::nexus::ads::v1::ads_client::AdsClient::new(state.upstreams.ads.clone()))
}

/// [`ads_client`] on the channel whose deadline allows for a client's upload.
pub(crate) fn ads_upload_client(
    state: &AppState,
) -> nexus_proto::nexus::ads::v1::ads_client::AdsClient<ContextChannel> {
    nexus_platform::sized!(nexus_proto::nexus::ads::v1::ads_client::AdsClient::new(state.upstreams.ads_uploads.clone()))
}

pub(crate) fn commerce_client(
    state: &AppState,
) -> nexus_proto::nexus::commerce::v1::commerce_client::CommerceClient<ContextChannel> {
    nexus_platform::sized!(nexus_proto::nexus::commerce::v1::commerce_client::CommerceClient::new(
        state.upstreams.commerce.clone()
    ))
}

/// An exact decimal amount of the commerce API (`"19.99"`), with its currency.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"value": "19.99", "currency": "USD"}))]
pub struct AmountBody {
    pub value: String,
    pub currency: String,
}

pub(crate) fn amount(a: Option<nexus_proto::nexus::commerce::v1::Amount>) -> Option<AmountBody> {
    a.map(|a| AmountBody { value: a.value, currency: a.currency })
}

// ---------- scalars ----------

/// A protobuf timestamp as RFC 3339, absent when unset.
pub(crate) fn ts(t: Option<prost_types::Timestamp>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(|d| d.to_rfc3339())
}

/// An instant from a request as a protobuf timestamp.
pub(crate) fn proto_ts(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

/// Proto strings use "" for "none"; JSON uses an absent field.
pub(crate) fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The client's `Idempotency-Key`, if any (validated by the service).
/// A value with other than visible ASCII and spaces, or longer than 200, is refused here: passed
/// on as absent, it would make a retry a second request.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(String::new()) };
    match v.to_str() {
        Ok(s) if s.len() <= 200 && s.bytes().all(|b| (0x20..0x7f).contains(&b)) => Ok(s.to_owned()),
        _ => Err(ApiError::new(ErrorKind::InvalidArgument, "request.invalid_idempotency_key")
            .with_field("Idempotency-Key", "invalid")),
    }
}

/// One server-sent event as a client's parser reads it off the stream: its name and its data
/// (the event's JSON body, as text). The operation's example shows the wire form.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerSentEvent {
    /// The event's name (`status`, `done`, `delta`, `error`...).
    pub event: String,
    /// The event's body: JSON text.
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

pub(crate) fn dir_name(d: i32) -> String {
    if d == nexus_proto::common::TextDirection::Rtl as i32 { "rtl" } else { "ltr" }.to_owned()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyBody {
    /// Integer minor units (cents).
    #[schema(example = 9700)]
    pub amount_minor: i64,
    #[schema(example = "USD")]
    pub currency: String,
}

impl From<Money> for MoneyBody {
    fn from(m: Money) -> Self {
        Self { amount_minor: m.amount_minor, currency: m.currency }
    }
}

/// An exact amount as a decimal string in the currency's units (`"19.99"` USD, `"1500"` JPY,
/// `"1.250"` KWD): never a float, so nothing is rounded on the way.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": "1999.90", "currency": "BRL"}))]
pub struct DecimalMoneyBody {
    /// Not negative; at most as many decimals as the currency has (2 for most, 0 for JPY and
    /// CLP, 3 for KWD and BHD).
    #[schema(example = "1999.90", pattern = "^[0-9]{1,15}(\\.[0-9]{1,3})?$")]
    pub amount: String,
    #[schema(schema_with = crate::openapi::vocab::currency_code)]
    pub currency: String,
}

impl DecimalMoneyBody {
    /// The amount in minor units, exactly: more decimals than the currency has (other than
    /// trailing zeros) are refused, not rounded.
    pub(crate) fn to_proto(&self) -> Result<Money, ApiError> {
        let currency: Currency = self
            .currency
            .parse()
            .map_err(|e: nexus_kernel::Error| ApiError::from(e.with_violation("amount.currency", "unsupported")))?;
        let minor = decimal_to_minor(&self.amount, currency.minor_digits()).ok_or_else(|| {
            ApiError::new(ErrorKind::InvalidArgument, "messaging.invalid_amount").with_field("amount.amount", "invalid")
        })?;
        Ok(Money { amount_minor: minor, currency: currency.code().to_owned() })
    }
}

impl From<Money> for DecimalMoneyBody {
    fn from(m: Money) -> Self {
        // A currency the kernel does not know cannot come from the services; 2 digits is the common case.
        let digits = m.currency.parse::<Currency>().map_or(2, |c| c.minor_digits());
        Self { amount: minor_to_decimal(m.amount_minor, digits), currency: m.currency }
    }
}

/// `"19.99"` with 2 digits → 1999. The syntax is the schema's pattern (1 to 15 digits, then
/// optionally a point and 1 to 3 digits); `None` when it does not match, or has more significant
/// decimals than `digits`.
pub(crate) fn decimal_to_minor(raw: &str, digits: u8) -> Option<i64> {
    let (int, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(1..=15).contains(&int.len()) || !all_digits(int) || !all_digits(frac) || frac.len() > 3 {
        return None;
    }
    if raw.contains('.') && frac.is_empty() {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > usize::from(digits) {
        return None;
    }
    let scale = 10i64.checked_pow(u32::from(digits))?;
    let int: i64 = int.parse().ok()?;
    let frac_minor: i64 =
        if frac.is_empty() { 0 } else { format!("{frac:0<width$}", width = usize::from(digits)).parse().ok()? };
    int.checked_mul(scale)?.checked_add(frac_minor)
}

/// 1999 with 2 digits → `"19.99"`; 1500 with 0 → `"1500"`.
pub(crate) fn minor_to_decimal(minor: i64, digits: u8) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let scale = 10u64.pow(u32::from(digits));
    if digits == 0 {
        format!("{sign}{abs}")
    } else {
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = usize::from(digits))
    }
}

/// Prices are optional in the protos (a plan may have none in a currency).
pub(crate) fn money(m: Option<Money>) -> Option<MoneyBody> {
    m.map(MoneyBody::from)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlansQuery {
    /// ISO 4217 code of the price to show; default USD.
    #[param(example = "BRL", schema_with = crate::openapi::vocab::currency)]
    pub currency: Option<String>,
}

// ---------- paging ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100; default 20.
    #[param(example = 20, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(
        example = "eyJhdCI6IjIwMjYtMTEtMjVUMTA6MDA6MDBaIiwiaWQiOiIwMTkyZjBjNS1jMmI4LTdjMzEtYTFmMS1lNGYyYjFhMGM5ZDcifQ"
    )]
    pub cursor: Option<String>,
}

pub(crate) fn page_request(q: PageQuery) -> Option<PageRequest> {
    paging(q.limit, q.cursor)
}

/// A page request from a query's own `limit` and `cursor` fields.
pub(crate) fn paging(limit: Option<u32>, cursor: Option<String>) -> Option<PageRequest> {
    Some(PageRequest { page_size: limit.unwrap_or(0), cursor: cursor.unwrap_or_default() })
}

/// The cursor of the next page; absent on the last one.
pub(crate) fn next_cursor(page: Option<PageInfo>) -> Option<String> {
    page.map(|p| p.next_cursor).filter(|c| !c.is_empty())
}

/// An analytics time range; empty bounds take the service's defaults.
pub(crate) fn time_range(from: Option<String>, to: Option<String>) -> Option<TimeRange> {
    Some(TimeRange { from: from.unwrap_or_default(), to: to.unwrap_or_default() })
}

// ---------- signed-in sessions (auth and account) ----------

pub(crate) fn client_info(edge: &Edge, headers: &HeaderMap) -> auth_pb::ClientInfo {
    let ua = headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    auth_pb::ClientInfo { ip: edge.client_ip.to_string(), user_agent: ua.chars().take(512).collect() }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    #[schema(example = "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9d7")]
    pub id: String,
    #[schema(example = "ana@example.com")]
    pub email: String,
    pub email_verified: bool,
    #[schema(example = "Ana Silva")]
    pub name: String,
    pub avatar_url: Option<String>,
    pub mfa_enabled: bool,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceBody {
    #[schema(example = "ws_0192f0c5c2b87c31a1f1e4f2b1a0c9d8")]
    pub id: String,
    #[schema(example = "Ana's Bakery")]
    pub name: String,
    /// owner, admin, member or viewer.
    #[schema(example = "owner")]
    pub role: String,
}

/// A signed-in session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionBody {
    pub user: UserBody,
    pub workspace: WorkspaceBody,
    /// EdDSA JWT; send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque; rotated on every use. Presenting a spent one ends the whole session.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until `access_token` expires.
    #[schema(example = 900)]
    pub expires_in: u32,
    pub session_id: String,
}

pub(crate) fn user_body(u: auth_pb::User) -> UserBody {
    UserBody {
        id: u.id,
        email: u.email,
        email_verified: u.email_verified,
        name: u.name,
        avatar_url: (!u.avatar_url.is_empty()).then_some(u.avatar_url),
        mfa_enabled: u.mfa_enabled,
        created_at: ts(u.created_at),
    }
}

pub(crate) fn workspace_body(w: auth_pb::Workspace) -> WorkspaceBody {
    WorkspaceBody { id: w.id, name: w.name, role: w.role }
}

pub(crate) fn session_body(s: auth_pb::AuthSession) -> SessionBody {
    SessionBody {
        user: user_body(s.user.unwrap_or_default()),
        workspace: workspace_body(s.workspace.unwrap_or_default()),
        access_token: s.access_token,
        refresh_token: s.refresh_token,
        token_type: "Bearer".into(),
        expires_in: s.expires_in,
        session_id: s.session_id,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "nxv_Qm9vZ2xlLXRva2VuLWZyb20tdGhlLWVtYWlsLWxpbms"}))]
pub struct TokenBody {
    /// The token from the emailed link.
    pub token: String,
}

/// Whether `format` asks for CSV (`csv`) rather than JSON (absent or `json`); 400 otherwise.
pub fn wants_csv(format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(_) => Err(ApiError::new(ErrorKind::InvalidArgument, "request.invalid_query")
            .with_param("detail", "format must be json or csv")
            .with_field("format", "invalid")),
    }
}

/// `text/csv`, with no charset or UTF-8 (the services read UTF-8 only).
pub(crate) fn is_csv(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            m.type_() == mime::TEXT
                && m.subtype() == "csv"
                && m.get_param(mime::CHARSET)
                    .is_none_or(|c| c == mime::UTF_8 || c.as_str().eq_ignore_ascii_case("utf8"))
        })
}

/// The document's schema of a CSV file: a binary string, described, with an example file.
pub(crate) fn csv_schema(description: &str, example: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .description(Some(description))
        .examples([serde_json::json!(example)])
        .into()
}

/// A CSV download named `file`.
pub fn csv_response(file: &str, body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        body,
    )
        .into_response()
}

// ---------- streamed uploads ----------

/// Largest data message sent upstream; HTTP frames are usually far smaller, but one frame must
/// never approach the gRPC message limit.
const UPLOAD_CHUNK_BYTES: usize = 1024 * 1024;

/// How long a client has to send a file; slower uploads are refused (and nothing is kept).
pub const UPLOAD_TIME: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Why an upload stopped before the end of the file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cut {
    Broken,
    TooSlow,
}

/// How one service's upload messages are made from the request body.
pub(crate) struct UploadParts<M> {
    pub data: fn(bytes::Bytes) -> M,
    /// Sent once the body is complete: only it finishes an upload.
    pub end: fn() -> M,
    /// A message the service refuses at once.
    pub broken: fn() -> M,
    /// Past this the body is not read further.
    pub max_bytes: u64,
}

/// The upload as it goes upstream.
struct Upload<M> {
    body: axum::body::BodyDataStream,
    read: u64,
    pending: bytes::Bytes,
    last: bool,
    deadline: tokio::time::Instant,
    cut: Option<tokio::sync::oneshot::Sender<Cut>>,
    parts: UploadParts<M>,
}

/// The request body as data messages, as the client sends it, read as it arrives (never whole).
///
/// Past the size limit, the chunk that crossed it still goes and the stream ends: the service
/// then counts more than it takes and refuses the file with its own 413, and the gateway reads
/// no further.
///
/// An upload that breaks off or runs out of time must never look finished, or the part received
/// would be taken for the whole file. Only the `end` message, sent once the body is complete,
/// finishes an upload; a stream that stops without it is refused by the service. On a broken
/// body the stream sends the `broken` message, which the service refuses at once; `cut` tells
/// the handler why.
pub(crate) fn upload_messages<M: Send + 'static>(
    body: axum::body::Body,
    deadline: tokio::time::Instant,
    cut: tokio::sync::oneshot::Sender<Cut>,
    parts: UploadParts<M>,
) -> impl futures::Stream<Item = M> + Send + 'static {
    let start = Upload {
        body: body.into_data_stream(),
        read: 0,
        pending: bytes::Bytes::new(),
        last: false,
        deadline,
        cut: Some(cut),
        parts,
    };
    futures::stream::unfold(start, |mut u| async move {
        use futures::StreamExt as _;
        loop {
            if !u.pending.is_empty() {
                let piece = u.pending.split_to(u.pending.len().min(UPLOAD_CHUNK_BYTES));
                return Some(((u.parts.data)(piece), u));
            }
            if u.last {
                return None;
            }
            let why = match tokio::time::timeout_at(u.deadline, u.body.next()).await {
                // The whole file arrived: say so (a stream that just closes keeps nothing).
                Ok(None) => {
                    u.last = true;
                    return Some(((u.parts.end)(), u));
                }
                Ok(Some(Ok(frame))) => {
                    u.read += frame.len() as u64;
                    u.last = u.read > u.parts.max_bytes;
                    u.pending = frame;
                    continue;
                }
                Ok(Some(Err(e))) => {
                    tracing::info!(error = %e, read = u.read, "upload broke off");
                    Cut::Broken
                }
                Err(_) => {
                    tracing::info!(read = u.read, "upload too slow");
                    Cut::TooSlow
                }
            };
            if let Some(tx) = u.cut.take() {
                let _ = tx.send(why);
            }
            u.last = true;
            return Some(((u.parts.broken)(), u));
        }
    })
}

/// Runs an upload call to its end on a task of its own, so it is never cancelled half-way (see
/// [`upload_messages`]): if the handler is dropped (the client went away), the upload still
/// ends with the service's refusal. A body that broke off is `interrupted`, one too slow a
/// timeout, whatever the service answered.
pub(crate) async fn finish_upload<T: Send + 'static>(
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'static,
    mut cut: tokio::sync::oneshot::Receiver<Cut>,
    interrupted: &'static str,
) -> Result<T, ApiError> {
    use tracing::Instrument as _;
    let call = tokio::spawn(RequestContext::current().scope(call).in_current_span());
    let answer = call.await.map_err(|e| ApiError::from(nexus_kernel::Error::internal(e)))?;
    match cut.try_recv() {
        Ok(Cut::Broken) => Err(ApiError::new(ErrorKind::InvalidArgument, interrupted)),
        Ok(Cut::TooSlow) => Err(ApiError::new(ErrorKind::DeadlineExceeded, "request.timeout")),
        Err(_) => Ok(answer?.into_inner()),
    }
}

// ---------- files behind signed links ----------

/// One byte range a request asks for (RFC 9110 §14.1.2): `start-[end]`, or the last `suffix`
/// bytes when that is not 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RangeAsk {
    pub start: u64,
    pub end: Option<u64>,
    pub suffix: u64,
}

/// A `Range` header's one byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`. Anything else
/// (other units, several ranges, malformed) is ignored and the whole file is sent, as the RFC
/// allows.
fn parse_range(headers: &HeaderMap) -> Option<RangeAsk> {
    let v = headers.get(axum::http::header::RANGE)?.to_str().ok()?;
    parse_range_value(v)
}

fn parse_range_value(v: &str) -> Option<RangeAsk> {
    let spec = v.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => Some(RangeAsk { start: 0, end: None, suffix: num(b)? }),
        (false, true) => Some(RangeAsk { start: num(a)?, end: None, suffix: 0 }),
        (false, false) => {
            let (start, end) = (num(a)?, num(b)?);
            (end >= start).then_some(RangeAsk { start, end: Some(end), suffix: 0 })
        }
        (true, true) => None,
    }
}

/// A service's refusal of a range outside the file (`video.range_not_satisfiable`,
/// `ads.media_range_not_satisfiable`, with the file's size) as HTTP 416 with `Content-Range: bytes */size`; other refusals as they are.
fn open_refusal(status: tonic::Status) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    let error = nexus_platform::grpc::upstream_error(&status);
    let mut resp = axum::response::IntoResponse::into_response(ApiError::from(status));
    if error.code().ends_with("range_not_satisfiable") {
        let size = error.params().iter().find(|(k, _)| k == "size").map(|(_, v)| v.clone()).unwrap_or_default();
        *resp.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

/// A file behind a signed link: the request's one byte range (if any) handed to `open` (the
/// owning service's public RPC), then [`file_response`]; a range outside the file is 416.
pub(crate) async fn serve_file<Fut>(
    token: String,
    headers: &HeaderMap,
    open: impl FnOnce(nexus_proto::common::OpenFileRequest) -> Fut,
) -> Result<axum::response::Response, ApiError>
where
    Fut: std::future::Future<
            Output = Result<tonic::Response<tonic::Streaming<nexus_proto::common::FileChunk>>, tonic::Status>,
        >,
{
    use nexus_proto::common::OpenFileRequest;
    let req = match parse_range(headers) {
        Some(r) => OpenFileRequest { token, has_range: true, start: r.start, end: r.end, suffix_length: r.suffix },
        None => OpenFileRequest { token, ..Default::default() },
    };
    match open(req).await {
        Ok(stream) => file_response(stream.into_inner()).await,
        Err(status) => Ok(open_refusal(status)),
    }
}

/// A service's file stream as the response: the first message's head is awaited before
/// answering, so a failure to start is an error rather than a 200 with a broken body; then the
/// bytes as they come, with the file's type, length, range and name. An upstream failure
/// mid-way cuts the body short (the client sees fewer bytes than Content-Length and can resume
/// with a range).
async fn file_response(
    mut stream: tonic::Streaming<nexus_proto::common::FileChunk>,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::{HeaderValue, StatusCode, header};
    use futures::StreamExt as _;
    let head = stream
        .message()
        .await?
        .and_then(|m| m.head)
        .ok_or_else(|| ApiError::new(ErrorKind::Unavailable, "service.unavailable"))?;
    let body = stream.map(|m| m.map(|c| c.data));
    let length = if head.total_size == 0 { 0 } else { head.end - head.start + 1 };
    let body = body.map(|m| match m {
        Ok(data) => Ok(bytes::Bytes::from(data)),
        Err(status) => Err(std::io::Error::other(status.message().to_owned())),
    });
    let mut resp = axum::response::Response::new(axum::body::Body::from_stream(body));
    *resp.status_mut() = if head.partial { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let h = resp.headers_mut();
    let ct = if head.content_type.is_empty() { "application/octet-stream".to_owned() } else { head.content_type };
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set(h, header::CONTENT_TYPE, ct);
    set(h, header::CONTENT_LENGTH, length.to_string());
    set(h, header::ACCEPT_RANGES, "bytes".into());
    set(h, header::CACHE_CONTROL, "private, max-age=300".into());
    set(h, header::CONTENT_DISPOSITION, format!("inline; filename=\"{}\"", head.filename));
    if head.partial {
        set(h, header::CONTENT_RANGE, format!("bytes {}-{}/{}", head.start, head.end, head.total_size));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_amounts_convert_exactly_both_ways() {
        assert_eq!(decimal_to_minor("19.99", 2), Some(1999));
        assert_eq!(decimal_to_minor("19.9", 2), Some(1990));
        assert_eq!(decimal_to_minor("19.990", 2), Some(1999), "trailing zeros are not extra decimals");
        assert_eq!(decimal_to_minor("1500", 0), Some(1500));
        assert_eq!(decimal_to_minor("1.250", 3), Some(1250));
        assert_eq!(decimal_to_minor("0.1", 2).zip(decimal_to_minor("0.2", 2)).map(|(a, b)| a + b), Some(30));
        assert_eq!(decimal_to_minor("999999999999999.999", 3), Some(999_999_999_999_999_999));
        for bad in ["19.999", "-1", "1e3", "", ".5", "5.", "1.2.3", " 1", "1,50", "0x10", "1.0000", "1234567890123456"]
        {
            assert_eq!(decimal_to_minor(bad, 2), None, "{bad:?}");
        }
        assert_eq!(decimal_to_minor("19.5", 0), None);
        assert_eq!(minor_to_decimal(1999, 2), "19.99");
        assert_eq!(minor_to_decimal(5, 2), "0.05");
        assert_eq!(minor_to_decimal(1500, 0), "1500");
        assert_eq!(minor_to_decimal(1250, 3), "1.250");
        assert_eq!(minor_to_decimal(-5, 2), "-0.05");
    }

    #[test]
    fn money_bodies_name_the_bad_part() {
        let body = |amount: &str, currency: &str| DecimalMoneyBody { amount: amount.into(), currency: currency.into() };
        let m = body("1999.90", "BRL").to_proto().unwrap();
        assert_eq!((m.amount_minor, m.currency.as_str()), (199_990, "BRL"));
        assert_eq!(DecimalMoneyBody::from(m).amount, "1999.90");
        assert_eq!(body("1.999", "USD").to_proto().unwrap_err().code(), "messaging.invalid_amount");
        assert_eq!(body("1", "XYZ").to_proto().unwrap_err().code(), "money.unsupported_currency");
    }

    #[test]
    fn ranges_parse_like_rfc_9110() {
        let r = parse_range_value("bytes=0-99").unwrap();
        assert_eq!((r.start, r.end, r.suffix), (0, Some(99), 0));
        let r = parse_range_value("bytes=100-").unwrap();
        assert_eq!((r.start, r.end), (100, None));
        assert_eq!(parse_range_value("bytes=-500").unwrap().suffix, 500);
        for ignored in
            ["bytes=0-1,5-9", "items=0-1", "bytes=9-1", "bytes=-", "bytes=a-b", "bytes=99999999999999999999-"]
        {
            assert!(parse_range_value(ignored).is_none(), "{ignored}");
        }
    }
}
