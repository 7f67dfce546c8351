//! Identifiers.
//!
//! Tool and session ids keep MongoDB's ObjectId layout (seed 002): 4 bytes of seconds since the
//! epoch, 5 bytes chosen once per process, 3 bytes of a counter starting at a random value —
//! 24 lowercase hex characters that sort roughly by creation time. Job ids are `job_` + the same.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

const HEX: &[u8; 16] = b"0123456789abcdef";

fn process_unique() -> &'static [u8; 5] {
    static UNIQUE: OnceLock<[u8; 5]> = OnceLock::new();
    UNIQUE.get_or_init(|| {
        let mut bytes = [0u8; 5];
        fastrand::fill(&mut bytes);
        bytes
    })
}

fn counter() -> &'static AtomicU32 {
    static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
    COUNTER.get_or_init(|| AtomicU32::new(fastrand::u32(..0x00ff_ffff)))
}

pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0x0f) as usize] as char);
    }
    out
}

/// Decodes lowercase or uppercase hex; `None` on odd length or a non-hex character.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// A new 24-hex-character id in ObjectId layout, for tools and sessions.
pub fn new_object_id() -> String {
    let secs = u32::try_from(chrono::Utc::now().timestamp()).unwrap_or(u32::MAX);
    let count = counter().fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&secs.to_be_bytes());
    bytes[4..9].copy_from_slice(process_unique());
    bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
    to_hex(&bytes)
}

pub fn is_object_id(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub const JOB_ID_PREFIX: &str = "job_";

pub fn new_job_id() -> String {
    format!("{JOB_ID_PREFIX}{}", new_object_id())
}

pub fn is_job_id(s: &str) -> bool {
    s.strip_prefix(JOB_ID_PREFIX).is_some_and(is_object_id)
}

/// A request id: 32 random hex characters.
pub fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    fastrand::fill(&mut bytes);
    to_hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_have_the_layout_and_are_unique() {
        let a = new_object_id();
        let b = new_object_id();
        assert!(is_object_id(&a), "{a}");
        assert_ne!(a, b);
        // Same process: the 5 "unique" bytes agree; the counter moved on (other tests may
        // take ids in between, so only by a little).
        assert_eq!(a[8..18], b[8..18]);
        let ca = u32::from_str_radix(&a[18..], 16).expect("hex");
        let cb = u32::from_str_radix(&b[18..], 16).expect("hex");
        let step = cb.wrapping_sub(ca) & 0x00ff_ffff;
        assert!((1..1000).contains(&step), "{ca} then {cb}");
        let secs = u32::from_str_radix(&a[..8], 16).expect("hex");
        let now = chrono::Utc::now().timestamp() as u32;
        assert!(now - secs < 5);
    }

    #[test]
    fn job_ids_are_prefixed_object_ids() {
        let id = new_job_id();
        assert!(is_job_id(&id), "{id}");
        assert!(!is_job_id("job_xyz"));
        assert!(!is_job_id(&id[4..]));
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(from_hex(&to_hex(&bytes)).as_deref(), Some(&bytes[..]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }
}
