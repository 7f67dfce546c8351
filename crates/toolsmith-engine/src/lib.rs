//! Orchestration: workers that claim jobs from the store, run each requirement through the
//! workflow's phases, and record every step.
//!
//! The engine owns the job's life (lease, heartbeat, cancel, deadline, resumption, the final
//! status); a [`Workflow`] owns what each phase does. A requirement resumes after a crash at
//! the phase after its last recorded one, with the checkpoint that phase left.
//!
//! # Layout
//! - `workflow.rs` — the [`Workflow`] trait and what a phase sees ([`PhaseContext`]).
//! - `worker.rs` — [`Engine`]: the worker pool, one job's run, one requirement's run.
//! - `generation/` — [`GenerationWorkflow`], the SPEC §4 phases, and its prompts.

pub mod generation;
mod worker;
mod workflow;

pub use generation::{GenerationConfig, GenerationWorkflow, RunFailure, run_tool};
pub use worker::{Engine, EngineConfig};
pub use workflow::{PhaseContext, PhaseOutcome, RequirementError, Workflow};
