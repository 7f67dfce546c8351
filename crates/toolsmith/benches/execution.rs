//! `cargo bench -p toolsmith --bench execution`: what running a tool through the API costs,
//! and what the execution-log buffer saves the store.
//!
//! 1. A trivial generated tool (`double_number`) is executed N times, one after the other,
//!    through `POST /tools/{id}/execute` over loopback HTTP. Each answer's `Server-Timing`
//!    gives the time spent running the tool (environment lookup and sandbox run); the rest of
//!    the client-measured latency is the service's own overhead (HTTP, lookups, schema
//!    validation, logging).
//! 2. M execution logs are pushed through the executions buffer into the same SQLite store,
//!    once with `immediate` (every log its own store transaction: the service without a
//!    buffer) and once `batched` (100 items / 5 s, the default), ending with a flush so every
//!    log is in the store. Prints logs persisted per second and store write transactions.
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use toolsmith_api::ExecutionSink;
use toolsmith_buffer::{Buffer, Item, Sink, Strategy, SystemClock, Written};
use toolsmith_store::{ExecutionRecord, Store};

mod support;
use support::{Service, percentile};

const RUNS: usize = 200;
const LOGS: usize = 5_000;

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

/// Counts the store transactions the buffer asks for.
struct CountingSink {
    inner: ExecutionSink,
    transactions: AtomicU64,
}

#[async_trait::async_trait]
impl Sink for CountingSink {
    async fn write(&self, items: &[Item]) -> Result<Written, String> {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.inner.write(items).await
    }
}

fn summary(label: &str, samples: &mut [f64], unit: &str) {
    samples.sort_by(f64::total_cmp);
    println!(
        "  {label:<28} median {:>8.2} {unit}   p99 {:>8.2} {unit}",
        percentile(samples, 0.5),
        percentile(samples, 0.99)
    );
}

async fn run() {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let service = Service::start(|_| {}).await;
    let job = service.generate("bench", "Double an integer").await;
    let tool = job["toolFiles"][0]["toolId"]
        .as_str()
        .expect("tool")
        .to_owned();
    let url = format!("{}/tools/{tool}/execute", service.base);

    let (mut total, mut sandbox, mut overhead) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..RUNS + 5 {
        let started = Instant::now();
        let response = service
            .client
            .post(&url)
            .json(&json!({"input": {"x": n}}))
            .send()
            .await
            .expect("execute");
        let timing = toolsmith_api::sandbox_ms(response.headers()).expect("Server-Timing");
        let body: Value = response.json().await.expect("json");
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(body["result"], 2 * n, "{body}");
        if n < 5 {
            continue; // warm-up
        }
        total.push(elapsed);
        sandbox.push(timing);
        overhead.push(elapsed - timing);
    }
    println!(
        "Execution of a trivial tool through the API ({RUNS} sequential runs, release build, {cores} cores):"
    );
    summary("whole request", &mut total, "ms");
    summary("running the tool (sandbox)", &mut sandbox, "ms");
    summary("service overhead", &mut overhead, "ms");

    let store: Arc<dyn Store> = service.app.store();
    println!("Execution logs into the store ({LOGS} logs, one writer):");
    let strategies = [
        ("without buffer (immediate)", Strategy::Immediate),
        (
            "with buffer (batched 100/5s)",
            Strategy::Batched {
                max_size: Strategy::DEFAULT_MAX_SIZE,
                flush_interval: Strategy::DEFAULT_FLUSH_INTERVAL,
            },
        ),
    ];
    let spool = tempfile::tempdir().expect("tempdir");
    for (round, (label, strategy)) in strategies.into_iter().enumerate() {
        let sink = Arc::new(CountingSink {
            inner: ExecutionSink(store.clone()),
            transactions: AtomicU64::new(0),
        });
        let buffer = Buffer::open(
            &format!("bench-{round}"),
            strategy,
            spool.path(),
            sink.clone(),
            Arc::new(SystemClock),
        )
        .expect("buffer");
        let mut pushes = Vec::with_capacity(LOGS);
        let started = Instant::now();
        for n in 0..LOGS {
            let record = ExecutionRecord {
                id: toolsmith_domain::ids::new_object_id(),
                tool_id: tool.clone(),
                user_id: "bench".into(),
                version: "1.0.0".into(),
                input_params: json!({"x": n}),
                success: true,
                result: Some(json!(2 * n)),
                error: None,
                error_type: None,
                execution_time_ms: 30,
                triggered_by: Some("bench".into()),
                created_at: toolsmith_domain::time::now_ms(),
            };
            let payload = serde_json::to_value(&record).expect("payload");
            let push = Instant::now();
            buffer.push(record.id, payload).await.expect("push");
            pushes.push(push.elapsed().as_secs_f64() * 1_000_000.0);
        }
        buffer.flush().await.expect("final flush");
        let elapsed = started.elapsed();
        let status = buffer.status();
        assert_eq!(status.counters.flushed_total, LOGS as u64);
        let transactions = sink.transactions.load(Ordering::Relaxed);
        let per_second = |n: f64| n / elapsed.max(Duration::from_micros(1)).as_secs_f64();
        println!(
            "  {label:<28} {:>8.0} logs/s persisted, {transactions:>5} store write transactions ({:>6.0}/s), {:.1} ms in all",
            per_second(LOGS as f64),
            per_second(transactions as f64),
            elapsed.as_secs_f64() * 1000.0
        );
        summary("    one push (acknowledge)", &mut pushes, "µs");
    }
    service.stop().await;
}
