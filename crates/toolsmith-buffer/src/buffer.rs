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
    /// a batch written twice counts once. An item the sink can never take (it does not
    /// decode, say) is returned in `rejected` and the rest written; `Err` means the batch
    /// was not written and may be retried.
    async fn write(&self, items: &[Item]) -> Result<Written, String>;
}

/// What a sink did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Items written for the first time.
    pub new: u64,
    /// Items the sink will never take, with why: set aside in the buffer's `rejected.jsonl`.
    pub rejected: Vec<(String, String)>,
}

impl Written {
    pub fn new(new: u64) -> Written {
        Written {
            new,
            rejected: Vec::new(),
        }
    }
}

/// The most items handed to the sink in one write: a long backlog is written in several
/// transactions instead of one that holds the store's write lock for long.
const MAX_BATCH: usize = 1000;
/// How often a running buffer looks for the spool of a process that died beside it.
const ADOPT_EVERY_MS: i64 = 10_000;

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
    /// Of those, refused by the sink for good and set aside.
    pub rejected: u64,
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
    /// Items the sink refused for good, set aside in `rejected.jsonl`.
    pub rejected_total: u64,
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
    /// When the directory was last searched for a dead process's spool.
    adopted_at: i64,
}

impl State {
    fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.sealed.iter().chain(self.open.as_ref())
    }

    fn buffered(&self) -> usize {
        self.segments().map(|s| s.items.len()).sum()
    }

    /// Items are appended in time order, so each segment's first item is its oldest.
    fn oldest(&self) -> Option<i64> {
        self.segments()
            .filter_map(|s| s.items.first().map(|i| i.at))
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

    /// Moves the open segment to the sealed ones; returns its number if it held items.
    fn seal(&mut self) -> Option<u64> {
        let open = self.open.take()?;
        if open.items.is_empty() {
            open.remove();
            return None;
        }
        let number = open.number;
        self.sealed.push(open);
        Some(number)
    }

    /// Counts a sink write of `items` items.
    fn count_written(&mut self, items: usize, written: &Written) -> FlushReport {
        let rejected = written.rejected.len() as u64;
        let report = FlushReport {
            items: items as u64,
            written: written.new,
            duplicates: (items as u64).saturating_sub(written.new + rejected),
            rejected,
        };
        self.counters.flushes += 1;
        self.counters.flushed_total += report.written;
        self.counters.duplicates_skipped += report.duplicates;
        self.counters.rejected_total += rejected;
        report
    }

    fn backing_off(&self, now: i64) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }

    fn take_adopted(&mut self, adopted: spool::Adopted) {
        let items: usize = adopted.segments.iter().map(|s| s.items.len()).sum();
        for mut segment in adopted.segments {
            self.next_number += 1;
            segment.number = self.next_number;
            self.sealed.push(segment);
        }
        self.counters.recovered += items as u64;
        for path in adopted.corrupt {
            if !self.corrupt.contains(&path) {
                self.corrupt.push(path);
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
        let adopted = spool::adopt(&dir, id)?;
        let now = clock.now_ms();
        let instance = format!("{now:013}-{:08x}", fastrand::u32(..));
        let mut state = State {
            open: None,
            sealed: Vec::new(),
            next_number: 0,
            counters: Counters::default(),
            last_flush_at: None,
            last_error: None,
            retry_at: None,
            failures_in_a_row: 0,
            corrupt: Vec::new(),
            adopted_at: now,
        };
        state.take_adopted(adopted);
        Ok(Buffer {
            id: id.to_owned(),
            strategy,
            dir,
            instance,
            clock,
            sink,
            state: Mutex::new(state),
            flushing: tokio::sync::Mutex::new(()),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
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
                Strategy::Batched { max_size, .. } => {
                    state.buffered() >= max_size && !state.backing_off(self.clock.now_ms())
                }
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
        match self.sink.write(std::slice::from_ref(&item)).await {
            Ok(written) => {
                self.set_aside(std::slice::from_ref(&item), &written.rejected);
                let mut state = self.state();
                state.counters.buffered_total += 1;
                state.count_written(1, &written);
                state.last_flush_at = Some(self.clock.now_ms());
                if state.buffered() == 0 {
                    state.last_error = None;
                }
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
                    })?;
                state.counters.buffered_total += 1;
                Ok(())
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
        self.set_aside(std::slice::from_ref(&item), &written.rejected);
        let mut state = self.state();
        state.counters.buffered_total += 1;
        state.counters.written_directly += 1;
        state.count_written(1, &written);
        state.last_error = Some(spool_error.to_string());
        Ok(())
    }

    /// Appends items the sink refused for good to `rejected.jsonl`, with why, for an operator.
    fn set_aside(&self, items: &[Item], rejected: &[(String, String)]) {
        if rejected.is_empty() {
            return;
        }
        let mut lines = Vec::new();
        for (id, why) in rejected {
            let item = items.iter().find(|i| &i.id == id);
            let line = serde_json::json!({"item": item, "id": id, "reason": why});
            lines.extend_from_slice(line.to_string().as_bytes());
            lines.push(b'\n');
        }
        let path = self.dir.join("rejected.jsonl");
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &lines));
        tracing::error!(buffer = %self.id, items = rejected.len(), path = %path.display(), first = %rejected[0].1, "the sink refused items for good; set aside");
        if let Err(err) = appended {
            tracing::error!(buffer = %self.id, %err, "could not set the refused items aside; they are dropped");
        }
    }

    /// Hands every buffered item to the sink now, whatever the strategy.
    pub async fn flush(&self) -> Result<FlushReport, BufferError> {
        let guard = self.flushing.lock().await;
        self.flush_locked(&guard).await
    }

    /// Writes the sealed segments, oldest first, in batches of at most `MAX_BATCH`; a segment
    /// is deleted once all its items are written. On failure what is unwritten stays for the
    /// next try (what was written is skipped as duplicates then), and the segment sealed by
    /// this flush becomes the open one again, so retries do not multiply segment files.
    async fn flush_locked(
        &self,
        _one_at_a_time: &tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<FlushReport, BufferError> {
        let sealed_now = self.state().seal();
        let mut report = FlushReport::default();
        loop {
            let next = {
                let state = self.state();
                state.sealed.first().map(|s| (s.number, s.items.clone()))
            };
            let Some((number, items)) = next else {
                break;
            };
            for batch in items.chunks(MAX_BATCH) {
                match self.sink.write(batch).await {
                    Ok(written) => {
                        self.set_aside(batch, &written.rejected);
                        let mut state = self.state();
                        let counted = state.count_written(batch.len(), &written);
                        report.items += counted.items;
                        report.written += counted.written;
                        report.duplicates += counted.duplicates;
                        report.rejected += counted.rejected;
                    }
                    Err(err) => {
                        let mut state = self.state();
                        state.counters.failed_flushes += 1;
                        state.failures_in_a_row += 1;
                        let backoff_ms = 1000_i64 << (state.failures_in_a_row - 1).min(5);
                        state.retry_at = Some(self.clock.now_ms() + backoff_ms.min(30_000));
                        state.last_error = Some(err.clone());
                        if let Some(number) = sealed_now
                            && state.open.is_none()
                            && let Some(at) = state.sealed.iter().position(|s| s.number == number)
                        {
                            let segment = state.sealed.remove(at);
                            state.open = Some(segment);
                        }
                        return Err(BufferError::Sink(err));
                    }
                }
            }
            let mut state = self.state();
            if let Some(at) = state.sealed.iter().position(|s| s.number == number) {
                state.sealed.remove(at).remove();
            }
        }
        let mut state = self.state();
        if report.items > 0 {
            state.last_flush_at = Some(self.clock.now_ms());
        }
        state.last_error = None;
        state.retry_at = None;
        state.failures_in_a_row = 0;
        if report.duplicates > 0 {
            tracing::info!(buffer = %self.id, duplicates = report.duplicates, "skipped items the sink already had (a flush interrupted before its spool was deleted)");
        }
        Ok(report)
    }

    /// Flushes if a trigger of the strategy fired (size, age, or items the immediate sink
    /// refused earlier), unless a failed flush is still backing off.
    pub async fn tick(&self) -> TickOutcome {
        let adopt_due = self.clock.now_ms() - self.state().adopted_at >= ADOPT_EVERY_MS;
        if adopt_due {
            self.adopt_orphans().await;
        }
        let due = {
            let state = self.state();
            let now = self.clock.now_ms();
            let backing_off = state.backing_off(now);
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

    /// Takes over the spool of a process that died while this one runs (instances sharing a
    /// data directory); its items then follow this buffer's strategy.
    async fn adopt_orphans(&self) {
        let _one_at_a_time = self.flushing.lock().await;
        self.state().adopted_at = self.clock.now_ms();
        match spool::adopt(&self.dir, &self.id) {
            Ok(adopted) => self.state().take_adopted(adopted),
            Err(err) => {
                tracing::warn!(buffer = %self.id, %err, "could not look for a dead process's spool")
            }
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
        state.last_error = None;
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
