//! `cargo bench -p toolsmith --bench generation`: what the service itself costs per tool.
//!
//! Runs N single-tool jobs one after the other against the mock LLM answering at once, so
//! every millisecond measured is Toolsmith's own (HTTP to the mock, store, static checks, uv,
//! sandboxed pytest and spec cases). Each job is for another user, so nothing is reused; the
//! LLM cache does answer repeated prompts, as it would in production. Prints, per phase, the
//! median and p95 time, and per tool the LLM calls (answered by the endpoint / by the cache)
//! and tokens.
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use toolsmith::{Application, Config, SandboxSettings, Workflows};
use toolsmith_llm::mock::{MockScript, MockServer};
use toolsmith_store::{PageRequest, Store};

const JOBS: usize = 10;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

async fn run() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace");
    let code = "def double_number(x: int) -> int:\n    \"\"\"Twice x.\"\"\"\n    if not isinstance(x, int):\n        raise ValueError('x must be an int')\n    return 2 * x\n";
    let tests = "import pytest\nfrom double_number import double_number\n\n\ndef test_values():\n    assert double_number(2) == 4\n\n\ndef test_rejects_text():\n    with pytest.raises(ValueError):\n        double_number('a')\n";
    let spec = json!({
        "title": "Double a number", "objective": "Return twice x.", "toolName": "double_number", "toolType": "default",
        "functionalRequirements": ["2x"], "nonFunctionalRequirements": [],
        "inputParameters": [{"name": "x", "type": "int", "description": "x", "required": true}],
        "expectedOutputFormat": {"type": "int", "description": "2x"}, "errorHandling": [], "dependencies": [], "requiredSecrets": [],
        "testCases": [{"name": "two", "input": {"x": 2}, "expectedOutput": 4, "description": ""}]
    });
    let script = json!({"rules": [
        {"phase": "specification", "reply": {"json": spec}},
        {"phase": "plan", "reply": {"json": {"overview": "2x", "steps": [{"title": "multiply", "description": "2 * x"}], "estimatedComplexity": "low", "riskAssessment": [], "fallbackStrategies": []}}},
        {"phase": "implementation", "reply": {"json": {"code": code, "entryPoint": "double_number", "dependencies": []}}},
        {"phase": "tests", "reply": {"json": {"testCode": tests}}}
    ]});
    let mock = MockServer::spawn(MockScript::from_json(&script.to_string()).expect("script"))
        .await
        .expect("mock");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .expect("chmod");
    let mut config = Config::new(dir.path().to_path_buf());
    config.port = 0;
    config.llm.base_url = Some(mock.base_url());
    config.llm.model = Some("mock-model".into());
    config.sandbox = SandboxSettings {
        init_binary: Some(env!("CARGO_BIN_EXE_toolsmith").into()),
        python_env: workspace.join(".tools/py"),
        uv: workspace.join(".tools/uv/bin/uv"),
        unsafe_no_sandbox: false,
    };
    let app = Application::build(config, Workflows::Generation)
        .await
        .expect("app");
    let base = format!("http://127.0.0.1:{}/api/v1", app.port());
    let client = reqwest::Client::new();
    let store = app.store();

    let mut phases: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut totals = Vec::new();
    let (mut calls, mut cached_calls, mut tokens) = (0i64, 0i64, 0i64);
    for n in 0..=JOBS {
        let started = Instant::now();
        let created: Value = client
            .post(format!("{base}/jobs"))
            .header("X-User-Id", format!("bench-user-{n}"))
            .json(&json!({"toolRequirements": [{"description": format!("Double an integer (variant {n})"), "input": "x", "output": "2x"}]}))
            .send().await.expect("post").json().await.expect("json");
        let job_id = created["jobId"].as_str().expect("job").to_owned();
        let session_id = created["sessionId"].as_str().expect("session").to_owned();
        loop {
            let job: Value = client
                .get(format!("{base}/jobs/{job_id}"))
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            match job["status"].as_str() {
                Some("completed") => break,
                Some("failed" | "cancelled") => panic!("{job}"),
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        if n == 0 {
            continue; // warm-up: builds the shared environment once
        }
        totals.push(started.elapsed().as_secs_f64() * 1000.0);
        let logs = store
            .list_logs(
                &session_id,
                &PageRequest {
                    limit: 500,
                    after: None,
                },
            )
            .await
            .expect("logs");
        for record in logs.items {
            let log = record.log;
            if log.step.as_deref() == Some("finished")
                && let Some(ms) = log.execution_time_ms
            {
                phases.entry(log.phase.clone()).or_default().push(ms as f64);
            }
            if matches!(log.step.as_deref(), Some("llm-call" | "llm-cache-hit")) {
                calls += 1;
                if log.step.as_deref() == Some("llm-cache-hit") {
                    cached_calls += 1;
                }
            }
        }
        let usage = store.token_usage(&job_id, None).await.expect("usage");
        tokens += usage.paid() + usage.cached;
    }

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "Generation overhead per tool ({JOBS} single-tool jobs, zero-latency mock LLM, release build, {cores} cores):"
    );
    let order = [
        "specification",
        "planning",
        "searching",
        "implementation",
        "testing",
        "fixing",
        "validation",
        "registration",
    ];
    for phase in order {
        if let Some(samples) = phases.get_mut(phase) {
            samples.sort_by(f64::total_cmp);
            println!(
                "  {phase:<15} median {:>7.1} ms   p95 {:>7.1} ms",
                percentile(samples, 0.5),
                percentile(samples, 0.95)
            );
        }
    }
    totals.sort_by(f64::total_cmp);
    println!(
        "  {:<15} median {:>7.1} ms   p95 {:>7.1} ms",
        "whole job",
        percentile(&totals, 0.5),
        percentile(&totals, 0.95)
    );
    println!(
        "  LLM per tool: {:.1} calls ({:.1} answered by the endpoint, {:.1} from the cache), {:.0} tokens",
        calls as f64 / JOBS as f64,
        (calls - cached_calls) as f64 / JOBS as f64,
        cached_calls as f64 / JOBS as f64,
        tokens as f64 / JOBS as f64
    );
    app.shutdown_token().cancel();
    app.run_until_stopped().await.expect("stop");
}
