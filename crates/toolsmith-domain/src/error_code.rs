//! The error codes of seed 002, with the HTTP status each one answers with.

use serde::{Deserialize, Serialize};

/// Every error the service reports, over HTTP or in a job's `failures`.
///
/// | code | status | meaning |
/// |---|---|---|
/// | `INVALID_REQUEST` | 400 | malformed request: JSON, content type, query, unknown route (404), body too large (413) |
/// | `INVALID_TOOL_REQUIREMENT` | 422 | a tool requirement failed validation |
/// | `INSUFFICIENT_API_SPECS` | 422 | the requirement is too vague to specify |
/// | `GENERATION_TIMEOUT` | 504 | the job's deadline passed before the requirement finished |
/// | `AI_SERVICE_ERROR` | 502 | the LLM endpoint failed or answered unusably |
/// | `AI_SERVICE_RATE_LIMITED` | 429 | the LLM endpoint kept answering 429 after retries |
/// | `JOB_NOT_FOUND` | 404 | no job has this id |
/// | `JOB_CANCELLED` | 409 | the job was cancelled |
/// | `JOB_ALREADY_COMPLETED` | 409 | the job has already finished |
/// | `RATE_LIMIT_EXCEEDED` | 429 | the caller sent too many requests |
/// | `SERVICE_UNAVAILABLE` | 503 | a dependency (store, LLM) is missing or down |
/// | `INTERNAL_ERROR` | 500 | unexpected; details are logged, never returned |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidToolRequirement,
    InsufficientApiSpecs,
    GenerationTimeout,
    AiServiceError,
    AiServiceRateLimited,
    JobNotFound,
    JobCancelled,
    JobAlreadyCompleted,
    RateLimitExceeded,
    ServiceUnavailable,
    InternalError,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidToolRequirement,
        ErrorCode::InsufficientApiSpecs,
        ErrorCode::GenerationTimeout,
        ErrorCode::AiServiceError,
        ErrorCode::AiServiceRateLimited,
        ErrorCode::JobNotFound,
        ErrorCode::JobCancelled,
        ErrorCode::JobAlreadyCompleted,
        ErrorCode::RateLimitExceeded,
        ErrorCode::ServiceUnavailable,
        ErrorCode::InternalError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::InvalidToolRequirement => "INVALID_TOOL_REQUIREMENT",
            ErrorCode::InsufficientApiSpecs => "INSUFFICIENT_API_SPECS",
            ErrorCode::GenerationTimeout => "GENERATION_TIMEOUT",
            ErrorCode::AiServiceError => "AI_SERVICE_ERROR",
            ErrorCode::AiServiceRateLimited => "AI_SERVICE_RATE_LIMITED",
            ErrorCode::JobNotFound => "JOB_NOT_FOUND",
            ErrorCode::JobCancelled => "JOB_CANCELLED",
            ErrorCode::JobAlreadyCompleted => "JOB_ALREADY_COMPLETED",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The HTTP status a request answered directly with this code gets.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::InvalidToolRequirement | ErrorCode::InsufficientApiSpecs => 422,
            ErrorCode::GenerationTimeout => 504,
            ErrorCode::AiServiceError => 502,
            ErrorCode::AiServiceRateLimited | ErrorCode::RateLimitExceeded => 429,
            ErrorCode::JobNotFound => 404,
            ErrorCode::JobCancelled | ErrorCode::JobAlreadyCompleted => 409,
            ErrorCode::ServiceUnavailable => 503,
            ErrorCode::InternalError => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name_and_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).expect("serialize");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(ErrorCode::parse("NOPE"), None);
    }

    #[test]
    fn statuses_follow_the_spec_table() {
        assert_eq!(ErrorCode::InvalidRequest.http_status(), 400);
        assert_eq!(ErrorCode::InvalidToolRequirement.http_status(), 422);
        assert_eq!(ErrorCode::JobNotFound.http_status(), 404);
        assert_eq!(ErrorCode::JobCancelled.http_status(), 409);
        assert_eq!(ErrorCode::JobAlreadyCompleted.http_status(), 409);
        assert_eq!(ErrorCode::RateLimitExceeded.http_status(), 429);
        assert_eq!(ErrorCode::ServiceUnavailable.http_status(), 503);
        assert_eq!(ErrorCode::InternalError.http_status(), 500);
    }
}
