//! [`OpenAiClient`]: the OpenAI Chat Completions protocol over HTTP, for any compatible endpoint.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use crate::breaker::CircuitBreaker;
use crate::protocol::{error_message, parse_response, request_body};
use crate::retry::{RetryPolicy, parse_retry_after};
use crate::types::{ChatRequest, ChatResponse};
use crate::{ChatModel, LlmError};

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// With or without `/v1`: `http://localhost:11434`, `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Extra headers sent with every call (gateways, organisation ids).
    pub headers: Vec<(String, String)>,
    /// Per attempt.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            api_key: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// `…/v1/chat/completions` from a base URL given with or without its version segment.
pub fn chat_completions_url(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let last = base.rsplit('/').next().unwrap_or("");
    // `v1`, `v2`, `v1beta`: a `v` and a digit.
    let versioned = last.starts_with('v') && last[1..].starts_with(|c: char| c.is_ascii_digit());
    if base.ends_with("/chat/completions") {
        base.to_owned()
    } else if versioned {
        format!("{base}/chat/completions")
    } else {
        format!("{base}/v1/chat/completions")
    }
}

pub struct OpenAiClient {
    http: reqwest::Client,
    url: String,
    config: ClientConfig,
    breaker: CircuitBreaker,
}

/// How one HTTP attempt failed.
enum AttemptError {
    /// The endpoint answered with a status; retryable when 429 or 5xx.
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    Timeout,
    Connect(String),
    /// A 2xx whose body is not a usable completion.
    Body(LlmError),
}

impl AttemptError {
    fn retryable(&self) -> bool {
        match self {
            AttemptError::Status { status, .. } => *status == 429 || *status >= 500,
            AttemptError::Timeout | AttemptError::Connect(_) => true,
            // A truncated or garbled body is most often a proxy's hiccup; a refusal is final.
            AttemptError::Body(err) => matches!(err, LlmError::InvalidResponse(_)),
        }
    }

    /// Whether the endpoint itself is failing (for the breaker), as opposed to refusing us.
    fn endpoint_failure(&self) -> bool {
        match self {
            AttemptError::Status { status, .. } => *status >= 500,
            AttemptError::Timeout | AttemptError::Connect(_) => true,
            AttemptError::Body(err) => matches!(err, LlmError::InvalidResponse(_)),
        }
    }
}

impl OpenAiClient {
    pub fn new(config: ClientConfig) -> Result<Self, LlmError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &config.api_key {
            let value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                LlmError::InvalidResponse("the API key is not a valid header value".into())
            })?;
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| LlmError::InvalidResponse(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                LlmError::InvalidResponse(format!("invalid value for header {name}"))
            })?;
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10).min(config.timeout))
            .timeout(config.timeout)
            .build()
            .map_err(|err| {
                LlmError::InvalidResponse(format!("could not build the HTTP client: {err}"))
            })?;
        Ok(OpenAiClient {
            http,
            url: chat_completions_url(&config.base_url),
            breaker: CircuitBreaker::new(config.breaker_threshold, config.breaker_cooldown),
            config,
        })
    }

    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    async fn attempt(&self, request: &ChatRequest) -> Result<ChatResponse, AttemptError> {
        let response = self
            .http
            .post(&self.url)
            .json(&request_body(request))
            .send()
            .await
            .map_err(|err| {
                if err.is_timeout() {
                    AttemptError::Timeout
                } else {
                    AttemptError::Connect(root_cause(&err))
                }
            })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = response.text().await.map_err(|err| {
            if err.is_timeout() {
                AttemptError::Timeout
            } else {
                AttemptError::Body(LlmError::InvalidResponse(format!(
                    "the body could not be read: {}",
                    root_cause(&err)
                )))
            }
        })?;
        if !(200..300).contains(&status) {
            let mut message = error_message(&body);
            if status == 404 {
                message = format!(
                    "{message} (is the model {:?} served at {}?)",
                    request.model, self.url
                );
            }
            return Err(AttemptError::Status {
                status,
                message,
                retry_after,
            });
        }
        parse_response(&body, request).map_err(AttemptError::Body)
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[async_trait]
impl ChatModel for OpenAiClient {
    fn endpoint(&self) -> &str {
        &self.url
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let policy = self.config.retry;
        let mut attempts = 0;
        loop {
            if let Err(wait) = self.breaker.acquire() {
                return Err(LlmError::CircuitOpen {
                    endpoint: self.url.clone(),
                    retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                });
            }
            attempts += 1;
            let failure = match self.attempt(request).await {
                Ok(response) => {
                    self.breaker.on_success();
                    return Ok(response);
                }
                Err(failure) => failure,
            };
            if failure.endpoint_failure() {
                self.breaker.on_failure();
            } else {
                self.breaker.on_success();
            }
            let retry_after = match &failure {
                AttemptError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            if !failure.retryable() || attempts > policy.max_retries {
                return Err(self.final_error(failure, attempts));
            }
            let wait = policy.delay(attempts - 1, retry_after);
            tracing::warn!(endpoint = %self.url, attempt = attempts, wait_ms = wait.as_millis() as u64,
                error = %self.final_error_text(&failure), "LLM call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

impl OpenAiClient {
    fn final_error(&self, failure: AttemptError, attempts: u32) -> LlmError {
        match failure {
            AttemptError::Status { status: 429, .. } => LlmError::RateLimited { attempts },
            AttemptError::Status {
                status, message, ..
            } => LlmError::Http { status, message },
            AttemptError::Timeout => LlmError::Timeout {
                timeout_s: self.config.timeout.as_secs(),
                attempts,
            },
            AttemptError::Connect(message) => LlmError::Unreachable {
                endpoint: self.url.clone(),
                message,
                attempts,
            },
            AttemptError::Body(err) => err,
        }
    }

    fn final_error_text(&self, failure: &AttemptError) -> String {
        match failure {
            AttemptError::Status {
                status, message, ..
            } => format!("{status}: {message}"),
            AttemptError::Timeout => "timeout".to_owned(),
            AttemptError::Connect(message) => message.clone(),
            AttemptError::Body(err) => err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::chat_completions_url;

    #[test]
    fn base_urls_with_or_without_a_version() {
        for (base, url) in [
            (
                "http://localhost:11434",
                "http://localhost:11434/v1/chat/completions",
            ),
            (
                "http://localhost:11434/",
                "http://localhost:11434/v1/chat/completions",
            ),
            (
                "https://api.openai.com/v1",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "https://openrouter.ai/api/v1/",
                "https://openrouter.ai/api/v1/chat/completions",
            ),
            (
                "https://gw.example/v2",
                "https://gw.example/v2/chat/completions",
            ),
            (
                "http://h/v1/chat/completions",
                "http://h/v1/chat/completions",
            ),
            ("http://h/vllm", "http://h/vllm/v1/chat/completions"),
        ] {
            assert_eq!(chat_completions_url(base), url, "{base}");
        }
    }
}
