//! Application state: cheap handles shared by every handler.

use std::sync::Arc;
use std::time::Duration;

use toolsmith_store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<ApiSettings>,
    pub jobs: Arc<dyn JobEvents>,
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
