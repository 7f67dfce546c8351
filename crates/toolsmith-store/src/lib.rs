//! Persistence for Toolsmith.
//!
//! The rest of the service sees only the [`Store`] trait; [`SqliteStore`] implements it on an
//! embedded SQLite file (WAL). A PostgreSQL implementation will satisfy the same trait and
//! the same test-suite. Every write that belongs to a running job is guarded by the worker's
//! lease, so a worker that lost its job (crash, lease expiry, cancel) cannot write over the
//! worker that took it over.
//!
//! # Layout
//! - `error.rs` — [`StoreError`].
//! - `migrate.rs` — the embedded migrations and the runner that applies them at start.
//! - `model.rs` — records read from and written to the store.
//! - `page.rs` — cursor pagination.
//! - `sqlite.rs` — [`SqliteStore`].

mod error;
mod migrate;
mod model;
mod page;
mod sqlite;

pub use error::StoreError;
pub use model::*;
pub use page::{Cursor, DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest};
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use toolsmith_domain::{ErrorCode, JobStatus, Phase, SessionStatus};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything the service keeps. Implementations must be safe to share between tasks and
/// between processes using the same database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks the database answers.
    async fn ping(&self) -> Result<()>;

    // --- jobs and the queue ---

    /// Persists a job, its requirements and its session in one transaction; returns the job
    /// as written.
    async fn create_job(&self, job: NewJob) -> Result<JobRecord>;
    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>>;
    async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        page: &PageRequest,
    ) -> Result<Page<JobRecord>>;
    /// Cancels a pending or running job and its unfinished requirements.
    async fn cancel_job(&self, job_id: &str, now: i64) -> Result<CancelOutcome>;

    /// Atomically claims the oldest job that is pending, or running with an expired or
    /// released lease, for `lease_ms`.
    async fn claim_next_job(
        &self,
        worker: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<JobRecord>>;
    /// Extends the lease; says whether it is still held, or why not.
    async fn heartbeat(&self, lease: &Lease, now: i64, lease_ms: i64) -> Result<LeaseState>;
    /// Hands a running job back to the queue (graceful shutdown): another worker resumes it.
    async fn release_job(&self, lease: &Lease, now: i64) -> Result<()>;
    /// Ends a job whose requirements have all finished: `completed` or `failed` by SPEC §2.
    async fn finish_job(&self, lease: &Lease, now: i64) -> Result<JobStatus>;

    // --- requirements (all guarded by the lease) ---

    async fn phase_started(&self, lease: &Lease, index: u32, phase: Phase, now: i64) -> Result<()>;
    async fn phase_finished(&self, lease: &Lease, update: PhaseFinished, now: i64) -> Result<()>;
    /// Marks the requirement completed with its tool, registering a new tool or version when
    /// the outcome carries one; idempotent per (job, requirement). Returns the tool id.
    async fn complete_requirement(
        &self,
        lease: &Lease,
        index: u32,
        outcome: ToolOutcome,
        now: i64,
    ) -> Result<String>;
    async fn fail_requirement(
        &self,
        lease: &Lease,
        index: u32,
        code: ErrorCode,
        message: &str,
        now: i64,
    ) -> Result<()>;

    // --- sessions ---

    async fn get_session(&self, session_id: &str) -> Result<Option<SessionRecord>>;
    async fn list_sessions(
        &self,
        filter: SessionFilter,
        page: &PageRequest,
    ) -> Result<Page<SessionRecord>>;
    async fn session_tools(&self, session_id: &str, page: &PageRequest)
    -> Result<Page<ToolRecord>>;

    // --- tools ---

    /// The tool files a job produced, in requirement order.
    async fn job_tool_files(&self, job_id: &str) -> Result<Vec<ToolFileRecord>>;
    async fn tool_count(&self) -> Result<u64>;
    async fn list_tools(&self, filter: &ToolFilter, page: &PageRequest)
    -> Result<Page<ToolRecord>>;
    async fn get_tool(&self, tool_id: &str) -> Result<Option<ToolRecord>>;
    /// A tool's versions, newest first.
    async fn tool_versions(&self, tool_id: &str, page: &PageRequest)
    -> Result<Page<VersionRecord>>;
    async fn tool_version(&self, tool_id: &str, version: &str) -> Result<Option<VersionRecord>>;
    /// Points the tool at `version` (default: the version registered before the current one).
    /// Versions never change; only the pointer moves, so rolling forward is the same call.
    async fn rollback_tool(
        &self,
        tool_id: &str,
        version: Option<&str>,
        now: i64,
    ) -> Result<RollbackOutcome>;
    /// Marks the tool deprecated; `None` when there is no such tool.
    async fn deprecate_tool(&self, tool_id: &str, now: i64) -> Result<Option<ToolRecord>>;
    /// Writes execution logs and counts the uses, in one transaction. A record whose id is
    /// already logged is skipped (and not counted again), so writing a batch twice is
    /// harmless. Returns how many records were new.
    async fn write_executions(&self, records: &[ExecutionRecord]) -> Result<u64>;
    /// A tool's executions, newest first.
    async fn list_executions(
        &self,
        tool_id: &str,
        page: &PageRequest,
    ) -> Result<Page<ExecutionRecord>>;
    /// The user's registered tool called `name`, at its current version.
    async fn find_tool(&self, user_id: &str, name: &str) -> Result<Option<RegisteredTool>>;
    /// The user's registered tools at their current versions, most recently updated first.
    async fn user_tools(&self, user_id: &str, limit: u32) -> Result<Vec<RegisteredTool>>;

    // --- logs ---

    async fn append_log(&self, log: NewGenerationLog) -> Result<()>;
    async fn list_logs(
        &self,
        session_id: &str,
        page: &PageRequest,
    ) -> Result<Page<GenerationLogRecord>>;

    // --- the LLM layer ---

    /// A cached answer, counting the hit.
    async fn cache_get(&self, key: &str) -> Result<Option<CachedCompletion>>;
    /// Keeps an answer; a second answer for the same key keeps the first.
    async fn cache_put(&self, key: &str, completion: &CachedCompletion, now: i64) -> Result<()>;
    async fn record_llm_call(&self, call: &LlmCallRecord) -> Result<()>;
    /// Token sums of a job, or of one of its requirements.
    async fn token_usage(&self, job_id: &str, requirement_index: Option<u32>)
    -> Result<TokenUsage>;
    /// Appends messages to the conversation of a requirement (`agent_sessions`).
    async fn append_conversation(
        &self,
        session_id: &str,
        job_id: &str,
        requirement_index: u32,
        messages: &[serde_json::Value],
        now: i64,
    ) -> Result<()>;
    /// The conversation of a requirement, oldest message first.
    async fn conversation(
        &self,
        job_id: &str,
        requirement_index: u32,
    ) -> Result<Vec<serde_json::Value>>;
}

/// Which sessions to list.
#[derive(Debug, Clone)]
pub enum SessionFilter {
    User(String),
    Status(SessionStatus),
}
