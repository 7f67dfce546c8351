//! The buffer's strategies, triggers, spool and recovery, with time driven by a manual clock.
//! The sink here is a map keyed by item id, deduplicating as the store's sink does; the store's
//! own batch write is tested against SQLite in toolsmith-store, and the whole path through
//! the API (kill -9 included) in the binary's integration tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use toolsmith_buffer::{Buffer, Item, ManualClock, Sink, Strategy, TickOutcome, Written};

#[derive(Default)]
struct MapSink {
    items: Mutex<BTreeMap<String, Value>>,
    writes: AtomicUsize,
    refuse: AtomicBool,
    attempts: AtomicUsize,
}

#[async_trait::async_trait]
impl Sink for MapSink {
    async fn write(&self, items: &[Item]) -> Result<Written, String> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.refuse.load(Ordering::SeqCst) {
            return Err("the database is down".into());
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut stored = self.items.lock().expect("lock");
        let mut written = Written::default();
        for item in items {
            if item.payload.get("poison").is_some() {
                written.rejected.push((item.id.clone(), "poisoned".into()));
            } else if !stored.contains_key(&item.id) {
                stored.insert(item.id.clone(), item.payload.clone());
                written.new += 1;
            }
        }
        Ok(written)
    }
}

impl MapSink {
    fn len(&self) -> usize {
        self.items.lock().expect("lock").len()
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    sink: Arc<MapSink>,
    clock: Arc<ManualClock>,
}

fn fixture() -> Fixture {
    Fixture {
        dir: tempfile::tempdir().expect("tempdir"),
        sink: Arc::new(MapSink::default()),
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
    }
}

impl Fixture {
    fn open(&self, strategy: Strategy) -> Buffer {
        Buffer::open(
            "executions",
            strategy,
            self.dir.path(),
            self.sink.clone(),
            self.clock.clone(),
        )
        .expect("open")
    }

    fn spool_files(&self, extension: &str) -> Vec<std::path::PathBuf> {
        let dir = self.dir.path().join("executions");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(extension))
            .collect();
        files.sort();
        files
    }
}

fn batched(max_size: usize, seconds: u64) -> Strategy {
    Strategy::Batched {
        max_size,
        flush_interval: Duration::from_secs(seconds),
    }
}

async fn push(buffer: &Buffer, n: usize) {
    push_from(buffer, 0, n).await;
}

async fn push_from(buffer: &Buffer, first: usize, n: usize) {
    for i in first..first + n {
        buffer
            .push(format!("item-{i:04}"), json!({"n": i}))
            .await
            .expect("push");
    }
}

#[tokio::test]
async fn a_batched_buffer_flushes_when_it_reaches_its_size() {
    let f = fixture();
    let buffer = f.open(batched(5, 5));
    push(&buffer, 4).await;
    assert_eq!(f.sink.len(), 0);
    assert_eq!(buffer.status().buffered, 4);
    assert_eq!(f.spool_files("spool").len(), 1, "the items wait on disk");

    push_from(&buffer, 4, 1).await;
    assert_eq!(f.sink.len(), 5, "the fifth item triggers the flush");
    assert_eq!(f.sink.writes.load(Ordering::SeqCst), 1, "in one write");
    assert_eq!(buffer.status().buffered, 0);
    assert!(
        f.spool_files("spool").is_empty(),
        "flushed segments are deleted"
    );

    push_from(&buffer, 5, 1).await;
    let status = buffer.status();
    assert_eq!(status.buffered, 1);
    assert_eq!(status.counters.buffered_total, 6);
    assert_eq!(status.counters.flushed_total, 5);
    assert_eq!(status.counters.flushes, 1);
}

#[tokio::test]
async fn a_batched_buffer_flushes_when_its_oldest_item_has_waited_the_interval() {
    let f = fixture();
    let buffer = f.open(batched(100, 5));
    push(&buffer, 3).await;
    f.clock.advance(Duration::from_millis(4_999));
    assert_eq!(buffer.tick().await, TickOutcome::Idle);
    assert_eq!(f.sink.len(), 0);

    f.clock.advance(Duration::from_millis(1));
    let TickOutcome::Flushed(report) = buffer.tick().await else {
        panic!("the interval trigger should fire at 5 s");
    };
    assert_eq!((report.items, report.written, report.duplicates), (3, 3, 0));
    assert_eq!(buffer.status().last_flush_at, Some(1_700_000_005_000));

    // A later item waits its own interval, counted from when it came.
    f.clock.advance(Duration::from_secs(3));
    push_from(&buffer, 3, 1).await;
    f.clock.advance(Duration::from_secs(4));
    assert_eq!(buffer.tick().await, TickOutcome::Idle);
    f.clock.advance(Duration::from_secs(1));
    assert!(matches!(buffer.tick().await, TickOutcome::Flushed(r) if r.written == 1));
    assert_eq!(f.sink.len(), 4);
}

#[tokio::test]
async fn an_immediate_buffer_writes_through_and_keeps_only_what_the_sink_refused() {
    let f = fixture();
    let buffer = f.open(Strategy::Immediate);
    push(&buffer, 2).await;
    assert_eq!(f.sink.len(), 2, "each push is written at once");
    assert_eq!(f.sink.writes.load(Ordering::SeqCst), 2);
    assert!(f.spool_files("spool").is_empty());

    f.sink.refuse.store(true, Ordering::SeqCst);
    push_from(&buffer, 2, 1).await;
    let status = buffer.status();
    assert_eq!(status.buffered, 1, "the refused item waits in the spool");
    assert_eq!(status.last_error.as_deref(), Some("the database is down"));
    assert_eq!(f.spool_files("spool").len(), 1);

    f.sink.refuse.store(false, Ordering::SeqCst);
    assert!(matches!(buffer.tick().await, TickOutcome::Flushed(r) if r.written == 1));
    assert_eq!(f.sink.len(), 3);
    assert_eq!(buffer.status().buffered, 0);
}

#[tokio::test]
async fn a_manual_buffer_flushes_only_when_asked() {
    let f = fixture();
    let buffer = f.open(Strategy::Manual);
    push(&buffer, 250).await;
    f.clock.advance(Duration::from_secs(3600));
    assert_eq!(buffer.tick().await, TickOutcome::Idle);
    assert_eq!(f.sink.len(), 0);

    let report = buffer.flush().await.expect("flush");
    assert_eq!((report.items, report.written), (250, 250));
    assert_eq!(f.sink.len(), 250);
    assert_eq!(f.sink.writes.load(Ordering::SeqCst), 1);
    assert_eq!(buffer.flush().await.expect("flush").items, 0);
}

#[tokio::test]
async fn clear_drops_buffered_items_without_writing_them() {
    let f = fixture();
    let buffer = f.open(Strategy::Manual);
    push(&buffer, 7).await;
    f.sink.refuse.store(true, Ordering::SeqCst);
    assert!(buffer.flush().await.is_err());
    assert!(buffer.status().last_error.is_some());
    f.sink.refuse.store(false, Ordering::SeqCst);
    assert_eq!(buffer.clear().await, 7);
    assert_eq!(buffer.status().last_error, None, "cleared with the items");
    assert_eq!(buffer.status().buffered, 0);
    assert_eq!(buffer.status().counters.cleared_total, 7);
    assert!(f.spool_files("spool").is_empty());
    buffer.flush().await.expect("flush");
    assert_eq!(f.sink.len(), 0);
    // Clearing does not stop the buffer.
    push_from(&buffer, 7, 1).await;
    assert_eq!(buffer.status().buffered, 1);
}

#[tokio::test]
async fn a_failed_flush_keeps_the_items_and_backs_off() {
    let f = fixture();
    let buffer = f.open(batched(100, 5));
    push(&buffer, 3).await;
    f.sink.refuse.store(true, Ordering::SeqCst);
    f.clock.advance(Duration::from_secs(5));
    assert!(
        matches!(buffer.tick().await, TickOutcome::Failed(e) if e.contains("database is down"))
    );
    let status = buffer.status();
    assert_eq!(status.buffered, 3);
    assert_eq!(status.counters.failed_flushes, 1);

    f.sink.refuse.store(false, Ordering::SeqCst);
    f.clock.advance(Duration::from_millis(999));
    assert_eq!(
        buffer.tick().await,
        TickOutcome::Idle,
        "backing off for 1 s"
    );
    f.clock.advance(Duration::from_millis(1));
    assert!(matches!(buffer.tick().await, TickOutcome::Flushed(r) if r.written == 3));
    assert_eq!(buffer.status().last_error, None);
}

#[tokio::test]
async fn while_the_sink_refuses_pushes_neither_retry_each_time_nor_multiply_files() {
    let f = fixture();
    let buffer = f.open(batched(3, 5));
    f.sink.refuse.store(true, Ordering::SeqCst);
    push(&buffer, 10).await;
    assert_eq!(
        f.sink.attempts.load(Ordering::SeqCst),
        1,
        "after the first failure the size trigger waits for the back-off"
    );
    assert_eq!(
        f.spool_files("spool").len(),
        1,
        "one segment, still appended to"
    );
    assert_eq!(buffer.status().buffered, 10);

    f.sink.refuse.store(false, Ordering::SeqCst);
    f.clock.advance(Duration::from_secs(1));
    assert!(matches!(buffer.tick().await, TickOutcome::Flushed(r) if r.written == 10));
    assert!(f.spool_files("spool").is_empty());
    assert_eq!(buffer.status().last_error, None);
}

#[tokio::test]
async fn a_long_backlog_is_written_in_batches_of_a_thousand() {
    let f = fixture();
    let buffer = f.open(Strategy::Manual);
    push(&buffer, 2_500).await;
    let report = buffer.flush().await.expect("flush");
    assert_eq!((report.items, report.written), (2_500, 2_500));
    assert_eq!(f.sink.writes.load(Ordering::SeqCst), 3);
    assert_eq!(buffer.status().counters.flushes, 3);
}

#[tokio::test]
async fn an_item_the_sink_can_never_take_is_set_aside_and_does_not_block_the_rest() {
    let f = fixture();
    let buffer = f.open(Strategy::Manual);
    push(&buffer, 2).await;
    buffer
        .push("bad".into(), json!({"poison": true}))
        .await
        .expect("push");
    let report = buffer.flush().await.expect("flush");
    assert_eq!((report.items, report.written, report.rejected), (3, 2, 1));
    assert_eq!(buffer.status().buffered, 0);
    assert_eq!(buffer.status().counters.rejected_total, 1);
    let aside =
        std::fs::read_to_string(f.dir.path().join("executions/rejected.jsonl")).expect("set aside");
    let line: Value = serde_json::from_str(aside.trim()).expect("json");
    assert_eq!(line["id"], "bad");
    assert_eq!(line["reason"], "poisoned");
    assert_eq!(line["item"]["payload"], json!({"poison": true}));
}

#[tokio::test]
async fn a_running_buffer_adopts_the_spool_of_a_process_that_died_beside_it() {
    let f = fixture();
    let survivor = f.open(Strategy::Manual);
    let dead = f.open(Strategy::Manual);
    push(&dead, 4).await;
    drop(dead);
    assert_eq!(survivor.status().buffered, 0);
    f.clock.advance(Duration::from_secs(10));
    assert_eq!(
        survivor.tick().await,
        TickOutcome::Idle,
        "manual: adopted, not flushed"
    );
    let status = survivor.status();
    assert_eq!((status.buffered, status.counters.recovered), (4, 4));
    assert_eq!(survivor.flush().await.expect("flush").written, 4);
}

#[tokio::test]
async fn items_of_a_process_that_died_are_adopted_by_the_next_one() {
    let f = fixture();
    let dead = f.open(Strategy::Manual);
    push(&dead, 3).await;
    drop(dead); // what the kernel does to a killed process: descriptors closed, locks gone

    let next = f.open(batched(100, 5));
    let status = next.status();
    assert_eq!(status.buffered, 3);
    assert_eq!(status.counters.recovered, 3);
    assert_eq!(f.sink.len(), 0, "adopted items follow the strategy");
    f.clock.advance(Duration::from_secs(5));
    assert!(matches!(next.tick().await, TickOutcome::Flushed(r) if r.written == 3));
    assert_eq!(f.sink.len(), 3);
}

#[tokio::test]
async fn the_spool_of_a_live_buffer_is_not_taken() {
    let f = fixture();
    let alive = f.open(Strategy::Manual);
    push(&alive, 2).await;
    let other = f.open(Strategy::Manual);
    assert_eq!(other.status().buffered, 0);
    push_from(&other, 2, 1).await;
    assert_eq!(alive.flush().await.expect("flush").written, 2);
    assert_eq!(other.flush().await.expect("flush").written, 1);
    assert_eq!(f.sink.len(), 3);
}

#[tokio::test]
async fn a_flush_interrupted_before_its_spool_was_deleted_writes_nothing_twice() {
    let f = fixture();
    let buffer = f.open(Strategy::Manual);
    push(&buffer, 4).await;
    let segments = f.spool_files("spool");
    let kept: Vec<(std::path::PathBuf, Vec<u8>)> = segments
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).expect("read")))
        .collect();
    buffer.flush().await.expect("flush");
    drop(buffer);
    // The crash: the sink committed, the segment was never deleted.
    for (path, bytes) in &kept {
        std::fs::write(path, bytes).expect("restore");
    }

    let next = f.open(Strategy::Manual);
    assert_eq!(next.status().counters.recovered, 4);
    let report = next.flush().await.expect("flush");
    assert_eq!((report.items, report.written, report.duplicates), (4, 0, 4));
    assert_eq!(f.sink.len(), 4);
    assert!(f.spool_files("spool").is_empty());
}

#[tokio::test]
async fn a_torn_last_line_is_ignored_and_an_unreadable_segment_set_aside() {
    let f = fixture();
    let dir = f.dir.path().join("executions");
    std::fs::create_dir_all(&dir).expect("dir");
    let line = |id: &str| format!("{}\n", json!({"id": id, "at": 1, "payload": {}}));
    std::fs::write(
        dir.join("a-00000001.spool"),
        format!("{}{}{{\"id\":\"c\",\"at", line("a"), line("b")),
    )
    .expect("write");
    std::fs::write(
        dir.join("b-00000001.spool"),
        format!("{}garbage\n{}", line("d"), line("e")),
    )
    .expect("write");

    let buffer = f.open(Strategy::Manual);
    let status = buffer.status();
    assert_eq!(
        status.buffered, 2,
        "a and b; the torn c was never acknowledged"
    );
    assert_eq!(status.corrupt_segments.len(), 1);
    assert!(Path::new(&status.corrupt_segments[0]).exists());
    assert_eq!(buffer.flush().await.expect("flush").written, 2);
    assert_eq!(f.spool_files("corrupt").len(), 1, "kept for an operator");
    drop(buffer);
    let again = f.open(Strategy::Manual);
    assert_eq!(
        again.status().corrupt_segments,
        f.spool_files("corrupt"),
        "still reported after a restart"
    );
}

#[test]
fn strategies_are_named_and_checked() {
    assert_eq!(
        Strategy::from_name("batched", 100, Duration::from_secs(5)),
        Ok(batched(100, 5))
    );
    assert_eq!(
        Strategy::from_name("immediate", 0, Duration::ZERO),
        Ok(Strategy::Immediate)
    );
    assert!(
        Strategy::from_name("batched", 0, Duration::from_secs(5))
            .expect_err("refused")
            .contains("at least 1")
    );
    assert!(
        Strategy::from_name("lazy", 1, Duration::from_secs(1))
            .expect_err("refused")
            .contains("batched, immediate or manual")
    );
}
