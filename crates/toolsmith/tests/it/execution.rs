//! `POST /tools/{id}/execute`: input and output validated against the version's schemas, the
//! entry function run in the sandbox, failures classified, every execution logged.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, twice_tool as tool};

async fn execute(app: &TestApp, id: &str, body: Value) -> crate::helpers::Reply {
    app.post_json(&format!("/api/v1/tools/{id}/execute"), &body)
        .await
}

#[tokio::test]
async fn a_tool_runs_in_the_sandbox_and_every_execution_is_logged() {
    let app = spawn_app().await;
    let id = tool(&app).await;

    let ok = execute(
        &app,
        &id,
        json!({"input": {"x": 21}, "triggeredBy": "test"}),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["success"], true, "{}", ok.body);
    assert_eq!(ok.body["result"], 42);
    assert_eq!(ok.body["error"], Value::Null);
    assert_eq!(ok.body["errorType"], Value::Null);
    assert_eq!(ok.body["version"], "1.0.0");
    assert!(ok.body["executionTimeMs"].as_i64().unwrap_or(0) > 0);
    let timing = ok.headers["server-timing"].to_str().expect("ascii");
    let sandbox_ms: f64 = timing
        .strip_prefix("sandbox;dur=")
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("Server-Timing {timing:?}"));
    assert!(sandbox_ms >= 1.0, "{timing}");
    assert_eq!(ok.body["executionId"].as_str().map(str::len), Some(24));

    let raised = execute(&app, &id, json!({"input": {"x": -1}})).await;
    assert_eq!(raised.status, 200);
    assert_eq!(raised.body["success"], false);
    assert_eq!(raised.body["error"], "ValueError: x must not be negative");
    assert_eq!(raised.body["errorType"], "code_error");

    let wrong_output = execute(&app, &id, json!({"input": {"x": 7}})).await;
    assert_eq!(wrong_output.body["success"], false);
    assert_eq!(wrong_output.body["result"], "seven");
    assert!(
        wrong_output.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("output schema"),
        "{}",
        wrong_output.body
    );

    let not_json = execute(&app, &id, json!({"input": {"x": 8}})).await;
    assert_eq!(not_json.status, 200, "{}", not_json.body);
    assert_eq!(not_json.body["success"], false);
    assert_eq!(not_json.body["result"], Value::Null);
    assert_eq!(
        not_json.body["errorType"], "code_error",
        "{}",
        not_json.body
    );
    assert!(
        not_json.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("the result is not JSON"),
        "{}",
        not_json.body
    );

    let hung = execute(&app, &id, json!({"input": {"x": 999}})).await;
    assert_eq!(hung.body["success"], false, "{}", hung.body);
    assert_eq!(hung.body["errorType"], "timeout", "{}", hung.body);
    assert_eq!(
        hung.body["error"],
        "the tool did not finish within 4 s (TOOLSMITH_RUN_TIMEOUT_S) and was stopped"
    );

    // The logs wait in the executions buffer (batched: 100 items or 5 s) until it flushes.
    let waiting = app.get("/api/v1/buffers/executions").await.body;
    assert_eq!(waiting["buffered"], 5, "{waiting}");
    assert_eq!(
        app.get(&format!("/api/v1/tools/{id}/executions"))
            .await
            .body["items"],
        json!([])
    );
    let flushed = app
        .post_json("/api/v1/buffers/executions/flush", &json!({}))
        .await;
    assert_eq!(flushed.status, 200, "{}", flushed.body);
    assert_eq!(flushed.body["written"], 5);
    assert_eq!(flushed.body["buffer"]["buffered"], 0);
    assert_eq!(flushed.body["buffer"]["flushedTotal"], 5);

    let log = app
        .get(&format!("/api/v1/tools/{id}/executions"))
        .await
        .body;
    let items = log["items"].as_array().expect("items");
    assert_eq!(items.len(), 5);
    assert_eq!(items[4]["inputParams"], json!({"x": 21}));
    assert_eq!(items[4]["triggeredBy"], "test");
    assert_eq!(items[4]["userId"], "anonymous");
    assert_eq!(
        app.get(&format!("/api/v1/tools/{id}")).await.body["usageCount"],
        5
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_runs() {
    let app = spawn_app().await;
    let id = tool(&app).await;
    let cases = [
        (json!({"input": {"x": "three"}}), 422, "/x"),
        (json!({"input": {}}), 422, "/"),
        (json!({"input": {"x": 1, "y": 2}}), 422, "/"),
        (json!({"input": 5}), 422, ""),
        (json!({"inputs": {"x": 1}}), 400, ""),
        (json!({"input": {"x": "a".repeat(300 * 1024)}}), 413, ""),
    ];
    for (body, status, path) in cases {
        let reply = execute(&app, &id, body.clone()).await;
        assert_eq!(reply.status, status, "{body:.80}: {}", reply.body);
        assert_eq!(reply.body["code"], "INVALID_REQUEST");
        if !path.is_empty() {
            assert_eq!(
                reply.body["details"]["errors"][0]["path"], path,
                "{}",
                reply.body
            );
        }
    }
    assert_eq!(
        app.get("/api/v1/buffers/executions").await.body["bufferedTotal"],
        0,
        "nothing ran, nothing was logged"
    );

    let missing_version = execute(&app, &id, json!({"input": {"x": 1}, "version": "2.0.0"})).await;
    assert_eq!(missing_version.status, 404);
    let unknown = execute(&app, "0123456789abcdef01234567", json!({"input": {"x": 1}})).await;
    assert_eq!(unknown.status, 404);

    app.post_json(&format!("/api/v1/tools/{id}/deprecate"), &json!({}))
        .await;
    let deprecated = execute(&app, &id, json!({"input": {"x": 1}})).await;
    assert_eq!(deprecated.status, 409);
    assert!(
        deprecated.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("allowDeprecated")
    );
    let allowed = execute(
        &app,
        &id,
        json!({"input": {"x": 1}, "allowDeprecated": true, "version": "1.0.0"}),
    )
    .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.body["result"], 2);
}

#[tokio::test]
async fn a_tool_whose_environment_is_gone_gets_it_rebuilt() {
    let app = spawn_app().await;
    let id = tool(&app).await;
    assert_eq!(
        execute(&app, &id, json!({"input": {"x": 1}})).await.body["result"],
        2
    );
    let envs = app.data_dir.path().join("envs");
    std::fs::remove_dir_all(&envs).expect("remove the environments");

    let again = execute(&app, &id, json!({"input": {"x": 2}})).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["success"], true, "{}", again.body);
    assert_eq!(again.body["result"], 4);
    assert!(
        std::fs::read_dir(&envs).expect("envs").count() > 0,
        "built again"
    );

    // Damaged rather than gone: the interpreter is missing but the environment looks ready.
    for env in std::fs::read_dir(&envs).expect("envs") {
        let python = env.expect("entry").path().join("bin/python");
        if python.symlink_metadata().is_ok() {
            std::fs::remove_file(&python).expect("remove the interpreter");
        }
    }
    let repaired = execute(&app, &id, json!({"input": {"x": 3}})).await;
    assert_eq!(repaired.body["result"], 6, "{}", repaired.body);
}
