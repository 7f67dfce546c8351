//! The one error type of the HTTP layer.
//!
//! Each constructor says which code and status it answers with (the table is
//! `toolsmith_domain::ErrorCode`). `IntoResponse` renders the seed's `ErrorResponse` with the
//! request id; an internal error logs its cause and tells the client nothing of it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use toolsmith_domain::ErrorCode;
use toolsmith_domain::time::{format_ms, now_ms};
use toolsmith_store::StoreError;
use utoipa::ToSchema;

use crate::context;

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub status: StatusCode,
    pub message: String,
    pub details: Option<Value>,
    pub job_id: Option<String>,
}

/// Seed 002 `ErrorResponse`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// What went wrong, for people.
    pub error: String,
    /// What went wrong, for programs.
    #[schema(example = "INVALID_TOOL_REQUIREMENT")]
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    pub request_id: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            status: StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
            details: None,
            job_id: None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_job(mut self, job_id: &str) -> Self {
        self.job_id = Some(job_id.to_owned());
        self
    }

    /// 400 `INVALID_REQUEST`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    /// 404 `INVALID_REQUEST` naming the missing resource.
    pub fn not_found(resource: &str, id: &str) -> Self {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("{resource} {id:?} was not found"),
        )
        .with_status(StatusCode::NOT_FOUND)
        .with_details(serde_json::json!({"resource": resource, "id": id}))
    }

    /// 404 `JOB_NOT_FOUND`.
    pub fn job_not_found(job_id: &str) -> Self {
        ApiError::new(
            ErrorCode::JobNotFound,
            format!("job {job_id:?} was not found"),
        )
        .with_job(job_id)
    }

    /// 413 `INVALID_REQUEST`.
    pub fn body_too_large() -> Self {
        ApiError::invalid_request(format!(
            "the request body is larger than the {} byte limit",
            crate::MAX_BODY_BYTES
        ))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    }

    /// 500 `INTERNAL_ERROR`: logs `cause`, returns a generic message.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(request_id = %context::current_request_id(), cause = %error_chain(cause), "internal error");
        ApiError::new(
            ErrorCode::InternalError,
            "an unexpected error occurred; quote the request id when reporting it",
        )
    }

    /// 503 `SERVICE_UNAVAILABLE`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::ServiceUnavailable, message)
    }
}

/// An error and its sources, `: `-separated, for logs.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidCursor => {
                ApiError::invalid_request("the cursor is not one this service returned")
            }
            StoreError::Database(sqlx_err) if is_unavailable(&sqlx_err) => {
                tracing::error!(error = %error_chain(&sqlx_err), "the database is unavailable");
                ApiError::unavailable("the database is unavailable; try again shortly")
            }
            other => ApiError::internal(&other),
        }
    }
}

/// The database is down or too busy, as opposed to a bug: answer 503, not 500.
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        // SQLite's BUSY and LOCKED, with their extended variants.
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("5" | "6" | "261" | "517" | "262")
        ),
        _ => false,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: self.message,
            code: self.code.as_str().to_owned(),
            details: self.details,
            timestamp: format_ms(now_ms()),
            job_id: self.job_id,
            request_id: context::current_request_id(),
        };
        (self.status, axum::Json(body)).into_response()
    }
}
