//! The job engine through the API: restarts, crashes, cancel, deadlines, concurrency.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use toolsmith_domain::Phase;
use toolsmith_store::Store;

use crate::helpers::{
    ScriptedWorkflow, TestOptions, fast_engine, insert_job, respawn, spawn_app_with,
};

fn phases_of(calls: &[(u32, Phase)]) -> Vec<Phase> {
    calls.iter().map(|(_, p)| *p).collect()
}

async fn wait_for_call(workflow: &ScriptedWorkflow, job_id: &str, phase: Phase) {
    wait_for_calls(workflow, job_id, phase, 1).await;
}

/// Waits until `count` requirements of the job have started `phase`.
async fn wait_for_calls(workflow: &ScriptedWorkflow, job_id: &str, phase: Phase, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while workflow
        .calls(job_id)
        .iter()
        .filter(|(_, p)| *p == phase)
        .count()
        < count
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{phase} never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_job_survives_a_graceful_restart_and_resumes_where_it_stopped() {
    let first = Arc::new(ScriptedWorkflow::default());
    let app = spawn_app_with(TestOptions {
        workflow: Some(first.clone()),
        ..TestOptions::default()
    })
    .await;
    let job = app.create_job(&["tool:resumable slow:planning:5000"]).await;
    let job_id = job["jobId"].as_str().expect("id").to_owned();
    let session_id = job["sessionId"].as_str().expect("sid").to_owned();
    wait_for_call(&first, &job_id, Phase::Planning).await;
    let data_dir = app.data_dir.clone();
    // Planning is interrupted after the grace period and the job handed back.
    app.stop().await;
    assert_eq!(
        phases_of(&first.calls(&job_id)),
        [Phase::Specification, Phase::Planning]
    );
    {
        let path = data_dir.path().join("toolsmith.db");
        let store = toolsmith_store::SqliteStore::open(&path)
            .await
            .expect("open");
        let handed_back = store.get_job(&job_id).await.expect("get").expect("job");
        assert_eq!(handed_back.lease_owner, None);
        assert_eq!(handed_back.attempts, 0);
        assert_eq!(
            handed_back.progress().in_progress,
            0,
            "nobody works on it until it is claimed"
        );
        store.pool().close().await;
    }

    let second = Arc::new(ScriptedWorkflow::without_delays());
    let app = respawn(data_dir, Some(second.clone())).await;
    let done = app.wait_until_finished(&job_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["sessionId"], session_id.as_str());
    // Specification had finished before the stop: it is not run again.
    assert_eq!(phases_of(&second.calls(&job_id))[0], Phase::Planning);
    assert_eq!(second.calls(&job_id).len(), 7);
    let session = app.get(&format!("/api/v1/sessions/{session_id}")).await;
    assert_eq!(session.body["status"], "completed");
    assert_eq!(app.store().tool_count().await.expect("count"), 1);
    // The hand-back at shutdown is not a failed attempt.
    let stored = app
        .store()
        .get_job(&job_id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(stored.attempts, 1);
}

#[tokio::test]
async fn a_job_created_before_a_restart_is_still_there_with_its_session() {
    let app = spawn_app_with(TestOptions::default()).await;
    let job = app.create_job(&["tool:kept hang:specification"]).await;
    let job_id = job["jobId"].as_str().expect("id").to_owned();
    let data_dir = app.data_dir.clone();
    app.stop().await;

    // Restarted without generation: everything stored is still served.
    let app = respawn(data_dir, None).await;
    let reply = app.get(&format!("/api/v1/jobs/{job_id}")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["progress"]["total"], 1);
    let session = app
        .get(&format!(
            "/api/v1/sessions/{}",
            job["sessionId"].as_str().unwrap_or("")
        ))
        .await;
    assert_eq!(session.status, 200);
    assert_eq!(session.body["jobId"], job_id.as_str());
    assert_eq!(
        session.body["toolRequirements"][0]["description"],
        "tool:kept hang:specification"
    );
}

#[tokio::test]
async fn a_crashed_workers_job_is_reclaimed_after_its_lease_and_finishes_exactly_once() {
    let first = Arc::new(ScriptedWorkflow::default());
    let app = spawn_app_with(TestOptions {
        workflow: Some(first.clone()),
        ..TestOptions::default()
    })
    .await;
    let job = app
        .create_job(&["tool:survivor hang:testing", "tool:partner hang:testing"])
        .await;
    let job_id = job["jobId"].as_str().expect("id").to_owned();
    wait_for_calls(&first, &job_id, Phase::Testing, 2).await;
    let data_dir = app.data_dir.clone();
    app.crash().await;

    let second = Arc::new(ScriptedWorkflow::without_delays());
    let app = respawn(data_dir, Some(second.clone())).await;
    // The dead worker's lease still holds for a while: nobody runs the job meanwhile.
    let stored = app
        .store()
        .get_job(&job_id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(stored.attempts, 1);
    assert!(second.calls(&job_id).is_empty());

    let done = app.wait_until_finished(&job_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["toolFiles"].as_array().map(Vec::len), Some(2));
    let stored = app
        .store()
        .get_job(&job_id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(stored.attempts, 2);
    // Each requirement resumed at testing: earlier phases ran once, in the first process.
    for index in 0..2 {
        let resumed: Vec<Phase> = second
            .calls(&job_id)
            .iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, p)| *p)
            .collect();
        assert_eq!(
            resumed,
            [
                Phase::Testing,
                Phase::Fixing,
                Phase::Validation,
                Phase::Registration
            ]
        );
    }
    assert_eq!(app.store().tool_count().await.expect("count"), 2);
    let logs = app.session_logs(&done).await;
    let messages: Vec<&str> = logs["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("(attempt 2)")),
        "{messages:?}"
    );
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.starts_with("registered tool"))
            .count(),
        2
    );
}

#[tokio::test]
async fn cancel_stops_a_running_job_at_once_and_frees_the_worker() {
    let workflow = Arc::new(ScriptedWorkflow::default());
    // Heartbeats far apart: only the cancel's own signal can free the worker in time.
    let app = spawn_app_with(TestOptions {
        workflow: Some(workflow.clone()),
        engine: toolsmith_engine::EngineConfig {
            workers: 1,
            heartbeat: Duration::from_secs(60),
            lease: Duration::from_secs(180),
            ..fast_engine()
        },
        ..TestOptions::default()
    })
    .await;
    let job = app
        .create_job(&[
            "tool:stuck hang:implementation",
            "tool:other hang:implementation",
        ])
        .await;
    let job_id = job["jobId"].as_str().expect("id").to_owned();
    let running = app
        .wait_for_job(&job_id, |j| {
            j["progress"]["inProgress"] == 2 && j["progress"]["currentTool"].is_string()
        })
        .await;
    assert_eq!(running["status"], "running");
    wait_for_call(&workflow, &job_id, Phase::Implementation).await;

    let reply = app
        .post_json(&format!("/api/v1/jobs/{job_id}/cancel"), &json!({}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "cancelled");
    assert_eq!(
        reply.body["summary"],
        json!({"totalRequested": 2, "successful": 0, "failed": 2})
    );
    let errors: Vec<&str> = reply.body["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert_eq!(errors, ["JOB_CANCELLED", "JOB_CANCELLED"]);

    let again = app
        .post_json(&format!("/api/v1/jobs/{job_id}/cancel"), &json!({}))
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["code"], "JOB_CANCELLED");

    // The single worker is free again: a new job completes, and the cancelled one stays so.
    let next = app.create_job(&["tool:after quick"]).await;
    let done = app
        .wait_until_finished(next["jobId"].as_str().expect("id"))
        .await;
    assert_eq!(done["status"], "completed");
    let cancelled = app.get(&format!("/api/v1/jobs/{job_id}")).await;
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["progress"]["inProgress"], 0);
    let session = app
        .get(&format!(
            "/api/v1/sessions/{}",
            job["sessionId"].as_str().unwrap_or("")
        ))
        .await;
    assert_eq!(session.body["status"], "cancelled");
}

#[tokio::test]
async fn cancelling_a_pending_job_means_it_never_runs() {
    let workflow = Arc::new(ScriptedWorkflow::default());
    let app = spawn_app_with(TestOptions {
        workflow: Some(workflow.clone()),
        engine: toolsmith_engine::EngineConfig {
            workers: 1,
            ..fast_engine()
        },
        ..TestOptions::default()
    })
    .await;
    let blocker = app.create_job(&["hang:specification"]).await;
    let blocker_id = blocker["jobId"].as_str().expect("id").to_owned();
    wait_for_call(&workflow, &blocker_id, Phase::Specification).await;
    let queued = app.create_job(&["tool:never"]).await;
    let queued_id = queued["jobId"].as_str().expect("id").to_owned();
    let reply = app
        .post_json(&format!("/api/v1/jobs/{queued_id}/cancel"), &json!({}))
        .await;
    assert_eq!(reply.body["status"], "cancelled");
    app.post_json(&format!("/api/v1/jobs/{blocker_id}/cancel"), &json!({}))
        .await;
    // Give the worker a chance to pick anything up, then check it did not run the cancelled job.
    let probe = app.create_job(&["tool:probe"]).await;
    app.wait_until_finished(probe["jobId"].as_str().expect("id"))
        .await;
    assert!(workflow.calls(&queued_id).is_empty());
}

#[tokio::test]
async fn past_the_deadline_unfinished_requirements_fail_with_generation_timeout() {
    let app = spawn_app_with(TestOptions {
        job_deadline: Duration::from_millis(1500),
        ..TestOptions::default()
    })
    .await;
    let job = app
        .create_job(&["tool:fast quick", "tool:slowpoke hang:validation"])
        .await;
    let done = app
        .wait_until_finished(job["jobId"].as_str().expect("id"))
        .await;
    assert_eq!(done["status"], "completed", "one tool was produced: {done}");
    let failures = done["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["code"], "GENERATION_TIMEOUT");
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("validation")
    );

    let job = app.create_job(&["hang:specification"]).await;
    let done = app
        .wait_until_finished(job["jobId"].as_str().expect("id"))
        .await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["failures"][0]["code"], "GENERATION_TIMEOUT");
}

#[tokio::test]
async fn requirements_of_a_job_run_concurrently_up_to_the_limit() {
    for (limit, expected) in [(4, 3), (1, 1)] {
        let workflow = Arc::new(ScriptedWorkflow::default());
        let app = spawn_app_with(TestOptions {
            workflow: Some(workflow.clone()),
            engine: toolsmith_engine::EngineConfig {
                requirement_concurrency: limit,
                ..fast_engine()
            },
            ..TestOptions::default()
        })
        .await;
        let job = app
            .create_job(&[
                "slow:specification:300",
                "slow:specification:300",
                "slow:specification:300",
            ])
            .await;
        let done = app
            .wait_until_finished(job["jobId"].as_str().expect("id"))
            .await;
        assert_eq!(done["status"], "completed");
        assert_eq!(workflow.max_concurrent(), expected, "limit {limit}");
    }
}

#[tokio::test]
async fn progress_and_session_status_never_go_backwards() {
    let app = spawn_app_with(TestOptions::default()).await;
    let job = app
        .create_job(&[
            "slow:planning:150 slow:testing:150",
            "slow:searching:100 slow:validation:200",
        ])
        .await;
    let job_id = job["jobId"].as_str().expect("id").to_owned();
    let session_path = format!(
        "/api/v1/sessions/{}",
        job["sessionId"].as_str().unwrap_or("")
    );
    let order = [
        "pending",
        "planning",
        "searching",
        "implementing",
        "executing",
        "completed",
    ];
    let mut last_progress = 0;
    let mut last_rank = 0;
    let mut seen_statuses = Vec::new();
    loop {
        let session = app.get(&session_path).await.body;
        let progress = session["progress"].as_u64().expect("progress");
        let status = session["status"].as_str().expect("status").to_owned();
        let rank = order
            .iter()
            .position(|s| *s == status)
            .expect("known status");
        assert!(
            progress >= last_progress,
            "progress went from {last_progress} to {progress}"
        );
        assert!(rank >= last_rank, "status went back to {status}");
        last_progress = progress;
        last_rank = rank;
        if !seen_statuses.contains(&status) {
            seen_statuses.push(status.clone());
        }
        if status == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(last_progress, 100);
    assert!(seen_statuses.len() >= 3, "{seen_statuses:?}");
    let done = app.wait_until_finished(&job_id).await;
    assert_eq!(done["status"], "completed");
}

#[tokio::test]
async fn a_job_whose_runs_keep_dying_is_given_up_after_max_attempts() {
    // A service without workers holds the job; "ghost" workers claim it and vanish.
    let app = spawn_app_with(TestOptions {
        workflow: None,
        ..TestOptions::default()
    })
    .await;
    let store = app.store();
    let job = insert_job(store.as_ref(), "tool:cursed").await;
    for ghost in 0..5 {
        // A zero-length lease: expired as soon as it is taken.
        let claimed = store
            .claim_next_job(
                &format!("ghost-{ghost}"),
                toolsmith_domain::time::now_ms(),
                0,
            )
            .await
            .expect("claim");
        assert_eq!(claimed.map(|j| j.attempts), Some(ghost + 1));
    }
    let data_dir = app.data_dir.clone();
    app.stop().await;

    let workflow = Arc::new(ScriptedWorkflow::default());
    let app = respawn(data_dir, Some(workflow.clone())).await;
    let done = app.wait_until_finished(&job.id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["failures"][0]["code"], "INTERNAL_ERROR");
    assert!(
        done["failures"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("gave up after 5 attempts")
    );
    assert!(workflow.calls(&job.id).is_empty());
}

#[tokio::test]
async fn the_engine_can_be_driven_one_job_at_a_time() {
    let app = spawn_app_with(TestOptions {
        workflow: None,
        ..TestOptions::default()
    })
    .await;
    let store: Arc<dyn Store> = app.store();
    let workflow = Arc::new(ScriptedWorkflow::default());
    let engine = toolsmith_engine::Engine::new(store.clone(), workflow.clone(), fast_engine());
    assert_eq!(
        engine.run_one("stepper").await.expect("run"),
        None,
        "nothing queued yet"
    );

    let job = insert_job(store.as_ref(), "tool:stepped").await;
    assert_eq!(
        engine.run_one("stepper").await.expect("run"),
        Some(job.id.clone())
    );
    assert_eq!(workflow.calls(&job.id).len(), 8);
    let done = app.get(&format!("/api/v1/jobs/{}", job.id)).await;
    assert_eq!(done.body["status"], "completed");
    assert_eq!(done.body["toolFiles"][0]["fileName"], "stepped.py");
}
