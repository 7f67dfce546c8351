//! Per-request context: the request id, the access log, and the guarantee that every error
//! response is an `ErrorResponse`.
//!
//! The request id is taken from a well-formed incoming `X-Request-Id` or made up, kept in a
//! task-local for the duration of the request (so `ApiError` can put it in the body without
//! every handler passing it along) and returned in the `X-Request-Id` header.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use toolsmith_domain::ids::new_request_id;

use crate::error::ApiError;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The current request's id (empty outside a request).
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

fn incoming_request_id(request: &Request) -> Option<String> {
    let value = request.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let well_formed = (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    well_formed.then(|| value.to_owned())
}

pub async fn request_context(request: Request, next: Next) -> Response {
    let request_id = incoming_request_id(&request).unwrap_or_else(new_request_id);
    let method = request.method().clone();
    let method_for_log = method.clone();
    let uri = request.uri().clone();
    let path = uri.path().to_owned();
    let started = Instant::now();

    // The handler runs in its own task so that a panic becomes a 500 `ErrorResponse`
    // instead of a dropped connection.
    let handled = tokio::spawn(REQUEST_ID.scope(request_id.clone(), next.run(request))).await;
    let mut response = REQUEST_ID
        .scope(request_id.clone(), async move {
            match handled {
                Ok(response) => ensure_error_body(response, &method, &uri),
                Err(err) => ApiError::internal(&HandlerPanicked(err.to_string())).into_response(),
            }
        })
        .await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    tracing::info!(
        request_id = %request_id,
        method = %method_for_log,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// Replaces a bare error response (axum's own 404/405/413/..., which are plain text) by an
/// `ErrorResponse`. JSON error bodies were shaped on purpose (an `ApiError`, the health
/// report) and are left alone.
fn ensure_error_body(response: Response, method: &Method, uri: &Uri) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => unknown_route_error(method, uri),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::invalid_request(format!("method {method} is not allowed on {}", uri.path()))
                .with_status(StatusCode::METHOD_NOT_ALLOWED)
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::body_too_large(),
        status if status.is_client_error() => ApiError::invalid_request(
            status
                .canonical_reason()
                .unwrap_or("the request was rejected"),
        )
        .with_status(status),
        _ => ApiError::internal(&UnrenderedError(status)),
    };
    let mut rendered = error.into_response();
    // Keep headers such as `Allow` from the original response.
    for (name, value) in response.headers() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            rendered.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rendered
}

#[derive(Debug)]
struct HandlerPanicked(String);

impl std::fmt::Display for HandlerPanicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the handler panicked: {}", self.0)
    }
}

impl std::error::Error for HandlerPanicked {}

#[derive(Debug)]
struct UnrenderedError(StatusCode);

impl std::fmt::Display for UnrenderedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a handler answered {} without an error body", self.0)
    }
}

impl std::error::Error for UnrenderedError {}

fn unknown_route_error(method: &Method, uri: &Uri) -> ApiError {
    ApiError::invalid_request(format!("no route for {method} {}", uri.path()))
        .with_status(StatusCode::NOT_FOUND)
}

/// The fallback for paths that match no route.
pub async fn unknown_route(method: Method, uri: Uri) -> Response {
    unknown_route_error(&method, &uri).into_response()
}
