//! Routes under `/api/v1`.

pub mod health;
pub mod jobs;
pub mod sessions;

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
}
