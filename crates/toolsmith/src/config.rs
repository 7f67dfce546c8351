//! Typed configuration, loaded once at start.

use std::path::PathBuf;
use std::time::Duration;

use toolsmith_buffer::Strategy;
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
#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    pub model: Option<String>,
    /// A cheaper model for low-complexity plans.
    pub simple_model: Option<String>,
    /// Extra headers sent with every call.
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub max_retries: u32,
    /// Tokens one job may spend (prompt + completion; cache hits are free).
    pub job_token_budget: Option<i64>,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            base_url: None,
            api_key: None,
            model: None,
            simple_model: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(120),
            max_retries: 3,
            job_token_budget: None,
        }
    }
}

/// The endpoint used when only an API key is given.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// The model used when none is named.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

impl LlmConfig {
    pub fn is_configured(&self) -> bool {
        self.base_url.is_some() || self.api_key.is_some()
    }
}

/// Parses `TOOLSMITH_LLM_HEADERS`: a JSON object of strings, or `Name: value` pairs separated
/// by newlines or `;`.
pub fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.starts_with('{') {
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(text).map_err(|err| {
                format!("TOOLSMITH_LLM_HEADERS is not a JSON object of strings: {err}")
            })?;
        return Ok(map.into_iter().collect());
    }
    text.split(['\n', ';'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part
                .split_once(':')
                .ok_or_else(|| format!("TOOLSMITH_LLM_HEADERS: {part:?} is not `Name: value`"))?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "TOOLSMITH_LLM_HEADERS: {name:?} is not a header name"
                ));
            }
            Ok((name.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_headers;

    #[test]
    fn headers_from_json_or_pairs() {
        assert_eq!(parse_headers("").expect("empty"), vec![]);
        assert_eq!(
            parse_headers("X-Org: acme; X-Team: tools\nHTTP-Referer: https://x.example")
                .expect("pairs"),
            vec![
                ("X-Org".to_owned(), "acme".to_owned()),
                ("X-Team".to_owned(), "tools".to_owned()),
                ("HTTP-Referer".to_owned(), "https://x.example".to_owned())
            ]
        );
        assert_eq!(
            parse_headers(r#"{"X-Org": "acme"}"#).expect("json"),
            vec![("X-Org".to_owned(), "acme".to_owned())]
        );
        assert!(parse_headers("no colon").is_err());
        assert!(parse_headers("bad name: v").is_err());
        assert!(parse_headers(r#"{"X": 1}"#).is_err());
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
    pub sandbox: SandboxSettings,
    /// Fix iterations before a requirement fails.
    pub max_fix_iterations: u32,
    /// Wall clock (and CPU time) of each test or case run of a generated tool.
    pub run_timeout: Duration,
    /// How execution logs are buffered (SPEC §6).
    pub executions_buffer: Strategy,
}

/// Where the sandbox finds what it runs.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// The binary run as the sandbox's init (default: this executable).
    pub init_binary: Option<PathBuf>,
    /// The base Python environment (pytest, ruff) made by `scripts/setup.sh`.
    pub python_env: PathBuf,
    /// The uv binary that makes per-tool environments.
    pub uv: PathBuf,
    /// Run untrusted code without isolation (`--unsafe-no-sandbox`).
    pub unsafe_no_sandbox: bool,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            init_binary: None,
            python_env: PathBuf::from("./.tools/py"),
            uv: PathBuf::from("./.tools/uv/bin/uv"),
            unsafe_no_sandbox: false,
        }
    }
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
            sandbox: SandboxSettings::default(),
            max_fix_iterations: 5,
            run_timeout: Duration::from_secs(30),
            executions_buffer: Strategy::Batched {
                max_size: Strategy::DEFAULT_MAX_SIZE,
                flush_interval: Strategy::DEFAULT_FLUSH_INTERVAL,
            },
        }
    }

    /// Where buffers keep their spools.
    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("buffers")
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("toolsmith.db").display()))
    }
}
