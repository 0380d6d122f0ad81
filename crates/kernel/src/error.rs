//! The one error type of NexusOne. Every failure has a kind (what class of problem, which decides
//! the gRPC and HTTP status) and a stable dotted code (what exactly, which decides the localized
//! message and what clients branch on). Internal causes are kept for logs and never shown.

use std::borrow::Cow;
use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidArgument,
    Unprocessable,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    MethodNotAllowed,
    Conflict,
    FailedPrecondition,
    PaymentRequired,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    DeadlineExceeded,
    Unavailable,
    NotImplemented,
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 16] = [
        Self::InvalidArgument,
        Self::Unprocessable,
        Self::Unauthenticated,
        Self::PermissionDenied,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::FailedPrecondition,
        Self::PaymentRequired,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::RateLimited,
        Self::DeadlineExceeded,
        Self::Unavailable,
        Self::NotImplemented,
        Self::Internal,
    ];

    /// HTTP status the gateway answers with.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::InvalidArgument => 400,
            Self::Unauthenticated => 401,
            Self::PaymentRequired => 402,
            Self::PermissionDenied => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict | Self::FailedPrecondition => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Unprocessable => 422,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::NotImplemented => 501,
            Self::Unavailable => 503,
            Self::DeadlineExceeded => 504,
        }
    }

    /// gRPC status code number (grpc/status.proto), so this crate stays free of tonic.
    pub const fn grpc_code(self) -> i32 {
        match self {
            Self::InvalidArgument
            | Self::Unprocessable
            | Self::PayloadTooLarge
            | Self::UnsupportedMediaType
            | Self::MethodNotAllowed => 3,
            Self::DeadlineExceeded => 4,
            Self::NotFound => 5,
            Self::Conflict => 6,
            Self::PermissionDenied => 7,
            Self::RateLimited => 8,
            Self::FailedPrecondition | Self::PaymentRequired => 9,
            Self::NotImplemented => 12,
            Self::Internal => 13,
            Self::Unavailable => 14,
            Self::Unauthenticated => 16,
        }
    }

    /// Best kind for a bare gRPC code (a status without our detail, e.g. from a proxy).
    pub const fn from_grpc_code(code: i32) -> Self {
        match code {
            3 | 11 => Self::InvalidArgument,
            4 => Self::DeadlineExceeded,
            5 => Self::NotFound,
            6 | 10 => Self::Conflict,
            7 => Self::PermissionDenied,
            8 => Self::RateLimited,
            9 => Self::FailedPrecondition,
            12 => Self::NotImplemented,
            1 | 14 => Self::Unavailable,
            16 => Self::Unauthenticated,
            _ => Self::Internal,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::Unprocessable => "unprocessable",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::FailedPrecondition => "failed_precondition",
            Self::PaymentRequired => "payment_required",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited => "rate_limited",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Unavailable => "unavailable",
            Self::NotImplemented => "not_implemented",
            Self::Internal => "internal",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The generic code used when nothing more specific is known (e.g. `request.not_found`).
    pub const fn generic_code(self) -> &'static str {
        match self {
            Self::InvalidArgument => "request.invalid",
            Self::Unprocessable => "request.unprocessable",
            Self::Unauthenticated => "auth.unauthenticated",
            Self::PermissionDenied => "auth.permission_denied",
            Self::NotFound => "request.not_found",
            Self::MethodNotAllowed => "request.method_not_allowed",
            Self::Conflict => "request.conflict",
            Self::FailedPrecondition => "request.failed_precondition",
            Self::PaymentRequired => "subscriptions.payment_required",
            Self::PayloadTooLarge => "request.body_too_large",
            Self::UnsupportedMediaType => "request.unsupported_media_type",
            Self::RateLimited => "request.rate_limited",
            Self::DeadlineExceeded => "request.timeout",
            Self::Unavailable => "service.unavailable",
            Self::NotImplemented => "request.not_implemented",
            Self::Internal => "internal",
        }
    }
}

/// A field-level validation problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub code: String,
}

pub struct Error {
    kind: ErrorKind,
    code: Cow<'static, str>,
    params: Vec<(String, String)>,
    violations: Vec<FieldViolation>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub fn new(kind: ErrorKind, code: impl Into<Cow<'static, str>>) -> Self {
        Self { kind, code: code.into(), params: Vec::new(), violations: Vec::new(), source: None }
    }

    pub fn invalid(code: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidArgument, code)
    }

    pub fn not_found(code: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotFound, code)
    }

    pub fn unauthenticated(code: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unauthenticated, code)
    }

    pub fn forbidden(code: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::PermissionDenied, code)
    }

    pub fn unavailable(code: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unavailable, code)
    }

    /// An unexpected failure. The cause is kept for logs; clients only see `internal`.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        let mut e = Self::new(ErrorKind::Internal, "internal");
        e.source = Some(cause.into());
        e
    }

    pub fn with_param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((key.into(), value.into()));
        self
    }

    pub fn with_violation(mut self, field: impl Into<String>, code: impl Into<String>) -> Self {
        self.violations.push(FieldViolation { field: field.into(), code: code.into() });
        self
    }

    pub fn with_source(mut self, cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        self.source = Some(cause.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn violations(&self) -> &[FieldViolation] {
        &self.violations
    }

    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("code", &self.code);
        if !self.params.is_empty() {
            d.field("params", &self.params);
        }
        if !self.violations.is_empty() {
            d.field("violations", &self.violations);
        }
        if let Some(s) = &self.source {
            d.field("source", &format_args!("{s}"));
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code, self.kind.name())?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(feature = "grpc")]
mod grpc {
    use prost::Message;

    use super::{Error, ErrorKind, FieldViolation};
    use nexus_proto::common::{ErrorDetail, FieldViolation as PbViolation};

    impl From<Error> for tonic::Status {
        /// Internal causes stay out of the status message: it crosses service boundaries.
        fn from(e: Error) -> Self {
            let detail = ErrorDetail {
                code: e.code.to_string(),
                params: e.params.iter().cloned().collect(),
                violations: e
                    .violations
                    .iter()
                    .map(|v| PbViolation { field: v.field.clone(), code: v.code.clone() })
                    .collect(),
                kind: e.kind.name().to_owned(),
            };
            tonic::Status::with_details(
                tonic::Code::from_i32(e.kind.grpc_code()),
                e.code.to_string(),
                detail.encode_to_vec().into(),
            )
        }
    }

    impl Error {
        /// The single gRPC -> domain mapping: our detail when present, else the bare code.
        pub fn from_status(status: &tonic::Status) -> Error {
            if let Ok(detail) = ErrorDetail::decode(status.details())
                && !detail.code.is_empty()
            {
                let kind = ErrorKind::from_name(&detail.kind)
                    .unwrap_or_else(|| ErrorKind::from_grpc_code(status.code() as i32));
                let mut params: Vec<(String, String)> = detail.params.into_iter().collect();
                params.sort();
                let mut e = Error::new(kind, detail.code);
                e.params = params;
                e.violations =
                    detail.violations.into_iter().map(|v| FieldViolation { field: v.field, code: v.code }).collect();
                return e;
            }
            let kind = ErrorKind::from_grpc_code(status.code() as i32);
            let mut e = Error::new(kind, kind.generic_code());
            if kind == ErrorKind::Internal {
                e.source = Some(format!("upstream status {:?}: {}", status.code(), status.message()).into());
            }
            e
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_name_and_round_trips() {
        let mut names = std::collections::HashSet::new();
        for k in ErrorKind::ALL {
            assert!(names.insert(k.name()));
            assert_eq!(ErrorKind::from_name(k.name()), Some(k));
            assert!((400..600).contains(&k.http_status()));
        }
    }

    #[test]
    fn client_errors_are_4xx_and_server_errors_5xx() {
        assert_eq!(ErrorKind::NotFound.http_status(), 404);
        assert_eq!(ErrorKind::RateLimited.http_status(), 429);
        assert_eq!(ErrorKind::PaymentRequired.http_status(), 402);
        assert_eq!(ErrorKind::Unavailable.http_status(), 503);
        assert_eq!(ErrorKind::from_grpc_code(ErrorKind::Unauthenticated.grpc_code()), ErrorKind::Unauthenticated);
    }

    #[test]
    fn display_keeps_cause_but_code_is_stable() {
        let e = Error::internal(std::io::Error::other("disk on fire"));
        assert_eq!(e.code(), "internal");
        assert!(e.to_string().contains("disk on fire"));
    }
}
