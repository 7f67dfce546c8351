//! The generation workflow end to end: HTTP API → engine → LLM (the mock server, over HTTP) →
//! static checks → sandboxed pytest and spec cases → registry.

use std::time::Duration;

use serde_json::{Value, json};
use toolsmith_llm::mock::{MockScript, MockServer};
use toolsmith_store::Store;

use crate::helpers::{TestApp, TestOptions, spawn_app_with};

fn spec(name: &str, title: &str, cases: Value) -> Value {
    json!({
        "title": title, "objective": format!("{title}."), "toolName": name, "toolType": "default",
        "functionalRequirements": [title], "nonFunctionalRequirements": [],
        "inputParameters": [{"name": "x", "type": "int", "description": "the number", "required": true}],
        "expectedOutputFormat": {"type": "int", "description": "the result"},
        "errorHandling": ["raise ValueError when x is not an int"], "dependencies": [], "requiredSecrets": [],
        "testCases": cases
    })
}

fn plan() -> Value {
    json!({"overview": "One arithmetic step.", "steps": [{"title": "compute", "description": "apply the operation"}],
           "estimatedComplexity": "low", "riskAssessment": [], "fallbackStrategies": []})
}

fn code(name: &str, expr: &str) -> String {
    format!(
        "def {name}(x: int) -> int:\n    \"\"\"Computes {expr} for x.\"\"\"\n    if not isinstance(x, int):\n        raise ValueError('x must be an int')\n    return {expr}\n"
    )
}

fn tests(name: &str, asserts: &str) -> String {
    format!(
        "import pytest\nfrom {name} import {name}\n\n\ndef test_values():\n{asserts}\n\n\ndef test_rejects_text():\n    with pytest.raises(ValueError):\n        {name}('a')\n"
    )
}

/// Rules for one tool: its spec, plan, implementation, tests and (optionally) fixes.
fn tool_rules(
    requirement: &str,
    name: &str,
    title: &str,
    cases: Value,
    first_expr: &str,
    fixed_expr: Option<&str>,
    asserts: &str,
) -> Vec<Value> {
    let mut rules = vec![
        json!({"phase": "specification", "contains": requirement, "reply": {"json": spec(name, title, cases)}}),
        json!({"phase": "plan", "contains": name, "reply": {"json": plan()}}),
        json!({"phase": "implementation", "contains": name, "reply": {"json": {"code": format!("```python\n{}```", code(name, first_expr)), "entryPoint": name, "dependencies": []}}}),
        json!({"phase": "tests", "contains": name, "reply": {"json": {"testCode": tests(name, asserts)}}}),
    ];
    if let Some(fixed) = fixed_expr {
        rules.push(json!({"phase": "fix", "contains": name, "reply": {"json": {"code": code(name, fixed), "dependencies": [], "explanation": format!("use {fixed}")}}}));
    }
    rules
}

async fn generation_app(rules: Vec<Value>, max_fix_iterations: u32) -> (TestApp, MockServer) {
    let script = json!({"rules": rules, "default": {"content": "no scripted answer"}});
    let mock = MockServer::spawn(MockScript::from_json(&script.to_string()).expect("script"))
        .await
        .expect("mock");
    let app = spawn_app_with(TestOptions {
        workflow: None,
        llm_base_url: Some(mock.base_url()),
        max_fix_iterations,
        job_deadline: Duration::from_secs(180),
        ..TestOptions::default()
    })
    .await;
    (app, mock)
}

async fn submit(app: &TestApp, descriptions: &[&str]) -> Value {
    let reply = app
        .post_json("/api/v1/jobs", &json!({"toolRequirements": descriptions.iter().map(|d| json!({"description": d, "input": "an integer x", "output": "an integer"})).collect::<Vec<_>>()}))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let job_id = reply.body["jobId"].as_str().expect("id").to_owned();
    wait_long(app, &job_id).await
}

async fn wait_long(app: &TestApp, job_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    loop {
        let body = app.get(&format!("/api/v1/jobs/{job_id}")).await.body;
        if ["completed", "failed", "cancelled"].contains(&body["status"].as_str().unwrap_or("")) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job never finished: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rules_hits(mock: &MockServer, rules: &[Value], phase: &str) -> u64 {
    let stats = mock.stats();
    rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r["phase"] == phase)
        .map(|(i, _)| stats.rule_hits[i])
        .sum()
}

#[tokio::test]
async fn a_job_of_two_requirements_produces_two_tested_tools_and_a_second_job_reuses_them() {
    let mut rules = tool_rules(
        "Double an integer",
        "double_number",
        "Double a number",
        json!([{"name": "two", "input": {"x": 2}, "expectedOutput": 4, "description": ""}, {"name": "neg", "input": {"x": -3}, "expectedOutput": -6, "description": ""}]),
        "2 * x",
        None,
        "    assert double_number(2) == 4\n    assert double_number(0) == 0",
    );
    rules.extend(tool_rules(
        "Square an integer",
        "square_number",
        "Square a number",
        json!([{"name": "three", "input": {"x": 3}, "expectedOutput": 9, "description": ""}]),
        "x * x",
        None,
        "    assert square_number(3) == 9",
    ));
    let (app, mock) = generation_app(rules.clone(), 3).await;

    let done = submit(&app, &["Double an integer", "Square an integer"]).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(
        done["summary"],
        json!({"totalRequested": 2, "successful": 2, "failed": 0})
    );
    let files = done["toolFiles"].as_array().expect("files");
    assert_eq!(files[0]["fileName"], "double_number.py");
    assert_eq!(files[0]["filePath"], "tools/double_number.py");
    assert_eq!(files[0]["registered"], true);
    let code = files[0]["code"].as_str().unwrap_or("");
    assert!(
        code.starts_with("\"\"\"\nGenerated Tool: Double a number\n"),
        "{code}"
    );
    assert!(code.contains("def double_number(x: int) -> int:"), "{code}");
    assert_eq!(files[1]["fileName"], "square_number.py");

    // Every phase left its trace: prompts, answers, tokens, and the runs' results.
    let logs = app.session_logs(&done).await;
    let items = logs["items"].as_array().expect("logs");
    let steps: Vec<String> = items
        .iter()
        .map(|l| {
            format!(
                "{}/{}",
                l["phase"].as_str().unwrap_or(""),
                l["step"].as_str().unwrap_or("")
            )
        })
        .collect();
    for step in [
        "specification/llm-call",
        "plan/llm-call",
        "implementation/llm-call",
        "tests/llm-call",
        "testing/static",
        "testing/pytest",
        "testing/spec-cases",
        "validation/schemas",
    ] {
        assert!(
            steps.iter().any(|s| s == step),
            "{step} missing from {steps:?}"
        );
    }
    let llm_call = items
        .iter()
        .find(|l| {
            l["step"] == "llm-call"
                && l["promptSent"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Double an integer")
        })
        .expect("the specification call of the first requirement");
    assert_eq!(llm_call["phase"], "specification");
    assert!(llm_call["tokensUsed"].as_i64().unwrap_or(0) > 0);
    let pytest = items
        .iter()
        .find(|l| l["step"] == "pytest")
        .expect("pytest log");
    assert!(
        pytest["message"]
            .as_str()
            .unwrap_or("")
            .contains("2 collected, 0 failed"),
        "{pytest}"
    );
    let schemas = items
        .iter()
        .find(|l| l["step"] == "schemas")
        .expect("schemas");
    assert_eq!(
        schemas["executionResult"]["inputSchema"]["properties"]["x"]["type"],
        "integer"
    );

    // The same request again: the tools are found and reused; no implementation is asked for.
    let implementations = rules_hits(&mock, &rules, "implementation");
    let again = submit(&app, &["Double an integer", "Square an integer"]).await;
    assert_eq!(again["status"], "completed", "{again:#}");
    assert_eq!(rules_hits(&mock, &rules, "implementation"), implementations);
    assert_eq!(again["toolFiles"][0]["toolId"], files[0]["toolId"]);
    assert_eq!(app.store().tool_count().await.expect("count"), 2);
    // Not merely answered from the LLM cache: the search found the tools, the second session
    // never reached implementation, and no new version was registered.
    let logs = app.session_logs(&again).await;
    let items = logs["items"].as_array().expect("logs");
    assert_eq!(
        items
            .iter()
            .filter(|l| l["phase"] == "searching" && l["step"] == "reuse")
            .count(),
        2,
        "{logs:#}"
    );
    assert!(
        !items.iter().any(|l| l["phase"] == "implementation"),
        "{logs:#}"
    );
    assert_eq!(again["toolFiles"][0]["code"], files[0]["code"]);
    let tools = app
        .get(&format!(
            "/api/v1/sessions/{}/tools",
            again["sessionId"].as_str().unwrap_or("")
        ))
        .await
        .body;
    assert!(
        tools["items"]
            .as_array()
            .expect("tools")
            .iter()
            .all(|t| t["version"] == "1.0.0"),
        "{tools:#}"
    );
}

#[tokio::test]
async fn a_failing_first_implementation_is_fixed_with_the_exact_failure() {
    let rules = tool_rules(
        "Add one to an integer",
        "add_one",
        "Add one",
        json!([{"name": "one", "input": {"x": 1}, "expectedOutput": 2, "description": ""}, {"name": "zero", "input": {"x": 0}, "expectedOutput": 1, "description": ""}]),
        "x + 2",
        Some("x + 1"),
        "    assert add_one(1) == 2",
    );
    let (app, mock) = generation_app(rules.clone(), 3).await;
    let done = submit(&app, &["Add one to an integer"]).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert!(
        done["toolFiles"][0]["code"]
            .as_str()
            .unwrap_or("")
            .contains("return x + 1")
    );
    assert_eq!(rules_hits(&mock, &rules, "fix"), 1);
    // The fix request quoted the failure: the failing test and the mismatching case.
    let fix_request = mock
        .requests()
        .into_iter()
        .find(|r| r["response_format"]["json_schema"]["name"] == "fix")
        .expect("fix request");
    let prompt = fix_request["messages"].to_string();
    assert!(prompt.contains("test_values"), "{prompt}");
    assert!(prompt.contains("expected 2, got 3"), "{prompt}");
}

#[tokio::test]
async fn a_model_that_never_gets_it_right_fails_with_the_last_failure_and_a_vague_requirement_is_named()
 {
    let mut rules = tool_rules(
        "Triple an integer",
        "triple_number",
        "Triple a number",
        json!([{"name": "two", "input": {"x": 2}, "expectedOutput": 6, "description": ""}]),
        "x + x",
        Some("x * 2"),
        "    assert triple_number(2) == 6",
    );
    rules.push(json!({"phase": "specification", "contains": "something useful", "reply": {"json": {"insufficientReason": "it does not say what to compute"}}}));
    let (app, _mock) = generation_app(rules, 2).await;
    let done = submit(&app, &["Triple an integer", "Do something useful"]).await;
    assert_eq!(done["status"], "failed", "{done:#}");
    let failures = done["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["code"], "AI_SERVICE_ERROR");
    let error = failures[0]["error"].as_str().unwrap_or("");
    assert!(
        error.contains("after 2 fix iterations") && error.contains("expected 6, got 4"),
        "{error}"
    );
    assert_eq!(failures[1]["code"], "INSUFFICIENT_API_SPECS");
    assert!(
        failures[1]["error"]
            .as_str()
            .unwrap_or("")
            .contains("does not say what to compute")
    );
}

#[tokio::test]
async fn broken_tests_unknown_dependencies_and_hanging_tools_are_fixed_through_the_loop() {
    let mut rules = Vec::new();
    // Tests that cannot run: corrected by the model, accepted because the code passes the cases.
    let mut broken_tests = tool_rules(
        "Negate an integer",
        "negate_number",
        "Negate a number",
        json!([{"name": "two", "input": {"x": 2}, "expectedOutput": -2, "description": ""}]),
        "-x",
        None,
        "    assert negate_number(2) == -2",
    );
    broken_tests[3] = json!({"phase": "tests", "contains": "negate_number", "reply": {"json": {"testCode": "from negate_number import negate_number\n\ndef test_broken(:\n    pass\n"}}});
    broken_tests.push(json!({"phase": "fix", "contains": "negate_number", "reply": {"json": {
        "code": code("negate_number", "-x"), "dependencies": [], "explanation": "the code was right; the tests did not parse",
        "testCode": tests("negate_number", "    assert negate_number(2) == -2"),
        "testCorrectionJustification": "the test module had a syntax error; the code passes every spec case"}}}));
    rules.extend(broken_tests);
    // An unknown dependency: the install error goes back to the model, which drops it.
    let mut unknown_dep = tool_rules(
        "Halve an integer",
        "halve_number",
        "Halve a number",
        json!([{"name": "four", "input": {"x": 4}, "expectedOutput": 2, "description": ""}]),
        "x // 2",
        Some("x // 2"),
        "    assert halve_number(4) == 2",
    );
    unknown_dep[2] = json!({"phase": "implementation", "contains": "halve_number", "reply": {"json": {"code": code("halve_number", "x // 2"), "entryPoint": "halve_number", "dependencies": ["toolsmith-surely-no-such-package-zz"]}}});
    rules.extend(unknown_dep);
    // A tool that hangs: the run's wall clock ends it, and the failure says so.
    let mut hang = tool_rules(
        "Increment an integer",
        "increment_number",
        "Increment a number",
        json!([{"name": "one", "input": {"x": 1}, "expectedOutput": 2, "description": ""}]),
        "x + 1",
        Some("x + 1"),
        "    assert increment_number(1) == 2",
    );
    hang[2] = json!({"phase": "implementation", "contains": "increment_number", "reply": {"json": {"code":
        "import time\n\n\ndef increment_number(x: int) -> int:\n    \"\"\"Add one.\"\"\"\n    while True:\n        time.sleep(1)\n", "entryPoint": "increment_number", "dependencies": []}}});
    rules.extend(hang);
    let (app, mock) = generation_app(rules, 3).await;
    let done = submit(
        &app,
        &[
            "Negate an integer",
            "Halve an integer",
            "Increment an integer",
        ],
    )
    .await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["summary"]["successful"], 3, "{done:#}");
    let prompts: Vec<String> = mock
        .requests()
        .into_iter()
        .filter(|r| r["response_format"]["json_schema"]["name"] == "fix")
        .map(|r| r["messages"].to_string())
        .collect();
    assert!(
        prompts
            .iter()
            .any(|p| p.contains("could not collect") || p.contains("test_negate_number.py")),
        "{prompts:#?}"
    );
    assert!(
        prompts
            .iter()
            .any(|p| p.contains("dependency error")
                && p.contains("toolsmith-surely-no-such-package-zz")),
        "{prompts:#?}"
    );
    assert!(
        prompts.iter().any(|p| p.contains("WallTime")),
        "{prompts:#?}"
    );
    let logs = app.session_logs(&done).await;
    assert!(logs["items"].as_array().expect("logs").iter().any(|l| {
        l["step"] == "test-correction"
            && l["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("tests corrected by the model")
    }));
}

#[tokio::test]
async fn generate_follows_one_requirement_on_a_running_server() {
    let rules = tool_rules(
        "Double an integer",
        "double_number",
        "Double a number",
        json!([{"name": "two", "input": {"x": 2}, "expectedOutput": 4, "description": ""}]),
        "2 * x",
        None,
        "    assert double_number(2) == 4",
    );
    let (app, _mock) = generation_app(rules, 3).await;
    let server = app.address.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_toolsmith"))
            .args([
                "generate",
                "--description",
                "Double an integer",
                "--input",
                "an integer x",
                "--output",
                "an integer",
                "--server",
                &server,
            ])
            .output()
            .expect("run generate")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("completed"), "{stdout}");
    assert!(stdout.contains("# tools/double_number.py"), "{stdout}");
    assert!(
        stdout.contains("def double_number(x: int) -> int:"),
        "{stdout}"
    );
}

/// A job for `double_number` whose tests take `delay_ms` to write, once its tests phase has
/// started.
async fn double_number_job_waiting_for_tests(
    delay_ms: u64,
) -> (TestApp, MockServer, Vec<Value>, String) {
    let mut rules = tool_rules(
        "Double an integer",
        "double_number",
        "Double a number",
        json!([{"name": "two", "input": {"x": 2}, "expectedOutput": 4, "description": ""}]),
        "2 * x",
        None,
        "    assert double_number(2) == 4",
    );
    rules[3]["delayMs"] = json!(delay_ms);
    let (app, mock) = generation_app(rules.clone(), 3).await;
    let reply = app
        .post_json("/api/v1/jobs", &json!({"toolRequirements": [{"description": "Double an integer", "input": "an integer x", "output": "an integer"}]}))
        .await;
    let job_id = reply.body["jobId"].as_str().expect("id").to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while rules_hits(&mock, &rules, "tests") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tests phase never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (app, mock, rules, job_id)
}

#[tokio::test]
async fn a_service_killed_mid_generation_finishes_the_job_after_a_restart_without_duplicates() {
    // The tests take a while to write: the service dies meanwhile.
    let (app, mock, _rules, job_id) = double_number_job_waiting_for_tests(1500).await;
    let data_dir = app.data_dir.clone();
    app.crash().await;

    let app = spawn_app_with(TestOptions {
        data_dir: Some(data_dir),
        workflow: None,
        llm_base_url: Some(mock.base_url()),
        ..TestOptions::default()
    })
    .await;
    let done = wait_long(&app, &job_id).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(app.store().tool_count().await.expect("count"), 1);
    // The resumed run started at its checkpoint: specification and plan ran once (a restart
    // from scratch would log them again, from the LLM cache), one version was registered.
    let logs = app.session_logs(&done).await;
    let items = logs["items"].as_array().expect("logs");
    assert!(items.iter().any(|l| l["step"] == "resumed"), "{logs:#}");
    for phase in ["specification", "plan"] {
        let asked = items
            .iter()
            .filter(|l| {
                l["phase"] == phase && (l["step"] == "llm-call" || l["step"] == "llm-cache-hit")
            })
            .count();
        assert_eq!(asked, 1, "{phase}: {logs:#}");
    }
    let tools = app
        .get(&format!(
            "/api/v1/sessions/{}/tools",
            done["sessionId"].as_str().unwrap_or("")
        ))
        .await
        .body;
    assert_eq!(tools["items"][0]["version"], "1.0.0");
}

#[tokio::test]
async fn cancelling_mid_generation_stops_the_job_and_registers_nothing() {
    let (app, _mock, _rules, job_id) = double_number_job_waiting_for_tests(5000).await;
    let cancel = app
        .post_json(&format!("/api/v1/jobs/{job_id}/cancel"), &json!({}))
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(cancel.body["status"], "cancelled");
    // Well past the model's delay: still cancelled, nothing registered.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let job = app.get(&format!("/api/v1/jobs/{job_id}")).await.body;
    assert_eq!(job["status"], "cancelled", "{job:#}");
    assert_eq!(job["failures"][0]["code"], "JOB_CANCELLED");
    assert_eq!(app.store().tool_count().await.expect("count"), 0);
}
