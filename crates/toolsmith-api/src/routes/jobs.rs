use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use toolsmith_domain::ids::{new_job_id, new_object_id};
use toolsmith_domain::requirement::{RequestProblem, validate_job_request};
use toolsmith_domain::time::now_ms;
use toolsmith_domain::{ErrorCode, JobStatus};
use toolsmith_store::{CancelOutcome, JobRecord, NewJob};
use utoipa::IntoParams;

use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, PageParams, Query};
use crate::model::{JobResponse, ListResponse};
use crate::{AppState, Generation};

pub const USER_HEADER: &str = "x-user-id";
pub const ANONYMOUS: &str = "anonymous";

/// The caller: `X-User-Id` until authentication arrives, else `anonymous`.
pub fn user_id(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get(USER_HEADER) else {
        return Ok(ANONYMOUS.to_owned());
    };
    let text = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 128 && !t.chars().any(char::is_control))
        .ok_or_else(|| {
            ApiError::invalid_request("X-User-Id must be 1 to 128 printable characters")
        })?;
    Ok(text.to_owned())
}

async fn job_response(state: &AppState, job: &JobRecord) -> Result<JobResponse, ApiError> {
    let files = if job.status.is_finished() {
        Some(state.store.job_tool_files(&job.id).await?)
    } else {
        None
    };
    Ok(JobResponse::new(job, files.as_deref()))
}

/// Create a tool generation job.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs",
    request_body = crate::model::ToolGenerationRequest,
    params(("X-User-Id" = Option<String>, Header, description = "The caller until authentication arrives")),
    responses(
        (status = 202, description = "Accepted; poll the Location", body = JobResponse,
            headers(("Location" = String, description = "/api/v1/jobs/{jobId}"))),
        (status = 400, description = "Malformed request", body = ErrorResponse),
        (status = 413, description = "Body over 1 MiB", body = ErrorResponse),
        (status = 422, description = "Invalid tool requirement", body = ErrorResponse),
        (status = 503, description = "No LLM configured or store unavailable", body = ErrorResponse),
    ))]
pub async fn create_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let user_id = user_id(&headers)?;
    let request = validate_job_request(&body.0).map_err(|problem| match problem {
        RequestProblem::Malformed(errors) => {
            let summary = errors
                .iter()
                .map(|e| format!("{} {}", e.path, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            ApiError::invalid_request(format!("invalid request: {summary}"))
                .with_details(json!({ "errors": errors }))
        }
        RequestProblem::Requirements(errors) => {
            let summary = errors
                .iter()
                .map(|e| format!("{} {}", e.path, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            ApiError::new(
                ErrorCode::InvalidToolRequirement,
                format!("invalid tool requirements: {summary}"),
            )
            .with_details(json!({ "errors": errors }))
        }
    })?;
    if let Generation::Unavailable(why) = &state.settings.generation {
        return Err(ApiError::unavailable(why.clone()));
    }

    let now = now_ms();
    let deadline_ms = i64::try_from(state.settings.job_deadline.as_millis()).unwrap_or(i64::MAX);
    let job = NewJob {
        id: new_job_id(),
        session_id: new_object_id(),
        user_id,
        metadata: request.metadata,
        requirements: request.requirements,
        created_at: now,
        deadline_at: now.saturating_add(deadline_ms),
    };
    let job_id = job.id.clone();
    let record = state.store.create_job(job).await?;
    state.jobs.created();
    tracing::info!(%job_id, "job created");

    let body = JobResponse::new(&record, None);
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/jobs/{job_id}")) {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

/// Get a job's status, progress and, once finished, its tools and failures.
#[utoipa::path(get, path = "/api/v1/jobs/{jobId}", tag = "jobs",
    params(("jobId" = String, Path, description = "job_ + 24 hex characters")),
    responses(
        (status = 200, body = JobResponse),
        (status = 404, description = "JOB_NOT_FOUND", body = ErrorResponse),
    ))]
pub async fn get_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<JobResponse>, ApiError> {
    let job = state
        .store
        .get_job(&job_id)
        .await?
        .ok_or_else(|| ApiError::job_not_found(&job_id))?;
    Ok(Json(job_response(&state, &job).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobListParams {
    /// Only jobs with this status: pending, running, completed, failed, cancelled.
    pub status: Option<String>,
}

/// List jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    params(JobListParams, PageParams),
    responses(
        (status = 200, body = ListResponse<JobResponse>),
        (status = 400, description = "Invalid status, limit or cursor", body = ErrorResponse),
    ))]
pub async fn list_jobs(
    State(state): State<AppState>,
    Query(filter): Query<JobListParams>,
    Query(page): Query<PageParams>,
) -> Result<Json<ListResponse<JobResponse>>, ApiError> {
    let status = filter
        .status
        .as_deref()
        .map(|s| {
            JobStatus::parse(s).ok_or_else(|| {
                ApiError::invalid_request(format!(
                    "unknown job status {s:?}; expected one of {}",
                    JobStatus::names()
                ))
            })
        })
        .transpose()?;
    let page = state.store.list_jobs(status, &page.page()?).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for job in &page.items {
        items.push(job_response(&state, job).await?);
    }
    Ok(Json(ListResponse {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// Cancel a pending or running job; running requirements stop at once.
#[utoipa::path(post, path = "/api/v1/jobs/{jobId}/cancel", tag = "jobs",
    params(("jobId" = String, Path)),
    responses(
        (status = 200, description = "Cancelled", body = JobResponse),
        (status = 404, description = "JOB_NOT_FOUND", body = ErrorResponse),
        (status = 409, description = "JOB_CANCELLED or JOB_ALREADY_COMPLETED", body = ErrorResponse),
    ))]
pub async fn cancel_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<JobResponse>, ApiError> {
    match state.store.cancel_job(&job_id, now_ms()).await? {
        CancelOutcome::Cancelled(job) => {
            state.jobs.cancelled(&job_id);
            tracing::info!(%job_id, "job cancelled");
            Ok(Json(job_response(&state, &job).await?))
        }
        CancelOutcome::AlreadyCancelled => Err(ApiError::new(
            ErrorCode::JobCancelled,
            format!("job {job_id} was already cancelled"),
        )
        .with_job(&job_id)),
        CancelOutcome::AlreadyFinished(status) => Err(ApiError::new(
            ErrorCode::JobAlreadyCompleted,
            format!("job {job_id} has already finished ({status}) and cannot be cancelled"),
        )
        .with_job(&job_id)),
        CancelOutcome::NotFound => Err(ApiError::job_not_found(&job_id)),
    }
}
