//! Local mail (development only): what auth would have sent when no mail server is configured.
//! A signed-in user reads the mail addressed to them on the public port (`/v1/me/mail`); the
//! whole mailbox is only on the admin listener (`/local/mail`), which is never exposed publicly,
//! and only when the gateway runs in development.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use nexus_kernel::{ErrorKind, Locale};
use std::sync::Arc;

use nexus_platform::grpc::ContextChannel;
use nexus_platform::identity::ServiceTokens;
use nexus_proto::nexus::auth::v1 as pb;
use nexus_proto::nexus::auth::v1::auth_client::AuthClient;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::ts;
use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;
use crate::identity::Authenticated;

/// The signed-in user's own mail, on the public port.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(my_mail))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MyMailQuery {
    /// At most this many messages, newest first.
    #[param(example = 10, minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct MailboxQuery {
    pub to: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocalMailBody {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub locale: String,
    /// Text direction of `subject` and `body`.
    pub dir: String,
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocalMailList {
    pub items: Vec<LocalMailBody>,
}

fn limit(l: Option<u32>) -> Result<u32, ApiError> {
    match l {
        None => Ok(20),
        Some(n @ 1..=100) => Ok(n),
        Some(_) => Err(ApiError::new(ErrorKind::InvalidArgument, "request.invalid_page_size").with_param("max", "100")),
    }
}

async fn fetch(auth: ContextChannel, to: String, limit: u32) -> Result<LocalMailList, ApiError> {
    let items = AuthClient::new(auth)
        .list_local_mail(pb::ListLocalMailRequest { to, limit })
        .await?
        .into_inner()
        .items
        .into_iter()
        .map(|m| {
            let dir = m.locale.parse::<Locale>().unwrap_or_default().direction().as_str().to_owned();
            LocalMailBody {
                id: m.id,
                to: m.to,
                subject: m.subject,
                body: m.body,
                locale: m.locale,
                dir,
                created_at: ts(m.created_at),
            }
        })
        .collect();
    Ok(LocalMailList { items })
}

/// DEVELOPMENT ONLY: mail the platform would have sent to the signed-in user (verification,
/// invitations, notices), newest first. Auth answers only mail addressed to the caller's own
/// email. Refused (409) when real mail is configured.
#[utoipa::path(get, path = "/v1/me/mail", tag = "local", params(MyMailQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Newest first", body = LocalMailList),
        (status = 400, description = "Limit out of range", body = ErrorEnvelope),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 409, description = "Mail is not in local mode", body = ErrorEnvelope)))]
pub async fn my_mail(
    State(state): State<AppState>,
    Authenticated(_caller): Authenticated,
    ApiQuery(q): ApiQuery<MyMailQuery>,
) -> Result<Json<LocalMailList>, ApiError> {
    // The forwarded bearer is the user's own; auth restricts the list to their address.
    Ok(Json(fetch(state.upstreams.auth.clone(), String::new(), limit(q.limit)?).await?))
}

/// The whole local mailbox for the admin listener (development only; see `crate::run`). Auth
/// lists anyone's mail only to a service, so the gateway asks with its own service token.
pub fn admin_router(auth: ContextChannel, tokens: Arc<ServiceTokens>) -> Router {
    Router::new().route("/local/mail", get(mailbox)).with_state((auth, tokens))
}

async fn mailbox(
    State((auth, tokens)): State<(ContextChannel, Arc<ServiceTokens>)>,
    Query(q): Query<MailboxQuery>,
) -> Result<Json<LocalMailList>, ApiError> {
    let limit = limit(q.limit)?;
    let as_gateway = tokens.context(None).await?;
    Ok(Json(as_gateway.scope(fetch(auth, q.to.unwrap_or_default(), limit)).await?))
}
