//! Every bad input answers the right `ErrorResponse`, never a bare body, never a 500.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestOptions, is_timestamp, keys, spawn_app, spawn_app_with};

/// Asserts an `ErrorResponse` of `status` and `code` whose message contains `says`.
#[track_caller]
fn check_error(reply: &crate::helpers::Reply, status: u16, code: &str, says: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(body["code"], code, "{body}");
    let message = body["error"].as_str().unwrap_or("");
    assert!(
        message.contains(says),
        "{message:?} should contain {says:?}"
    );
    assert!(
        is_timestamp(body["timestamp"].as_str().unwrap_or("")),
        "{body}"
    );
    let request_id = reply.headers["x-request-id"].to_str().expect("header");
    assert_eq!(body["requestId"], request_id);
    for key in keys(body) {
        assert!(
            [
                "error",
                "code",
                "details",
                "timestamp",
                "jobId",
                "requestId"
            ]
            .contains(&key.as_str()),
            "unexpected field {key} in {body}"
        );
    }
    assert_eq!(
        reply.headers["content-type"].to_str().unwrap_or(""),
        "application/json"
    );
}

fn requirement() -> Value {
    json!({"description": "double a number", "input": "an integer", "output": "an integer"})
}

async fn post_jobs_raw(
    app: &TestApp,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> crate::helpers::Reply {
    let mut request = app.client.post(app.url("/api/v1/jobs")).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    app.send(request).await
}

#[tokio::test]
async fn malformed_bodies_are_invalid_requests() {
    let app = spawn_app().await;
    let json_ct = Some("application/json");
    let cases: &[(Option<&str>, &str, u16, &str, &str)] = &[
        (
            json_ct,
            "{\"toolRequirements\": [",
            400,
            "INVALID_REQUEST",
            "malformed JSON",
        ),
        (
            json_ct,
            "not json",
            400,
            "INVALID_REQUEST",
            "malformed JSON",
        ),
        (json_ct, "", 400, "INVALID_REQUEST", "empty"),
        (
            json_ct,
            "[1, 2]",
            400,
            "INVALID_REQUEST",
            "must be a JSON object",
        ),
        (
            json_ct,
            r#"{"toolRequirements": [], "metadata": "web"}"#,
            400,
            "INVALID_REQUEST",
            "metadata must be an object",
        ),
        (
            json_ct,
            r#"{"toolRequirements": [], "metadata": {"clientId": 7}}"#,
            400,
            "INVALID_REQUEST",
            "metadata.clientId must be a string",
        ),
        (
            Some("text/plain"),
            "{}",
            400,
            "INVALID_REQUEST",
            "Content-Type: application/json",
        ),
        (None, "{}", 400, "INVALID_REQUEST", "no Content-Type"),
    ];
    for (content_type, body, status, code, says) in cases {
        let reply = post_jobs_raw(&app, *content_type, body.to_string()).await;
        check_error(&reply, *status, code, says);
    }
    // `application/json; charset=utf-8` is JSON too.
    let reply = post_jobs_raw(
        &app,
        Some("application/json; charset=utf-8"),
        json!({"toolRequirements": [requirement()]}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
}

#[tokio::test]
async fn invalid_requirements_are_422_with_every_problem_listed() {
    let app = spawn_app().await;
    let long = "x".repeat(10_001);
    let many: Vec<Value> = (0..51).map(|_| requirement()).collect();
    let cases = [
        (json!({}), "toolRequirements is required"),
        (json!({"toolRequirements": []}), "at least one"),
        (json!({"toolRequirements": "x"}), "must be a list"),
        (json!({"toolRequirements": many}), "at most 50"),
        (
            json!({"toolRequirements": [{"description": "   ", "input": "i", "output": "o"}]}),
            "description must not be blank",
        ),
        (
            json!({"toolRequirements": [{"description": long, "input": "i", "output": "o"}]}),
            "at most 10000",
        ),
        (
            json!({"toolRequirements": [{"description": "d", "output": "o"}]}),
            "input is required",
        ),
        (
            json!({"toolRequirements": [{"description": "d", "input": "i"}]}),
            "output is required",
        ),
        (
            json!({"toolRequirements": [{"description": 5, "input": "i", "output": "o"}]}),
            "must be a string",
        ),
    ];
    for (body, says) in cases {
        let reply = app.post_json("/api/v1/jobs", &body).await;
        check_error(&reply, 422, "INVALID_TOOL_REQUIREMENT", says);
        assert!(
            reply.body["details"]["errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
        );
    }
    let reply = app
        .post_json(
            "/api/v1/jobs",
            &json!({"toolRequirements": [requirement(), {"description": "", "input": 1}]}),
        )
        .await;
    check_error(
        &reply,
        422,
        "INVALID_TOOL_REQUIREMENT",
        "toolRequirements[1]",
    );
    let paths: Vec<&str> = reply.body["details"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["path"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        paths,
        [
            "toolRequirements[1].description",
            "toolRequirements[1].input",
            "toolRequirements[1].output"
        ]
    );
    // Nothing was created by any of the refused requests.
    let jobs = app.get("/api/v1/jobs").await;
    assert_eq!(jobs.body["items"], json!([]));
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413() {
    let app = spawn_app().await;
    let big = json!({"toolRequirements": [requirement()], "padding": "x".repeat(1024 * 1024)});
    let reply = app.post_json("/api/v1/jobs", &big).await;
    check_error(&reply, 413, "INVALID_REQUEST", "larger than");
}

#[tokio::test]
async fn unknown_resources_routes_and_methods() {
    let app = spawn_app().await;
    let reply = app.get("/api/v1/jobs/job_000000000000000000000000").await;
    check_error(&reply, 404, "JOB_NOT_FOUND", "was not found");
    assert_eq!(reply.body["jobId"], "job_000000000000000000000000");
    let reply = app
        .post_json("/api/v1/jobs/job_nope/cancel", &json!({}))
        .await;
    check_error(&reply, 404, "JOB_NOT_FOUND", "job_nope");

    for path in [
        "/api/v1/sessions/0123456789abcdef01234567",
        "/api/v1/sessions/0123456789abcdef01234567/tools",
        "/api/v1/sessions/0123456789abcdef01234567/status",
        "/api/v1/sessions/0123456789abcdef01234567/logs",
    ] {
        let reply = app.get(path).await;
        check_error(&reply, 404, "INVALID_REQUEST", "session");
        assert_eq!(reply.body["details"]["resource"], "session");
    }

    let reply = app.get("/api/v1/nowhere").await;
    check_error(
        &reply,
        404,
        "INVALID_REQUEST",
        "no route for GET /api/v1/nowhere",
    );
    let reply = app.get("/").await;
    check_error(&reply, 404, "INVALID_REQUEST", "no route");

    let reply = app.send(app.client.delete(app.url("/api/v1/jobs"))).await;
    check_error(&reply, 405, "INVALID_REQUEST", "DELETE is not allowed");
    assert!(reply.headers.contains_key("allow"));
    let reply = app.send(app.client.put(app.url("/api/v1/health"))).await;
    check_error(&reply, 405, "INVALID_REQUEST", "not allowed");
    let reply = app
        .get("/api/v1/jobs/job_000000000000000000000000/cancel")
        .await;
    check_error(&reply, 405, "INVALID_REQUEST", "GET is not allowed");
}

#[tokio::test]
async fn bad_filters_limits_and_cursors_are_400() {
    let app = spawn_app().await;
    let cases = [
        ("/api/v1/jobs?status=done", "unknown job status \"done\""),
        ("/api/v1/jobs?limit=0", "limit must be between 1 and 500"),
        ("/api/v1/jobs?limit=501", "limit must be between 1 and 500"),
        ("/api/v1/jobs?limit=ten", "invalid query"),
        ("/api/v1/jobs?cursor=zz", "cursor"),
        ("/api/v1/sessions/status/sleeping", "unknown session status"),
        ("/api/v1/sessions/user/alice?limit=-1", "invalid query"),
    ];
    for (path, says) in cases {
        let reply = app.get(path).await;
        check_error(&reply, 400, "INVALID_REQUEST", says);
    }
    assert_eq!(app.get("/api/v1/jobs?limit=500").await.status, 200);
}

#[tokio::test]
async fn invalid_user_header_is_400() {
    let app = spawn_app().await;
    let long = "u".repeat(129);
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/jobs"))
                .header("x-user-id", long)
                .json(&json!({"toolRequirements": [requirement()]})),
        )
        .await;
    check_error(&reply, 400, "INVALID_REQUEST", "X-User-Id");
}

#[tokio::test]
async fn without_generation_job_creation_is_503_and_says_how_to_configure() {
    let app = spawn_app_with(TestOptions {
        workflow: None,
        ..TestOptions::default()
    })
    .await;
    let reply = app
        .post_json(
            "/api/v1/jobs",
            &json!({"toolRequirements": [requirement()]}),
        )
        .await;
    check_error(&reply, 503, "SERVICE_UNAVAILABLE", "TOOLSMITH_LLM_BASE_URL");
    // Validation still comes first: bad input is told so.
    let reply = app
        .post_json("/api/v1/jobs", &json!({"toolRequirements": []}))
        .await;
    check_error(&reply, 422, "INVALID_TOOL_REQUIREMENT", "at least one");
    // Everything else still works.
    assert_eq!(app.get("/api/v1/health").await.status, 200);
    assert_eq!(app.get("/api/v1/jobs").await.status, 200);
}
