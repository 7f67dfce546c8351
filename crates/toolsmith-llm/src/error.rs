//! LLM errors. Each maps to one of the generation error codes of SPEC §1.

use thiserror::Error;
use toolsmith_domain::ErrorCode;

#[derive(Debug, Clone, Error, PartialEq)]
pub enum LlmError {
    #[error("the LLM endpoint kept answering 429 Too Many Requests ({attempts} attempts)")]
    RateLimited { attempts: u32 },
    #[error("the LLM endpoint did not answer within {timeout_s} s ({attempts} attempts)")]
    Timeout { timeout_s: u64, attempts: u32 },
    #[error("could not reach the LLM endpoint {endpoint}: {message} ({attempts} attempts)")]
    Unreachable {
        endpoint: String,
        message: String,
        attempts: u32,
    },
    #[error("the LLM endpoint answered {status}: {message}")]
    Http { status: u16, message: String },
    #[error("the LLM endpoint sent an unusable response: {0}")]
    InvalidResponse(String),
    #[error("the model refused: {0}")]
    Refusal(String),
    #[error(
        "the circuit breaker for {endpoint} is open after repeated failures; retrying in {retry_in_ms} ms"
    )]
    CircuitOpen { endpoint: String, retry_in_ms: u64 },
    #[error("the job's token budget is exhausted: {used} of {budget} tokens used")]
    BudgetExhausted { used: i64, budget: i64 },
    #[error("the model's {phase} answer is still invalid after a repair request: {errors}")]
    InvalidOutput { phase: String, errors: String },
}

impl LlmError {
    pub fn code(&self) -> ErrorCode {
        match self {
            LlmError::RateLimited { .. } => ErrorCode::AiServiceRateLimited,
            LlmError::Timeout { .. } => ErrorCode::GenerationTimeout,
            _ => ErrorCode::AiServiceError,
        }
    }
}
