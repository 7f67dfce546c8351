//! The durable spool: one directory per buffer, holding segment files of JSON lines.
//!
//! A segment belongs to the process that holds an exclusive `flock` on it. A process appends
//! to its one open segment; a flush seals it (later items go to a new segment) and deletes the
//! sealed segments once the sink has committed their items. A segment whose lock can be taken
//! belongs to no live process: its owner died, and the next buffer opened on the directory
//! adopts it. New segments are created under a `.tmp` name and renamed to `.spool` only once
//! locked, so no one can adopt a segment that is still being born.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{BufferError, Item};

const SEGMENT: &str = "spool";
const UNBORN: &str = "tmp";
/// A segment that could not be read, kept for an operator.
const CORRUPT: &str = "corrupt";
/// A `.tmp` segment older than this was left by a process that died while creating it.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

pub(crate) struct Segment {
    /// Identifies the segment within its buffer.
    pub number: u64,
    pub path: PathBuf,
    /// Held open (and locked) for as long as the segment lives.
    file: File,
    pub items: Vec<Item>,
    pub bytes: u64,
}

impl Segment {
    /// Creates, locks and names a new empty segment `<instance>-<number>.spool` in `dir`.
    pub fn create(dir: &Path, instance: &str, number: u64) -> Result<Segment, BufferError> {
        let name = format!("{instance}-{number:08}");
        let unborn = dir.join(format!("{name}.{UNBORN}"));
        let path = dir.join(format!("{name}.{SEGMENT}"));
        let io = |source| BufferError::Spool {
            path: unborn.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&unborn)
            .map_err(io)?;
        file.lock().map_err(io)?;
        std::fs::rename(&unborn, &path).map_err(io)?;
        Ok(Segment {
            number,
            path,
            file,
            items: Vec::new(),
            bytes: 0,
        })
    }

    /// Appends one item as a line. On failure the segment is cut back to its last whole line.
    pub fn append(&mut self, item: Item) -> Result<(), BufferError> {
        let mut line = serde_json::to_vec(&item).map_err(BufferError::Encode)?;
        line.push(b'\n');
        if let Err(source) = self.file.write_all(&line) {
            let _ = self.file.set_len(self.bytes);
            return Err(BufferError::Spool {
                path: self.path.clone(),
                source,
            });
        }
        self.bytes += line.len() as u64;
        self.items.push(item);
        Ok(())
    }

    /// Deletes the segment (its items are in the sink, or cleared). The lock goes with the
    /// last descriptor. A segment that cannot be deleted is emptied instead, so that nothing
    /// cleared comes back when it is adopted.
    pub fn remove(self) {
        if let Err(err) = std::fs::remove_file(&self.path) {
            let emptied = self.file.set_len(0);
            tracing::warn!(path = %self.path.display(), %err, emptied = emptied.is_ok(), "could not delete a spool segment");
        }
    }
}

/// What was found in a buffer's directory when it was opened.
pub(crate) struct Adopted {
    pub segments: Vec<Segment>,
    /// Segments that could not be read, renamed `*.corrupt` for an operator.
    pub corrupt: Vec<PathBuf>,
}

/// Adopts every segment of `dir` no live process holds (numbered 0: the buffer renumbers
/// them). A file that cannot be opened or read is left for the next look, with a warning.
pub(crate) fn adopt(dir: &Path, buffer: &str) -> Result<Adopted, BufferError> {
    let io = |source| BufferError::Spool {
        path: dir.to_owned(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    let mut adopted = Adopted {
        segments: Vec::new(),
        corrupt: Vec::new(),
    };
    for path in paths {
        let extension = path.extension().and_then(|e| e.to_str());
        if extension == Some(UNBORN) {
            remove_if_abandoned(&path);
            continue;
        }
        if extension == Some(CORRUPT) {
            adopted.corrupt.push(path);
            continue;
        }
        if extension != Some(SEGMENT) {
            continue;
        }
        let mut bytes = Vec::new();
        let read = lock_orphan(&path).and_then(|file| match file {
            Some(mut file) => file
                .read_to_end(&mut bytes)
                .map(|_| Some(file))
                .map_err(|source| BufferError::Spool {
                    path: path.clone(),
                    source,
                }),
            None => Ok(None),
        });
        let file = match read {
            Ok(Some(file)) => file,
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(buffer, %err, "could not adopt a spool segment; trying again later");
                continue;
            }
        };
        match parse(&bytes) {
            Ok((items, torn)) => {
                if torn > 0 {
                    tracing::warn!(path = %path.display(), bytes = torn, "a spool segment ends in a partial line (a write cut off by a crash, never acknowledged); ignoring it");
                }
                if items.is_empty() {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                tracing::info!(buffer, path = %path.display(), items = items.len(), "adopted the spool of a process that stopped without flushing");
                adopted.segments.push(Segment {
                    number: 0,
                    path,
                    file,
                    items,
                    bytes: bytes.len() as u64,
                });
            }
            Err(line) => {
                let aside = path.with_extension(CORRUPT);
                tracing::error!(path = %path.display(), line, aside = %aside.display(), "a spool segment is unreadable; set aside for an operator, not flushed");
                let _ = std::fs::rename(&path, &aside);
                adopted.corrupt.push(aside);
            }
        }
    }
    Ok(adopted)
}

/// Opens and locks `path` if no live process holds it and it is still the file of that name.
fn lock_orphan(path: &Path) -> Result<Option<File>, BufferError> {
    let io = |source| BufferError::Spool {
        path: path.to_owned(),
        source,
    };
    let file = match OpenOptions::new().read(true).append(true).open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io(err)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(err)) => return Err(io(err)),
    }
    // Its owner may have flushed and deleted it between our open and our lock.
    let held = file.metadata().map_err(io)?;
    match std::fs::metadata(path) {
        Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => Ok(Some(file)),
        _ => Ok(None),
    }
}

fn remove_if_abandoned(path: &Path) {
    let old = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > ABANDONED_AFTER);
    if old && matches!(lock_orphan(path), Ok(Some(_))) {
        let _ = std::fs::remove_file(path);
    }
}

/// The items of a segment, and the length of a trailing partial line; `Err(line number)` when
/// a whole line is not an item.
fn parse(bytes: &[u8]) -> Result<(Vec<Item>, usize), usize> {
    let mut items = Vec::new();
    let mut rest = bytes;
    let mut number: usize = 0;
    while let Some(end) = rest.iter().position(|b| *b == b'\n') {
        number += 1;
        let item: Item = serde_json::from_slice(&rest[..end]).map_err(|_| number)?;
        items.push(item);
        rest = &rest[end + 1..];
    }
    Ok((items, rest.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_last_line_is_ignored_and_a_bad_whole_line_is_reported() {
        let good = br#"{"id":"a","at":1,"payload":1}"#;
        let mut bytes = good.to_vec();
        bytes.push(b'\n');
        bytes.extend_from_slice(br#"{"id":"b","at"#);
        let (items, torn) = parse(&bytes).expect("parses");
        assert_eq!(items.len(), 1);
        assert_eq!(torn, br#"{"id":"b","at"#.len());

        let mut bad = good.to_vec();
        bad.extend_from_slice(b"\nnot json\n");
        assert_eq!(parse(&bad).err(), Some(2));
    }
}
