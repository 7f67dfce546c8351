use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use toolsmith_domain::time::{format_ms, now_ms};

use crate::AppState;
use crate::model::HealthResponse;

/// Health of the service and its database.
#[utoipa::path(get, path = "/api/v1/health", tag = "health",
    responses(
        (status = 200, description = "Healthy", body = HealthResponse),
        (status = 503, description = "The database is unreachable", body = HealthResponse),
    ))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    let database_ok = match state.store.ping().await {
        Ok(()) => true,
        Err(err) => {
            tracing::error!(error = %crate::error::error_chain(&err), "health check: the database does not answer");
            false
        }
    };
    let body = HealthResponse {
        status: if database_ok { "healthy" } else { "unhealthy" }.to_owned(),
        timestamp: format_ms(now_ms()),
        version: state.settings.version.clone(),
        database: if database_ok {
            "connected"
        } else {
            "disconnected"
        }
        .to_owned(),
        sandbox: state.settings.sandbox.clone(),
    };
    let status = if database_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
