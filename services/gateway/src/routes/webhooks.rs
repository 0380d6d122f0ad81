//! `/webhooks/{provider}`: provider callbacks passed, raw and unverified, to the owning service,
//! which checks the signature and answers. The gateway holds no provider secrets.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use nexus_kernel::ErrorKind;
use nexus_proto::nexus::webhooks::v1::DeliverWebhookRequest;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_client::WebhookReceiverClient;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, RawBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive, verify))
}

/// Receive a provider webhook (Stripe, Replicate, WhatsApp, Meta, TikTok, Shopify, …).
#[utoipa::path(
    post,
    path = "/webhooks/{provider}",
    tag = "webhooks",
    params(("provider" = String, Path, description = "Provider name", example = "stripe")),
    request_body(content = String, description = "The provider's payload, passed on byte for byte", content_type = "application/json",
        example = json!({"id": "evt_1", "type": "checkout.session.completed"})),
    responses(
        (status = 200, description = "Accepted by the owning service (its body is passed back)"),
        (status = 400, description = "Signature or payload rejected by the owning service", body = crate::error::ErrorEnvelope),
        (status = 404, description = "Unknown provider", body = crate::error::ErrorEnvelope),
        (status = 503, description = "Owning service unavailable; providers retry", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn receive(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let Some(channel) = state.upstreams.webhook_owner(&provider) else {
        return Err(ApiError::new(ErrorKind::NotFound, "request.not_found"));
    };
    let method = req.method().to_string();
    let query = req.uri().query().unwrap_or("").to_owned();
    let mut headers = std::collections::HashMap::new();
    for (name, value) in req.headers() {
        if let Ok(v) = value.to_str() {
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|existing: &mut String| {
                    existing.push_str(", ");
                    existing.push_str(v);
                })
                .or_insert_with(|| v.to_owned());
        }
    }
    let RawBody(body) = <RawBody as axum::extract::FromRequest<AppState>>::from_request(req, &state).await?;
    let resp = nexus_platform::sized!(WebhookReceiverClient::new(channel.clone()))
        .deliver(DeliverWebhookRequest { provider, method, query, headers, body: body.to_vec() })
        .await?
        .into_inner();
    let status = u16::try_from(resp.status).ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
    if let Some(refused) = refusal(status, &resp.body) {
        return Err(refused);
    }
    let mut out = Response::new(Body::from(resp.body));
    *out.status_mut() = status;
    let content_type = if resp.content_type.is_empty() { "application/json".to_owned() } else { resp.content_type };
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        out.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Ok(out)
}

/// A service's 400 or 403 `{"error":{"code",…}}` as an [`ApiError`], so the edge renders the
/// envelope every other error has (request id, localized message, text direction).
fn refusal(status: StatusCode, body: &[u8]) -> Option<ApiError> {
    let kind = match status {
        StatusCode::BAD_REQUEST => ErrorKind::InvalidArgument,
        StatusCode::FORBIDDEN => ErrorKind::PermissionDenied,
        _ => return None,
    };
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = body.get("error")?;
    let mut refused = nexus_kernel::Error::new(kind, error.get("code")?.as_str()?.to_owned());
    if let Some(detail) = error.get("detail").and_then(serde_json::Value::as_str) {
        refused = refused.with_param("detail", detail);
    }
    Some(refused.into())
}

/// Subscription handshakes some providers make with GET (e.g. WhatsApp and Meta `hub.challenge`).
#[utoipa::path(
    get,
    path = "/webhooks/{provider}",
    tag = "webhooks",
    params(
        ("provider" = String, Path, description = "Provider name", example = "whatsapp"),
        ("hub.mode" = Option<String>, Query, example = "subscribe"),
        ("hub.verify_token" = Option<String>, Query, example = "my-verify-token"),
        ("hub.challenge" = Option<String>, Query, example = "1158201444"),
    ),
    responses(
        (status = 200, description = "The owning service's answer (the challenge, for Meta)"),
        (status = 403, description = "Verify token rejected by the owning service", body = crate::error::ErrorEnvelope),
        (status = 404, description = "Unknown provider", body = crate::error::ErrorEnvelope),
        (status = 503, description = "Owning service unavailable", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn verify(state: State<AppState>, provider: ApiPath<String>, req: Request) -> Result<Response, ApiError> {
    receive(state, provider, req).await
}
