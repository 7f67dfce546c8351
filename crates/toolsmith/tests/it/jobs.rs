use serde_json::json;

use crate::helpers::{is_hex24, is_timestamp, keys, spawn_app};

#[tokio::test]
async fn creating_a_job_answers_202_with_the_seed_shape_and_a_location() {
    let app = spawn_app().await;
    let reply = app
        .send(app.client.post(app.url("/api/v1/jobs")).header("x-user-id", "alice").json(&json!({
            "toolRequirements": [{"description": "tool:double double it", "input": "x", "output": "2x"}],
            "metadata": {"sessionId": "session_123", "clientId": "web-app"}
        })))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(
        keys(body),
        [
            "createdAt",
            "jobId",
            "progress",
            "sessionId",
            "status",
            "updatedAt"
        ]
    );
    let job_id = body["jobId"].as_str().expect("jobId");
    assert!(
        job_id.starts_with("job_") && is_hex24(&job_id[4..]),
        "{job_id}"
    );
    assert!(is_hex24(body["sessionId"].as_str().expect("sessionId")));
    assert_eq!(body["status"], "pending");
    assert!(is_timestamp(body["createdAt"].as_str().unwrap_or("")));
    assert!(is_timestamp(body["updatedAt"].as_str().unwrap_or("")));
    assert_eq!(
        body["progress"],
        json!({"total": 1, "completed": 0, "failed": 0, "inProgress": 0, "currentTool": null})
    );
    assert_eq!(reply.headers["location"], format!("/api/v1/jobs/{job_id}"));

    // The session carries the caller and the client's metadata.
    let session = app
        .get(&format!(
            "/api/v1/sessions/{}",
            body["sessionId"].as_str().unwrap_or("")
        ))
        .await;
    assert_eq!(session.body["userId"], "alice");
    assert_eq!(
        session.body["metadata"],
        json!({"sessionId": "session_123", "clientId": "web-app"})
    );
}

#[tokio::test]
async fn a_finished_job_shows_tool_files_failures_and_summary() {
    let app = spawn_app().await;
    let job = app
        .create_job(&[
            "tool:double_it doubles",
            "tool:vague fail:specification too vague",
        ])
        .await;
    let job_id = job["jobId"].as_str().expect("id");
    let done = app.wait_until_finished(job_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        keys(&done),
        [
            "createdAt",
            "failures",
            "jobId",
            "progress",
            "sessionId",
            "status",
            "summary",
            "toolFiles",
            "updatedAt"
        ]
    );
    assert_eq!(
        done["progress"],
        json!({"total": 2, "completed": 1, "failed": 1, "inProgress": 0, "currentTool": null})
    );
    assert_eq!(
        done["summary"],
        json!({"totalRequested": 2, "successful": 1, "failed": 1})
    );

    let files = done["toolFiles"].as_array().expect("toolFiles");
    assert_eq!(files.len(), 1);
    let file = &files[0];
    assert_eq!(
        keys(file),
        [
            "code",
            "createdAt",
            "description",
            "endpoint",
            "fileName",
            "filePath",
            "registered",
            "toolId"
        ]
    );
    assert!(is_hex24(file["toolId"].as_str().unwrap_or("")));
    assert_eq!(file["fileName"], "double_it.py");
    assert_eq!(file["filePath"], "tools/double_it.py");
    assert_eq!(file["endpoint"], json!(null));
    assert_eq!(file["registered"], true);
    assert!(
        file["code"]
            .as_str()
            .unwrap_or("")
            .contains("def double_it(x: int) -> int:")
    );

    let failures = done["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0]["toolRequirement"],
        json!({"description": "tool:vague fail:specification too vague", "input": "an integer x", "output": "twice x"})
    );
    let error = failures[0]["error"].as_str().unwrap_or("");
    assert!(error.starts_with("INSUFFICIENT_API_SPECS: "), "{error}");
    assert_eq!(failures[0]["code"], "INSUFFICIENT_API_SPECS");
}

#[tokio::test]
async fn a_job_that_produces_no_tool_fails() {
    let app = spawn_app().await;
    let job = app.create_job(&["fail:planning", "fail:testing"]).await;
    let done = app
        .wait_until_finished(job["jobId"].as_str().expect("id"))
        .await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["toolFiles"], json!([]));
    assert_eq!(
        done["summary"],
        json!({"totalRequested": 2, "successful": 0, "failed": 2})
    );
    let session = app
        .get(&format!(
            "/api/v1/sessions/{}",
            done["sessionId"].as_str().unwrap_or("")
        ))
        .await;
    assert_eq!(session.body["status"], "failed");
    let job_id = done["jobId"].as_str().unwrap_or("");
    let cancel = app
        .post_json(&format!("/api/v1/jobs/{job_id}/cancel"), &json!({}))
        .await;
    assert_eq!(cancel.status, 409);
    assert_eq!(cancel.body["code"], "JOB_ALREADY_COMPLETED");
}

#[tokio::test]
async fn cancelling_a_finished_job_is_409_already_completed() {
    let app = spawn_app().await;
    let job = app.create_job(&["quick"]).await;
    let job_id = job["jobId"].as_str().expect("id");
    app.wait_until_finished(job_id).await;
    let reply = app
        .post_json(&format!("/api/v1/jobs/{job_id}/cancel"), &json!({}))
        .await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.body["code"], "JOB_ALREADY_COMPLETED");
    assert_eq!(reply.body["jobId"], job_id);
}

#[tokio::test]
async fn jobs_list_pages_newest_first_and_filters_by_status() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for i in 0..5 {
        let job = app.create_job(&[&format!("tool:t{i} job {i}")]).await;
        let id = job["jobId"].as_str().expect("id").to_owned();
        app.wait_until_finished(&id).await;
        created.push(id);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/jobs?limit=2&cursor={c}"),
            None => "/api/v1/jobs?limit=2".to_owned(),
        };
        let reply = app.get(&path).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(keys(&reply.body), ["items", "nextCursor"]);
        let items = reply.body["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|j| j["jobId"].as_str().unwrap_or("").to_owned()),
        );
        pages += 1;
        match reply.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    created.reverse();
    assert_eq!(seen, created, "newest first, each job once");

    let completed = app.get("/api/v1/jobs?status=completed").await;
    assert_eq!(completed.body["items"].as_array().map(Vec::len), Some(5));
    let cancelled = app.get("/api/v1/jobs?status=cancelled").await;
    assert_eq!(cancelled.body["items"], json!([]));
    assert_eq!(cancelled.body["nextCursor"], json!(null));
}
