//! [`Buffer`]: push, flush, clear, status and the triggers of each strategy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::spool::{self, Segment};
use crate::{BufferError, Clock};

/// One buffered item. `id` is what the sink deduplicates on; `at` is when it was pushed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub at: i64,
    pub payload: Value,
}

/// When a buffer hands its items to the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// At `max_size` items, or when the oldest item has waited `flush_interval`.
    Batched {
        max_size: usize,
        flush_interval: Duration,
    },
    /// Every push is written through at once; the spool only keeps what the sink refused.
    Immediate,
    /// Only when an operator (or shutdown, never) asks.
    Manual,
}

impl Strategy {
    pub const DEFAULT_MAX_SIZE: usize = 100;
    pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

    /// `batched`, `immediate` or `manual`; the size and interval apply to `batched`.
    pub fn from_name(
        name: &str,
        max_size: usize,
        flush_interval: Duration,
    ) -> Result<Strategy, String> {
        match name {
            "batched" if max_size == 0 => {
                Err("a batched buffer needs a max size of at least 1".into())
            }
            "batched" if flush_interval.is_zero() => {
                Err("a batched buffer needs a flush interval above zero".into())
            }
            "batched" => Ok(Strategy::Batched {
                max_size,
                flush_interval,
            }),
            "immediate" => Ok(Strategy::Immediate),
            "manual" => Ok(Strategy::Manual),
            other => Err(format!(
                "unknown buffer strategy {other:?}: use batched, immediate or manual"
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Batched { .. } => "batched",
            Strategy::Immediate => "immediate",
            Strategy::Manual => "manual",
        }
    }

    /// How often the background flusher should look at a buffer of this strategy.
    fn tick_period(&self) -> Duration {
        match self {
            Strategy::Batched { flush_interval, .. } => {
                (*flush_interval / 5).clamp(Duration::from_millis(20), Duration::from_secs(1))
            }
            Strategy::Immediate | Strategy::Manual => Duration::from_secs(1),
        }
    }
}

/// Where buffered items end up.
#[async_trait::async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Writes a batch atomically. Items whose id was written before must be skipped, so that
    /// a batch written twice counts once. Returns how many items were new.
    async fn write(&self, items: &[Item]) -> Result<u64, String>;
}

/// What one flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlushReport {
    /// Items handed to the sink.
    pub items: u64,
    /// Of those, written for the first time.
    pub written: u64,
    /// Of those, already in the sink (a flush that crashed before deleting its spool).
    pub duplicates: u64,
}

/// What a tick of the background flusher did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// No trigger fired.
    Idle,
    Flushed(FlushReport),
    /// A trigger fired but the sink refused; retried later with back-off.
    Failed(String),
}

/// Counters since this buffer was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Items pushed.
    pub buffered_total: u64,
    /// Items the sink wrote (first time).
    pub flushed_total: u64,
    /// Items the sink already had.
    pub duplicates_skipped: u64,
    /// Sink writes that succeeded.
    pub flushes: u64,
    /// Sink writes that failed.
    pub failed_flushes: u64,
    /// Items dropped by `clear`.
    pub cleared_total: u64,
    /// Items adopted from the spool of a process that died.
    pub recovered: u64,
    /// Items written straight to the sink because the spool could not take them.
    pub written_directly: u64,
}

/// A buffer's configuration, contents and counters.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BufferStatus {
    pub id: String,
    pub strategy: &'static str,
    pub max_size: Option<usize>,
    pub flush_interval_ms: Option<u64>,
    /// Items waiting for the sink (in this process).
    pub buffered: usize,
    pub oldest_item_at: Option<i64>,
    pub spool_segments: usize,
    pub spool_bytes: u64,
    #[serde(flatten)]
    pub counters: Counters,
    pub last_flush_at: Option<i64>,
    pub last_error: Option<String>,
    /// Spool files that could not be read, set aside (never flushed or deleted).
    pub corrupt_segments: Vec<PathBuf>,
}

struct State {
    /// The segment pushes append to.
    open: Option<Segment>,
    /// Segments waiting for a flush to commit them (sealed by a flush, or adopted).
    sealed: Vec<Segment>,
    next_number: u64,
    counters: Counters,
    last_flush_at: Option<i64>,
    last_error: Option<String>,
    /// After a failed flush, triggers wait until then.
    retry_at: Option<i64>,
    failures_in_a_row: u32,
    corrupt: Vec<PathBuf>,
}

impl State {
    fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.sealed.iter().chain(self.open.as_ref())
    }

    fn buffered(&self) -> usize {
        self.segments().map(|s| s.items.len()).sum()
    }

    fn oldest(&self) -> Option<i64> {
        self.segments()
            .flat_map(|s| s.items.iter().map(|i| i.at))
            .min()
    }

    fn append(&mut self, dir: &Path, instance: &str, item: Item) -> Result<(), BufferError> {
        if self.open.is_none() {
            self.next_number += 1;
            self.open = Some(Segment::create(dir, instance, self.next_number)?);
        }
        let Some(segment) = self.open.as_mut() else {
            unreachable!("a segment was just opened");
        };
        if let Err(err) = segment.append(item) {
            // Never append after a failed write: the next push starts a new segment.
            self.seal();
            return Err(err);
        }
        Ok(())
    }

    fn seal(&mut self) {
        if let Some(open) = self.open.take() {
            if open.items.is_empty() {
                open.remove();
            } else {
                self.sealed.push(open);
            }
        }
    }
}

/// A durable buffer in front of a [`Sink`]. Safe to share; every method takes `&self`.
pub struct Buffer {
    id: String,
    strategy: Strategy,
    dir: PathBuf,
    /// Names this process's segments.
    instance: String,
    clock: Arc<dyn Clock>,
    sink: Arc<dyn Sink>,
    state: Mutex<State>,
    /// One flush (or clear) at a time.
    flushing: tokio::sync::Mutex<()>,
}

impl Buffer {
    /// Opens buffer `id` with its spool under `spool_root/id`, adopting the segments of
    /// processes that died. Adopted items are flushed by the strategy's triggers like any
    /// other (a batched buffer flushes them once they are older than the interval).
    pub fn open(
        id: &str,
        strategy: Strategy,
        spool_root: &Path,
        sink: Arc<dyn Sink>,
        clock: Arc<dyn Clock>,
    ) -> Result<Buffer, BufferError> {
        let dir = spool_root.join(id);
        std::fs::create_dir_all(&dir).map_err(|source| BufferError::Spool {
            path: dir.clone(),
            source,
        })?;
        let mut next_number = 0;
        let adopted = spool::adopt(&dir, &mut next_number)?;
        let recovered: usize = adopted.segments.iter().map(|s| s.items.len()).sum();
        if recovered > 0 {
            tracing::info!(
                buffer = id,
                items = recovered,
                segments = adopted.segments.len(),
                "adopted the spool of a process that stopped without flushing"
            );
        }
        let instance = format!("{:013}-{:08x}", clock.now_ms(), fastrand::u32(..));
        Ok(Buffer {
            id: id.to_owned(),
            strategy,
            dir,
            instance,
            clock,
            sink,
            state: Mutex::new(State {
                open: None,
                sealed: adopted.segments,
                next_number,
                counters: Counters {
                    recovered: recovered as u64,
                    ..Counters::default()
                },
                last_flush_at: None,
                last_error: None,
                retry_at: None,
                failures_in_a_row: 0,
                corrupt: adopted.corrupt,
            }),
            flushing: tokio::sync::Mutex::new(()),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves whole segments behind; the state stays usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes an item. When this returns `Ok` the item is in the spool or already in the sink,
    /// and survives a crash of the process. A size trigger flushes before returning.
    pub async fn push(&self, payload_id: String, payload: Value) -> Result<(), BufferError> {
        let item = Item {
            id: payload_id,
            at: self.clock.now_ms(),
            payload,
        };
        if self.strategy == Strategy::Immediate {
            return self.push_through(item).await;
        }
        let appended = {
            let mut state = self.state();
            let appended = state.append(&self.dir, &self.instance, item.clone());
            if appended.is_ok() {
                state.counters.buffered_total += 1;
            }
            appended.map(|()| match self.strategy {
                Strategy::Batched { max_size, .. } => state.buffered() >= max_size,
                _ => false,
            })
        };
        match appended {
            Ok(true) => {
                // A flush already running will not see this item; the next trigger will.
                if let Ok(guard) = self.flushing.try_lock()
                    && let Err(err) = self.flush_locked(&guard).await
                {
                    tracing::warn!(buffer = %self.id, %err, "size-triggered flush failed; the items stay in the spool");
                }
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(spool_error) => self.write_directly(item, spool_error).await,
        }
    }

    /// `immediate`: write through; spool only what the sink refused.
    async fn push_through(&self, item: Item) -> Result<(), BufferError> {
        self.state().counters.buffered_total += 1;
        match self.sink.write(std::slice::from_ref(&item)).await {
            Ok(written) => {
                let mut state = self.state();
                state.counters.flushes += 1;
                state.counters.flushed_total += written;
                state.counters.duplicates_skipped += 1 - written.min(1);
                state.last_flush_at = Some(self.clock.now_ms());
                Ok(())
            }
            Err(sink_error) => {
                let mut state = self.state();
                state.counters.failed_flushes += 1;
                state.last_error = Some(sink_error.clone());
                state
                    .append(&self.dir, &self.instance, item)
                    .map_err(|spool_error| {
                        BufferError::Sink(format!(
                            "{sink_error}; keeping the item in the spool failed too: {spool_error}"
                        ))
                    })
            }
        }
    }

    /// The spool failed (disk full, say): the item goes straight to the sink, or is refused.
    async fn write_directly(
        &self,
        item: Item,
        spool_error: BufferError,
    ) -> Result<(), BufferError> {
        tracing::warn!(buffer = %self.id, err = %spool_error, "the spool refused an item; writing it straight to the sink");
        let written = self
            .sink
            .write(std::slice::from_ref(&item))
            .await
            .map_err(|sink_error| {
                BufferError::Sink(format!(
                    "{spool_error}; writing it directly failed too: {sink_error}"
                ))
            })?;
        let mut state = self.state();
        state.counters.buffered_total += 1;
        state.counters.written_directly += 1;
        state.counters.flushes += 1;
        state.counters.flushed_total += written;
        state.last_error = Some(spool_error.to_string());
        Ok(())
    }

    /// Hands every buffered item to the sink now, whatever the strategy.
    pub async fn flush(&self) -> Result<FlushReport, BufferError> {
        let guard = self.flushing.lock().await;
        self.flush_locked(&guard).await
    }

    async fn flush_locked(
        &self,
        _one_at_a_time: &tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<FlushReport, BufferError> {
        let (numbers, items) = {
            let mut state = self.state();
            state.seal();
            let numbers: Vec<u64> = state.sealed.iter().map(|s| s.number).collect();
            let items: Vec<Item> = state
                .sealed
                .iter()
                .flat_map(|s| s.items.iter().cloned())
                .collect();
            (numbers, items)
        };
        if items.is_empty() {
            return Ok(FlushReport::default());
        }
        let outcome = self.sink.write(&items).await;
        let now = self.clock.now_ms();
        let mut state = self.state();
        match outcome {
            Ok(written) => {
                let report = FlushReport {
                    items: items.len() as u64,
                    written,
                    duplicates: (items.len() as u64).saturating_sub(written),
                };
                let (done, kept): (Vec<Segment>, Vec<Segment>) = std::mem::take(&mut state.sealed)
                    .into_iter()
                    .partition(|s| numbers.contains(&s.number));
                state.sealed = kept;
                for segment in done {
                    segment.remove();
                }
                state.counters.flushes += 1;
                state.counters.flushed_total += report.written;
                state.counters.duplicates_skipped += report.duplicates;
                state.last_flush_at = Some(now);
                state.last_error = None;
                state.retry_at = None;
                state.failures_in_a_row = 0;
                if report.duplicates > 0 {
                    tracing::info!(buffer = %self.id, duplicates = report.duplicates, "skipped items the sink already had (a flush interrupted before its spool was deleted)");
                }
                Ok(report)
            }
            Err(err) => {
                state.counters.failed_flushes += 1;
                state.failures_in_a_row += 1;
                let backoff_ms = 1000_i64 << state.failures_in_a_row.min(5);
                state.retry_at = Some(now + backoff_ms.min(30_000));
                state.last_error = Some(err.clone());
                Err(BufferError::Sink(err))
            }
        }
    }

    /// Flushes if a trigger of the strategy fired (size, age, or items the immediate sink
    /// refused earlier), unless a failed flush is still backing off.
    pub async fn tick(&self) -> TickOutcome {
        let due = {
            let state = self.state();
            let now = self.clock.now_ms();
            let backing_off = state.retry_at.is_some_and(|at| now < at);
            let fired = match self.strategy {
                Strategy::Batched {
                    max_size,
                    flush_interval,
                } => {
                    let waited_ms = i64::try_from(flush_interval.as_millis()).unwrap_or(i64::MAX);
                    state.buffered() >= max_size
                        || state.oldest().is_some_and(|at| now - at >= waited_ms)
                }
                Strategy::Immediate => state.buffered() > 0,
                Strategy::Manual => false,
            };
            fired && !backing_off
        };
        if !due {
            return TickOutcome::Idle;
        }
        match self.flush().await {
            Ok(report) => TickOutcome::Flushed(report),
            Err(err) => TickOutcome::Failed(err.to_string()),
        }
    }

    /// Drops every buffered item without writing it. Returns how many were dropped.
    pub async fn clear(&self) -> u64 {
        let _one_at_a_time = self.flushing.lock().await;
        let mut state = self.state();
        state.seal();
        let dropped: usize = state.sealed.iter().map(|s| s.items.len()).sum();
        for segment in std::mem::take(&mut state.sealed) {
            segment.remove();
        }
        state.counters.cleared_total += dropped as u64;
        state.retry_at = None;
        state.failures_in_a_row = 0;
        if dropped > 0 {
            tracing::warn!(buffer = %self.id, items = dropped, "buffer cleared: items dropped without being written");
        }
        dropped as u64
    }

    pub fn status(&self) -> BufferStatus {
        let state = self.state();
        let (max_size, flush_interval_ms) = match self.strategy {
            Strategy::Batched {
                max_size,
                flush_interval,
            } => (
                Some(max_size),
                Some(u64::try_from(flush_interval.as_millis()).unwrap_or(u64::MAX)),
            ),
            _ => (None, None),
        };
        BufferStatus {
            id: self.id.clone(),
            strategy: self.strategy.name(),
            max_size,
            flush_interval_ms,
            buffered: state.buffered(),
            oldest_item_at: state.oldest(),
            spool_segments: state.segments().count(),
            spool_bytes: state.segments().map(|s| s.bytes).sum(),
            counters: state.counters,
            last_flush_at: state.last_flush_at,
            last_error: state.last_error.clone(),
            corrupt_segments: state.corrupt.clone(),
        }
    }
}

/// The buffers of a service, by id, and the task that runs their triggers.
pub struct Buffers {
    buffers: BTreeMap<String, Arc<Buffer>>,
}

impl Buffers {
    pub fn new(buffers: impl IntoIterator<Item = Arc<Buffer>>) -> Buffers {
        Buffers {
            buffers: buffers
                .into_iter()
                .map(|b| (b.id().to_owned(), b))
                .collect(),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Buffer>> {
        self.buffers.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Buffer>> {
        self.buffers.values()
    }

    /// Ticks every buffer until `stop` fires, then flushes what the strategies allow
    /// (`manual` buffers keep their items in the spool for the next start).
    pub fn spawn_flusher(self: &Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let buffers = self.clone();
        let period = buffers
            .all()
            .map(|b| b.strategy.tick_period())
            .min()
            .unwrap_or(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = stop.cancelled() => break,
                }
                for buffer in buffers.all() {
                    if let TickOutcome::Failed(err) = buffer.tick().await {
                        tracing::warn!(buffer = %buffer.id, %err, "flush failed; the items stay in the spool and are retried");
                    }
                }
            }
            for buffer in buffers.all() {
                if buffer.strategy == Strategy::Manual {
                    continue;
                }
                match buffer.flush().await {
                    Ok(report) if report.items > 0 => {
                        tracing::info!(buffer = %buffer.id, written = report.written, "flushed at shutdown")
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(buffer = %buffer.id, %err, "could not flush at shutdown; the items stay in the spool for the next start")
                    }
                }
            }
        })
    }
}
