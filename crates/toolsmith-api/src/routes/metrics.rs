//! `GET /metrics`: the buffers' counters in the Prometheus text format, for scrapers.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use toolsmith_buffer::BufferStatus;

use crate::AppState;

/// The buffers' gauges and counters (Prometheus text format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "buffers",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    type Read = fn(&BufferStatus) -> u64;
    const FAMILIES: &[(&str, &str, &str, Read)] = &[
        (
            "toolsmith_buffer_buffered",
            "gauge",
            "Items waiting in the buffer's spool.",
            |s| s.buffered as u64,
        ),
        (
            "toolsmith_buffer_spool_bytes",
            "gauge",
            "Bytes of the buffer's spool files.",
            |s| s.spool_bytes,
        ),
        (
            "toolsmith_buffer_items_total",
            "counter",
            "Items taken since start.",
            |s| s.counters.buffered_total,
        ),
        (
            "toolsmith_buffer_flushed_total",
            "counter",
            "Items written to the store since start.",
            |s| s.counters.flushed_total,
        ),
        (
            "toolsmith_buffer_duplicates_total",
            "counter",
            "Items the store already had.",
            |s| s.counters.duplicates_skipped,
        ),
        (
            "toolsmith_buffer_flushes_total",
            "counter",
            "Store write transactions of the buffer.",
            |s| s.counters.flushes,
        ),
        (
            "toolsmith_buffer_failed_flushes_total",
            "counter",
            "Store writes that failed.",
            |s| s.counters.failed_flushes,
        ),
        (
            "toolsmith_buffer_cleared_total",
            "counter",
            "Items dropped by clear.",
            |s| s.counters.cleared_total,
        ),
        (
            "toolsmith_buffer_recovered_total",
            "counter",
            "Items adopted from a dead process's spool.",
            |s| s.counters.recovered,
        ),
        (
            "toolsmith_buffer_rejected_total",
            "counter",
            "Items the store can never take, set aside.",
            |s| s.counters.rejected_total,
        ),
        (
            "toolsmith_buffer_written_directly_total",
            "counter",
            "Items written straight to the store because the spool could not take them.",
            |s| s.counters.written_directly,
        ),
    ];
    let statuses: Vec<BufferStatus> = state.buffers.all().map(|b| b.status()).collect();
    let mut out = String::new();
    for (name, kind, help, read) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for status in &statuses {
            let _ = writeln!(out, "{name}{{buffer=\"{}\"}} {}", status.id, read(status));
        }
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
}
