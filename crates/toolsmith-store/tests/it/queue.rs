//! The store's contract, run against a real SQLite file: claims, leases, cancel, idempotent
//! registration, pagination and migrations.

use serde_json::json;
use toolsmith_domain::ids::{new_job_id, new_object_id};
use toolsmith_domain::{
    ErrorCode, JobStatus, Phase, RequestMetadata, SessionStatus, ToolRequirement,
};
use toolsmith_store::{
    CancelOutcome, Lease, LeaseState, NewJob, PageRequest, PhaseFinished, SessionFilter,
    SqliteStore, Store, StoreError, ToolDraft, ToolOutcome,
};

struct Db {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: SqliteStore,
}

async fn db() -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("toolsmith.db");
    let store = SqliteStore::open(&path).await.expect("open");
    Db {
        _dir: dir,
        path,
        store,
    }
}

fn requirement(n: usize) -> ToolRequirement {
    ToolRequirement {
        description: format!("tool number {n}"),
        input: "numbers".into(),
        output: "a number".into(),
    }
}

async fn new_job(store: &SqliteStore, requirements: usize, created_at: i64) -> NewJob {
    let job = NewJob {
        id: new_job_id(),
        session_id: new_object_id(),
        user_id: "alice".into(),
        metadata: RequestMetadata {
            session_id: Some("client-session".into()),
            client_id: Some("tests".into()),
        },
        requirements: (0..requirements).map(requirement).collect(),
        created_at,
        deadline_at: created_at + 60_000,
    };
    store.create_job(job.clone()).await.expect("create job");
    job
}

/// A job of `requirements` requirements, created at 1_000 and claimed by `w1` until 11_000.
async fn claimed_job(store: &SqliteStore, requirements: usize) -> (NewJob, Lease) {
    let job = new_job(store, requirements, 1_000).await;
    store
        .claim_next_job("w1", 1_000, 10_000)
        .await
        .expect("claim")
        .expect("a job to claim");
    let lease = Lease {
        job_id: job.id.clone(),
        worker: "w1".into(),
    };
    (job, lease)
}

fn draft(name: &str) -> ToolDraft {
    ToolDraft {
        name: name.into(),
        description: format!("{name} does things"),
        code: format!("def {name}() -> int:\n    return 1\n"),
        entry_point: name.into(),
        input_schema: json!({"type": "object"}),
        output_schema: json!({"type": "integer"}),
        dependencies: vec![],
        test_code: None,
        test_cases: json!([]),
        spec: None,
        plan: None,
        model: None,
    }
}

#[tokio::test]
async fn a_job_is_claimed_once_and_reclaimed_only_after_its_lease_expires() {
    let db = db().await;
    let job = new_job(&db.store, 1, 1_000).await;

    let first = db
        .store
        .claim_next_job("w1", 2_000, 500)
        .await
        .expect("claim");
    assert_eq!(first.as_ref().map(|j| j.id.as_str()), Some(job.id.as_str()));
    let first = first.expect("claimed");
    assert_eq!(first.status, JobStatus::Running);
    assert_eq!(first.attempts, 1);

    // Held: nobody else gets it.
    assert!(
        db.store
            .claim_next_job("w2", 2_400, 500)
            .await
            .expect("claim")
            .is_none()
    );
    // Expired: w2 takes it over, and w1's writes are refused from then on.
    let second = db
        .store
        .claim_next_job("w2", 2_500, 500)
        .await
        .expect("claim")
        .expect("reclaimed");
    assert_eq!(second.attempts, 2);
    let w1 = Lease {
        job_id: job.id.clone(),
        worker: "w1".into(),
    };
    let w2 = Lease {
        job_id: job.id.clone(),
        worker: "w2".into(),
    };
    assert_eq!(
        db.store.heartbeat(&w1, 2_600, 500).await.expect("hb"),
        LeaseState::Lost
    );
    let err = db
        .store
        .phase_started(&w1, 0, Phase::Specification, 2_600)
        .await;
    assert!(matches!(err, Err(StoreError::LeaseLost { .. })), "{err:?}");
    assert_eq!(
        db.store.heartbeat(&w2, 2_600, 500).await.expect("hb"),
        LeaseState::Held
    );
    // The heartbeat moved the expiry: at 3_000 (old expiry) the job is still held.
    assert!(
        db.store
            .claim_next_job("w3", 3_000, 500)
            .await
            .expect("claim")
            .is_none()
    );
}

#[tokio::test]
async fn released_jobs_go_back_to_the_queue_with_their_checkpoint() {
    let db = db().await;
    let (job, lease) = claimed_job(&db.store, 1).await;
    db.store
        .phase_started(&lease, 0, Phase::Specification, 1_100)
        .await
        .expect("start");
    db.store
        .phase_finished(
            &lease,
            PhaseFinished {
                index: 0,
                phase: Phase::Specification,
                next_phase: Some(Phase::Planning),
                checkpoint: json!({"spec": "saved"}),
                tool_name: Some("mean".into()),
            },
            1_200,
        )
        .await
        .expect("finish phase");
    db.store.release_job(&lease, 1_300).await.expect("release");

    let again = db
        .store
        .claim_next_job("w2", 1_400, 10_000)
        .await
        .expect("claim")
        .expect("job");
    let r = &again.requirements[0];
    assert_eq!(r.next_phase, Phase::Planning);
    assert_eq!(r.checkpoint, json!({"spec": "saved"}));
    assert_eq!(r.tool_name.as_deref(), Some("mean"));
    assert_eq!(r.progress, Phase::Specification.progress_after());

    let session = db
        .store
        .get_session(&job.session_id)
        .await
        .expect("get")
        .expect("session");
    assert_eq!(session.status, SessionStatus::Planning);
    assert_eq!(session.current_phase, Some(Phase::Specification));
    assert!(session.progress > 0);
}

#[tokio::test]
async fn registration_is_idempotent_and_versions_bump_by_name() {
    let db = db().await;
    let (job, lease) = claimed_job(&db.store, 2).await;

    let a = db
        .store
        .complete_requirement(
            &lease,
            0,
            ToolOutcome::Generated(Box::new(draft("mean"))),
            1_100,
        )
        .await
        .expect("register");
    // A resumed run registering the same requirement again gets the same tool, no new row.
    let again = db
        .store
        .complete_requirement(
            &lease,
            0,
            ToolOutcome::Generated(Box::new(draft("mean"))),
            1_200,
        )
        .await
        .expect("register again");
    assert_eq!(a, again);
    assert_eq!(db.store.tool_count().await.expect("count"), 1);

    // Another requirement producing the same name is a new (minor) version of the same tool.
    let b = db
        .store
        .complete_requirement(
            &lease,
            1,
            ToolOutcome::Generated(Box::new(draft("mean"))),
            1_300,
        )
        .await
        .expect("register");
    assert_eq!(a, b);
    let files = db.store.job_tool_files(&job.id).await.expect("files");
    let versions: Vec<&str> = files.iter().map(|f| f.version.as_str()).collect();
    assert_eq!(versions, ["1.0.0", "1.1.0"]);

    assert_eq!(
        db.store.finish_job(&lease, 1_400).await.expect("finish"),
        JobStatus::Completed
    );
    let session = db
        .store
        .get_session(&job.session_id)
        .await
        .expect("get")
        .expect("session");
    assert_eq!(session.tool_ids, vec![a]);
    assert_eq!(session.status, SessionStatus::Completed);
    assert_eq!(session.progress, 100);
}

#[tokio::test]
async fn a_job_without_any_tool_fails() {
    let db = db().await;
    let (job, lease) = claimed_job(&db.store, 1).await;
    db.store
        .fail_requirement(
            &lease,
            0,
            ErrorCode::InsufficientApiSpecs,
            "too vague",
            1_100,
        )
        .await
        .expect("fail");
    assert_eq!(
        db.store.finish_job(&lease, 1_200).await.expect("finish"),
        JobStatus::Failed
    );
    let job = db.store.get_job(&job.id).await.expect("get").expect("job");
    assert_eq!(
        job.requirements[0].error_code,
        Some(ErrorCode::InsufficientApiSpecs)
    );
    assert_eq!(job.lease_owner, None);
}

#[tokio::test]
async fn cancel_stops_the_worker_and_cannot_be_repeated() {
    let db = db().await;
    let (job, lease) = claimed_job(&db.store, 2).await;

    let CancelOutcome::Cancelled(cancelled) =
        db.store.cancel_job(&job.id, 1_100).await.expect("cancel")
    else {
        panic!("expected a cancel");
    };
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert_eq!(cancelled.progress().failed, 2);
    assert_eq!(
        db.store.heartbeat(&lease, 1_200, 10_000).await.expect("hb"),
        LeaseState::Cancelled
    );
    assert!(matches!(
        db.store
            .fail_requirement(&lease, 0, ErrorCode::AiServiceError, "x", 1_300)
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        db.store.cancel_job(&job.id, 1_400).await,
        Ok(CancelOutcome::AlreadyCancelled)
    ));
    assert!(matches!(
        db.store.cancel_job("job_nope", 1_400).await,
        Ok(CancelOutcome::NotFound)
    ));
    // A cancelled job is never claimed again.
    assert!(
        db.store
            .claim_next_job("w2", 99_000, 500)
            .await
            .expect("claim")
            .is_none()
    );
}

#[tokio::test]
async fn listings_page_newest_first_without_gaps_or_repeats() {
    let db = db().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        // Two jobs share each timestamp, so the id breaks ties.
        ids.push(new_job(&db.store, 1, 1_000 + (i / 2)).await.id);
    }
    let mut seen = Vec::new();
    let mut page = PageRequest {
        limit: 3,
        after: None,
    };
    loop {
        let got = db.store.list_jobs(None, &page).await.expect("list");
        assert!(got.items.len() <= 3);
        seen.extend(got.items.iter().map(|j| j.id.clone()));
        match got.next_cursor {
            Some(c) => page.after = Some(toolsmith_store::Cursor::decode(&c).expect("cursor")),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.sort_by_key(|id| {
        std::cmp::Reverse((
            1_000 + ids.iter().position(|x| x == id).unwrap_or(0) as i64 / 2,
            id.clone(),
        ))
    });
    assert_eq!(seen, expected);

    let pending = db
        .store
        .list_jobs(Some(JobStatus::Running), &PageRequest::default())
        .await
        .expect("list");
    assert!(pending.items.is_empty());
    let sessions = db
        .store
        .list_sessions(SessionFilter::User("alice".into()), &PageRequest::default())
        .await
        .expect("sessions");
    assert_eq!(sessions.items.len(), 7);
    let none = db
        .store
        .list_sessions(
            SessionFilter::Status(SessionStatus::Completed),
            &PageRequest::default(),
        )
        .await
        .expect("sessions");
    assert!(none.items.is_empty());
}

#[tokio::test]
async fn reopening_keeps_everything_and_detects_edited_migrations() {
    let db = db().await;
    let job = new_job(&db.store, 1, 1_000).await;
    db.store.pool().close().await;

    let reopened = SqliteStore::open(&db.path).await.expect("reopen");
    let again = reopened
        .get_job(&job.id)
        .await
        .expect("get")
        .expect("job still there");
    assert_eq!(again.requirements.len(), 1);
    assert_eq!(again.metadata.client_id.as_deref(), Some("tests"));

    sqlx::query("UPDATE _toolsmith_migrations SET checksum = 'edited' WHERE version = 1")
        .execute(reopened.pool())
        .await
        .expect("tamper");
    reopened.pool().close().await;
    let err = SqliteStore::open(&db.path)
        .await
        .expect_err("edited migration refused");
    assert!(
        matches!(err, StoreError::MigrationEdited { version: 1, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn execution_logs_are_written_once_however_often_a_batch_is_written() {
    let db = db().await;
    let (_job, lease) = claimed_job(&db.store, 2).await;
    let mut tools = Vec::new();
    for (index, name) in [(0, "mean"), (1, "median")] {
        tools.push(
            db.store
                .complete_requirement(
                    &lease,
                    index,
                    ToolOutcome::Generated(Box::new(draft(name))),
                    1_100,
                )
                .await
                .expect("register"),
        );
    }
    let record = |n: i64, tool: &str| toolsmith_store::ExecutionRecord {
        id: new_object_id(),
        tool_id: tool.to_owned(),
        user_id: "alice".into(),
        version: "1.0.0".into(),
        input_params: json!({"n": n}),
        success: n % 2 == 0,
        result: Some(json!(n)),
        error: None,
        error_type: None,
        execution_time_ms: 12,
        triggered_by: Some("test".into()),
        created_at: 2_000 + n,
    };
    let batch: Vec<_> = (0..5)
        .map(|n| record(n, &tools[usize::from(n >= 3)]))
        .collect();
    assert_eq!(db.store.write_executions(&batch).await.expect("write"), 5);
    // The same batch again (a flush that crashed before deleting its spool), plus one new.
    let mut again = batch.clone();
    again.push(record(5, &tools[1]));
    assert_eq!(db.store.write_executions(&again).await.expect("write"), 1);

    let page = PageRequest::default();
    let mean = db
        .store
        .list_executions(&tools[0], &page)
        .await
        .expect("list");
    let median = db
        .store
        .list_executions(&tools[1], &page)
        .await
        .expect("list");
    assert_eq!((mean.items.len(), median.items.len()), (3, 3));
    assert_eq!(
        median.items[0], again[5],
        "read back as written, newest first"
    );
    for (tool, uses) in [(&tools[0], 3), (&tools[1], 3)] {
        let got = db.store.get_tool(tool).await.expect("get").expect("tool");
        assert_eq!(got.usage_count, uses);
    }
}

#[tokio::test]
async fn a_new_generation_is_a_minor_version_unless_its_interface_breaks_callers() {
    let db = db().await;
    let (_job, lease) = claimed_job(&db.store, 5).await;
    let register = |index: u32, draft: ToolDraft| {
        let (store, lease) = (&db.store, &lease);
        async move {
            store
                .complete_requirement(lease, index, ToolOutcome::Generated(Box::new(draft)), 1_100)
                .await
                .expect("register")
        }
    };
    let with_input = |input: serde_json::Value| ToolDraft {
        input_schema: input,
        spec: Some(json!({"toolType": "data_processing"})),
        ..draft("mean")
    };
    let numbers =
        json!({"type": "object", "properties": {"xs": {"type": "array"}}, "required": ["xs"]});
    let id = register(0, with_input(numbers.clone())).await;
    register(1, with_input(numbers.clone())).await;
    let version = |v: &'static str| {
        let (store, id) = (&db.store, id.clone());
        async move {
            store
                .tool_version(&id, v)
                .await
                .expect("get")
                .expect("version")
        }
    };
    assert_eq!(
        version("1.1.0").await.change_reason,
        "new generation of an existing tool"
    );

    // After a rollback to 1.0.0, the next generation is 1.2.0: numbers are never reused.
    db.store
        .rollback_tool(&id, Some("1.0.0"), 1_200)
        .await
        .expect("rollback");
    register(2, with_input(numbers)).await;
    assert_eq!(
        db.store
            .get_tool(&id)
            .await
            .expect("get")
            .expect("tool")
            .current_version,
        "1.2.0"
    );

    // A new required parameter breaks every existing call: 2.0.0.
    let weighted = json!({"type": "object", "properties": {"xs": {"type": "array"}, "weights": {"type": "array"}}, "required": ["xs", "weights"]});
    register(3, with_input(weighted)).await;
    assert_eq!(
        version("2.0.0").await.change_reason,
        "new generation with an incompatible interface (parameter weights is now required, against 1.2.0)"
    );
    // Back on 1.2.0, a generation that fits 1.2.0's callers but not 2.0.0's is still major:
    // its number counts from 2.0.0.
    db.store
        .rollback_tool(&id, Some("1.2.0"), 1_300)
        .await
        .expect("rollback");
    register(
        4,
        ToolDraft {
            spec: Some(json!({"toolType": "api_caller"})),
            ..with_input(
                json!({"type": "object", "properties": {"xs": {"type": "array"}}, "required": ["xs"]}),
            )
        },
    )
    .await;
    assert_eq!(
        version("3.0.0").await.change_reason,
        "new generation with an incompatible interface (parameter weights is removed, against 2.0.0)"
    );
    // The kind from each specification is a tag, once however many versions carry it.
    let tool = db.store.get_tool(&id).await.expect("get").expect("tool");
    assert_eq!(tool.tags, ["data_processing", "api_caller"]);
    // Versions never change: 1.0.0 still holds what it was registered with.
    let first = version("1.0.0").await;
    assert_eq!(first.code, draft("mean").code);
    assert_eq!(first.change_reason, "first generation");
}
