//! `spawn_app()`: the real application on port 0 with a fresh data directory, driven over
//! real HTTP. Until the generation workflow lands, jobs run through `ScriptedWorkflow`, a
//! workflow whose behaviour each requirement's description scripts (see its docs); it tests
//! the engine, not generation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use toolsmith::{Application, Config, Workflows};
use toolsmith_buffer::Strategy;
use toolsmith_domain::{ErrorCode, Phase};
use toolsmith_engine::{EngineConfig, PhaseContext, PhaseOutcome, RequirementError, Workflow};
use toolsmith_store::{LogLevel, NewGenerationLog, ToolDraft, ToolOutcome};

/// A workflow scripted by words in each requirement's description:
/// - `tool:NAME` — the tool's name (default `tool_<index>`);
/// - `fail:PHASE` — fail in PHASE with `INSUFFICIENT_API_SPECS`;
/// - `slow:PHASE:MS` — PHASE takes MS milliseconds;
/// - `hang:PHASE` — PHASE never ends (until cancelled, interrupted or past the deadline).
///
/// Every phase appends its name to the checkpoint's `phases`, so a resumed run shows which
/// phases ran before; every call is recorded for the tests to count.
#[derive(Default)]
pub struct ScriptedWorkflow {
    calls: Mutex<Vec<(String, u32, Phase)>>,
    running: Mutex<(usize, usize)>,
    /// Ignore `slow` and `hang`: a second instance that finishes what the first could not.
    no_delays: bool,
}

impl ScriptedWorkflow {
    pub fn without_delays() -> Self {
        ScriptedWorkflow {
            no_delays: true,
            ..ScriptedWorkflow::default()
        }
    }

    /// Phases run for a job, in call order.
    pub fn calls(&self, job_id: &str) -> Vec<(u32, Phase)> {
        self.calls
            .lock()
            .expect("lock")
            .iter()
            .filter(|(j, _, _)| j == job_id)
            .map(|(_, i, p)| (*i, *p))
            .collect()
    }

    /// The most phases that ran at the same time.
    pub fn max_concurrent(&self) -> usize {
        self.running.lock().expect("lock").1
    }
}

fn words(description: &str) -> HashMap<String, Vec<String>> {
    let mut map = HashMap::new();
    for word in description.split_whitespace() {
        let mut parts = word.split(':');
        if let Some(key) = parts.next() {
            let rest: Vec<String> = parts.map(str::to_owned).collect();
            if !rest.is_empty() {
                map.insert(key.to_owned(), rest);
            }
        }
    }
    map
}

struct RunningGuard<'a>(&'a Mutex<(usize, usize)>);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().expect("lock").0 -= 1;
    }
}

#[async_trait]
impl Workflow for ScriptedWorkflow {
    async fn run_phase(
        &self,
        phase: Phase,
        ctx: &mut PhaseContext,
    ) -> Result<PhaseOutcome, RequirementError> {
        self.calls
            .lock()
            .expect("lock")
            .push((ctx.job_id.clone(), ctx.index, phase));
        {
            let mut running = self.running.lock().expect("lock");
            running.0 += 1;
            running.1 = running.1.max(running.0);
        }
        let _guard = RunningGuard(&self.running);

        let script = words(&ctx.requirement.description);
        let name = script
            .get("tool")
            .map(|v| v[0].clone())
            .unwrap_or_else(|| format!("tool_{}", ctx.index));
        ctx.tool_name = Some(name.clone());
        let here = |key: &str| script.get(key).is_some_and(|v| v[0] == phase.as_str());
        let delays = !self.no_delays;
        if delays && here("slow") {
            let ms = script["slow"]
                .get(1)
                .and_then(|m| m.parse().ok())
                .unwrap_or(100);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if delays && here("hang") {
            std::future::pending::<()>().await;
        }
        if here("fail") {
            return Err(RequirementError::new(
                ErrorCode::InsufficientApiSpecs,
                format!("scripted failure in {phase}"),
            ));
        }
        let phases = ctx.checkpoint.get("phases").cloned().unwrap_or(json!([]));
        let mut phases: Vec<Value> = serde_json::from_value(phases).unwrap_or_default();
        phases.push(json!(phase.as_str()));
        ctx.checkpoint = json!({ "phases": phases });
        ctx.log(NewGenerationLog {
            phase: phase.as_str().to_owned(),
            step: Some("scripted".into()),
            level: LogLevel::Debug,
            message: format!("scripted {phase}"),
            prompt_sent: Some(format!("prompt for {phase}")),
            response_received: Some(format!("response for {phase}")),
            model_used: Some("scripted".into()),
            tokens_used: Some(10),
            ..NewGenerationLog::default()
        })
        .await;
        if phase == Phase::Registration {
            ctx.outcome = Some(ToolOutcome::Generated(Box::new(ToolDraft {
                name: name.clone(),
                description: ctx.requirement.description.clone(),
                // Doubles x; negative x raises, 999 hangs, 7 returns text, 8 a set (not JSON)
                // (for execution tests).
                code: format!(
                    "import time\n\n\ndef {name}(x: int) -> int:\n    \"\"\"Doubles x.\"\"\"\n    if x < 0:\n        raise ValueError('x must not be negative')\n    if x == 999:\n        time.sleep(3600)\n    if x == 7:\n        return 'seven'\n    if x == 8:\n        return {{1, 2}}\n    return 2 * x\n"
                ),
                entry_point: name,
                input_schema: json!({
                    "type": "object",
                    "properties": {"x": {"type": "integer", "description": "the number"}},
                    "required": ["x"],
                    "additionalProperties": false
                }),
                output_schema: json!({"type": "integer"}),
                dependencies: vec![],
                test_code: None,
                test_cases: json!([]),
                spec: None,
                plan: None,
                model: Some("scripted".into()),
            })));
        }
        Ok(PhaseOutcome::Next)
    }
}

pub struct TestOptions {
    /// Reuse a data directory (restart tests); default: a fresh one.
    pub data_dir: Option<Arc<tempfile::TempDir>>,
    /// `None`: the service runs without generation.
    pub workflow: Option<Arc<ScriptedWorkflow>>,
    pub engine: EngineConfig,
    pub job_deadline: Duration,
    /// Overrides the sandbox's Python environment (default: the workspace's `.tools/py`).
    pub python_env: Option<PathBuf>,
    /// An LLM endpoint (the mock server): with no scripted workflow, jobs run the real
    /// generation workflow against it.
    pub llm_base_url: Option<String>,
    pub max_fix_iterations: u32,
    /// How execution logs are buffered (default: batched, 100 items / 5 s, as in production).
    pub executions_buffer: Strategy,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            data_dir: None,
            workflow: Some(Arc::new(ScriptedWorkflow::default())),
            engine: fast_engine(),
            job_deadline: Duration::from_secs(60),
            python_env: None,
            llm_base_url: None,
            max_fix_iterations: 3,
            executions_buffer: Config::new(".").executions_buffer,
        }
    }
}

/// Short leases and polls so recovery is observable in a test's time.
pub fn fast_engine() -> EngineConfig {
    EngineConfig {
        workers: 2,
        requirement_concurrency: 4,
        lease: Duration::from_millis(1500),
        heartbeat: Duration::from_millis(300),
        poll_interval: Duration::from_millis(100),
        shutdown_grace: Duration::from_millis(200),
        max_attempts: 5,
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub data_dir: Arc<tempfile::TempDir>,
    app: Option<Application>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

pub async fn spawn_app_with(options: TestOptions) -> TestApp {
    // Logs go through libtest's capture: shown only for failing tests.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
        .with_test_writer()
        .try_init();
    let data_dir = options
        .data_dir
        .unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("tempdir")));
    let mut config = Config::new(PathBuf::from(data_dir.path()));
    config.port = 0;
    config.engine = options.engine;
    config.job_deadline = options.job_deadline;
    config.run_timeout = Duration::from_secs(4);
    config.executions_buffer = options.executions_buffer;
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    config.sandbox = toolsmith::SandboxSettings {
        init_binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_toolsmith"))),
        python_env: options
            .python_env
            .unwrap_or_else(|| workspace.join(".tools/py")),
        uv: workspace.join(".tools/uv/bin/uv"),
        unsafe_no_sandbox: false,
    };
    if let Some(url) = &options.llm_base_url {
        config.llm.base_url = Some(url.clone());
        config.llm.model = Some("mock-model".into());
        config.llm.timeout = Duration::from_secs(10);
        config.max_fix_iterations = options.max_fix_iterations;
        config.run_timeout = Duration::from_secs(4);
    }
    // Without a scripted workflow the app chooses as `serve` does: generation when an LLM is
    // configured and the sandbox is ready, else none (and job creation says why).
    let workflows = match options.workflow {
        Some(w) => Workflows::Custom(w as Arc<dyn Workflow>),
        None => Workflows::Generation,
    };
    let app = Application::build(config, workflows)
        .await
        .expect("app builds");
    TestApp {
        address: format!("http://127.0.0.1:{}", app.port()),
        client: reqwest::Client::new(),
        data_dir,
        app: Some(app),
    }
}

/// A new app on `data_dir` (a restart of an app that was stopped or crashed there).
pub async fn respawn(
    data_dir: Arc<tempfile::TempDir>,
    workflow: Option<Arc<ScriptedWorkflow>>,
) -> TestApp {
    spawn_app_with(TestOptions {
        data_dir: Some(data_dir),
        workflow,
        ..TestOptions::default()
    })
    .await
}

/// Registers the scripted tool `twice` (a new version each call) and returns its id: it
/// doubles x; negative x raises, 999 hangs, 7 returns text, 8 a set.
pub async fn twice_tool(app: &TestApp) -> String {
    let job = app.create_job(&["tool:twice doubles a number"]).await;
    let done = app
        .wait_until_finished(job["jobId"].as_str().expect("id"))
        .await;
    done["toolFiles"][0]["toolId"]
        .as_str()
        .expect("tool")
        .to_owned()
}

/// A restart on `data_dir` with the scripted workflow and another buffer strategy.
pub async fn respawn_with(data_dir: Arc<tempfile::TempDir>, buffer: Strategy) -> TestApp {
    spawn_app_with(TestOptions {
        data_dir: Some(data_dir),
        executions_buffer: buffer,
        ..TestOptions::default()
    })
    .await
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn store(&self) -> Arc<toolsmith_store::SqliteStore> {
        self.app.as_ref().expect("running").store()
    }

    pub async fn get(&self, path: &str) -> Reply {
        Self::reply(
            self.client
                .get(self.url(path))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        Self::reply(
            self.client
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Self::reply(request.send().await.expect("request")).await
    }

    /// Creates a job of these descriptions and returns its response body.
    pub async fn create_job(&self, descriptions: &[&str]) -> Value {
        let requirements: Vec<Value> = descriptions
            .iter()
            .map(|d| json!({"description": d, "input": "an integer x", "output": "twice x"}))
            .collect();
        let reply = self
            .post_json("/api/v1/jobs", &json!({"toolRequirements": requirements}))
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        reply.body
    }

    /// Polls the job until `done` holds (or 20 s pass) and returns the last body.
    pub async fn wait_for_job(&self, job_id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let reply = self.get(&format!("/api/v1/jobs/{job_id}")).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            if done(&reply.body) {
                return reply.body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {job_id} never reached the expected state; last: {}",
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The whole generation log of a job's session (`job` is a `JobResponse` body).
    pub async fn session_logs(&self, job: &Value) -> Value {
        let session = job["sessionId"].as_str().unwrap_or("");
        self.get(&format!("/api/v1/sessions/{session}/logs?limit=500"))
            .await
            .body
    }

    pub async fn wait_until_finished(&self, job_id: &str) -> Value {
        self.wait_for_job(job_id, |b| {
            ["completed", "failed", "cancelled"].contains(&b["status"].as_str().unwrap_or(""))
        })
        .await
    }

    /// Graceful stop: running work is handed back.
    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown_token().cancel();
            app.run_until_stopped().await.expect("clean stop");
        }
    }

    /// Abrupt stop, as a crash: leases are left to expire.
    pub async fn crash(mut self) {
        if let Some(app) = self.app.take() {
            app.abort().await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(app) = &self.app {
            app.shutdown_token().cancel();
        }
    }
}

/// Writes a one-requirement job straight into the store, bypassing the API (for tests that
/// queue work where no worker runs, or drive the engine themselves).
pub async fn insert_job(
    store: &dyn toolsmith_store::Store,
    description: &str,
) -> toolsmith_store::JobRecord {
    let now = toolsmith_domain::time::now_ms();
    store
        .create_job(toolsmith_store::NewJob {
            id: toolsmith_domain::ids::new_job_id(),
            session_id: toolsmith_domain::ids::new_object_id(),
            user_id: "anonymous".into(),
            metadata: Default::default(),
            requirements: vec![toolsmith_domain::ToolRequirement {
                description: description.into(),
                input: "x".into(),
                output: "y".into(),
            }],
            created_at: now,
            deadline_at: now + 60_000,
        })
        .await
        .expect("job")
}

/// The keys of a JSON object, sorted.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

pub fn is_hex24(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn is_timestamp(s: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ").is_ok()
}

/// Kills the child process when the test ends, however it ends.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
