//! Structured output, cache, budget and accounting through `Llm`, over HTTP.

use std::sync::Arc;

use serde_json::{Value, json};
use toolsmith_llm::{
    CallContext, FormatMode, Llm, LlmError, LlmSettings, Message, StructuredPhase,
};
use toolsmith_store::{PageRequest, SqliteStore, Store};

use crate::helpers::{env, env_with};

fn plan(overview: &str) -> Value {
    json!({"overview": overview, "steps": [{"title": "compute", "description": "sum and divide"}],
           "estimatedComplexity": "low", "riskAssessment": [], "fallbackStrategies": []})
}

fn ctx(job: &str, index: u32) -> CallContext {
    CallContext {
        job_id: Some(job.into()),
        session_id: Some(format!("session-of-{job}")),
        requirement_index: Some(index),
        model: None,
    }
}

fn ask(text: &str) -> Vec<Message> {
    vec![
        Message::system("You plan Python tools."),
        Message::user(text),
    ]
}

#[tokio::test]
async fn a_structured_answer_is_requested_with_the_phase_schema_and_validated() {
    let env =
        env(json!({"rules": [{"phase": "plan", "reply": {"json": plan("mean"), "fenced": true}}]}))
            .await;
    let reply = env
        .llm
        .complete_structured(
            &ctx("job_a", 0),
            StructuredPhase::Plan,
            ask("plan a mean tool"),
        )
        .await
        .expect("plan");
    assert_eq!(reply.value["overview"], "mean");
    assert!(!reply.cached);
    let sent = &env.mock.requests()[0];
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["name"], "plan");
    assert_eq!(
        sent["response_format"]["json_schema"]["schema"],
        StructuredPhase::Plan.schema()
    );
}

#[tokio::test]
async fn an_invalid_answer_gets_one_repair_request_quoting_the_error() {
    let env = env(json!({"rules": [
        {"phase": "plan", "times": 1, "reply": {"content": "Sure! {\"overview\": \"x\", \"steps\": [],}"}},
        {"phase": "plan", "contains": "not valid", "reply": {"json": plan("repaired")}}
    ]}))
    .await;
    let reply = env
        .llm
        .complete_structured(&ctx("job_b", 0), StructuredPhase::Plan, ask("plan"))
        .await
        .expect("repaired");
    assert_eq!(reply.value["overview"], "repaired");
    assert_eq!(env.requests(), 2);
    let repair = env.mock.requests()[1]["messages"]
        .as_array()
        .expect("messages")
        .clone();
    let last = repair
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    assert!(last.contains("trailing comma"), "{last}");
    assert_eq!(repair[repair.len() - 2]["role"], "assistant");
}

#[tokio::test]
async fn a_schema_violation_that_survives_the_repair_is_named() {
    let env =
        env(json!({"rules": [{"phase": "plan", "reply": {"json": {"overview": "no steps"}}}]}))
            .await;
    let err = env
        .llm
        .complete_structured(&ctx("job_c", 0), StructuredPhase::Plan, ask("plan"))
        .await
        .expect_err("invalid");
    assert!(
        matches!(&err, LlmError::InvalidOutput { phase, errors } if phase == "plan" && errors.contains("\"steps\" is a required property")),
        "{err:?}"
    );
    assert_eq!(env.requests(), 2, "one answer and one repair");
}

#[tokio::test]
async fn endpoints_without_json_schema_fall_back_to_json_object_then_text_and_stay_there() {
    let env = env(json!({
        "rejects": ["json_schema", "json_object"],
        "rules": [{"phase": "plan", "reply": {"json": plan("text mode")}}]
    }))
    .await;
    let reply = env
        .llm
        .complete_structured(&ctx("job_d", 0), StructuredPhase::Plan, ask("first"))
        .await
        .expect("plan");
    assert_eq!(reply.value["overview"], "text mode");
    let kinds: Vec<Value> = env
        .mock
        .requests()
        .iter()
        .map(|r| r["response_format"]["type"].clone())
        .collect();
    assert_eq!(
        kinds,
        [json!("json_schema"), json!("json_object"), Value::Null]
    );
    assert_eq!(env.llm.format_mode(), FormatMode::Text);

    env.llm
        .complete_structured(&ctx("job_d", 0), StructuredPhase::Plan, ask("second"))
        .await
        .expect("plan");
    assert_eq!(env.requests(), 4, "the working mode is remembered");
    let last = env.mock.requests().pop().expect("request");
    let system = last["messages"][0]["content"].as_str().unwrap_or("");
    assert!(system.starts_with("toolsmith-phase: plan"), "{system}");
    assert!(
        system.contains("\"estimatedComplexity\""),
        "the schema is in the prompt"
    );
}

#[tokio::test]
async fn an_identical_request_is_answered_from_the_cache_even_after_a_restart() {
    let env = env(json!({"rules": [{"phase": "plan", "reply": {"json": plan("cached")}}]})).await;
    let first = env
        .llm
        .complete_structured(&ctx("job_e", 0), StructuredPhase::Plan, ask("same"))
        .await
        .expect("plan");
    let second = env
        .llm
        .complete_structured(&ctx("job_e", 0), StructuredPhase::Plan, ask("same"))
        .await
        .expect("plan");
    assert!(!first.cached && second.cached);
    assert_eq!(first.value, second.value);
    assert_eq!(env.requests(), 1);

    // A new process on the same database: still no HTTP call.
    env.store.pool().close().await;
    let store = Arc::new(
        SqliteStore::open(&env.dir.path().join("t.db"))
            .await
            .expect("reopen"),
    );
    let llm = Llm::new(
        env.client.clone(),
        store.clone(),
        LlmSettings::new("mock-model"),
    );
    let third = llm
        .complete_structured(&ctx("job_f", 0), StructuredPhase::Plan, ask("same"))
        .await
        .expect("plan");
    assert!(third.cached);
    assert_eq!(third.value, first.value);
    assert_eq!(env.requests(), 1);

    // A different question is not.
    llm.complete_structured(&ctx("job_f", 0), StructuredPhase::Plan, ask("different"))
        .await
        .expect("plan");
    assert_eq!(env.requests(), 2);
    let logs = store
        .list_logs("session-of-job_f", &PageRequest::default())
        .await
        .expect("logs");
    let steps: Vec<&str> = logs
        .items
        .iter()
        .filter_map(|l| l.log.step.as_deref())
        .collect();
    assert_eq!(steps, ["llm-cache-hit", "llm-call"]);
}

#[tokio::test]
async fn tokens_add_up_per_requirement_and_job_and_the_budget_stops_spending() {
    let env = env_with(
        json!({"rules": [{"phase": "plan", "reply": {"json": plan("budgeted")}}]}),
        |c| c,
        |mut s| {
            s.job_token_budget = Some(200);
            s
        },
    )
    .await;
    let a = env
        .llm
        .complete_structured(&ctx("job_g", 0), StructuredPhase::Plan, ask("one"))
        .await
        .expect("plan");
    let b = env
        .llm
        .complete_structured(&ctx("job_g", 1), StructuredPhase::Plan, ask("two"))
        .await
        .expect("plan");
    let r0 = env.llm.usage("job_g", Some(0)).await.expect("usage");
    let r1 = env.llm.usage("job_g", Some(1)).await.expect("usage");
    let job = env.llm.usage("job_g", None).await.expect("usage");
    assert_eq!(r0.paid(), a.usage.total());
    assert_eq!(r1.paid(), b.usage.total());
    assert_eq!(job.paid(), r0.paid() + r1.paid());
    assert_eq!(job.prompt, a.usage.prompt_tokens + b.usage.prompt_tokens);
    assert!(job.paid() > 0);

    // Keep asking new questions until the budget is spent: then nothing more is sent.
    let mut n = 0;
    let err = loop {
        n += 1;
        match env
            .llm
            .complete_structured(
                &ctx("job_g", 0),
                StructuredPhase::Plan,
                ask(&format!("q{n}")),
            )
            .await
        {
            Ok(_) => assert!(n < 50, "the budget never ran out"),
            Err(err) => break err,
        }
    };
    let used = env.llm.usage("job_g", None).await.expect("usage").paid();
    assert!(
        matches!(err, LlmError::BudgetExhausted { budget: 200, .. }),
        "{err:?}"
    );
    assert!(used >= 200);
    let sent = env.requests();
    assert!(
        env.llm
            .complete_structured(&ctx("job_g", 0), StructuredPhase::Plan, ask("more"))
            .await
            .is_err()
    );
    assert_eq!(env.requests(), sent, "nothing is sent past the budget");
    // Another job has its own budget.
    assert!(
        env.llm
            .complete_structured(&ctx("job_h", 0), StructuredPhase::Plan, ask("more"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn every_call_is_logged_with_prompt_response_and_tokens_and_kept_as_a_conversation() {
    let env = env(json!({"rules": [{"phase": "plan", "reply": {"json": plan("logged")}}]})).await;
    let reply = env
        .llm
        .complete_structured(&ctx("job_i", 2), StructuredPhase::Plan, ask("log me"))
        .await
        .expect("plan");
    let logs = env
        .store
        .list_logs("session-of-job_i", &PageRequest::default())
        .await
        .expect("logs");
    assert_eq!(logs.items.len(), 1);
    let log = &logs.items[0].log;
    assert_eq!(log.phase, "plan");
    assert_eq!(log.requirement_index, Some(2));
    assert!(log.prompt_sent.as_deref().unwrap_or("").contains("log me"));
    assert!(
        log.response_received
            .as_deref()
            .unwrap_or("")
            .contains("logged")
    );
    assert_eq!(log.model_used.as_deref(), Some("mock-model"));
    assert_eq!(log.tokens_used, Some(reply.usage.total()));
    assert!(log.execution_time_ms.is_some());

    let conversation = env
        .store
        .conversation("job_i", 2)
        .await
        .expect("conversation");
    let roles: Vec<&str> = conversation
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant"]);
}

#[tokio::test]
async fn low_complexity_work_can_use_the_simple_model() {
    let env = env_with(
        json!({"default": {"content": "x"}}),
        |c| c,
        |mut s| {
            s.simple_model = Some("small-model".into());
            s
        },
    )
    .await;
    assert_eq!(env.llm.model_for_complexity("low"), "small-model");
    assert_eq!(env.llm.model_for_complexity("high"), "mock-model");
    let ctx = CallContext {
        model: Some(env.llm.model_for_complexity("low").to_owned()),
        ..CallContext::default()
    };
    env.llm
        .complete_text(&ctx, "chat", vec![Message::user("hi")])
        .await
        .expect("answer");
    assert_eq!(env.mock.requests()[0]["model"], "small-model");
}
