//! What a workflow implements, and what it is given.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use toolsmith_domain::{ErrorCode, Phase, ToolRequirement};
use toolsmith_store::{NewGenerationLog, Store, ToolOutcome};

/// The phases of one requirement. The engine calls `run_phase` for each phase in turn, saves
/// `ctx.checkpoint` after each one, and after [`Phase::Registration`] commits `ctx.outcome`.
#[async_trait]
pub trait Workflow: Send + Sync + 'static {
    async fn run_phase(
        &self,
        phase: Phase,
        ctx: &mut PhaseContext,
    ) -> Result<PhaseOutcome, RequirementError>;
}

/// Where to go after a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseOutcome {
    /// On to the next phase in order.
    Next,
    /// Straight to a later phase (e.g. searching found a tool: on to registration).
    SkipTo(Phase),
}

/// Why a requirement failed; `code` is one of the generation error codes of SPEC §1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RequirementError {
    pub code: ErrorCode,
    pub message: String,
}

impl RequirementError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RequirementError {
            code,
            message: message.into(),
        }
    }
}

/// What a phase sees of its requirement, and what it hands on.
pub struct PhaseContext {
    pub job_id: String,
    pub session_id: String,
    pub user_id: String,
    pub index: u32,
    pub requirement: ToolRequirement,
    /// The workflow's own state; saved after every finished phase and given back on resume.
    pub checkpoint: Value,
    /// The tool's name once known; shown as the job's `currentTool`.
    pub tool_name: Option<String>,
    /// Set by the registration phase: the tool this requirement produced.
    pub outcome: Option<ToolOutcome>,
    /// Fires when the phase must stop at once: the job was cancelled, its lease lost, its
    /// deadline passed or the service is stopping. Long calls should select on it.
    pub cancel: CancellationToken,
    pub(crate) store: Arc<dyn Store>,
}

impl PhaseContext {
    /// Appends an entry to the session's generation log; session, job and requirement are
    /// filled in. A log that cannot be written is reported in the service log, not failed on.
    pub async fn log(&self, mut entry: NewGenerationLog) {
        entry.session_id.clone_from(&self.session_id);
        entry.job_id.clone_from(&self.job_id);
        entry.requirement_index = Some(self.index);
        if entry.created_at == 0 {
            entry.created_at = toolsmith_domain::time::now_ms();
        }
        if let Err(err) = self.store.append_log(entry).await {
            tracing::warn!(job_id = %self.job_id, error = %err, "could not write a generation log");
        }
    }
}
