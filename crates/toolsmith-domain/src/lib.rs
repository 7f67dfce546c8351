//! Pure types and rules of Toolsmith: no I/O, no async.
//!
//! Everything here is shared by the store, the engine and the HTTP layer, and is the one
//! place where a rule (what makes a requirement valid, how a job's final status follows from
//! its requirements, which HTTP status an error code has) is written down.
//!
//! # Layout
//! - `error_class.rs` — the error classes of SPEC §7 and how a failure is classified.
//! - `error_code.rs` — the seed's `ErrorCode`s with their HTTP status and meaning (one table).
//! - `ids.rs` — tool/session ids (ObjectId layout), job ids, request ids.
//! - `job.rs` — job, requirement and session statuses, workflow phases, progress rules.
//! - `requirement.rs` — `ToolRequirement`, request metadata and their validation.
//! - `time.rs` — the API's timestamp format.
//! - `version.rs` — tool version bumps.

pub mod error_class;
pub mod error_code;
pub mod ids;
pub mod job;
pub mod requirement;
pub mod time;
pub mod version;

pub use error_code::ErrorCode;
pub use job::{JobProgress, JobStatus, Phase, RequirementStatus, SessionStatus};
pub use requirement::{FieldError, RequestMetadata, ToolRequirement};
