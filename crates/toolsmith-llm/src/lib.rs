//! The LLM layer (SPEC §3).
//!
//! [`ChatModel`] is one chat completion; [`OpenAiClient`] implements it over HTTP for any
//! OpenAI-compatible endpoint, with retries (exponential backoff, jitter, `Retry-After`), a
//! per-call timeout and a circuit breaker. [`Llm`] is what the workflow talks to: it adds the
//! response cache, token accounting and the per-job budget, generation logs and conversations,
//! and structured output (JSON schema → JSON object → text fallback, tolerant extraction,
//! validation, one repair request). [`mock`] is an OpenAI-compatible server answering from a
//! script, used by the tests and the demo.
//!
//! # Layout
//! - `types.rs` — requests, responses, messages, response formats.
//! - `error.rs` — [`LlmError`] and its mapping to error codes.
//! - `protocol.rs` — the wire format: request bodies, tolerant response parsing.
//! - `retry.rs` — [`RetryPolicy`] and `Retry-After` parsing.
//! - `breaker.rs` — [`CircuitBreaker`].
//! - `client.rs` — [`OpenAiClient`].
//! - `json.rs` — JSON extraction from model text.
//! - `schemas.rs` — the phase schemas of SPEC §4 ([`StructuredPhase`]).
//! - `llm.rs` — [`Llm`].
//! - `mock.rs` — the mock server and its script format.

mod breaker;
mod client;
mod error;
pub mod json;
mod llm;
pub mod mock;
mod protocol;
mod retry;
mod schemas;
mod types;

pub use breaker::{BreakerState, CircuitBreaker};
pub use client::{ClientConfig, OpenAiClient, chat_completions_url};
pub use error::LlmError;
pub use llm::{CallContext, FormatMode, Llm, LlmSettings, StructuredReply, cache_key};
pub use retry::{RetryPolicy, parse_retry_after};
pub use schemas::StructuredPhase;
pub use types::{ChatRequest, ChatResponse, Message, ResponseFormat, Role, Usage};

use async_trait::async_trait;

/// One chat completion against one endpoint.
#[async_trait]
pub trait ChatModel: Send + Sync + 'static {
    /// Where the calls go, for logs.
    fn endpoint(&self) -> &str;
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError>;
}
