//! `cargo bench -p toolsmith --bench generation`: what the service itself costs per tool.
//!
//! Runs N single-tool jobs one after the other against the mock LLM answering at once, so
//! every millisecond measured is Toolsmith's own (HTTP to the mock, store, static checks, uv,
//! sandboxed pytest and spec cases). Each job is for another user, so nothing is reused; the
//! LLM cache does answer repeated prompts, as it would in production. Prints, per phase, the
//! median and p95 time, and per tool the LLM calls (answered by the endpoint / by the cache)
//! and tokens.
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::collections::BTreeMap;
use std::time::Instant;

use toolsmith_store::{PageRequest, Store};

mod support;
use support::{Service, percentile};

const JOBS: usize = 10;

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

async fn run() {
    let service = Service::start(|_| {}).await;
    let store = service.app.store();

    let mut phases: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut totals = Vec::new();
    let (mut calls, mut cached_calls, mut tokens) = (0i64, 0i64, 0i64);
    for n in 0..=JOBS {
        let started = Instant::now();
        let job = service
            .generate(
                &format!("bench-user-{n}"),
                &format!("Double an integer (variant {n})"),
            )
            .await;
        let job_id = job["jobId"].as_str().expect("job").to_owned();
        let session_id = job["sessionId"].as_str().expect("session").to_owned();
        if n == 0 {
            continue; // warm-up: builds the shared environment once
        }
        totals.push(started.elapsed().as_secs_f64() * 1000.0);
        let logs = store
            .list_logs(
                &session_id,
                &PageRequest {
                    limit: 500,
                    after: None,
                },
            )
            .await
            .expect("logs");
        for record in logs.items {
            let log = record.log;
            if log.step.as_deref() == Some("finished")
                && let Some(ms) = log.execution_time_ms
            {
                phases.entry(log.phase.clone()).or_default().push(ms as f64);
            }
            if matches!(log.step.as_deref(), Some("llm-call" | "llm-cache-hit")) {
                calls += 1;
                if log.step.as_deref() == Some("llm-cache-hit") {
                    cached_calls += 1;
                }
            }
        }
        let usage = store.token_usage(&job_id, None).await.expect("usage");
        tokens += usage.paid() + usage.cached;
    }

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "Generation overhead per tool ({JOBS} single-tool jobs, zero-latency mock LLM, release build, {cores} cores):"
    );
    let order = [
        "specification",
        "planning",
        "searching",
        "implementation",
        "testing",
        "fixing",
        "validation",
        "registration",
    ];
    for phase in order {
        if let Some(samples) = phases.get_mut(phase) {
            samples.sort_by(f64::total_cmp);
            println!(
                "  {phase:<15} median {:>7.1} ms   p95 {:>7.1} ms",
                percentile(samples, 0.5),
                percentile(samples, 0.95)
            );
        }
    }
    totals.sort_by(f64::total_cmp);
    println!(
        "  {:<15} median {:>7.1} ms   p95 {:>7.1} ms",
        "whole job",
        percentile(&totals, 0.5),
        percentile(&totals, 0.95)
    );
    println!(
        "  LLM per tool: {:.1} calls ({:.1} answered by the endpoint, {:.1} from the cache), {:.0} tokens",
        calls as f64 / JOBS as f64,
        (calls - cached_calls) as f64 / JOBS as f64,
        cached_calls as f64 / JOBS as f64,
        tokens as f64 / JOBS as f64
    );
    service.stop().await;
}
