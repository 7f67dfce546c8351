//! The `toolsmith` binary's library: configuration, wiring and the command line.
//!
//! [`Application::build`] wires the store, the HTTP router and the job engine from a
//! [`Config`], binds (port 0 is fine: [`Application::port`] tells the real one) and starts
//! serving; tests use it the same way `main` does.
//!
//! # Layout
//! - `app.rs` — [`Application`]: build, serve, stop.
//! - `cli.rs` — the subcommands and their flags (each with its environment variable).
//! - `client.rs` — `toolsmith tools …` and `toolsmith buffers …`, over a server's API.
//! - `config.rs` — [`Config`], the typed configuration, and [`Secret`].
//! - `demo.rs` — `toolsmith demo`, the offline demo.
//! - `generate.rs` — `toolsmith generate`, one requirement to a running server.
//! - `follow.rs` — submitting a job and following it, for those two.
//! - `telemetry.rs` — tracing set-up (text or JSON).

mod app;
pub mod cli;
pub mod client;
mod config;
pub mod demo;
mod follow;
pub mod generate;
pub mod telemetry;

pub use app::{Application, Workflows};
pub use config::{Config, LlmConfig, SandboxSettings, Secret};
