//! `cargo bench -p toolsmith-llm --bench llm`: the LLM layer's own cost per call, against
//! the mock server on loopback (so the figures include one local HTTP round trip and the
//! mock's answer, and no model time).
//!
//! Prints median and p99 over 1,000 calls for: the HTTP client alone; the full structured
//! path on a cache miss (cache lookup, HTTP, JSON extraction, schema validation, cache write,
//! token accounting, generation log, conversation); and the same call answered from the cache.
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use toolsmith_llm::mock::{MockScript, MockServer};
use toolsmith_llm::{
    CallContext, ChatModel, ChatRequest, ClientConfig, Llm, LlmSettings, Message, OpenAiClient,
    ResponseFormat, StructuredPhase,
};
use toolsmith_store::SqliteStore;

const CALLS: usize = 1000;
const WARMUP: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:<44} median {:>8.1} µs   p99 {:>8.1} µs   ({} calls)",
        micros(percentile(&samples, 0.5)),
        micros(percentile(&samples, 0.99)),
        samples.len()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let plan = json!({"overview": "Sum and divide.", "steps": [{"title": "compute", "description": "sum / len"}],
                      "estimatedComplexity": "low", "riskAssessment": [], "fallbackStrategies": []});
    let script =
        MockScript::from_json(&json!({"default": {"json": plan}}).to_string()).expect("script");
    let mock = MockServer::spawn(script).await.expect("mock");
    let client = Arc::new(OpenAiClient::new(ClientConfig::new(mock.base_url())).expect("client"));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("bench.db"))
            .await
            .expect("store"),
    );
    let llm = Llm::new(client.clone(), store, LlmSettings::new("mock-model"));
    let ctx = CallContext {
        job_id: Some("job_bench".into()),
        session_id: Some("session_bench".into()),
        requirement_index: Some(0),
        model: None,
    };
    let ask = |i: usize| {
        vec![
            Message::system("You plan Python tools."),
            Message::user(format!("plan tool number {i}")),
        ]
    };

    let mut client_only = Vec::with_capacity(CALLS);
    for i in 0..WARMUP + CALLS {
        let request = ChatRequest {
            model: "mock-model".into(),
            messages: ask(i),
            temperature: Some(0.2),
            max_tokens: None,
            response_format: ResponseFormat::Text,
        };
        let started = Instant::now();
        client.complete(&request).await.expect("answer");
        if i >= WARMUP {
            client_only.push(started.elapsed());
        }
    }

    let mut misses = Vec::with_capacity(CALLS);
    for i in 0..WARMUP + CALLS {
        let started = Instant::now();
        let reply = llm
            .complete_structured(&ctx, StructuredPhase::Plan, ask(100_000 + i))
            .await
            .expect("plan");
        assert!(!reply.cached);
        if i >= WARMUP {
            misses.push(started.elapsed());
        }
    }

    let before = mock.stats().requests;
    let mut hits = Vec::with_capacity(CALLS);
    for i in 0..WARMUP + CALLS {
        let started = Instant::now();
        let reply = llm
            .complete_structured(&ctx, StructuredPhase::Plan, ask(100_000))
            .await
            .expect("plan");
        assert!(reply.cached);
        if i >= WARMUP {
            hits.push(started.elapsed());
        }
    }
    assert_eq!(
        mock.stats().requests,
        before,
        "cache hits make no HTTP call"
    );

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!("LLM layer against the mock server on loopback (release build, {cores} cores):");
    report("HTTP client only (round trip to the mock)", client_only);
    report("structured call, cache miss (full path)", misses);
    report("structured call, cache hit (no HTTP)", hits);
}
