use crate::helpers::{TestOptions, is_timestamp, keys, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_answers_the_seed_fields_with_a_request_id() {
    let app = spawn_app().await;
    let reply = app.get("/api/v1/health").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        keys(&reply.body),
        ["database", "sandbox", "status", "timestamp", "version"]
    );
    assert_eq!(reply.body["sandbox"], "ready");
    assert_eq!(reply.body["status"], "healthy");
    assert_eq!(reply.body["database"], "connected");
    assert_eq!(reply.body["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        is_timestamp(reply.body["timestamp"].as_str().unwrap_or("")),
        "{}",
        reply.body
    );
    let id = reply.headers["x-request-id"].to_str().expect("ascii");
    assert_eq!(id.len(), 32);
}

#[tokio::test]
async fn a_well_formed_incoming_request_id_is_kept_and_a_bad_one_replaced() {
    let app = spawn_app().await;
    let reply = app
        .send(
            app.client
                .get(app.url("/api/v1/jobs/job_missing"))
                .header("x-request-id", "trace-42"),
        )
        .await;
    assert_eq!(reply.headers["x-request-id"], "trace-42");
    assert_eq!(reply.body["requestId"], "trace-42");

    let reply = app
        .send(
            app.client
                .get(app.url("/api/v1/health"))
                .header("x-request-id", "bad id with spaces"),
        )
        .await;
    assert_ne!(reply.headers["x-request-id"], "bad id with spaces");
}

#[tokio::test]
async fn health_and_the_api_say_unavailable_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.store().pool().close().await;
    let reply = app.get("/api/v1/health").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body["status"], "unhealthy");
    assert_eq!(reply.body["database"], "disconnected");

    let reply = app.get("/api/v1/jobs").await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["code"], "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn openapi_document_and_swagger_ui_are_served() {
    let app = spawn_app().await;
    let reply = app.get("/api/v1/openapi.json").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body["openapi"]
            .as_str()
            .unwrap_or("")
            .starts_with("3.1")
    );
    let paths = keys(&reply.body["paths"]);
    for path in [
        "/api/v1/health",
        "/api/v1/jobs",
        "/api/v1/jobs/{jobId}",
        "/api/v1/jobs/{jobId}/cancel",
        "/api/v1/sessions/{session_id}",
        "/api/v1/sessions/{session_id}/tools",
        "/api/v1/sessions/{session_id}/status",
        "/api/v1/sessions/{session_id}/logs",
        "/api/v1/sessions/user/{user_id}",
        "/api/v1/sessions/status/{status_value}",
    ] {
        assert!(
            paths.contains(&path.to_owned()),
            "{path} missing from {paths:?}"
        );
    }
    let schemas = keys(&reply.body["components"]["schemas"]);
    for schema in [
        "ErrorResponse",
        "JobResponse",
        "ToolFile",
        "JobProgressBody",
    ] {
        assert!(
            schemas.contains(&schema.to_owned()),
            "{schema} missing from {schemas:?}"
        );
    }
    let ui = app
        .client
        .get(app.url("/docs/"))
        .send()
        .await
        .expect("docs");
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.expect("html").contains("swagger"));
}

#[tokio::test]
async fn health_says_when_the_sandbox_cannot_run_code() {
    let app = spawn_app_with(TestOptions {
        python_env: Some("/nonexistent/python-env".into()),
        ..TestOptions::default()
    })
    .await;
    let reply = app.get("/api/v1/health").await;
    assert_eq!(
        reply.status, 200,
        "the service still serves everything else"
    );
    let sandbox = reply.body["sandbox"].as_str().unwrap_or("");
    assert!(sandbox.starts_with("unavailable: "), "{sandbox}");
    assert!(sandbox.contains("scripts/setup.sh"), "{sandbox}");
}
