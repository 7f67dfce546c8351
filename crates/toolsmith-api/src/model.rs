//! The JSON objects of the API. Field names are exactly seed 002's (camelCase); additions are
//! marked as such.

use serde::Serialize;
use serde_json::Value;
use toolsmith_domain::time::format_ms;
use toolsmith_domain::{RequestMetadata, RequirementStatus, ToolRequirement};
use toolsmith_store::{
    ExecutionRecord, GenerationLogRecord, JobRecord, Page, SessionRecord, ToolFileRecord,
    ToolRecord, VersionRecord,
};
use utoipa::ToSchema;

/// Seed 002 `UserToolRequirement`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolRequirementBody {
    pub description: String,
    pub input: String,
    pub output: String,
}

impl From<&ToolRequirement> for ToolRequirementBody {
    fn from(r: &ToolRequirement) -> Self {
        ToolRequirementBody {
            description: r.description.clone(),
            input: r.input.clone(),
            output: r.output.clone(),
        }
    }
}

/// Seed 002 `ToolGenerationRequest`. Documents the body in OpenAPI; the handler validates the raw
/// JSON instead, so that it can report every problem at once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolGenerationRequest {
    /// 1 to 50 requirements.
    pub tool_requirements: Vec<ToolRequirementBody>,
    pub metadata: Option<RequestMetadataBody>,
}

/// Seed 002 `RequestMetadata`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadataBody {
    pub session_id: Option<String>,
    pub client_id: Option<String>,
}

impl From<&RequestMetadata> for RequestMetadataBody {
    fn from(m: &RequestMetadata) -> Self {
        RequestMetadataBody {
            session_id: m.session_id.clone(),
            client_id: m.client_id.clone(),
        }
    }
}

/// Seed 002 `JobProgress`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobProgressBody {
    pub total: u32,
    pub completed: u32,
    pub failed: u32,
    pub in_progress: u32,
    pub current_tool: Option<String>,
}

/// Seed 002 `ToolFile`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolFile {
    pub tool_id: String,
    pub file_name: String,
    pub file_path: String,
    pub description: String,
    pub code: String,
    pub endpoint: Option<String>,
    pub registered: bool,
    pub created_at: String,
}

impl From<&ToolFileRecord> for ToolFile {
    fn from(t: &ToolFileRecord) -> Self {
        ToolFile {
            tool_id: t.tool_id.clone(),
            file_name: format!("{}.py", t.name),
            file_path: format!("tools/{}.py", t.name),
            description: t.description.clone(),
            code: t.code.clone(),
            endpoint: None,
            registered: t.status == "registered",
            created_at: format_ms(t.created_at),
        }
    }
}

/// Seed 002 `ToolGenerationFailure`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolGenerationFailure {
    pub tool_requirement: ToolRequirementBody,
    /// `CODE: explanation`.
    pub error: String,
    /// Addition: the error code alone.
    pub code: String,
}

/// Seed 002 `GenerationSummary`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenerationSummary {
    pub total_requested: u32,
    pub successful: u32,
    pub failed: u32,
}

/// Seed 002 `JobResponse`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobResponse {
    pub job_id: String,
    #[schema(example = "pending")]
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub progress: JobProgressBody,
    /// Addition: the session tracking this job.
    pub session_id: String,
    /// Present once the job has finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_files: Option<Vec<ToolFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<ToolGenerationFailure>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<GenerationSummary>,
}

impl JobResponse {
    /// `tool_files` are those of the job; they are shown only once it has finished.
    pub fn new(job: &JobRecord, tool_files: Option<&[ToolFileRecord]>) -> Self {
        let progress = job.progress();
        let finished = job.status.is_finished();
        let failures = finished.then(|| {
            job.requirements
                .iter()
                .filter(|r| {
                    matches!(
                        r.status,
                        RequirementStatus::Failed | RequirementStatus::Cancelled
                    )
                })
                .map(|r| {
                    let code = r
                        .error_code
                        .map(|c| c.as_str().to_owned())
                        .unwrap_or_else(|| "INTERNAL_ERROR".to_owned());
                    let message = r
                        .error_message
                        .as_deref()
                        .unwrap_or("no reason was recorded");
                    ToolGenerationFailure {
                        tool_requirement: (&r.requirement).into(),
                        error: format!("{code}: {message}"),
                        code,
                    }
                })
                .collect::<Vec<_>>()
        });
        let tool_files = finished.then(|| {
            tool_files
                .unwrap_or(&[])
                .iter()
                .map(ToolFile::from)
                .collect::<Vec<_>>()
        });
        let summary = finished.then(|| GenerationSummary {
            total_requested: progress.total,
            successful: progress.completed,
            failed: progress.total - progress.completed,
        });
        JobResponse {
            job_id: job.id.clone(),
            status: job.status.as_str().to_owned(),
            created_at: format_ms(job.created_at),
            updated_at: format_ms(job.updated_at),
            progress: JobProgressBody {
                total: progress.total,
                completed: progress.completed,
                failed: progress.failed,
                in_progress: progress.in_progress,
                current_tool: progress.current_tool,
            },
            session_id: job.session_id.clone(),
            tool_files,
            failures,
            summary,
        }
    }
}

/// A session (seed 002 `sessions`), in the API's camelCase.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionResponse {
    pub session_id: String,
    pub job_id: String,
    pub user_id: String,
    #[schema(example = "implementing")]
    pub status: String,
    /// Seed 000 phase the workflow is in.
    pub current_phase: Option<String>,
    /// 0–100, never decreasing.
    pub progress: u8,
    pub tool_ids: Vec<String>,
    pub tool_requirements: Vec<ToolRequirementBody>,
    pub metadata: RequestMetadataBody,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&SessionRecord> for SessionResponse {
    fn from(s: &SessionRecord) -> Self {
        SessionResponse {
            session_id: s.id.clone(),
            job_id: s.job_id.clone(),
            user_id: s.user_id.clone(),
            status: s.status.as_str().to_owned(),
            current_phase: s.current_phase.map(|p| p.as_str().to_owned()),
            progress: s.progress,
            tool_ids: s.tool_ids.clone(),
            tool_requirements: s.tool_requirements.iter().map(Into::into).collect(),
            metadata: (&s.metadata).into(),
            created_at: format_ms(s.created_at),
            updated_at: format_ms(s.updated_at),
        }
    }
}

/// One requirement's place in the workflow.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequirementStatusBody {
    pub index: u32,
    pub description: String,
    pub status: String,
    pub current_phase: Option<String>,
    pub progress: u8,
    pub tool_name: Option<String>,
    pub tool_id: Option<String>,
    pub error: Option<String>,
}

/// `GET /sessions/{id}/status`: the workflow's progress in detail.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionStatusResponse {
    pub session_id: String,
    pub job_id: String,
    pub status: String,
    pub job_status: String,
    pub current_phase: Option<String>,
    pub progress: u8,
    pub job_progress: JobProgressBody,
    pub requirements: Vec<RequirementStatusBody>,
    pub updated_at: String,
}

impl SessionStatusResponse {
    pub fn new(session: &SessionRecord, job: &JobRecord) -> Self {
        let job_view = JobResponse::new(job, None);
        SessionStatusResponse {
            session_id: session.id.clone(),
            job_id: job.id.clone(),
            status: session.status.as_str().to_owned(),
            job_status: job.status.as_str().to_owned(),
            current_phase: session.current_phase.map(|p| p.as_str().to_owned()),
            progress: session.progress,
            job_progress: job_view.progress,
            requirements: job
                .requirements
                .iter()
                .map(|r| RequirementStatusBody {
                    index: r.index,
                    description: r.requirement.description.clone(),
                    status: r.status.as_str().to_owned(),
                    current_phase: r.current_phase.map(|p| p.as_str().to_owned()),
                    progress: r.progress,
                    tool_name: r.tool_name.clone(),
                    tool_id: r.tool_id.clone(),
                    error: r
                        .error_code
                        .map(|c| format!("{c}: {}", r.error_message.as_deref().unwrap_or(""))),
                })
                .collect(),
            updated_at: format_ms(session.updated_at.max(job.updated_at)),
        }
    }
}

/// A tool as listed for a session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolSummaryBody {
    pub tool_id: String,
    pub name: String,
    pub file_name: String,
    pub description: String,
    pub status: String,
    pub version: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&ToolRecord> for ToolSummaryBody {
    fn from(t: &ToolRecord) -> Self {
        ToolSummaryBody {
            tool_id: t.id.clone(),
            name: t.name.clone(),
            file_name: format!("{}.py", t.name),
            description: t.description.clone(),
            status: t.status.clone(),
            version: t.current_version.clone(),
            created_at: format_ms(t.created_at),
            updated_at: format_ms(t.updated_at),
        }
    }
}

/// Seed 000 `ToolGenerationLog`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenerationLogBody {
    pub id: String,
    pub session_id: String,
    pub job_id: String,
    pub requirement_index: Option<u32>,
    pub phase: String,
    pub step: Option<String>,
    pub level: String,
    pub message: String,
    pub prompt_sent: Option<String>,
    pub response_received: Option<String>,
    pub model_used: Option<String>,
    pub tokens_used: Option<i64>,
    pub code_executed: Option<String>,
    pub execution_result: Option<Value>,
    pub execution_time_ms: Option<i64>,
    pub created_at: String,
}

impl From<&GenerationLogRecord> for GenerationLogBody {
    fn from(r: &GenerationLogRecord) -> Self {
        let l = &r.log;
        GenerationLogBody {
            id: r.id.clone(),
            session_id: l.session_id.clone(),
            job_id: l.job_id.clone(),
            requirement_index: l.requirement_index,
            phase: l.phase.clone(),
            step: l.step.clone(),
            level: l.level.as_str().to_owned(),
            message: l.message.clone(),
            prompt_sent: l.prompt_sent.clone(),
            response_received: l.response_received.clone(),
            model_used: l.model_used.clone(),
            tokens_used: l.tokens_used,
            code_executed: l.code_executed.clone(),
            execution_result: l.execution_result.clone(),
            execution_time_ms: l.execution_time_ms,
            created_at: format_ms(l.created_at),
        }
    }
}

/// Every list endpoint answers `{items, nextCursor}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> ListResponse<T> {
    pub fn from_page<R>(page: Page<R>, f: impl Fn(&R) -> T) -> Self {
        ListResponse {
            items: page.items.iter().map(f).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// Seed 002 `HealthResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    #[schema(example = "healthy")]
    pub status: String,
    pub timestamp: String,
    pub version: String,
    #[schema(example = "connected")]
    pub database: String,
    /// Addition: whether untrusted code can run here (`ready`, or `unavailable: <why>`).
    #[schema(example = "ready")]
    pub sandbox: String,
}

/// A tool, as listed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolBody {
    pub tool_id: String,
    pub name: String,
    pub description: String,
    pub user_id: String,
    /// draft, registered, deprecated or failed.
    pub status: String,
    pub current_version: String,
    pub tags: Vec<String>,
    pub quality_score: f64,
    pub usage_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&ToolRecord> for ToolBody {
    fn from(t: &ToolRecord) -> Self {
        ToolBody {
            tool_id: t.id.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            user_id: t.user_id.clone(),
            status: t.status.clone(),
            current_version: t.current_version.clone(),
            tags: t.tags.clone(),
            quality_score: t.quality_score,
            usage_count: t.usage_count,
            created_at: format_ms(t.created_at),
            updated_at: format_ms(t.updated_at),
        }
    }
}

/// One immutable version of a tool.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionBody {
    pub version: String,
    pub code: String,
    pub sha256: String,
    pub entry_point: String,
    pub input_schema: Value,
    pub output_schema: Value,
    pub dependencies: Vec<String>,
    pub test_code: Option<String>,
    pub test_cases: Value,
    pub spec: Option<Value>,
    pub plan: Option<Value>,
    pub provenance: Value,
    pub change_reason: String,
    pub created_at: String,
}

impl From<&VersionRecord> for VersionBody {
    fn from(v: &VersionRecord) -> Self {
        VersionBody {
            version: v.version.clone(),
            code: v.code.clone(),
            sha256: v.sha256.clone(),
            entry_point: v.entry_point.clone(),
            input_schema: v.input_schema.clone(),
            output_schema: v.output_schema.clone(),
            dependencies: v.dependencies.clone(),
            test_code: v.test_code.clone(),
            test_cases: v.test_cases.clone(),
            spec: v.spec.clone(),
            plan: v.plan.clone(),
            provenance: serde_json::json!({"jobId": v.job_id, "sessionId": v.session_id, "model": v.model, "createdAt": format_ms(v.created_at)}),
            change_reason: v.change_reason.clone(),
            created_at: format_ms(v.created_at),
        }
    }
}

/// A tool with its current version.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolDetail {
    #[serde(flatten)]
    pub tool: ToolBody,
    pub current: VersionBody,
}

impl ToolDetail {
    pub fn new(tool: &ToolRecord, version: &VersionRecord) -> Self {
        ToolDetail {
            tool: tool.into(),
            current: version.into(),
        }
    }
}

/// An execution (the answer of `POST /tools/{id}/execute`, and seed 000 `ToolExecutionLog`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionBody {
    pub execution_id: String,
    pub tool_id: String,
    pub user_id: String,
    pub version: String,
    pub input_params: Value,
    pub success: bool,
    pub result: Option<Value>,
    pub error: Option<String>,
    /// An error class of SPEC §7: timeout, network, auth, permission, endpoint, rate_limit,
    /// parsing, code_error, dependency.
    pub error_type: Option<String>,
    pub execution_time_ms: i64,
    pub triggered_by: Option<String>,
    pub created_at: String,
}

impl From<&ExecutionRecord> for ExecutionBody {
    fn from(r: &ExecutionRecord) -> Self {
        ExecutionBody {
            execution_id: r.id.clone(),
            tool_id: r.tool_id.clone(),
            user_id: r.user_id.clone(),
            version: r.version.clone(),
            input_params: r.input_params.clone(),
            success: r.success,
            result: r.result.clone(),
            error: r.error.clone(),
            error_type: r.error_type.clone(),
            execution_time_ms: r.execution_time_ms,
            triggered_by: r.triggered_by.clone(),
            created_at: format_ms(r.created_at),
        }
    }
}
