//! Execution logs through the executions buffer (SPEC §6): the operator endpoints, the
//! strategies as the service runs them, shutdown and restart, and a kill -9 in the middle of
//! a burst of executions against `toolsmith serve` as a real process.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use toolsmith_buffer::Strategy;
use toolsmith_store::{PageRequest, SqliteStore, Store};

use crate::helpers::{
    Running, TestApp, TestOptions, respawn_with, spawn_app_with, twice_tool as twice,
};

async fn app_with(strategy: Strategy) -> TestApp {
    spawn_app_with(TestOptions {
        executions_buffer: strategy,
        ..TestOptions::default()
    })
    .await
}

async fn run(app: &TestApp, tool: &str, x: i64) -> Value {
    let reply = app
        .post_json(
            &format!("/api/v1/tools/{tool}/execute"),
            &json!({"input": {"x": x}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["result"], 2 * x);
    reply.body
}

async fn logged(app: &TestApp, tool: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/tools/{tool}/executions?limit=500"))
        .await
        .body["items"]
        .as_array()
        .expect("items")
        .clone()
}

#[tokio::test]
async fn operators_see_flush_and_clear_the_executions_buffer() {
    let app = app_with(Strategy::Manual).await;
    let tool = twice(&app).await;
    for x in 1..=3 {
        run(&app, &tool, x).await;
    }
    let list = app.get("/api/v1/buffers").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["items"][0]["id"], "executions");
    let status = app.get("/api/v1/buffers/executions").await.body;
    assert_eq!(status["strategy"], "manual");
    assert_eq!(status["buffered"], 3);
    assert_eq!(status["bufferedTotal"], 3);
    assert_eq!(status["spoolSegments"], 1);
    assert!(status["spoolBytes"].as_u64().unwrap_or(0) > 100, "{status}");
    assert!(status["oldestItemAt"].is_string(), "{status}");

    let cleared = app
        .post_json("/api/v1/buffers/executions/clear", &json!({}))
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["cleared"], 3);
    assert_eq!(cleared.body["buffer"]["clearedTotal"], 3);
    assert_eq!(cleared.body["buffer"]["buffered"], 0);

    for x in 4..=5 {
        run(&app, &tool, x).await;
    }
    let flushed = app
        .post_json("/api/v1/buffers/executions/flush", &json!({}))
        .await;
    assert_eq!(flushed.body["written"], 2, "{}", flushed.body);
    let inputs: Vec<Value> = logged(&app, &tool)
        .await
        .iter()
        .map(|e| e["inputParams"]["x"].clone())
        .collect();
    assert_eq!(inputs, [json!(5), json!(4)], "the cleared three are gone");
    // The log pages like every list.
    let first = app
        .get(&format!("/api/v1/tools/{tool}/executions?limit=1"))
        .await
        .body;
    assert_eq!(first["items"][0]["inputParams"]["x"], 5);
    let cursor = first["nextCursor"].as_str().expect("a second page");
    let second = app
        .get(&format!(
            "/api/v1/tools/{tool}/executions?limit=1&cursor={cursor}"
        ))
        .await
        .body;
    assert_eq!(second["items"][0]["inputParams"]["x"], 4);
    assert!(second["nextCursor"].is_null(), "{second}");
    assert_eq!(
        app.get(&format!("/api/v1/tools/{tool}")).await.body["usageCount"],
        2
    );

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain; version=0.0.4")
    );
    let metrics = metrics.text().await.expect("text");
    for line in [
        "# TYPE toolsmith_buffer_buffered gauge",
        "toolsmith_buffer_buffered{buffer=\"executions\"} 0",
        "toolsmith_buffer_items_total{buffer=\"executions\"} 5",
        "toolsmith_buffer_flushed_total{buffer=\"executions\"} 2",
        "toolsmith_buffer_cleared_total{buffer=\"executions\"} 3",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }

    let unknown = app.get("/api/v1/buffers/nope").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["code"], "INVALID_REQUEST");
    assert!(unknown.body["requestId"].is_string());
    let wrong_method = app.get("/api/v1/buffers/executions/flush").await;
    assert_eq!(wrong_method.status, 405);
}

#[tokio::test]
async fn an_immediate_buffer_logs_each_execution_before_answering() {
    let app = app_with(Strategy::Immediate).await;
    let tool = twice(&app).await;
    let answer = run(&app, &tool, 9).await;
    let log = logged(&app, &tool).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["executionId"], answer["executionId"]);
    let status = app.get("/api/v1/buffers/executions").await.body;
    assert_eq!(status["buffered"], 0);
    assert_eq!(status["spoolSegments"], 0);
    assert_eq!(status["flushedTotal"], 1);
}

#[tokio::test]
async fn a_stop_flushes_a_batched_buffer_and_a_manual_one_keeps_its_spool_for_the_next_start() {
    let batched = app_with(Strategy::Batched {
        max_size: 100,
        flush_interval: Duration::from_secs(600),
    })
    .await;
    let tool = twice(&batched).await;
    run(&batched, &tool, 1).await;
    let dir = batched.data_dir.clone();
    batched.stop().await;
    let manual = respawn_with(dir, Strategy::Manual).await;
    assert_eq!(logged(&manual, &tool).await.len(), 1, "flushed at the stop");

    run(&manual, &tool, 2).await;
    run(&manual, &tool, 3).await;
    let dir = manual.data_dir.clone();
    manual.stop().await;
    let again = respawn_with(dir, Strategy::Manual).await;
    assert_eq!(
        logged(&again, &tool).await.len(),
        1,
        "manual: nothing flushed"
    );
    let status = again.get("/api/v1/buffers/executions").await.body;
    assert_eq!(status["recovered"], 2, "{status}");
    assert_eq!(status["buffered"], 2);
    again
        .post_json("/api/v1/buffers/executions/flush", &json!({}))
        .await;
    assert_eq!(logged(&again, &tool).await.len(), 3);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `toolsmith serve` on `dir` and `port`, buffering execution logs by 1000 or 10 minutes (so
/// only explicit flushes write them), once it answers.
async fn serve(dir: &std::path::Path, port: u16) -> Running {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let child = Running(
        Command::new(env!("CARGO_BIN_EXE_toolsmith"))
            .args(["serve", "--port", &port.to_string()])
            .env("TOOLSMITH_DATA_DIR", dir)
            .env("TOOLSMITH_PYTHON_ENV", workspace.join(".tools/py"))
            .env("TOOLSMITH_UV", workspace.join(".tools/uv/bin/uv"))
            .env("TOOLSMITH_BUFFER_STRATEGY", "batched")
            .env("TOOLSMITH_BUFFER_MAX_SIZE", "1000")
            .env("TOOLSMITH_BUFFER_FLUSH_INTERVAL_S", "600")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start toolsmith serve"),
    );
    let health = format!("http://127.0.0.1:{port}/api/v1/health");
    for _ in 0..300 {
        if reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("toolsmith serve did not answer on port {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_acknowledged_execution_is_lost_or_logged_twice_after_a_kill_during_a_burst() {
    // A tool, made by the scripted workflow in this process; then the service as a process.
    let maker = spawn_app_with(TestOptions::default()).await;
    let tool = twice(&maker).await;
    let dir = maker.data_dir.clone();
    maker.stop().await;
    let port = free_port();
    let mut server = serve(dir.path(), port).await;
    let base = format!("http://127.0.0.1:{port}/api/v1");

    // A burst from four clients; each keeps the ids of the executions it was answered.
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut clients = Vec::new();
    for client in 0..4_i64 {
        let (base, tool, acknowledged) = (base.clone(), tool.clone(), acknowledged.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for n in 0.. {
                let x = 10_000 * (client + 1) + n; // clear of the scripted tool's 7 and 999
                let Ok(response) = http
                    .post(format!("{base}/tools/{tool}/execute"))
                    .json(&json!({"input": {"x": x}}))
                    .send()
                    .await
                else {
                    return; // the server is gone
                };
                let Ok(body) = response.json::<Value>().await else {
                    return;
                };
                assert_eq!(body["result"], 2 * x, "{body}");
                acknowledged
                    .lock()
                    .expect("lock")
                    .push(body["executionId"].as_str().expect("id").to_owned());
            }
        }));
    }
    let count = || {
        assert!(
            !clients.iter().all(|c| c.is_finished()),
            "every client stopped before the kill (see its panic above)"
        );
        acknowledged.lock().expect("lock").len()
    };
    let http = reqwest::Client::new();
    // Flushes run while executions keep coming, until 20 have been answered.
    while count() < 20 {
        let flushed = http
            .post(format!("{base}/buffers/executions/flush"))
            .send()
            .await
            .expect("flush");
        assert!(flushed.status().is_success());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // No flush after this point: what is answered from here on lives only in the spool, but
    // for at most one request per client that was pushed before the last flush and answered
    // after it; 14 more answers leave at least 10 that only the spool holds.
    let flushed_upto = count();
    while count() < flushed_upto + 14 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.0.kill().expect("kill -9");
    server.0.wait().expect("reaped");
    for client in clients {
        client.await.expect("client");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();

    // Before the restart, the store lacks executions that were answered: they are only in the
    // dead process's spool.
    let store = SqliteStore::open(&dir.path().join("toolsmith.db"))
        .await
        .expect("open");
    let before = store
        .list_executions(
            &tool,
            &PageRequest {
                limit: 500,
                after: None,
            },
        )
        .await
        .expect("list")
        .items
        .len();
    store.pool().close().await;
    assert!(
        before + 10 <= acknowledged.len(),
        "{before} logged of {} answered",
        acknowledged.len()
    );

    let restarted = serve(dir.path(), port).await;
    let status: Value = http
        .get(format!("{base}/buffers/executions"))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert!(status["recovered"].as_u64().unwrap_or(0) >= 10, "{status}");
    let flushed: Value = http
        .post(format!("{base}/buffers/executions/flush"))
        .send()
        .await
        .expect("flush")
        .json()
        .await
        .expect("json");
    assert_eq!(flushed["buffer"]["buffered"], 0, "{flushed}");

    let log: Value = http
        .get(format!("{base}/tools/{tool}/executions?limit=500"))
        .send()
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for item in log["items"].as_array().expect("items") {
        *times
            .entry(item["executionId"].as_str().expect("id").to_owned())
            .or_default() += 1;
    }
    for id in &acknowledged {
        assert_eq!(times.get(id), Some(&1), "answered execution {id}");
    }
    assert!(times.values().all(|n| *n == 1), "logged twice: {times:?}");
    assert!(log["nextCursor"].is_null(), "one page holds them all");
    let usage: Value = http
        .get(format!("{base}/tools/{tool}"))
        .send()
        .await
        .expect("tool")
        .json()
        .await
        .expect("json");
    assert_eq!(usage["usageCount"], times.len(), "uses counted once each");
    drop(restarted);
}
