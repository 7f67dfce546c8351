//! Routes under `/api/v1`.

pub mod buffers;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod sessions;
pub mod tools;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/jobs", post(jobs::create_job).get(jobs::list_jobs))
        .route("/jobs/{job_id}", get(jobs::get_job))
        .route("/jobs/{job_id}/cancel", post(jobs::cancel_job))
        .route("/sessions/user/{user_id}", get(sessions::sessions_of_user))
        .route(
            "/sessions/status/{status_value}",
            get(sessions::sessions_with_status),
        )
        .route("/sessions/{session_id}", get(sessions::get_session))
        .route("/sessions/{session_id}/tools", get(sessions::session_tools))
        .route(
            "/sessions/{session_id}/status",
            get(sessions::session_status),
        )
        .route("/sessions/{session_id}/logs", get(sessions::session_logs))
        .route("/tools", get(tools::list_tools))
        .route("/tools/{id}", get(tools::get_tool))
        .route("/tools/{id}/versions", get(tools::tool_versions))
        .route("/tools/{id}/versions/{version}", get(tools::tool_version))
        .route("/tools/{id}/rollback", post(tools::rollback))
        .route("/tools/{id}/deprecate", post(tools::deprecate))
        .route("/tools/{id}/docs", get(tools::docs))
        .route("/tools/{id}/manifest", get(tools::manifest))
        .route("/tools/{id}/execute", post(tools::execute))
        .route("/tools/{id}/executions", get(tools::executions))
        .route("/buffers", get(buffers::list_buffers))
        .route("/buffers/{id}", get(buffers::buffer_status))
        .route("/buffers/{id}/flush", post(buffers::flush))
        .route("/buffers/{id}/clear", post(buffers::clear))
}
