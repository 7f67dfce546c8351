use serde_json::json;

use crate::helpers::{keys, spawn_app};

#[tokio::test]
async fn session_endpoints_follow_the_workflow() {
    let app = spawn_app().await;
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/jobs"))
                .header("x-user-id", "bob")
                .json(&json!({
                    "toolRequirements": [
                        {"description": "tool:alpha first", "input": "x", "output": "y"},
                        {"description": "tool:beta second", "input": "x", "output": "y"}
                    ],
                    "metadata": {"clientId": "cli"}
                })),
        )
        .await;
    assert_eq!(reply.status, 202);
    let job_id = reply.body["jobId"].as_str().expect("id").to_owned();
    let session_id = reply.body["sessionId"].as_str().expect("sid").to_owned();
    let done = app.wait_until_finished(&job_id).await;
    assert_eq!(done["status"], "completed");

    let session = app.get(&format!("/api/v1/sessions/{session_id}")).await;
    assert_eq!(session.status, 200);
    assert_eq!(
        keys(&session.body),
        [
            "createdAt",
            "currentPhase",
            "jobId",
            "metadata",
            "progress",
            "sessionId",
            "status",
            "toolIds",
            "toolRequirements",
            "updatedAt",
            "userId"
        ]
    );
    assert_eq!(session.body["status"], "completed");
    assert_eq!(session.body["progress"], 100);
    assert_eq!(session.body["currentPhase"], "registration");
    assert_eq!(session.body["jobId"], job_id.as_str());
    assert_eq!(session.body["userId"], "bob");
    assert_eq!(
        session.body["metadata"],
        json!({"sessionId": null, "clientId": "cli"})
    );
    assert_eq!(
        session.body["toolRequirements"][1]["description"],
        "tool:beta second"
    );
    let tool_ids = session.body["toolIds"].as_array().expect("toolIds").clone();
    assert_eq!(tool_ids.len(), 2);

    let tools = app
        .get(&format!("/api/v1/sessions/{session_id}/tools"))
        .await;
    assert_eq!(tools.status, 200);
    let mut names: Vec<&str> = tools.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or(""))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alpha", "beta"]);
    for tool in tools.body["items"].as_array().expect("items") {
        assert!(tool_ids.contains(&tool["toolId"]));
        assert_eq!(tool["version"], "1.0.0");
        assert_eq!(tool["status"], "registered");
    }

    let status = app
        .get(&format!("/api/v1/sessions/{session_id}/status"))
        .await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["jobStatus"], "completed");
    let requirements = status.body["requirements"]
        .as_array()
        .expect("requirements");
    assert_eq!(requirements.len(), 2);
    for r in requirements {
        assert_eq!(r["status"], "completed");
        assert_eq!(r["progress"], 100);
        assert_eq!(r["error"], json!(null));
    }

    let by_user = app.get("/api/v1/sessions/user/bob").await;
    assert_eq!(by_user.body["items"][0]["sessionId"], session_id.as_str());
    assert_eq!(
        app.get("/api/v1/sessions/user/nobody").await.body["items"],
        json!([])
    );
    let by_status = app.get("/api/v1/sessions/status/completed").await;
    assert_eq!(by_status.body["items"][0]["sessionId"], session_id.as_str());
    assert_eq!(
        app.get("/api/v1/sessions/status/implementing").await.body["items"],
        json!([])
    );
}

#[tokio::test]
async fn session_logs_trace_every_phase_and_page_in_order() {
    let app = spawn_app().await;
    let job = app.create_job(&["tool:gamma traced"]).await;
    let session_id = job["sessionId"].as_str().expect("sid").to_owned();
    app.wait_until_finished(job["jobId"].as_str().expect("id"))
        .await;

    let mut logs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/sessions/{session_id}/logs?limit=7&cursor={c}"),
            None => format!("/api/v1/sessions/{session_id}/logs?limit=7"),
        };
        let reply = app.get(&path).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        logs.extend(
            reply.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .cloned(),
        );
        match reply.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        keys(&logs[0]),
        [
            "codeExecuted",
            "createdAt",
            "executionResult",
            "executionTimeMs",
            "id",
            "jobId",
            "level",
            "message",
            "modelUsed",
            "phase",
            "promptSent",
            "requirementIndex",
            "responseReceived",
            "sessionId",
            "step",
            "tokensUsed"
        ]
    );
    let steps: Vec<String> = logs
        .iter()
        .map(|l| {
            format!(
                "{}/{}",
                l["phase"].as_str().unwrap_or(""),
                l["step"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(steps.first().map(String::as_str), Some("job/claimed"));
    assert_eq!(steps.last().map(String::as_str), Some("job/finished"));
    for phase in [
        "specification",
        "planning",
        "searching",
        "implementation",
        "testing",
        "fixing",
        "validation",
        "registration",
    ] {
        let started = steps.iter().position(|s| *s == format!("{phase}/started"));
        let finished = steps.iter().position(|s| *s == format!("{phase}/finished"));
        assert!(
            started.is_some() && finished.is_some() && started < finished,
            "{phase}: {steps:?}"
        );
    }
    let scripted: Vec<_> = logs.iter().filter(|l| l["step"] == "scripted").collect();
    assert_eq!(scripted.len(), 8);
    for l in scripted {
        assert!(
            l["promptSent"]
                .as_str()
                .unwrap_or("")
                .starts_with("prompt for")
        );
        assert!(
            l["responseReceived"]
                .as_str()
                .unwrap_or("")
                .starts_with("response for")
        );
        assert_eq!(l["tokensUsed"], 10);
        assert_eq!(l["modelUsed"], "scripted");
    }
    let finished_registration = logs
        .iter()
        .find(|l| l["phase"] == "registration" && l["step"] == "finished")
        .expect("registration log");
    assert!(
        finished_registration["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("registered tool ")
    );
    assert!(finished_registration["executionTimeMs"].is_i64());
}
