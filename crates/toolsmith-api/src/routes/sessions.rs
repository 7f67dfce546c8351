use axum::Json;
use axum::extract::{Path, State};
use toolsmith_domain::SessionStatus;
use toolsmith_store::{SessionFilter, SessionRecord};

use crate::AppState;
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{PageParams, Query};
use crate::model::{
    GenerationLogBody, ListResponse, SessionResponse, SessionStatusResponse, ToolSummaryBody,
};

async fn find_session(state: &AppState, session_id: &str) -> Result<SessionRecord, ApiError> {
    state
        .store
        .get_session(session_id)
        .await?
        .ok_or_else(|| ApiError::not_found("session", session_id))
}

/// Get a session.
#[utoipa::path(get, path = "/api/v1/sessions/{session_id}", tag = "sessions",
    params(("session_id" = String, Path)),
    responses((status = 200, body = SessionResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_session(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Json<SessionResponse>, ApiError> {
    let session = find_session(&state, &session_id).await?;
    Ok(Json((&session).into()))
}

/// The tools a session produced.
#[utoipa::path(get, path = "/api/v1/sessions/{session_id}/tools", tag = "sessions",
    params(("session_id" = String, Path), PageParams),
    responses((status = 200, body = ListResponse<ToolSummaryBody>), (status = 404, body = ErrorResponse)))]
pub async fn session_tools(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<ListResponse<ToolSummaryBody>>, ApiError> {
    let page = page.page()?;
    find_session(&state, &session_id).await?;
    let tools = state.store.session_tools(&session_id, &page).await?;
    Ok(Json(ListResponse::from_page(tools, |r| r.into())))
}

/// The workflow's progress, requirement by requirement.
#[utoipa::path(get, path = "/api/v1/sessions/{session_id}/status", tag = "sessions",
    params(("session_id" = String, Path)),
    responses((status = 200, body = SessionStatusResponse), (status = 404, body = ErrorResponse)))]
pub async fn session_status(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Json<SessionStatusResponse>, ApiError> {
    let session = find_session(&state, &session_id).await?;
    let job = state
        .store
        .get_job(&session.job_id)
        .await?
        .ok_or_else(|| ApiError::job_not_found(&session.job_id))?;
    Ok(Json(SessionStatusResponse::new(&session, &job)))
}

/// The session's generation log (seed 000 `ToolGenerationLog`), oldest first.
#[utoipa::path(get, path = "/api/v1/sessions/{session_id}/logs", tag = "sessions",
    params(("session_id" = String, Path), PageParams),
    responses((status = 200, body = ListResponse<GenerationLogBody>), (status = 404, body = ErrorResponse)))]
pub async fn session_logs(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<ListResponse<GenerationLogBody>>, ApiError> {
    let page = page.page()?;
    find_session(&state, &session_id).await?;
    let logs = state.store.list_logs(&session_id, &page).await?;
    Ok(Json(ListResponse::from_page(logs, |r| r.into())))
}

/// A user's sessions, newest first.
#[utoipa::path(get, path = "/api/v1/sessions/user/{user_id}", tag = "sessions",
    params(("user_id" = String, Path), PageParams),
    responses((status = 200, body = ListResponse<SessionResponse>), (status = 400, body = ErrorResponse)))]
pub async fn sessions_of_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<ListResponse<SessionResponse>>, ApiError> {
    let sessions = state
        .store
        .list_sessions(SessionFilter::User(user_id), &page.page()?)
        .await?;
    Ok(Json(ListResponse::from_page(sessions, |r| r.into())))
}

/// Sessions with a status, newest first.
#[utoipa::path(get, path = "/api/v1/sessions/status/{status_value}", tag = "sessions",
    params(("status_value" = String, Path, description = "pending, planning, searching, implementing, executing, completed, failed or cancelled"), PageParams),
    responses((status = 200, body = ListResponse<SessionResponse>), (status = 400, body = ErrorResponse)))]
pub async fn sessions_with_status(
    State(state): State<AppState>,
    Path(status_value): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<ListResponse<SessionResponse>>, ApiError> {
    let status = SessionStatus::parse(&status_value).ok_or_else(|| {
        ApiError::invalid_request(format!(
            "unknown session status {status_value:?}; expected one of {}",
            SessionStatus::names()
        ))
    })?;
    let sessions = state
        .store
        .list_sessions(SessionFilter::Status(status), &page.page()?)
        .await?;
    Ok(Json(ListResponse::from_page(sessions, |r| r.into())))
}
