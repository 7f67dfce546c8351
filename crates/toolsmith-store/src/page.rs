//! Cursor pagination: newest first by (timestamp, id), or ascending by a sequence number.
//! Cursors are opaque to clients (hex of `<position>.<id>`).

use crate::StoreError;
use toolsmith_domain::ids::{from_hex, to_hex};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// A position in a listing: the sort key of the last item returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub position: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        to_hex(format!("{}.{}", self.position, self.id).as_bytes())
    }

    pub fn decode(text: &str) -> Result<Cursor, StoreError> {
        let bytes = from_hex(text).ok_or(StoreError::InvalidCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
        let (position, id) = text.split_once('.').ok_or(StoreError::InvalidCursor)?;
        Ok(Cursor {
            position: position.parse().map_err(|_| StoreError::InvalidCursor)?,
            id: id.to_owned(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says there is more.
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> Cursor) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|last| key(last).encode())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            position: 1_700_000_000_123,
            id: "job_0123".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).expect("decode"), c);
        for bad in ["", "zz", "616263", &to_hex(b"x.id")] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }
}
