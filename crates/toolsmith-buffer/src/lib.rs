//! Durable write buffers (SPEC §6, seed 001).
//!
//! A [`Buffer`] takes items (an execution log, say), keeps them in a spool on disk before
//! [`Buffer::push`] returns, and hands them to a [`Sink`] in batches: at `max_size` items or
//! when the oldest has waited `flush_interval` (`batched`), at once (`immediate`), or only
//! when asked (`manual`). A process killed at any moment loses no item whose push returned:
//! the next buffer opened on the same directory adopts the dead process's spool. An item is
//! written by the sink at most once, because the sink skips ids it already has; a crash
//! between the sink's commit and the spool's deletion therefore only costs a skipped batch.
//!
//! # Layout
//! - `buffer.rs` — [`Buffer`], [`Strategy`], [`Sink`], [`BufferStatus`], [`Buffers`] (the
//!   registry and the background flusher).
//! - `spool.rs` — segment files, their locks and their adoption.
//! - `clock.rs` — [`Clock`], real or manual.

mod buffer;
mod clock;
mod spool;

pub use buffer::{
    Buffer, BufferStatus, Buffers, Counters, FlushReport, Item, Sink, Strategy, TickOutcome,
    Written,
};
pub use clock::{Clock, ManualClock, SystemClock};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("the spool at {path} failed: {source}")]
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("an item could not be encoded: {0}")]
    Encode(serde_json::Error),
    #[error("the sink refused the batch: {0}")]
    Sink(String),
}
