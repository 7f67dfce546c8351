//! Typed configuration, loaded once at start.

use std::path::PathBuf;
use std::time::Duration;

use toolsmith_engine::EngineConfig;

/// A value that must not appear in logs: `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The LLM endpoint (SPEC §3). Configured when a base URL or an API key is given.
#[derive(Debug, Clone, Default)]
pub struct LlmConfig {
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    pub model: Option<String>,
}

impl LlmConfig {
    pub fn is_configured(&self) -> bool {
        self.base_url.is_some() || self.api_key.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Holds the SQLite file and all other state.
    pub data_dir: PathBuf,
    /// Overrides the SQLite file in `data_dir`.
    pub database_url: Option<String>,
    pub engine: EngineConfig,
    pub job_deadline: Duration,
    pub llm: LlmConfig,
}

impl Config {
    /// Defaults for everything but the data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            host: "127.0.0.1".to_owned(),
            port: 8000,
            data_dir: data_dir.into(),
            database_url: None,
            engine: EngineConfig::default(),
            job_deadline: Duration::from_secs(15 * 60),
            llm: LlmConfig::default(),
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("toolsmith.db").display()))
    }
}
