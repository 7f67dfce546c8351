//! The command line: `toolsmith <subcommand>`. Every flag can also come from the environment
//! variable named in its help.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use toolsmith_buffer::Strategy;
use toolsmith_engine::EngineConfig;

use crate::config::{Config, LlmConfig, SandboxSettings, Secret, parse_headers};

#[derive(Debug, Parser)]
#[command(
    name = "toolsmith",
    version,
    about = "Turns natural-language tool requirements into tested, versioned, sandboxed Python tools."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the job workers.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(StoreArgs),
    /// Serve an OpenAI-compatible chat-completions API that answers from a script (see
    /// README: "The mock LLM"); for tests, demos and trying integrations without tokens.
    MockLlm(MockLlmArgs),
    /// Run code in the sandbox.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Ask a running server for one tool, follow its progress and print the result.
    Generate(GenerateArgs),
    /// The offline demo: the service on the embedded defaults, a scripted model (no tokens
    /// spent), three requirements turned into tested tools, and an execution of each.
    Demo(DemoArgs),
    /// The registry of a running server: list, show, versions, rollback, deprecate, exec.
    Tools(ToolsArgs),
    /// The write buffers of a running server: status, flush, clear.
    Buffers(BuffersArgs),
}

/// Where the API commands find the server.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The Toolsmith server.
    #[arg(
        long,
        global = true,
        env = "TOOLSMITH_SERVER",
        default_value = "http://127.0.0.1:8000"
    )]
    pub server: String,
    /// Sent as X-User-Id.
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// Print the API's JSON answer instead of a summary.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ToolsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: ToolsCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ToolsCommand {
    /// List and search tools, newest first.
    List {
        /// Text searched in names and descriptions.
        #[arg(long, short)]
        query: Option<String>,
        /// draft, registered, deprecated or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        /// Only the tools of this user.
        #[arg(long)]
        owner: Option<String>,
        /// At most this many (1..=500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// The next page, as printed after the previous one.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// A tool with its current version's code and schemas.
    Show { id: String },
    /// A tool's versions, newest first.
    Versions { id: String },
    /// Point a tool at an earlier (or later) version; default: the one before the current.
    Rollback {
        id: String,
        #[arg(long)]
        to: Option<String>,
    },
    /// Mark a tool deprecated (it then runs only with --allow-deprecated).
    Deprecate { id: String },
    /// Run a tool in the server's sandbox and print the result; exits 3 if the tool ran and
    /// failed, 1 if the server refused.
    Exec {
        id: String,
        /// The entry function's arguments as a JSON object, or @FILE to read them from a file.
        #[arg(long)]
        input: String,
        /// Run this version instead of the current one.
        #[arg(long)]
        version: Option<String>,
        #[arg(long)]
        allow_deprecated: bool,
        /// Recorded in the execution log (default `cli`).
        #[arg(long, default_value = "cli")]
        triggered_by: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct BuffersArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: BuffersCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BuffersCommand {
    /// Every buffer, or one, with what waits in it and its counters.
    Status { id: Option<String> },
    /// Write everything a buffer holds to the store now.
    Flush { id: String },
    /// Drop everything a buffer holds WITHOUT writing it (needs --yes).
    Clear {
        id: String,
        /// Yes, drop the items.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// What the tool should do.
    #[arg(long)]
    pub description: String,
    /// What the tool takes.
    #[arg(long)]
    pub input: String,
    /// What the tool returns.
    #[arg(long)]
    pub output: String,
    /// The Toolsmith server.
    #[arg(
        long,
        env = "TOOLSMITH_SERVER",
        default_value = "http://127.0.0.1:8000"
    )]
    pub server: String,
    /// Sent as X-User-Id.
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The data directory; the demo works in its `demo` subdirectory, made anew each run.
    #[arg(long, env = "TOOLSMITH_DATA_DIR", default_value = "./.toolsmith")]
    pub data_dir: PathBuf,
    /// The base Python environment made by scripts/setup.sh.
    #[arg(long, env = "TOOLSMITH_PYTHON_ENV", default_value = "./.tools/py")]
    pub python_env: PathBuf,
    /// The uv that makes per-tool environments.
    #[arg(long, env = "TOOLSMITH_UV", default_value = "./.tools/uv/bin/uv")]
    pub uv: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Run one Python file in the sandbox and print the result as JSON:
    /// `toolsmith sandbox exec [OPTIONS] -- python FILE [ARGS]...`
    Exec(SandboxExecArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SandboxExecArgs {
    /// Wall-clock limit in seconds (the whole process tree is killed past it).
    #[arg(long, default_value_t = 30)]
    pub timeout_s: u64,
    /// Address-space limit in MiB.
    #[arg(long, default_value_t = 1024)]
    pub memory_mb: u64,
    /// An environment variable for the program (repeatable); nothing else is inherited.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// The Python environment mounted at /env (a venv or installation prefix).
    #[arg(long, env = "TOOLSMITH_PYTHON_ENV", default_value = "./.tools/py")]
    pub python_env: PathBuf,
    /// Directory for the sandbox's staging area.
    #[arg(long, env = "TOOLSMITH_DATA_DIR", default_value = "./.toolsmith")]
    pub data_dir: PathBuf,
    /// Run WITHOUT isolation (see `serve --unsafe-no-sandbox`).
    #[arg(long)]
    pub unsafe_no_sandbox: bool,
    /// `python FILE [ARGS]...`
    #[arg(last = true, required = true, num_args = 2..)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct MockLlmArgs {
    /// The script: a JSON file of rules and a default answer.
    #[arg(long)]
    pub script: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8089)]
    pub port: u16,
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory holding the SQLite file and all other state.
    #[arg(long, env = "TOOLSMITH_DATA_DIR", default_value = "./.toolsmith")]
    pub data_dir: PathBuf,
    /// Database URL (`sqlite://PATH`); default: `toolsmith.db` in the data directory.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Jobs run at once by this instance.
    #[arg(long, env = "TOOLSMITH_WORKERS", default_value_t = 4)]
    pub workers: usize,
    /// Requirements of one job run at once.
    #[arg(long, env = "TOOLSMITH_REQUIREMENT_CONCURRENCY", default_value_t = 4)]
    pub requirement_concurrency: usize,
    /// Seconds a job may run before unfinished requirements fail with GENERATION_TIMEOUT.
    #[arg(long, env = "TOOLSMITH_JOB_DEADLINE_S", default_value_t = 900)]
    pub job_deadline_s: u64,
    /// Seconds a worker's claim on a job lasts without a heartbeat; a crashed worker's jobs
    /// are taken over after this.
    #[arg(long, env = "TOOLSMITH_LEASE_S", default_value_t = 30)]
    pub lease_s: u64,
    /// Seconds running phases may go on after SIGINT/SIGTERM before they are interrupted and
    /// their jobs handed back to the queue.
    #[arg(long, env = "TOOLSMITH_SHUTDOWN_GRACE_S", default_value_t = 10)]
    pub shutdown_grace_s: u64,
    /// Seconds each test or case run of a generated tool may take (wall clock and CPU).
    #[arg(long, env = "TOOLSMITH_RUN_TIMEOUT_S", default_value_t = 30)]
    pub run_timeout_s: u64,
    /// Fix iterations before a requirement that keeps failing its checks fails.
    #[arg(long, env = "TOOLSMITH_MAX_FIX_ITERATIONS", default_value_t = 5)]
    pub max_fix_iterations: u32,
    /// Claims of one job (crashed or panicked runs) before its unfinished requirements fail
    /// with INTERNAL_ERROR.
    #[arg(long, env = "TOOLSMITH_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: u32,
    /// OpenAI-compatible endpoint (falls back to OPENAI_BASE_URL).
    #[arg(long, env = "TOOLSMITH_LLM_BASE_URL")]
    pub llm_base_url: Option<String>,
    /// API key for the endpoint (falls back to OPENAI_API_KEY).
    #[arg(long, env = "TOOLSMITH_LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,
    /// Model name (default gpt-4o-mini).
    #[arg(long, env = "TOOLSMITH_LLM_MODEL")]
    pub llm_model: Option<String>,
    /// A cheaper model for plans estimated `low` complexity.
    #[arg(long, env = "TOOLSMITH_LLM_MODEL_SIMPLE")]
    pub llm_model_simple: Option<String>,
    /// Extra headers for every LLM call: a JSON object, or `Name: value` pairs separated by
    /// `;` or newlines.
    #[arg(long, env = "TOOLSMITH_LLM_HEADERS", hide_env_values = true)]
    pub llm_headers: Option<String>,
    /// Seconds one LLM request may take before it is retried.
    #[arg(long, env = "TOOLSMITH_LLM_TIMEOUT_S", default_value_t = 120)]
    pub llm_timeout_s: u64,
    /// Retries of a failed LLM request (429, 5xx, timeouts, connection errors).
    #[arg(long, env = "TOOLSMITH_LLM_MAX_RETRIES", default_value_t = 3)]
    pub llm_max_retries: u32,
    /// Tokens one job may spend on the LLM (cache hits are free); unlimited when unset.
    #[arg(long, env = "TOOLSMITH_JOB_TOKEN_BUDGET")]
    pub job_token_budget: Option<i64>,
    /// The base Python environment (pytest, ruff) that `scripts/setup.sh` makes.
    #[arg(long, env = "TOOLSMITH_PYTHON_ENV", default_value = "./.tools/py")]
    pub python_env: PathBuf,
    /// The uv binary that makes per-tool Python environments.
    #[arg(long, env = "TOOLSMITH_UV", default_value = "./.tools/uv/bin/uv")]
    pub uv: PathBuf,
    /// Run generated code WITHOUT isolation (no namespaces, Landlock or seccomp; limits and the
    /// wall clock still apply). Only for machines without user namespaces, accepting the risk;
    /// /health and the logs say so.
    #[arg(long)]
    pub unsafe_no_sandbox: bool,
    /// How execution logs reach the store: `batched` (at --buffer-max-size items or when the
    /// oldest has waited --buffer-flush-interval-s), `immediate` (each at once) or `manual`
    /// (only on `toolsmith buffers flush`). Buffered logs wait in a spool on disk that
    /// survives a crash.
    #[arg(long, env = "TOOLSMITH_BUFFER_STRATEGY", default_value = "batched", value_parser = ["batched", "immediate", "manual"])]
    pub buffer_strategy: String,
    /// `batched`: flush at this many buffered execution logs.
    #[arg(long, env = "TOOLSMITH_BUFFER_MAX_SIZE", default_value_t = 100)]
    pub buffer_max_size: usize,
    /// `batched`: flush when the oldest buffered execution log has waited this many seconds.
    #[arg(long, env = "TOOLSMITH_BUFFER_FLUSH_INTERVAL_S", default_value_t = 5.0)]
    pub buffer_flush_interval_s: f64,
    /// Log format: `text` or `json`.
    #[arg(long, env = "TOOLSMITH_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl ServeArgs {
    pub fn config(&self) -> anyhow::Result<Config> {
        if self.workers == 0 {
            anyhow::bail!("TOOLSMITH_WORKERS must be at least 1");
        }
        if self.lease_s < 3 {
            anyhow::bail!("TOOLSMITH_LEASE_S must be at least 3 seconds");
        }
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let lease = Duration::from_secs(self.lease_s);
        Ok(Config {
            host: self.host.clone(),
            port: self.port,
            data_dir: self.store.data_dir.clone(),
            database_url: self.store.database_url.clone(),
            engine: EngineConfig {
                workers: self.workers,
                requirement_concurrency: self.requirement_concurrency.max(1),
                lease,
                heartbeat: lease / 3,
                poll_interval: Duration::from_secs(2).min(lease / 3),
                shutdown_grace: Duration::from_secs(self.shutdown_grace_s),
                max_attempts: self.max_attempts,
            },
            job_deadline: Duration::from_secs(self.job_deadline_s.max(1)),
            llm: LlmConfig {
                base_url: self
                    .llm_base_url
                    .clone()
                    .or_else(|| from_env("OPENAI_BASE_URL")),
                api_key: self
                    .llm_api_key
                    .clone()
                    .or_else(|| from_env("OPENAI_API_KEY"))
                    .map(Secret::new),
                model: self.llm_model.clone(),
                simple_model: self.llm_model_simple.clone(),
                headers: parse_headers(self.llm_headers.as_deref().unwrap_or(""))
                    .map_err(anyhow::Error::msg)?,
                timeout: Duration::from_secs(self.llm_timeout_s.max(1)),
                max_retries: self.llm_max_retries,
                job_token_budget: self.job_token_budget,
            },
            sandbox: SandboxSettings {
                init_binary: None,
                python_env: self.python_env.clone(),
                uv: self.uv.clone(),
                unsafe_no_sandbox: self.unsafe_no_sandbox,
            },
            max_fix_iterations: self.max_fix_iterations,
            run_timeout: Duration::from_secs(self.run_timeout_s.max(1)),
            executions_buffer: Strategy::from_name(
                &self.buffer_strategy,
                self.buffer_max_size,
                Duration::try_from_secs_f64(self.buffer_flush_interval_s).map_err(|_| {
                    anyhow::anyhow!(
                        "TOOLSMITH_BUFFER_FLUSH_INTERVAL_S must be a positive number of seconds"
                    )
                })?,
            )
            .map_err(anyhow::Error::msg)?,
        })
    }
}
