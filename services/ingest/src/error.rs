//! The one error type of the HTTP boundary, mapped once to status codes and
//! JSON bodies `{"error": "<code>", "message": "<human text>"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use uwl_api::ErrorCode;
use uwl_ledger::ReceiptId;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("a different result for this contract was already accepted")]
    Conflict { existing: ReceiptId },
    #[error("the task expired at {expires_at} (ms since the epoch)")]
    Expired { expires_at: u64 },
    #[error("{0}")]
    InvalidResult(String),
    #[error("this endpoint does not take that method")]
    MethodNotAllowed,
    /// Another status with its message (a framework rejection, rewritten as JSON).
    #[error("{message}")]
    Other { status: StatusCode, message: String },
    /// The client sent more than its rate allows.
    #[error("too many requests for this client: retry after {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    /// Retryable: the node cannot take the request now.
    #[error("{message}")]
    Unavailable { message: String, retry_after_s: u64 },
}

impl ApiError {
    pub fn unavailable(message: impl std::fmt::Display) -> Self {
        Self::Unavailable { message: message.to_string(), retry_after_s: 1 }
    }

    /// The error of a framework answer with `status` and body `text`.
    pub(crate) fn from_status(status: StatusCode, text: String) -> Self {
        let message = if text.trim().is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text };
        match status {
            StatusCode::BAD_REQUEST => Self::BadRequest(message),
            StatusCode::NOT_FOUND => Self::NotFound(message),
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::SERVICE_UNAVAILABLE => Self::unavailable(message),
            status => Self::Other { status, message },
        }
    }

    fn code(&self) -> (StatusCode, ErrorCode) {
        match self {
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            Self::Conflict { .. } => (StatusCode::CONFLICT, ErrorCode::Conflict),
            Self::Expired { .. } => (StatusCode::GONE, ErrorCode::Expired),
            Self::InvalidResult(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidResult),
            Self::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
            Self::Other { status, .. } if *status == StatusCode::PAYLOAD_TOO_LARGE => (*status, ErrorCode::PayloadTooLarge),
            Self::Other { status, .. } if *status == StatusCode::UNSUPPORTED_MEDIA_TYPE => (*status, ErrorCode::UnsupportedMediaType),
            Self::Other { status, .. } if status.is_server_error() => (*status, ErrorCode::Internal),
            Self::Other { status, .. } => (*status, ErrorCode::BadRequest),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.code();
        let receipt_id = match &self {
            Self::Conflict { existing } => Some(*existing),
            _ => None,
        };
        let body = uwl_api::ErrorBody { error: code, message: self.to_string(), receipt_id };
        let mut resp = (status, Json(body)).into_response();
        if let Self::Unavailable { retry_after_s, .. } | Self::RateLimited { retry_after_s } = &self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
