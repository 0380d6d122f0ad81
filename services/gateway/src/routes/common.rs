//! Request and response pieces the route modules share: upstream clients, timestamps, paging,
//! money, idempotency keys, text direction and the signed-in session bodies. Handler modules
//! import from here only, never from one another.

use axum::http::HeaderMap;
use nexus_platform::grpc::ContextChannel;
use nexus_proto::common::{Money, PageInfo, PageRequest};
use nexus_proto::nexus::analytics::v1::TimeRange;
use nexus_proto::nexus::analytics::v1::analytics_client::AnalyticsClient;
use nexus_proto::nexus::auth::v1 as auth_pb;
use nexus_proto::nexus::auth::v1::auth_client::AuthClient;
use nexus_proto::nexus::content::v1::content_client::ContentClient;
use nexus_proto::nexus::messaging::v1::contact_transfer_client::ContactTransferClient;
use nexus_proto::nexus::messaging::v1::contacts_client::ContactsClient;
use nexus_proto::nexus::subscriptions::v1::subscriptions_client::SubscriptionsClient;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::edge::Edge;

// ---------- upstream clients ----------

pub(crate) fn auth_client(state: &AppState) -> AuthClient<ContextChannel> {
    nexus_platform::sized!(AuthClient::new(state.upstreams.auth.clone()))
}

pub(crate) fn subscriptions_client(state: &AppState) -> SubscriptionsClient<ContextChannel> {
    nexus_platform::sized!(SubscriptionsClient::new(state.upstreams.subscriptions.clone()))
}

pub(crate) fn content_client(state: &AppState) -> ContentClient<ContextChannel> {
    nexus_platform::sized!(ContentClient::new(state.upstreams.content.clone()))
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

pub(crate) fn analytics_client(state: &AppState) -> AnalyticsClient<ContextChannel> {
    nexus_platform::sized!(AnalyticsClient::new(state.upstreams.analytics.clone()))
}

// ---------- scalars ----------

/// A protobuf timestamp as RFC 3339, absent when unset.
pub(crate) fn ts(t: Option<prost_types::Timestamp>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(|d| d.to_rfc3339())
}

/// Proto strings use "" for "none"; JSON uses an absent field.
pub(crate) fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The client's `Idempotency-Key`, if any (validated by the service).
pub(crate) fn idempotency_key(headers: &HeaderMap) -> String {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
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
