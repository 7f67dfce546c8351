//! `toolsmith demo`: the whole service, offline. A scripted model (the mock LLM with the bundled
//! `examples/demo-llm.json`) answers; everything else is real — the HTTP API, the job engine,
//! the static checks, the sandbox, uv environments (RDKit comes from PyPI), the registry, the
//! execution API and the execution-log buffer.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use toolsmith_llm::mock::{MockScript, MockServer};

use crate::cli::DemoArgs;
use crate::config::SandboxSettings;
use crate::follow::{follow, say, submit};
use crate::{Application, Config, Workflows};

const SCRIPT: &str = include_str!("../../../examples/demo-llm.json");

const REQUIREMENTS: &[(&str, &str, &str)] = &[
    (
        "I need a tool that calculates the molecular weight of a chemical compound. Please use RDKit if available.",
        "SMILES string of the molecule",
        "molecular weight",
    ),
    (
        "Convert a temperature from Celsius to Fahrenheit.",
        "a temperature in degrees Celsius",
        "the temperature in degrees Fahrenheit",
    ),
    (
        "Find the most frequent words in a text.",
        "a text, and how many words to return",
        "the words and how often each occurs",
    ),
];

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    say("Toolsmith demo");
    say("==============");
    say(
        "This demo replays a SCRIPTED model (toolsmith mock-llm with examples/demo-llm.json): no LLM is",
    );
    say(
        "called and no tokens are spent. Everything else is real: the API, the job engine, the static",
    );
    say(
        "checks, the sandbox, the tools' Python environments and the registry. To use a real model, set",
    );
    say(
        "TOOLSMITH_LLM_BASE_URL (and TOOLSMITH_LLM_API_KEY, TOOLSMITH_LLM_MODEL) and run `toolsmith serve`.",
    );
    say("");

    let script = MockScript::from_json(SCRIPT).map_err(anyhow::Error::msg)?;
    let mock = MockServer::spawn(script)
        .await
        .context("could not start the mock LLM")?;
    // The demo's own directory, new each run: it never touches `serve`'s data, never picks up
    // its jobs, and always shows the whole workflow (nothing reused from an earlier run).
    let demo_dir = args.data_dir.join("demo");
    if demo_dir.exists() {
        std::fs::remove_dir_all(&demo_dir)
            .with_context(|| format!("could not clear {}", demo_dir.display()))?;
    }
    std::fs::create_dir_all(&demo_dir)?;
    let data_dir = demo_dir.canonicalize()?;
    let mut config = Config::new(data_dir.clone());
    config.port = 0;
    config.llm.base_url = Some(mock.base_url());
    config.llm.model = Some("mock-model".into());
    config.sandbox = SandboxSettings {
        init_binary: None,
        python_env: args.python_env.clone(),
        uv: args.uv.clone(),
        unsafe_no_sandbox: false,
    };
    let app = Application::build(config, Workflows::Generation).await?;
    let base = format!("http://127.0.0.1:{}/api/v1", app.port());
    say(format!("service: {base} (data in {})", data_dir.display()));
    say(format!("model:   scripted, served at {}", mock.base_url()));

    let client = reqwest::Client::new();
    let health: Value = client
        .get(format!("{base}/health"))
        .send()
        .await?
        .json()
        .await?;
    if health["sandbox"] != "ready" {
        bail!(
            "the sandbox is not ready ({}); run scripts/setup.sh",
            health["sandbox"]
        );
    }
    let body = json!({
        "toolRequirements": REQUIREMENTS.iter().map(|(d, i, o)| json!({"description": d, "input": i, "output": o})).collect::<Vec<_>>(),
        "metadata": {"clientId": "toolsmith-demo"}
    });
    let submitted = submit(&client, &base, &body, None).await?;
    let (job_id, session_id) = (submitted.job_id.clone(), submitted.session_id.clone());
    say(format!(
        "\njob {job_id}: {} requirements\n",
        REQUIREMENTS.len()
    ));
    let job = follow(&client, &base, &submitted).await?;

    say(format!(
        "\njob {}: {}",
        job["status"].as_str().unwrap_or(""),
        job["summary"]
    ));
    let logs: Value = client
        .get(format!("{base}/sessions/{session_id}/logs?limit=500"))
        .send()
        .await?
        .json()
        .await?;
    for fix in logs["items"].as_array().into_iter().flatten().filter(|l| {
        l["phase"] == "fixing" && l["step"].as_str().unwrap_or("").starts_with("iteration")
    }) {
        say(format!(
            "  fix loop: {}",
            fix["message"].as_str().unwrap_or("")
        ));
    }
    for failure in job["failures"].as_array().into_iter().flatten() {
        say(format!(
            "  failed: {}",
            failure["error"].as_str().unwrap_or("")
        ));
    }

    // Each tool runs once through the execution API, on its first spec case: input checked
    // against its schema, a sandboxed run, the result checked, the execution logged.
    let mut last_tool = None;
    for file in job["toolFiles"].as_array().into_iter().flatten() {
        let tool_id = file["toolId"].as_str().unwrap_or("").to_owned();
        say(format!(
            "\n--- {} ({tool_id}) ---",
            file["filePath"].as_str().unwrap_or("")
        ));
        say(file["code"].as_str().unwrap_or("").trim_end());
        let tool: Value = client
            .get(format!("{base}/tools/{tool_id}"))
            .send()
            .await?
            .json()
            .await?;
        let name = tool["name"].as_str().unwrap_or("").to_owned();
        let Some(input) = tool["current"]["testCases"]
            .get(0)
            .and_then(|c| c.get("input"))
            .cloned()
        else {
            continue;
        };
        let response = client
            .post(format!("{base}/tools/{tool_id}/execute"))
            .json(&json!({"input": input, "triggeredBy": "demo"}))
            .send()
            .await?;
        let sandbox_ms = toolsmith_api::sandbox_ms(response.headers())
            .map_or_else(|| "?".to_owned(), |ms| format!("{ms:.1}"));
        let execution: Value = response.json().await?;
        if execution["success"] == true {
            say(format!(
                ">>> {name}(**{input}) = {}   (POST /tools/{{id}}/execute: version {}, {sandbox_ms} ms in the sandbox)",
                execution["result"],
                execution["version"].as_str().unwrap_or("")
            ));
        } else {
            say(format!(
                ">>> {name}(**{input}) failed: {}",
                execution["error"]
                    .as_str()
                    .unwrap_or(&execution.to_string())
            ));
        }
        last_tool = Some(tool_id);
    }
    let buffer: Value = client
        .get(format!("{base}/buffers/executions"))
        .send()
        .await?
        .json()
        .await?;
    say(format!(
        "\nexecution logs: {} waiting in the executions buffer ({}: {} items / {} ms), already on disk",
        buffer["buffered"],
        buffer["strategy"].as_str().unwrap_or(""),
        buffer["maxSize"],
        buffer["flushIntervalMs"]
    ));
    let flushed: Value = client
        .post(format!("{base}/buffers/executions/flush"))
        .send()
        .await?
        .json()
        .await?;
    say(format!(
        "POST /buffers/executions/flush: {} written to the store in one transaction",
        flushed["written"]
    ));
    if let Some(tool_id) = last_tool {
        let log: Value = client
            .get(format!("{base}/tools/{tool_id}/executions"))
            .send()
            .await?
            .json()
            .await?;
        if let Some(entry) = log["items"].get(0) {
            say(format!(
                "GET /tools/{tool_id}/executions: success={} triggeredBy={} executionTimeMs={}",
                entry["success"], entry["triggeredBy"], entry["executionTimeMs"]
            ));
        }
    }
    say(format!(
        "\nThe service's API is documented at http://127.0.0.1:{}/docs while it runs.",
        app.port()
    ));
    app.shutdown_token().cancel();
    app.run_until_stopped().await?;
    mock.stop().await?;
    if job["status"] != "completed" {
        bail!("the demo job did not complete");
    }
    Ok(())
}
