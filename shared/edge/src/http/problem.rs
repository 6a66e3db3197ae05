//! Errors at the HTTP edge, rendered as RFC 9457 problem details (`application/problem+json`).

use serde::Serialize;
use serde_json::Value;

use backoffice_domain::validation::FieldError;
use backoffice_store::StoreError;

use super::response::ApiResponse;

/// Stable problem type URIs are this base plus a slug; clients switch on them.
pub const PROBLEM_BASE: &str = "https://backoffice.example.com/problems/";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MalformedJson(String),
    #[error("{detail}")]
    InvalidBody { field: String, detail: String },
    #[error("{detail}")]
    InvalidParameter { field: String, detail: String },
    #[error("the request has {} invalid field(s)", .0.len())]
    Validation(Vec<FieldError>),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    #[error("{detail}")]
    Conflict {
        slug: &'static str,
        detail: String,
        current: Option<Value>,
    },
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed; retry later")]
    IdempotencyInProgress,
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::MalformedJson(_) | Self::InvalidParameter { .. } => 400,
            Self::InvalidBody { .. } | Self::Validation(_) | Self::IdempotencyKeyReused => 422,
            Self::PayloadTooLarge { .. } => 413,
            Self::UnsupportedMediaType => 415,
            Self::Conflict { .. } | Self::IdempotencyInProgress => 409,
            Self::PreconditionFailed(_) => 412,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    /// The slug of the problem type URI.
    /// The request fields this error is about (for logs: names, never values).
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Self::InvalidBody { field, .. } | Self::InvalidParameter { field, .. } => vec![field.as_str()],
            Self::Validation(errors) => errors.iter().map(|e| e.field.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    pub fn slug(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::MalformedJson(_) => "malformed-json",
            Self::InvalidBody { .. } => "invalid-body",
            Self::InvalidParameter { .. } => "invalid-parameter",
            Self::Validation(_) => "validation-error",
            Self::PayloadTooLarge { .. } => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Conflict { slug, .. } => slug,
            Self::PreconditionFailed(_) => "precondition-failed",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::IdempotencyInProgress => "idempotency-in-progress",
            Self::Unavailable(_) => "service-unavailable",
            Self::Internal(_) => "internal-error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "Authentication required",
            Self::Forbidden(_) => "Not allowed",
            Self::NotFound(_) => "Not found",
            Self::MalformedJson(_) => "Malformed JSON",
            Self::InvalidBody { .. } => "Invalid request body",
            Self::InvalidParameter { .. } => "Invalid parameter",
            Self::Validation(_) => "Validation failed",
            Self::PayloadTooLarge { .. } => "Payload too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::Conflict { .. } => "Conflict",
            Self::PreconditionFailed(_) => "Precondition failed",
            Self::IdempotencyKeyReused => "Idempotency key reused",
            Self::IdempotencyInProgress => "Request in progress",
            Self::Unavailable(_) => "Service unavailable",
            Self::Internal(_) => "Internal error",
        }
    }

    pub fn problem_type(&self) -> String {
        format!("{PROBLEM_BASE}{}", self.slug())
    }

    /// Render as problem+json. `instance` is the request path, `request_id` lets support find
    /// the logs of this very request.
    pub fn to_response(&self, instance: Option<&str>, request_id: Option<&str>) -> ApiResponse {
        let (field, errors, current) = match self {
            Self::InvalidBody { field, .. } | Self::InvalidParameter { field, .. } => {
                (Some(field.as_str()), None, None)
            }
            Self::Validation(errors) => (errors.first().map(|e| e.field.as_str()), Some(errors.as_slice()), None),
            Self::Conflict { current, .. } => (None, None, current.as_ref()),
            _ => (None, None, None),
        };
        let detail = match self {
            // Internal details stay in the logs, never in the answer.
            Self::Internal(_) => "an unexpected error occurred; it has been logged".to_owned(),
            Self::Validation(errors) if errors.len() == 1 => errors[0].detail.clone(),
            other => other.to_string(),
        };
        let problem = Problem {
            kind: self.problem_type(),
            title: self.title(),
            status: self.status(),
            detail,
            instance,
            field,
            errors,
            current,
            request_id,
        };
        let body = serde_json::to_string(&problem).unwrap_or_else(|_| format!("{{\"status\":{}}}", self.status()));
        let mut response = ApiResponse::new(self.status(), body).header("content-type", "application/problem+json");
        if matches!(self, Self::Unauthorized(_)) {
            response = response.header("www-authenticate", "Bearer");
        }
        if matches!(self, Self::IdempotencyInProgress | Self::Unavailable(_)) {
            response = response.header("retry-after", "1");
        }
        response
    }
}

/// Storage failures as the caller sees them: retry on unavailability, fix a bad cursor, and
/// for everything else our fault, never theirs.
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(detail) => {
                ApiError::Unavailable(format!("storage is unavailable, retry: {detail}"))
            }
            StoreError::InvalidCursor => ApiError::InvalidParameter {
                field: "cursor".into(),
                detail: "the cursor is invalid or expired".into(),
            },
            StoreError::Conflict(_) => ApiError::Conflict {
                slug: "conflict",
                detail: "the record changed meanwhile; nothing was applied".into(),
                current: None,
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}
