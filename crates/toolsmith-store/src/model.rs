//! Records the store reads and writes.

use serde_json::Value;
use toolsmith_domain::{
    ErrorCode, JobProgress, JobStatus, Phase, RequestMetadata, RequirementStatus, SessionStatus,
    ToolRequirement,
};

/// A job to persist, with its session.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub session_id: String,
    pub user_id: String,
    pub metadata: RequestMetadata,
    pub requirements: Vec<ToolRequirement>,
    pub created_at: i64,
    pub deadline_at: i64,
}

#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: String,
    pub session_id: String,
    pub user_id: String,
    pub status: JobStatus,
    pub metadata: RequestMetadata,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub deadline_at: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub attempts: u32,
    pub requirements: Vec<RequirementRecord>,
}

impl JobRecord {
    /// Live counts (seed 002 `JobProgress`); `currentTool` is the requirement that most
    /// recently started and is still running.
    pub fn progress(&self) -> JobProgress {
        let count = |s: RequirementStatus| {
            u32::try_from(self.requirements.iter().filter(|r| r.status == s).count())
                .unwrap_or(u32::MAX)
        };
        let current_tool = self
            .requirements
            .iter()
            .filter(|r| r.status == RequirementStatus::Running)
            .max_by_key(|r| r.started_at)
            .and_then(|r| r.tool_name.clone());
        JobProgress {
            total: u32::try_from(self.requirements.len()).unwrap_or(u32::MAX),
            completed: count(RequirementStatus::Completed),
            failed: count(RequirementStatus::Failed) + count(RequirementStatus::Cancelled),
            in_progress: count(RequirementStatus::Running),
            current_tool,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequirementRecord {
    pub index: u32,
    pub requirement: ToolRequirement,
    pub status: RequirementStatus,
    pub current_phase: Option<Phase>,
    /// Where a resumed run starts: the phase after the last one that finished.
    pub next_phase: Phase,
    pub progress: u8,
    /// State the workflow saved after its last finished phase.
    pub checkpoint: Value,
    pub tool_name: Option<String>,
    pub tool_id: Option<String>,
    pub error_code: Option<ErrorCode>,
    pub error_message: Option<String>,
    pub started_at: Option<i64>,
    pub updated_at: i64,
}

/// A worker's hold on a running job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job_id: String,
    pub worker: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Held,
    /// The job was cancelled: stop at once.
    Cancelled,
    /// Another worker took the job over, or it finished: stop without writing.
    Lost,
}

#[derive(Debug, Clone)]
pub enum CancelOutcome {
    Cancelled(Box<JobRecord>),
    AlreadyCancelled,
    AlreadyFinished(JobStatus),
    NotFound,
}

/// What a finished phase leaves behind.
#[derive(Debug, Clone)]
pub struct PhaseFinished {
    pub index: u32,
    pub phase: Phase,
    /// The phase to run next; `None` once the requirement has no phase left.
    pub next_phase: Option<Phase>,
    pub checkpoint: Value,
    pub tool_name: Option<String>,
}

/// How a requirement ended up with a tool.
#[derive(Debug, Clone)]
pub enum ToolOutcome {
    /// A newly generated tool (or a new version of one with the same name).
    Generated(Box<ToolDraft>),
    /// A registered tool that already satisfies the requirement.
    Reused { tool_id: String },
}

/// A tool version ready to register.
#[derive(Debug, Clone)]
pub struct ToolDraft {
    pub name: String,
    pub description: String,
    pub code: String,
    pub entry_point: String,
    pub input_schema: Value,
    pub output_schema: Value,
    pub dependencies: Vec<String>,
    pub test_code: Option<String>,
    pub test_cases: Value,
    pub spec: Option<Value>,
    pub plan: Option<Value>,
    pub model: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: String,
    pub job_id: String,
    pub user_id: String,
    pub status: SessionStatus,
    pub current_phase: Option<Phase>,
    pub progress: u8,
    pub tool_ids: Vec<String>,
    pub tool_requirements: Vec<ToolRequirement>,
    pub metadata: RequestMetadata,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The tool a requirement of a job produced, with the code of the version it produced.
#[derive(Debug, Clone)]
pub struct ToolFileRecord {
    pub requirement_index: u32,
    pub tool_id: String,
    pub name: String,
    pub description: String,
    pub status: String,
    pub version: String,
    pub code: String,
    pub created_at: i64,
}

/// Seed 000 `ToolGenerationLog`, as written.
#[derive(Debug, Clone, Default)]
pub struct NewGenerationLog {
    pub session_id: String,
    pub job_id: String,
    pub requirement_index: Option<u32>,
    pub phase: String,
    pub step: Option<String>,
    pub level: LogLevel,
    pub message: String,
    pub prompt_sent: Option<String>,
    pub response_received: Option<String>,
    pub model_used: Option<String>,
    pub tokens_used: Option<i64>,
    pub code_executed: Option<String>,
    pub execution_result: Option<Value>,
    pub execution_time_ms: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<LogLevel> {
        [
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

/// Seed 000 `ToolGenerationLog`, as read back.
#[derive(Debug, Clone)]
pub struct GenerationLogRecord {
    pub seq: i64,
    pub id: String,
    pub log: NewGenerationLog,
}

/// An LLM answer kept in the response cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedCompletion {
    pub model: String,
    pub content: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// One LLM call, for token accounting.
#[derive(Debug, Clone, Default)]
pub struct LlmCallRecord {
    pub job_id: Option<String>,
    pub requirement_index: Option<u32>,
    pub phase: String,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Answered from the cache: no tokens were paid for.
    pub cached: bool,
    pub latency_ms: i64,
    /// `ok` or the error code.
    pub outcome: String,
    pub created_at: i64,
}

/// Token sums over a job or one of its requirements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Tokens sent to the endpoint (paid).
    pub prompt: i64,
    /// Tokens received from the endpoint (paid).
    pub completion: i64,
    /// Tokens of answers served from the cache (not paid).
    pub cached: i64,
    pub calls: i64,
}

impl TokenUsage {
    pub fn paid(&self) -> i64 {
        self.prompt + self.completion
    }
}

/// A registered tool with its current version, as the workflow's search sees it.
#[derive(Debug, Clone)]
pub struct RegisteredTool {
    pub id: String,
    pub name: String,
    pub description: String,
    pub version: String,
    pub code: String,
    pub entry_point: String,
    pub dependencies: Vec<String>,
    pub input_schema: Value,
    pub test_cases: Value,
}

/// A tool (seed 002 `tools`), without its versions.
#[derive(Debug, Clone)]
pub struct ToolRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub description: String,
    pub status: String,
    pub current_version: String,
    pub tags: Vec<String>,
    pub quality_score: f64,
    pub usage_count: i64,
    pub session_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One immutable version of a tool.
#[derive(Debug, Clone)]
pub struct VersionRecord {
    pub tool_id: String,
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
    pub job_id: Option<String>,
    pub session_id: Option<String>,
    pub model: Option<String>,
    pub change_reason: String,
    pub created_at: i64,
}

/// Which tools to list.
#[derive(Debug, Clone, Default)]
pub struct ToolFilter {
    pub user_id: Option<String>,
    /// Matched against name and description.
    pub text: Option<String>,
    pub status: Option<String>,
    pub tag: Option<String>,
}

#[derive(Debug, Clone)]
pub enum RollbackOutcome {
    Done(Box<ToolRecord>),
    NoSuchTool,
    NoSuchVersion,
    /// No version older than the current one (rollback without a target).
    NoEarlierVersion,
}

/// Seed 000 `ToolExecutionLog`. Serialisable, to wait in the execution buffer's spool.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExecutionRecord {
    pub id: String,
    pub tool_id: String,
    pub user_id: String,
    pub version: String,
    pub input_params: Value,
    pub success: bool,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub error_type: Option<String>,
    pub execution_time_ms: i64,
    pub triggered_by: Option<String>,
    pub created_at: i64,
}
