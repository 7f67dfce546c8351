//! Application state: cheap handles shared by every handler.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toolsmith_buffer::{Buffers, Item, Sink, Written};
use toolsmith_store::{ExecutionRecord, Store};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<ApiSettings>,
    pub jobs: Arc<dyn JobEvents>,
    /// Runs tools for the execution API; `None` when the sandbox is unavailable.
    pub runner: Option<Arc<dyn ToolRunner>>,
    /// The write buffers; must hold [`EXECUTIONS_BUFFER`].
    pub buffers: Arc<Buffers>,
}

/// The buffer execution logs go through.
pub const EXECUTIONS_BUFFER: &str = "executions";

/// Where the executions buffer writes: the store's execution log, in one transaction per
/// batch, skipping executions already logged.
pub struct ExecutionSink(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl Sink for ExecutionSink {
    async fn write(&self, items: &[Item]) -> Result<Written, String> {
        let mut records = Vec::with_capacity(items.len());
        let mut rejected = Vec::new();
        for item in items {
            match ExecutionRecord::deserialize(&item.payload) {
                Ok(record) => records.push(record),
                Err(err) => {
                    rejected.push((item.id.clone(), format!("not an execution log: {err}")))
                }
            }
        }
        let new = self
            .0
            .write_executions(&records)
            .await
            .map_err(|err| err.to_string())?;
        Ok(Written { new, rejected })
    }
}

/// Why a tool run produced no result.
#[derive(Debug, Clone)]
pub struct ToolFailure {
    /// `ExceptionType: message`, or what stopped the run.
    pub message: String,
    /// A time limit ended the run.
    pub timed_out: bool,
}

/// Runs a tool's entry function once, in the sandbox, in the environment of its dependencies.
#[async_trait::async_trait]
pub trait ToolRunner: Send + Sync + 'static {
    async fn run(
        &self,
        entry_point: &str,
        code: &str,
        dependencies: &[String],
        input: &serde_json::Value,
    ) -> Result<serde_json::Value, ToolFailure>;
}

/// What the API tells the job workers of this process. The store is the truth; these only
/// make the workers react at once instead of at their next poll or heartbeat.
pub trait JobEvents: Send + Sync + 'static {
    /// A job was queued.
    fn created(&self);
    /// A job was cancelled in the store.
    fn cancelled(&self, job_id: &str);
}

/// For a service that runs no workers.
pub struct NoWorkers;

impl JobEvents for NoWorkers {
    fn created(&self) {}
    fn cancelled(&self, _job_id: &str) {}
}

#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub version: String,
    pub generation: Generation,
    /// How long a job may run before unfinished requirements fail with `GENERATION_TIMEOUT`.
    pub job_deadline: Duration,
    /// `ready`, or `unavailable: <why>` (from the probe run at start).
    pub sandbox: String,
}

/// Whether this instance can generate tools; when not, job creation answers 503 with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generation {
    Available,
    Unavailable(String),
}
