//! Resource limits of one run, and which one ended it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall clock; past it the whole process tree is killed.
    pub wall: Duration,
    /// CPU seconds (RLIMIT_CPU).
    pub cpu_seconds: u64,
    /// Address space (RLIMIT_AS).
    pub memory_bytes: u64,
    /// Processes and threads of the sandbox's user (RLIMIT_NPROC).
    pub processes: u64,
    /// Largest file the run may write (RLIMIT_FSIZE).
    pub file_size_bytes: u64,
    /// Open file descriptors (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Size of the `/work` tmpfs (`/tmp` and `/dev/shm` get a quarter each).
    pub disk_bytes: u64,
    /// Bytes kept of stdout and of stderr each; the rest is counted and dropped.
    pub output_bytes: usize,
    /// Past this much output on one stream the run is killed.
    pub output_kill_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Limits {
            wall: Duration::from_secs(30),
            cpu_seconds: 30,
            memory_bytes: 1024 * MIB,
            processes: 64,
            file_size_bytes: 64 * MIB,
            open_files: 256,
            disk_bytes: 128 * MIB,
            output_bytes: 1024 * 1024,
            output_kill_bytes: 64 * MIB,
        }
    }
}

/// The limit that ended a run (or cut its output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitHit {
    WallTime,
    CpuTime,
    Memory,
    Processes,
    FileSize,
    Disk,
    OpenFiles,
    Output,
}
