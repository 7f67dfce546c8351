//! Building, running and stopping the service.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use toolsmith_api::{
    ApiSettings, AppState, EXECUTIONS_BUFFER, ExecutionSink, Generation, JobEvents, NoWorkers,
    ToolFailure, ToolRunner,
};
use toolsmith_buffer::{Buffer, Buffers, SystemClock};
use toolsmith_engine::{Engine, GenerationConfig, GenerationWorkflow, Workflow, run_tool};
use toolsmith_sandbox::envs::{EnvConfig, EnvManager};
use toolsmith_store::{SqliteStore, Store};

use crate::Config;
use crate::config::{DEFAULT_MODEL, LlmConfig, OPENAI_BASE_URL};
use toolsmith_llm::{ChatModel, ClientConfig, Llm, LlmSettings, OpenAiClient, RetryPolicy};
use toolsmith_sandbox::{Isolation, LimitHit, Limits, RunSpec, Sandbox, SandboxConfig};

/// Which workflow the job workers run.
pub enum Workflows {
    /// The generation workflow of SPEC §4, when an LLM is configured and the sandbox is ready.
    Generation,
    /// Another workflow (tests drive the engine with a scripted one).
    Custom(Arc<dyn Workflow>),
    /// No workers: the service answers everything but job creation.
    Disabled,
}

pub struct Application {
    port: u16,
    /// The configured LLM, for the generation workflow.
    llm: Option<Arc<Llm>>,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    engine: Option<JoinHandle<()>>,
    store: Arc<SqliteStore>,
    /// Runs the buffers' triggers; flushes them when `buffers_stop` fires.
    flusher: JoinHandle<()>,
    buffers_stop: CancellationToken,
}

impl Application {
    /// Opens the store (applying migrations), binds, and starts the HTTP server and, when a
    /// workflow is given, the job workers. Without a workflow the service still answers
    /// everything but job creation, which says why it cannot generate.
    pub async fn build(config: Config, workflows: Workflows) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "could not create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let url = config.database_url();
        let store = Arc::new(
            SqliteStore::connect(&url)
                .await
                .with_context(|| format!("could not open the store at {url}"))?,
        );

        let llm = build_llm(&config.llm, store.clone())?;
        let dyn_store: Arc<dyn Store> = store.clone();
        let sandbox = probe_sandbox(&config).await;
        match (&sandbox, config.sandbox.unsafe_no_sandbox) {
            (Ok(_), false) => tracing::info!("sandbox ready"),
            (Ok(_), true) => tracing::warn!(
                "--unsafe-no-sandbox: generated code runs WITHOUT isolation (no namespaces, Landlock or seccomp)"
            ),
            (Err(why), _) => {
                tracing::warn!("the sandbox is unavailable, so no untrusted code will run: {why}")
            }
        }
        let sandbox_status = match (&sandbox, config.sandbox.unsafe_no_sandbox) {
            (Ok(_), false) => "ready".to_owned(),
            (Ok(_), true) => {
                "disabled: --unsafe-no-sandbox, generated code runs without isolation".to_owned()
            }
            (Err(why), _) => format!("unavailable: {why}"),
        };
        let envs = Arc::new(EnvManager::new(EnvConfig::new(
            config
                .sandbox
                .uv
                .canonicalize()
                .unwrap_or_else(|_| config.sandbox.uv.clone()),
            &config
                .data_dir
                .canonicalize()
                .unwrap_or_else(|_| config.data_dir.clone()),
        )));
        let run_limits = Limits {
            wall: config.run_timeout,
            cpu_seconds: config.run_timeout.as_secs().max(1),
            ..Limits::default()
        };
        let runner: Option<Arc<dyn ToolRunner>> = sandbox.as_ref().ok().map(|sandbox| {
            Arc::new(SandboxRunner {
                sandbox: sandbox.clone(),
                envs: envs.clone(),
                limits: run_limits.clone(),
            }) as Arc<dyn ToolRunner>
        });
        let workflow: Result<Arc<dyn Workflow>, String> = match workflows {
            Workflows::Custom(workflow) => Ok(workflow),
            Workflows::Disabled => Err("generation is disabled in this instance".to_owned()),
            Workflows::Generation => match (&llm, &sandbox) {
                (None, _) => Err(no_llm_reason()),
                (Some(_), Err(why)) => Err(format!(
                    "the sandbox is unavailable, so no generated code can be tested: {why}"
                )),
                (Some(llm), Ok(sandbox)) => Ok(Arc::new(GenerationWorkflow::new(
                    llm.clone(),
                    sandbox.clone(),
                    envs.clone(),
                    dyn_store.clone(),
                    GenerationConfig {
                        max_fix_iterations: config.max_fix_iterations,
                        limits: run_limits.clone(),
                        ruff: config.sandbox.python_env.join("bin/ruff"),
                    },
                ))),
            },
        };
        let generation = match &workflow {
            Ok(_) => Generation::Available,
            Err(why) => {
                tracing::warn!("tool generation is unavailable: {why}");
                Generation::Unavailable(why.clone())
            }
        };
        let workflow = workflow.ok();

        let shutdown = CancellationToken::new();
        let (engine, jobs): (_, Arc<dyn JobEvents>) = match workflow {
            Some(workflow) => {
                let engine = Arc::new(Engine::new(
                    dyn_store.clone(),
                    workflow,
                    config.engine.clone(),
                ));
                let handle = tokio::spawn(engine.clone().run(shutdown.clone()));
                (Some(handle), Arc::new(EngineEvents(engine)))
            }
            None => (None, Arc::new(NoWorkers)),
        };

        let executions = Buffer::open(
            EXECUTIONS_BUFFER,
            config.executions_buffer,
            &config.spool_dir(),
            Arc::new(ExecutionSink(dyn_store.clone())),
            Arc::new(SystemClock),
        )
        .context("could not open the executions buffer")?;
        let buffers = Arc::new(Buffers::new([Arc::new(executions)]));

        let state = AppState {
            buffers: buffers.clone(),
            store: dyn_store,
            settings: Arc::new(ApiSettings {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                generation,
                job_deadline: config.job_deadline,
                sandbox: sandbox_status,
            }),
            jobs,
            runner,
        };
        let address = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("could not listen on {address}"))?;
        let port = listener.local_addr()?.port();
        // Stopped after the server, so the last executions answered are in the final flush.
        let buffers_stop = CancellationToken::new();
        let flusher = buffers.spawn_flusher(buffers_stop.clone());
        let server = tokio::spawn(
            axum::serve(listener, toolsmith_api::router(state))
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .into_future(),
        );
        tracing::info!(host = %config.host, port, data_dir = %config.data_dir.display(), "toolsmith is listening");
        Ok(Application {
            port,
            llm,
            shutdown,
            server,
            engine,
            store,
            flusher,
            buffers_stop,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The configured LLM, if any.
    pub fn llm(&self) -> Option<Arc<Llm>> {
        self.llm.clone()
    }

    /// The store the service runs on.
    pub fn store(&self) -> Arc<SqliteStore> {
        self.store.clone()
    }

    /// Fires to stop: the server stops accepting, workers stop claiming and hand back work.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server and the workers have stopped (after the shutdown token fires).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            server,
            engine,
            store,
            flusher,
            buffers_stop,
            ..
        } = self;
        let served = server.await.context("the HTTP server task failed")?;
        tracing::info!("HTTP server stopped");
        if let Some(engine) = engine {
            engine.await.context("the engine task failed")?;
        }
        buffers_stop.cancel();
        flusher.await.context("the buffer flusher failed")?;
        store.pool().close().await;
        served.context("the HTTP server failed")
    }

    /// Stops at once, as a crash would: nothing is handed back, leases simply stop being
    /// renewed. Used by tests of crash recovery.
    pub async fn abort(self) {
        self.server.abort();
        self.flusher.abort();
        let _ = self.flusher.await;
        if let Some(engine) = &self.engine {
            engine.abort();
        }
        let _ = self.server.await;
        if let Some(engine) = self.engine {
            let _ = engine.await;
        }
        self.store.pool().close().await;
    }
}

/// The LLM client of SPEC §3 when an endpoint is configured. Built at start so that a bad
/// setting (a malformed header, say) stops the service with a clear message instead of failing
/// the first job.
fn build_llm(config: &LlmConfig, store: Arc<SqliteStore>) -> anyhow::Result<Option<Arc<Llm>>> {
    if !config.is_configured() {
        return Ok(None);
    }
    let base_url = config
        .base_url
        .clone()
        .unwrap_or_else(|| OPENAI_BASE_URL.to_owned());
    let client = OpenAiClient::new(ClientConfig {
        api_key: config.api_key.as_ref().map(|k| k.expose().to_owned()),
        headers: config.headers.clone(),
        timeout: config.timeout,
        retry: RetryPolicy {
            max_retries: config.max_retries,
            ..RetryPolicy::default()
        },
        ..ClientConfig::new(&base_url)
    })
    .context("invalid LLM settings")?;
    let model = config
        .model
        .clone()
        .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    tracing::info!(endpoint = %client.endpoint(), %model, "LLM endpoint configured");
    let settings = LlmSettings {
        simple_model: config.simple_model.clone(),
        job_token_budget: config.job_token_budget,
        ..LlmSettings::new(model)
    };
    Ok(Some(Arc::new(Llm::new(Arc::new(client), store, settings))))
}

/// Starts a sandbox and runs `python -c pass` in it: the sandbox is ready only if that works.
async fn probe_sandbox(config: &Config) -> Result<Arc<Sandbox>, String> {
    let init = match &config.sandbox.init_binary {
        Some(path) => path.clone(),
        None => {
            std::env::current_exe().map_err(|err| format!("cannot find this executable: {err}"))?
        }
    };
    let python_env = config.sandbox.python_env.canonicalize().map_err(|err| {
        format!(
            "the Python environment {} is missing ({err}); run scripts/setup.sh",
            config.sandbox.python_env.display()
        )
    })?;
    let staging = std::fs::canonicalize(&config.data_dir)
        .map_err(|err| format!("the data directory is unusable: {err}"))?
        .join("sandbox");
    let isolation = if config.sandbox.unsafe_no_sandbox {
        Isolation::Disabled
    } else {
        Isolation::Enforced
    };
    tokio::task::spawn_blocking(move || {
        let sandbox = Sandbox::new(SandboxConfig {
            isolation,
            ..SandboxConfig::new(init, staging)
        })
        .map_err(|e| e.to_string())?;
        let run = sandbox
            .run(&RunSpec {
                program: vec!["python".into(), "-c".into(), "pass".into()],
                files: Vec::new(),
                env: Vec::new(),
                python_env,
                harness: Vec::new(),
                report: false,
                limits: Limits::default(),
            })
            .map_err(|e| e.to_string())?;
        if run.exited_cleanly() {
            Ok(Arc::new(sandbox))
        } else {
            Err(format!(
                "a trial run failed: exit {:?}, signal {:?}, stderr {:?}",
                run.exit_code, run.signal, run.stderr
            ))
        }
    })
    .await
    .map_err(|err| format!("the probe task failed: {err}"))?
}

/// Runs tools for the execution API in the sandbox, through the service's case runner.
struct SandboxRunner {
    sandbox: Arc<Sandbox>,
    envs: Arc<EnvManager>,
    limits: Limits,
}

#[async_trait::async_trait]
impl ToolRunner for SandboxRunner {
    async fn run(
        &self,
        entry_point: &str,
        code: &str,
        dependencies: &[String],
        input: &serde_json::Value,
    ) -> Result<serde_json::Value, ToolFailure> {
        run_tool(
            self.sandbox.clone(),
            self.envs.clone(),
            entry_point,
            code,
            dependencies,
            input,
            self.limits.clone(),
        )
        .await
        .map_err(|failure| {
            let what = match failure.limit {
                Some(LimitHit::WallTime) => "did not finish within",
                Some(LimitHit::CpuTime) => "used up its CPU time limit of",
                _ => {
                    return ToolFailure {
                        message: failure.message,
                        timed_out: false,
                    };
                }
            };
            ToolFailure {
                message: format!(
                    "the tool {what} {} s (TOOLSMITH_RUN_TIMEOUT_S) and was stopped",
                    self.limits.wall.as_secs()
                ),
                timed_out: true,
            }
        })
    }
}

/// Tells this process's engine what the API did.
struct EngineEvents(Arc<Engine>);

impl JobEvents for EngineEvents {
    fn created(&self) {
        self.0.wakeup().notify_waiters();
    }

    fn cancelled(&self, job_id: &str) {
        self.0.cancel_local(job_id);
    }
}

fn no_llm_reason() -> String {
    "no LLM endpoint is configured: set TOOLSMITH_LLM_BASE_URL (or OPENAI_BASE_URL) to an \
     OpenAI-compatible endpoint, TOOLSMITH_LLM_API_KEY (or OPENAI_API_KEY) if it needs one, \
     and TOOLSMITH_LLM_MODEL, then restart"
        .to_owned()
}
