//! Application state: cheap handles shared by every handler.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use toolsmith_store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<ApiSettings>,
    /// Wakes idle workers when a job is created.
    pub job_wakeup: Arc<Notify>,
}

#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub version: String,
    pub generation: Generation,
    /// How long a job may run before unfinished requirements fail with `GENERATION_TIMEOUT`.
    pub job_deadline: Duration,
}

/// Whether this instance can generate tools; when not, job creation answers 503 with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generation {
    Available,
    Unavailable(String),
}
