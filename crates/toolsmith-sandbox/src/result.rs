//! What a run reports (SPEC §5), printed as JSON by `toolsmith sandbox exec`.

use serde::{Deserialize, Serialize};

use crate::LimitHit;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// The program's exit code; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub wall_ms: u64,
    /// User + system CPU time of the whole process tree.
    pub cpu_ms: u64,
    /// Largest resident set of any process of the run.
    pub peak_memory_kb: u64,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub limit_hit: Option<LimitHit>,
    /// The program's report, when it was given a channel: JSON objects from lines carrying
    /// the run's nonce, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report: Vec<serde_json::Value>,
}

impl RunResult {
    /// Exited on its own with status 0. Never a verdict on its own: callers check results.
    pub fn exited_cleanly(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && self.limit_hit.is_none()
    }
}
