//! The OpenAPI 3.1 document, generated from the handlers' annotations, and Swagger UI.

use axum::Router;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::routes::{buffers, health, jobs, metrics, sessions, tools};

#[derive(OpenApi)]
#[openapi(
    info(title = "Toolsmith", description = "Turns natural-language tool requirements into tested, versioned, sandboxed Python tools."),
    paths(
        health::health,
        jobs::create_job, jobs::list_jobs, jobs::get_job, jobs::cancel_job,
        sessions::get_session, sessions::session_tools, sessions::session_status,
        sessions::session_logs, sessions::sessions_of_user, sessions::sessions_with_status,
        tools::list_tools, tools::get_tool, tools::tool_versions, tools::tool_version,
        tools::rollback, tools::deprecate, tools::docs, tools::manifest, tools::execute,
        tools::executions,
        buffers::list_buffers, buffers::buffer_status, buffers::flush, buffers::clear,
        metrics::metrics,
    ),
    components(schemas(crate::error::ErrorResponse)),
    tags(
        (name = "health"),
        (name = "jobs", description = "Tool generation jobs"),
        (name = "sessions", description = "The workflow behind each job"),
        (name = "tools", description = "The registry of generated tools"),
        (name = "buffers", description = "The durable write buffers (execution logs)"),
    )
)]
pub struct ApiDoc;

pub fn swagger() -> Router<AppState> {
    SwaggerUi::new("/docs")
        .url("/api/v1/openapi.json", ApiDoc::openapi())
        .into()
}
