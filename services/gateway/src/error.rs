//! The one error envelope of the public API:
//! `{"error":{"code":"…","message":"<localized>","request_id":"…"}}`.
//!
//! Handlers return [`ApiError`], which only records what went wrong; the edge middleware renders
//! the envelope in the caller's language with the request id, and also turns error responses made
//! by layers (body limit, panics, unknown routes) into the same shape.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexus_kernel::{Error, ErrorKind, Locale};
use serde::Serialize;
use utoipa::ToSchema;

/// What a failed handler or layer produced; rendered into the envelope by the edge middleware.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: String,
    pub params: Vec<(String, String)>,
    pub fields: Vec<FieldError>,
}

#[derive(Debug)]
pub struct ApiError {
    error: Error,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, code: &'static str) -> Self {
        Error::new(kind, code).into()
    }

    pub fn with_param(mut self, key: &str, value: impl Into<String>) -> Self {
        self.error = self.error.with_param(key, value);
        self
    }

    pub fn with_field(mut self, field: impl Into<String>, code: impl Into<String>) -> Self {
        self.error = self.error.with_violation(field, code);
        self
    }

    /// Names a field the way the public body does where the upstream request names it otherwise
    /// (`filter_json` of the proto is `filter` in JSON), so `fields` points at what the client sent.
    pub fn renaming_field(self, upstream: &str, public: &str) -> Self {
        let e = &self.error;
        if !e.violations().iter().any(|v| v.field == upstream) {
            return self;
        }
        let mut renamed = Error::new(e.kind(), e.code().to_owned());
        for (k, v) in e.params() {
            renamed = renamed.with_param(k.clone(), v.clone());
        }
        for v in e.violations() {
            let field = if v.field == upstream { public.to_owned() } else { v.field.clone() };
            renamed = renamed.with_violation(field, v.code.clone());
        }
        Self { error: renamed, retry_after: self.retry_after }
    }

    /// Sets `Retry-After` (seconds) and the `retry_after` message argument.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self.error = self.error.with_param("retry_after", secs.to_string());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }

    pub fn code(&self) -> &str {
        self.error.code()
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// What the envelope is rendered from.
    pub fn info(&self) -> ErrorInfo {
        ErrorInfo {
            code: self.error.code().to_owned(),
            params: self.error.params().to_vec(),
            fields: self
                .error
                .violations()
                .iter()
                .map(|v| FieldError { field: v.field.clone(), code: v.code.clone() })
                .collect(),
        }
    }
}

/// `Retry-After` of a 503 when the service names no delay: a restarting service is usually back
/// within seconds.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        // Services say how long to wait in the `retry_after` parameter; it becomes the header.
        let named = || error.param("retry_after").and_then(|s| s.parse().ok());
        let retry_after = match error.kind() {
            ErrorKind::RateLimited => named(),
            ErrorKind::Unavailable => Some(named().unwrap_or(UNAVAILABLE_RETRY_AFTER_SECS)),
            _ => None,
        };
        Self { error, retry_after }
    }
}

/// The single gRPC -> HTTP mapping: status -> kernel error (by our detail, else by code) -> HTTP.
/// A call that died with its connection (the service crashed or restarted mid-request) is 503
/// `service.unavailable`, not 500.
impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let error = nexus_platform::grpc::upstream_error(&status);
        if error.kind() == ErrorKind::Internal || error.kind() == ErrorKind::Unavailable {
            tracing::warn!(grpc_code = ?status.code(), grpc_message = %status.message(), "upstream failure");
        }
        error.into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Transient (a callee restarting, a provider not answering): the client retries.
            tracing::warn!(error = ?self.error, "request failed, transiently");
        } else if status.is_server_error() {
            // The cause chain goes to the log, never to the client.
            tracing::error!(error = ?self.error, "request failed");
        }
        let info = self.info();
        let mut resp = status.into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp.extensions_mut().insert(info);
        resp
    }
}

/// The envelope of an error in `locale`: the one renderer of every error body, JSON responses
/// (through the edge) and event-stream `error` events alike. 5xx bodies say nothing internal:
/// the generic message for the class, whatever the code was, except where the client acts on the
/// code (retry): a 503 (its codes are written for users: what is not answering, try again) and a
/// timeout.
pub fn envelope(status: StatusCode, info: ErrorInfo, locale: Locale, request_id: &str) -> ErrorEnvelope {
    let (code, message) =
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE && info.code != "request.timeout" {
            ("internal".to_owned(), nexus_i18n::error_message(locale, "internal", &[], status.as_u16()))
        } else {
            let msg = nexus_i18n::error_message(locale, &info.code, &info.params, status.as_u16());
            (info.code, msg)
        };
    ErrorEnvelope {
        error: ErrorBody {
            code,
            message,
            request_id: request_id.to_owned(),
            dir: locale.direction().as_str().to_owned(),
            fields: info.fields,
        },
    }
}

/// Response body of every error.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "request.malformed_json", "message": "The request body is not valid JSON.", "request_id": "req_0192f0c5c2b87c31a1f1e4f2b1a0c9d7", "dir": "ltr"}}))]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable dotted code to branch on, e.g. `subscriptions.insufficient_credits`.
    pub code: String,
    /// Human-readable message in the negotiated language.
    pub message: String,
    /// Quote this to support; also in the `x-request-id` header.
    pub request_id: String,
    /// Text direction of `message` (`rtl` for Hebrew and Arabic).
    pub dir: String,
    /// Field-level problems, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the offending field, e.g. `items[0].price`.
    pub field: String,
    pub code: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: tonic::Status) -> Response {
        ApiError::from(status).into_response()
    }

    #[test]
    fn a_service_that_dies_mid_request_is_503_with_retry_after() {
        let reset = tonic::Status::from_error(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
        let broken = tonic::Status::from(h2::Error::from(h2::Reason::INTERNAL_ERROR));
        for status in [
            reset,
            broken,
            tonic::Status::unknown("transport error"),
            tonic::Status::unavailable("tcp connect error"),
            tonic::Status::internal("h2 protocol error: error reading a body from connection"),
        ] {
            let resp = answer(status.clone());
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{status:?}");
            assert_eq!(resp.headers()[header::RETRY_AFTER], "1", "{status:?}");
            let info = resp.extensions().get::<ErrorInfo>().unwrap();
            assert_eq!(info.code, "service.unavailable");
        }
    }

    #[test]
    fn a_service_s_own_answers_keep_their_status() {
        let own: tonic::Status = Error::new(ErrorKind::Unavailable, "provider.unavailable").into();
        let resp = answer(own);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.extensions().get::<ErrorInfo>().unwrap().code, "provider.unavailable");
        assert!(resp.headers().contains_key(header::RETRY_AFTER));
        let bug: tonic::Status = Error::internal("bug").into();
        let resp = answer(bug);
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!resp.headers().contains_key(header::RETRY_AFTER));
        let paid: tonic::Status = Error::new(ErrorKind::PaymentRequired, "subscriptions.insufficient_credits").into();
        assert_eq!(answer(paid).status(), StatusCode::PAYMENT_REQUIRED);
        assert_eq!(answer(tonic::Status::internal("no transport cause")).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
