//! The HTTP face of Toolsmith (SPEC §1): routes, the one error type, request ids, OpenAPI.
//!
//! Only this crate knows HTTP. Handlers translate between the seed's JSON shapes and the
//! store; every failure leaves as the seed's `ErrorResponse`, including those axum produces
//! itself (unknown route, wrong method, body too large), which [`context`] rewrites.
//!
//! # Layout
//! - `context.rs` — request ids, the access log, and rewriting bare error responses.
//! - `error.rs` — [`ApiError`] and `ErrorResponse`.
//! - `extract.rs` — JSON body, query and pagination extractors with seed-shaped rejections.
//! - `model.rs` — the JSON objects of the API (seed 002 names) and their conversions.
//! - `openapi.rs` — the OpenAPI 3.1 document and Swagger UI.
//! - `routes/` — one module per resource.
//! - `state.rs` — [`AppState`].

mod context;
mod error;
mod extract;
mod model;
mod openapi;
mod routes;
mod state;

pub use error::ApiError;
pub use routes::tools::sandbox_ms;
pub use state::{
    ApiSettings, AppState, EXECUTIONS_BUFFER, ExecutionSink, Generation, JobEvents, NoWorkers,
    ToolFailure, ToolRunner,
};

use axum::Router;
use axum::extract::DefaultBodyLimit;

/// Largest request body accepted (SPEC §1).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1", routes::api_routes())
        .route("/metrics", axum::routing::get(routes::metrics::metrics))
        .merge(openapi::swagger())
        .fallback(context::unknown_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(context::request_context))
        .with_state(state)
}
