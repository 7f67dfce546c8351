//! The only crate that spawns untrusted code (SPEC §5).
//!
//! A run goes like this. The service stages the run's files in a directory of its own, then
//! starts `bwrap` as an unprivileged host uid (one per concurrent slot when the service is
//! root, so process limits hold and runs cannot signal each other). bubblewrap gives the run
//! its own user, pid, mount, ipc, uts and network namespaces (no network at all), a read-only
//! view of `/usr` and of the tool's Python environment (`/env`), size-limited tmpfs for
//! `/work`, `/tmp` and `/dev/shm`, no capabilities, a cleared environment, a new session, and
//! dies with its parent. Inside, the first program is this crate's init ([`init::main`], the
//! `toolsmith` binary re-entered as `sandbox-init`): it copies the staged files into `/work`,
//! sets the rlimits, applies Landlock (read-only everywhere but `/work`, `/tmp`, `/dev/shm`)
//! and a seccomp deny-list, and execs the program; it reports the program's exit status, CPU
//! time and peak memory on a descriptor the program never holds. The parent enforces the wall
//! clock (killing the init, pid 1 of the run's namespace, takes every process of the run with
//! it, orphans included) and caps the output.
//!
//! # Layout
//! - `envs.rs` — per-tool Python environments made with uv ([`envs::EnvManager`]).
//! - `limits.rs` — [`Limits`] and [`LimitHit`].
//! - `result.rs` — [`RunResult`], what a run reports.
//! - `init.rs` — the in-sandbox init: its arguments, rlimits, Landlock, seccomp, exec.
//! - `seccomp.rs` — the deny-list filter.
//! - `run.rs` — [`Sandbox`]: configuration, staging, the bwrap command line, waiting, output.
//! - `verdict.rs` — the harness (`harness/`) and verdicts the tested code cannot forge.
#![expect(
    unsafe_code,
    reason = "wait4, kill and setrlimit are libc calls; this crate is the one place allowed to make them"
)]

pub mod envs;
pub mod init;
mod limits;
mod result;
mod run;
mod seccomp;
pub mod verdict;

pub use limits::{LimitHit, Limits};
pub use result::RunResult;
pub use run::{Isolation, RunSpec, Sandbox, SandboxConfig, SandboxError};
