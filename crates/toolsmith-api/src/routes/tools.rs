//! The registry (SPEC §6): tools, their immutable versions, rollback, deprecation, generated
//! docs and manifests.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use toolsmith_domain::error_class::ErrorClass;
use toolsmith_domain::time::{format_ms, now_ms};
use toolsmith_store::{ExecutionRecord, RollbackOutcome, ToolFilter, ToolRecord, VersionRecord};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorResponse};
use axum::body::Bytes;

use crate::extract::{JsonBody, PageParams, Query};
use crate::model::{ExecutionBody, ListResponse, ToolBody, ToolDetail, VersionBody};

const STATUSES: &[&str] = &["draft", "registered", "deprecated", "failed"];

async fn find(state: &AppState, tool_id: &str) -> Result<ToolRecord, ApiError> {
    state
        .store
        .get_tool(tool_id)
        .await?
        .ok_or_else(|| ApiError::not_found("tool", tool_id))
}

async fn current(state: &AppState, tool: &ToolRecord) -> Result<VersionRecord, ApiError> {
    state
        .store
        .tool_version(&tool.id, &tool.current_version)
        .await?
        .ok_or_else(|| ApiError::not_found("tool version", &tool.current_version))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ToolListParams {
    /// Text searched in names and descriptions.
    pub q: Option<String>,
    /// draft, registered, deprecated or failed.
    pub status: Option<String>,
    pub tag: Option<String>,
    /// Only this user's tools.
    pub user: Option<String>,
}

/// List and search tools, newest first.
#[utoipa::path(get, path = "/api/v1/tools", tag = "tools", params(ToolListParams, PageParams),
    responses((status = 200, body = ListResponse<ToolBody>), (status = 400, body = ErrorResponse)))]
pub async fn list_tools(
    State(state): State<AppState>,
    Query(filter): Query<ToolListParams>,
    Query(page): Query<PageParams>,
) -> Result<Json<ListResponse<ToolBody>>, ApiError> {
    if let Some(status) = &filter.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::invalid_request(format!(
            "unknown tool status {status:?}; expected one of {}",
            STATUSES.join(", ")
        )));
    }
    let filter = ToolFilter {
        user_id: filter.user,
        text: filter.q.filter(|q| !q.trim().is_empty()),
        status: filter.status,
        tag: filter.tag,
    };
    let tools = state.store.list_tools(&filter, &page.page()?).await?;
    Ok(Json(ListResponse::from_page(tools, |t| t.into())))
}

/// A tool with its current version.
#[utoipa::path(get, path = "/api/v1/tools/{id}", tag = "tools", params(("id" = String, Path)),
    responses((status = 200, body = ToolDetail), (status = 404, body = ErrorResponse)))]
pub async fn get_tool(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ToolDetail>, ApiError> {
    let tool = find(&state, &id).await?;
    let version = current(&state, &tool).await?;
    Ok(Json(ToolDetail::new(&tool, &version)))
}

/// A tool's versions, newest first.
#[utoipa::path(get, path = "/api/v1/tools/{id}/versions", tag = "tools", params(("id" = String, Path), PageParams),
    responses((status = 200, body = ListResponse<VersionBody>), (status = 404, body = ErrorResponse)))]
pub async fn tool_versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<ListResponse<VersionBody>>, ApiError> {
    let page = page.page()?;
    find(&state, &id).await?;
    let versions = state.store.tool_versions(&id, &page).await?;
    Ok(Json(ListResponse::from_page(versions, |v| v.into())))
}

/// One version, in full.
#[utoipa::path(get, path = "/api/v1/tools/{id}/versions/{version}", tag = "tools",
    params(("id" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionBody), (status = 404, body = ErrorResponse)))]
pub async fn tool_version(
    State(state): State<AppState>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<VersionBody>, ApiError> {
    find(&state, &id).await?;
    let record = state
        .store
        .tool_version(&id, &version)
        .await?
        .ok_or_else(|| ApiError::not_found("tool version", &version))?;
    Ok(Json((&record).into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version to make current; default: the one registered before the current one.
    pub version: Option<String>,
}

/// Make another version current (roll back, or forward again). Versions never change.
#[utoipa::path(post, path = "/api/v1/tools/{id}/rollback", tag = "tools", params(("id" = String, Path)),
    request_body(content = RollbackRequest, description = "Optional; an empty body rolls back one version"),
    responses((status = 200, body = ToolDetail), (status = 400, description = "The body is not a rollback request", body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
pub async fn rollback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ToolDetail>, ApiError> {
    // The body is optional: empty means "one version back".
    let request: RollbackRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest { version: None }
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid_request(format!("invalid rollback request: {e}")))?
    };
    match state
        .store
        .rollback_tool(&id, request.version.as_deref(), now_ms())
        .await?
    {
        RollbackOutcome::Done(tool) => {
            tracing::info!(tool_id = %id, version = %tool.current_version, "tool rolled to another version");
            let version = current(&state, &tool).await?;
            Ok(Json(ToolDetail::new(&tool, &version)))
        }
        RollbackOutcome::NoSuchTool => Err(ApiError::not_found("tool", &id)),
        RollbackOutcome::NoSuchVersion => Err(ApiError::not_found(
            "tool version",
            request.version.as_deref().unwrap_or(""),
        )),
        RollbackOutcome::NoEarlierVersion => Err(ApiError::invalid_request(
            "the tool has no version older than its current one; name the version to roll to",
        )
        .with_status(axum::http::StatusCode::CONFLICT)),
    }
}

/// Deprecate a tool: it stays readable; executing it needs `allowDeprecated`.
#[utoipa::path(post, path = "/api/v1/tools/{id}/deprecate", tag = "tools", params(("id" = String, Path)),
    responses((status = 200, body = ToolDetail), (status = 404, body = ErrorResponse)))]
pub async fn deprecate(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ToolDetail>, ApiError> {
    let tool = state
        .store
        .deprecate_tool(&id, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("tool", &id))?;
    let version = current(&state, &tool).await?;
    Ok(Json(ToolDetail::new(&tool, &version)))
}

fn parameters(version: &VersionRecord) -> Vec<(String, Value, bool)> {
    let required: Vec<&str> = version.input_schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    version.input_schema["properties"]
        .as_object()
        .map(|props| {
            props
                .iter()
                .map(|(name, schema)| {
                    (
                        name.clone(),
                        schema.clone(),
                        required.contains(&name.as_str()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn type_name(schema: &Value) -> String {
    match (schema["type"].as_str(), schema.get("anyOf")) {
        (Some("array"), _) => format!("array of {}", type_name(&schema["items"])),
        (Some(t), _) => t.to_owned(),
        (None, Some(Value::Array(options))) => options
            .iter()
            .map(type_name)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_owned(),
    }
}

/// Markdown documentation: usage, parameters, examples, limitations, provenance.
#[utoipa::path(get, path = "/api/v1/tools/{id}/docs", tag = "tools", params(("id" = String, Path)),
    responses((status = 200, description = "Markdown", content_type = "text/markdown"), (status = 404, body = ErrorResponse)))]
pub async fn docs(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tool = find(&state, &id).await?;
    let version = current(&state, &tool).await?;
    let spec = version.spec.clone().unwrap_or(Value::Null);
    let mut md = format!("# {}\n\n{}\n\n", tool.name, tool.description);
    md.push_str(&format!(
        "Version {} ({}) · status {} · sha256 `{}`\n\n## Usage\n\n```python\nfrom {name} import {name}\n\nresult = {name}({})\n```\n\n",
        version.version,
        format_ms(version.created_at),
        tool.status,
        version.sha256,
        parameters(&version).iter().map(|(n, _, _)| format!("{n}=...")).collect::<Vec<_>>().join(", "),
        name = version.entry_point,
    ));
    md.push_str(&format!("Through the API: `POST /api/v1/tools/{}/execute` with `{{\"input\": {{...}}}}`.\n\n## Parameters\n\n| name | type | required | description |\n|---|---|---|---|\n", tool.id));
    for (name, schema, required) in parameters(&version) {
        md.push_str(&format!(
            "| `{name}` | {} | {} | {} |\n",
            type_name(&schema),
            if required { "yes" } else { "no" },
            schema["description"].as_str().unwrap_or("")
        ));
    }
    md.push_str(&format!(
        "\nReturns: {} — {}\n\n## Examples\n\n",
        type_name(&version.output_schema),
        version.output_schema["description"].as_str().unwrap_or("")
    ));
    for case in version.test_cases.as_array().into_iter().flatten() {
        md.push_str(&format!(
            "- {}: `{}` → `{}`\n",
            case["name"].as_str().unwrap_or("example"),
            case["input"],
            case["expectedOutput"]
        ));
    }
    md.push_str("\n## Limitations\n\n");
    let limits: Vec<&str> = ["errorHandling", "nonFunctionalRequirements"]
        .iter()
        .flat_map(|k| {
            spec[*k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
        })
        .collect();
    if limits.is_empty() {
        md.push_str("- none recorded\n");
    }
    for line in limits {
        md.push_str(&format!("- {line}\n"));
    }
    md.push_str(&format!(
        "- dependencies: {}\n- runs in Toolsmith's sandbox: no network access, a size-limited working directory, time and memory limits\n\n## Provenance\n\n- change: {}\n- job: {}\n- session: {}\n- model: {}\n",
        if version.dependencies.is_empty() { "standard library only".to_owned() } else { version.dependencies.join(", ") },
        version.change_reason,
        version.job_id.as_deref().unwrap_or("-"),
        version.session_id.as_deref().unwrap_or("-"),
        version.model.as_deref().unwrap_or("-"),
    ));
    Ok(([(CONTENT_TYPE, "text/markdown; charset=utf-8")], md).into_response())
}

/// What an agent needs to call the tool: signature, schemas, the OpenAI function schema,
/// examples, dependencies, environment.
#[utoipa::path(get, path = "/api/v1/tools/{id}/manifest", tag = "tools", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorResponse)))]
pub async fn manifest(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tool = find(&state, &id).await?;
    let version = current(&state, &tool).await?;
    let mut function_parameters = version.input_schema.clone();
    if let Some(object) = function_parameters.as_object_mut() {
        object.remove("$schema");
    }
    let params: Vec<Value> = parameters(&version)
        .into_iter()
        .map(|(name, schema, required)| json!({"name": name, "type": type_name(&schema), "required": required}))
        .collect();
    Ok(Json(json!({
        "toolId": tool.id,
        "name": tool.name,
        "description": tool.description,
        "version": version.version,
        "status": tool.status,
        "signature": {"entryPoint": version.entry_point, "parameters": params, "returns": type_name(&version.output_schema)},
        "inputSchema": version.input_schema,
        "outputSchema": version.output_schema,
        "function": {"type": "function", "function": {"name": tool.name, "description": tool.description, "parameters": function_parameters}},
        "usageExamples": version.test_cases.as_array().into_iter().flatten()
            .map(|c| json!({"input": c["input"], "output": c["expectedOutput"]})).collect::<Vec<_>>(),
        "dependencies": version.dependencies,
        "environment": {"python": ">=3.10", "sandboxed": true, "network": false},
        "sha256": version.sha256,
    })))
}

/// Largest `input` accepted by the execution API, serialised.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteRequest {
    /// The entry function's arguments, by name.
    pub input: Value,
    /// Who asked: `user_chat`, `scheduled`, `agent`…
    pub triggered_by: Option<String>,
    /// Run this version instead of the current one.
    pub version: Option<String>,
    /// Run a deprecated tool anyway.
    #[serde(default)]
    pub allow_deprecated: bool,
}

/// Run a tool: the input is validated against its input schema, the entry function runs in
/// the sandbox, the result is validated against the output schema, and the execution logged.
#[utoipa::path(post, path = "/api/v1/tools/{id}/execute", tag = "tools", params(("id" = String, Path)),
    request_body = ExecuteRequest,
    responses(
        (status = 200, description = "Ran (successfully or not: see `success`)", body = ExecutionBody),
        (status = 400, description = "Malformed request", body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, description = "Deprecated", body = ErrorResponse),
        (status = 413, body = ErrorResponse), (status = 422, description = "The input does not match the input schema", body = ErrorResponse),
        (status = 503, description = "The sandbox is unavailable, or the execution could not be logged", body = ErrorResponse)))]
pub async fn execute(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let request: ExecuteRequest = serde_json::from_value(body.0)
        .map_err(|e| ApiError::invalid_request(format!("invalid execution request: {e}")))?;
    let user_id = crate::routes::jobs::user_id(&headers)?;
    let tool = find(&state, &id).await?;
    if tool.status == "deprecated" && !request.allow_deprecated {
        return Err(ApiError::invalid_request(format!(
            "tool {} is deprecated; pass \"allowDeprecated\": true to run it anyway",
            tool.name
        ))
        .with_status(axum::http::StatusCode::CONFLICT)
        .with_details(json!({"status": "deprecated"})));
    }
    let version = match &request.version {
        Some(v) => state
            .store
            .tool_version(&id, v)
            .await?
            .ok_or_else(|| ApiError::not_found("tool version", v))?,
        None => current(&state, &tool).await?,
    };
    if !request.input.is_object() {
        return Err(ApiError::invalid_request(
            "input must be a JSON object of the entry function's arguments",
        )
        .with_status(axum::http::StatusCode::UNPROCESSABLE_ENTITY));
    }
    let size = request.input.to_string().len();
    if size > MAX_INPUT_BYTES {
        return Err(ApiError::invalid_request(format!(
            "input is {size} bytes; at most {MAX_INPUT_BYTES} are accepted"
        ))
        .with_status(axum::http::StatusCode::PAYLOAD_TOO_LARGE));
    }
    let errors = schema_errors(&version.input_schema, &request.input);
    if !errors.is_empty() {
        let summary = errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e["path"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ApiError::invalid_request(format!(
            "input does not match the tool's input schema: {summary}"
        ))
        .with_status(axum::http::StatusCode::UNPROCESSABLE_ENTITY)
        .with_details(json!({"errors": errors})));
    }
    let Some(runner) = state.runner.clone() else {
        return Err(ApiError::unavailable(format!(
            "the sandbox is unavailable, so no tool can run ({})",
            state.settings.sandbox
        )));
    };
    let started = std::time::Instant::now();
    let outcome = runner
        .run(
            &version.entry_point,
            &version.code,
            &version.dependencies,
            &request.input,
        )
        .await;
    let sandbox_time = started.elapsed();
    let execution_time_ms = i64::try_from(sandbox_time.as_millis()).unwrap_or(i64::MAX);
    let (success, result, error, error_type) = match outcome {
        Ok(result) => {
            let errors = schema_errors(&version.output_schema, &result);
            if errors.is_empty() {
                (true, Some(result), None, None)
            } else {
                let message = format!(
                    "the result does not match the tool's output schema: {}",
                    errors
                        .iter()
                        .map(|e| format!(
                            "{}: {}",
                            e["path"].as_str().unwrap_or(""),
                            e["message"].as_str().unwrap_or("")
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                (
                    false,
                    Some(result),
                    Some(message),
                    Some(ErrorClass::CodeError),
                )
            }
        }
        Err(failure) => {
            let class = ErrorClass::classify(&failure.message, failure.timed_out);
            (false, None, Some(failure.message), Some(class))
        }
    };
    let record = ExecutionRecord {
        id: toolsmith_domain::ids::new_object_id(),
        tool_id: tool.id.clone(),
        user_id,
        version: version.version.clone(),
        input_params: request.input,
        success,
        result: result.clone(),
        error: error.clone(),
        error_type: error_type.map(|c| c.as_str().to_owned()),
        execution_time_ms,
        triggered_by: request.triggered_by,
        created_at: now_ms(),
    };
    log_execution(&state, &record).await?;
    let body: ExecutionBody = (&record).into();
    let timing = format!("{SANDBOX_TIMING}{:.3}", sandbox_time.as_secs_f64() * 1000.0);
    Ok(([("server-timing", timing)], Json(body)).into_response())
}

/// How an execution's answer gives the time spent running the tool (W3C `Server-Timing`).
const SANDBOX_TIMING: &str = "sandbox;dur=";

/// The milliseconds spent running the tool, read from an execution's `Server-Timing` header.
pub fn sandbox_ms(headers: &axum::http::HeaderMap) -> Option<f64> {
    headers
        .get("server-timing")?
        .to_str()
        .ok()?
        .strip_prefix(SANDBOX_TIMING)?
        .parse()
        .ok()
}

/// Hands the execution log to the executions buffer. When this returns, the log survives a
/// crash; if it cannot be kept, the caller still gets the result, in the error's details.
async fn log_execution(state: &AppState, record: &ExecutionRecord) -> Result<(), ApiError> {
    let buffer = state
        .buffers
        .get(crate::EXECUTIONS_BUFFER)
        .ok_or_else(|| ApiError::unavailable("the executions buffer is not configured"))?;
    let payload = serde_json::to_value(record).map_err(|err| ApiError::internal(&err))?;
    buffer
        .push(record.id.clone(), payload)
        .await
        .map_err(|err| {
            tracing::error!(execution = %record.id, %err, "an execution could not be logged");
            ApiError::unavailable(format!(
                "the tool ran, but its execution could not be logged: {err}"
            ))
            .with_details(serde_json::to_value(ExecutionBody::from(record)).unwrap_or_default())
        })
}

/// The errors of `value` against `schema`, each with its JSON path.
fn schema_errors(schema: &Value, value: &Value) -> Vec<Value> {
    match jsonschema::validator_for(schema) {
        Ok(validator) => validator
            .iter_errors(value)
            .map(|e| {
                let path = e.instance_path().to_string();
                json!({"path": if path.is_empty() { "/".to_owned() } else { path }, "message": e.to_string()})
            })
            .collect(),
        Err(err) => vec![json!({"path": "/", "message": format!("the tool's schema is invalid: {err}")})],
    }
}

/// A tool's executions, newest first (seed 000 `ToolExecutionLog`).
#[utoipa::path(get, path = "/api/v1/tools/{id}/executions", tag = "tools", params(("id" = String, Path), PageParams),
    responses((status = 200, body = ListResponse<ExecutionBody>), (status = 404, body = ErrorResponse)))]
pub async fn executions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<ListResponse<ExecutionBody>>, ApiError> {
    let page = page.page()?;
    find(&state, &id).await?;
    let records = state.store.list_executions(&id, &page).await?;
    Ok(Json(ListResponse::from_page(records, |r| r.into())))
}
