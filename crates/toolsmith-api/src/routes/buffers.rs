//! Operator endpoints of the write buffers (SPEC §6): status, flush, clear.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use toolsmith_buffer::{Buffer, BufferStatus};
use toolsmith_domain::time::format_ms;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorResponse};

/// A buffer: its strategy, what waits in it, and what it has done since the service started.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BufferBody {
    #[schema(example = "executions")]
    pub id: String,
    /// `batched`, `immediate` or `manual`.
    pub strategy: String,
    /// `batched`: flush at this many items.
    pub max_size: Option<usize>,
    /// `batched`: flush when the oldest item has waited this long.
    pub flush_interval_ms: Option<u64>,
    /// Items waiting in this instance's spool.
    pub buffered: usize,
    pub oldest_item_at: Option<String>,
    pub spool_segments: usize,
    pub spool_bytes: u64,
    /// Items taken since start.
    pub buffered_total: u64,
    /// Items written to the store since start.
    pub flushed_total: u64,
    /// Items the store already had (a flush interrupted before its spool was deleted).
    pub duplicates_skipped: u64,
    pub flushes: u64,
    pub failed_flushes: u64,
    /// Items dropped by `clear`.
    pub cleared_total: u64,
    /// Items adopted at start from the spool of a process that stopped without flushing.
    pub recovered: u64,
    /// Items written straight to the store because the spool could not take them.
    pub written_directly: u64,
    /// Items the store can never take (unreadable), set aside in the spool's `rejected.jsonl`.
    pub rejected_total: u64,
    pub last_flush_at: Option<String>,
    pub last_error: Option<String>,
    /// Spool files that could not be read, set aside for an operator.
    pub corrupt_segments: Vec<String>,
}

impl From<BufferStatus> for BufferBody {
    fn from(s: BufferStatus) -> Self {
        BufferBody {
            id: s.id,
            strategy: s.strategy.to_owned(),
            max_size: s.max_size,
            flush_interval_ms: s.flush_interval_ms,
            buffered: s.buffered,
            oldest_item_at: s.oldest_item_at.map(format_ms),
            spool_segments: s.spool_segments,
            spool_bytes: s.spool_bytes,
            buffered_total: s.counters.buffered_total,
            flushed_total: s.counters.flushed_total,
            duplicates_skipped: s.counters.duplicates_skipped,
            flushes: s.counters.flushes,
            failed_flushes: s.counters.failed_flushes,
            cleared_total: s.counters.cleared_total,
            recovered: s.counters.recovered,
            written_directly: s.counters.written_directly,
            rejected_total: s.counters.rejected_total,
            last_flush_at: s.last_flush_at.map(format_ms),
            last_error: s.last_error,
            corrupt_segments: s
                .corrupt_segments
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BufferList {
    pub items: Vec<BufferBody>,
}

/// What `flush` did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlushBody {
    /// Items handed to the store.
    pub items: u64,
    /// Of those, written for the first time.
    pub written: u64,
    /// Of those, already in the store.
    pub duplicates: u64,
    /// Of those, unreadable and set aside.
    pub rejected: u64,
    pub buffer: BufferBody,
}

/// What `clear` did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClearBody {
    /// Items dropped without being written.
    pub cleared: u64,
    pub buffer: BufferBody,
}

fn find<'a>(state: &'a AppState, id: &str) -> Result<&'a Buffer, ApiError> {
    state
        .buffers
        .get(id)
        .map(|b| b.as_ref())
        .ok_or_else(|| ApiError::not_found("buffer", id))
}

/// Every buffer of this instance.
#[utoipa::path(get, path = "/api/v1/buffers", tag = "buffers",
    responses((status = 200, body = BufferList)))]
pub async fn list_buffers(State(state): State<AppState>) -> Json<BufferList> {
    Json(BufferList {
        items: state.buffers.all().map(|b| b.status().into()).collect(),
    })
}

/// A buffer's status and counters.
#[utoipa::path(get, path = "/api/v1/buffers/{id}", tag = "buffers", params(("id" = String, Path)),
    responses((status = 200, body = BufferBody), (status = 404, body = ErrorResponse)))]
pub async fn buffer_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BufferBody>, ApiError> {
    Ok(Json(find(&state, &id)?.status().into()))
}

/// Writes everything the buffer holds to the store now, whatever its strategy.
#[utoipa::path(post, path = "/api/v1/buffers/{id}/flush", tag = "buffers", params(("id" = String, Path)),
    responses((status = 200, body = FlushBody), (status = 404, body = ErrorResponse),
        (status = 503, description = "The store refused the batch; the items stay in the spool", body = ErrorResponse)))]
pub async fn flush(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<FlushBody>, ApiError> {
    let buffer = find(&state, &id)?;
    let report = buffer.flush().await.map_err(|err| {
        ApiError::unavailable(format!(
            "buffer {id:?} could not be flushed; its items stay in the spool: {err}"
        ))
    })?;
    Ok(Json(FlushBody {
        items: report.items,
        written: report.written,
        duplicates: report.duplicates,
        rejected: report.rejected,
        buffer: buffer.status().into(),
    }))
}

/// Drops everything the buffer holds without writing it (the items are lost).
#[utoipa::path(post, path = "/api/v1/buffers/{id}/clear", tag = "buffers", params(("id" = String, Path)),
    responses((status = 200, body = ClearBody), (status = 404, body = ErrorResponse)))]
pub async fn clear(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ClearBody>, ApiError> {
    let buffer = find(&state, &id)?;
    let cleared = buffer.clear().await;
    Ok(Json(ClearBody {
        cleared,
        buffer: buffer.status().into(),
    }))
}
