//! Timestamps: stored as milliseconds since the epoch, shown as ISO-8601 UTC with seconds
//! (`2026-01-15T10:30:00Z`, as seed 002 writes them).

use chrono::{DateTime, TimeZone, Utc};

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn format_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_like_the_seed() {
        // 2024-01-15T10:30:00Z
        assert_eq!(super::format_ms(1_705_314_600_000), "2024-01-15T10:30:00Z");
        assert_eq!(super::format_ms(1_705_314_600_999), "2024-01-15T10:30:00Z");
    }
}
