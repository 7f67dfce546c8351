//! An OpenAI-compatible server that answers from a script: for tests, the offline demo, and
//! users who want to try an integration without spending tokens.
//!
//! A script is a JSON file:
//!
//! ```json
//! {
//!   "model": "mock-model",
//!   "rules": [
//!     {"phase": "specification", "contains": ["molecular weight"],
//!      "reply": {"json": {"title": "..."}}, "delayMs": 50},
//!     {"phase": "implementation", "failTimes": 2,
//!      "error": {"status": 429, "retryAfter": "1", "message": "slow down"},
//!      "reply": {"content": "```json\n{...}\n```"}},
//!     {"contains": ["hello"], "times": 1, "reply": {"content": "first answer only"}}
//!   ],
//!   "default": {"content": "I have no scripted answer for that."}
//! }
//! ```
//!
//! The first rule whose `phase` (the request's `response_format.json_schema.name`, or the
//! `toolsmith-phase:` marker Toolsmith puts in its prompt when the endpoint cannot take a
//! schema) and all of whose `contains` strings (searched in the messages) match, answers.
//! A rule with `times` stops matching after that many requests. With `failTimes`, its first
//! matches answer `error` (default 500); without `failTimes`, a rule with an `error` always
//! fails. See [`MockScript`] for every field.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::llm::PHASE_MARKER;
use crate::protocol::estimate_tokens;

/// A mock script. Unknown fields are errors, so a typo does not silently change behaviour.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MockScript {
    /// The model named in answers (default `mock-model`).
    #[serde(default)]
    pub model: Option<String>,
    /// When set, requests for other models get 404 "model not found".
    #[serde(default)]
    pub models: Vec<String>,
    /// When set, requests without `Authorization: Bearer <apiKey>` get 401.
    #[serde(default)]
    pub api_key: Option<String>,
    /// `response_format` types answered with 400, like an endpoint that does not support
    /// them: `json_schema`, `json_object`.
    #[serde(default)]
    pub rejects: Vec<String>,
    #[serde(default)]
    pub rules: Vec<MockRule>,
    /// The answer when no rule matches; without one, such requests get a 500 saying so.
    #[serde(default)]
    pub default: Option<MockReply>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MockRule {
    /// A label for `/mock/stats`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phase: Option<String>,
    /// Strings that must all occur in the request's messages.
    #[serde(default, deserialize_with = "one_or_many")]
    pub contains: Vec<String>,
    #[serde(default)]
    pub reply: Option<MockReply>,
    #[serde(default)]
    pub error: Option<MockError>,
    /// Answer `error` (default 500) to the first N matching requests, then `reply`.
    #[serde(default)]
    pub fail_times: Option<u32>,
    /// Match at most N requests.
    #[serde(default)]
    pub times: Option<u32>,
    /// Wait before answering.
    #[serde(default)]
    pub delay_ms: u64,
}

/// What to answer. Exactly one of `content`, `json`, `refusal` and `raw` is used (in that
/// order of precedence).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MockReply {
    #[serde(default)]
    pub content: Option<String>,
    /// Serialised as the content.
    #[serde(default)]
    pub json: Option<Value>,
    /// Wrap `json` in a ```json code fence, as chatty models do.
    #[serde(default)]
    pub fenced: bool,
    /// `content: null` with this `refusal`.
    #[serde(default)]
    pub refusal: Option<String>,
    /// Send this body as it is (truncated JSON, HTML error pages, `{"choices": []}`).
    #[serde(default)]
    pub raw: Option<String>,
    /// Status for `raw` (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    /// Send the content as a list of text parts.
    #[serde(default)]
    pub parts: bool,
    /// `finish_reason` (default `stop`; `""` sends an empty one, `null` none).
    #[serde(default = "default_finish_reason")]
    pub finish_reason: Option<String>,
    /// Leave `usage` out of the answer.
    #[serde(default)]
    pub omit_usage: bool,
    #[serde(default)]
    pub delay_ms: u64,
}

fn default_finish_reason() -> Option<String> {
    Some("stop".to_owned())
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MockError {
    pub status: u16,
    #[serde(default)]
    pub message: Option<String>,
    /// Sent as the `Retry-After` header.
    #[serde(default)]
    pub retry_after: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl MockScript {
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|err| format!("invalid mock script: {err}"))
    }

    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("could not read the mock script {}: {err}", path.display()))?;
        Self::from_json(&text).map_err(|err| format!("{}: {err}", path.display()))
    }
}

/// Counters the server keeps, served at `GET /mock/stats`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MockStats {
    /// Chat-completion requests received.
    pub requests: u64,
    /// Matches per rule, in script order.
    pub rule_hits: Vec<u64>,
    pub default_hits: u64,
}

struct MockState {
    script: MockScript,
    requests: AtomicU64,
    rule_hits: Vec<AtomicU64>,
    default_hits: AtomicU64,
    /// The last request bodies received (at most `KEEP_REQUESTS`), served at `/mock/requests`.
    bodies: Mutex<Vec<Value>>,
}

const KEEP_REQUESTS: usize = 1000;

impl MockState {
    fn stats(&self) -> MockStats {
        MockStats {
            requests: self.requests.load(Ordering::SeqCst),
            rule_hits: self
                .rule_hits
                .iter()
                .map(|h| h.load(Ordering::SeqCst))
                .collect(),
            default_hits: self.default_hits.load(Ordering::SeqCst),
        }
    }
}

/// A running mock server.
pub struct MockServer {
    pub address: SocketAddr,
    state: Arc<MockState>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl MockServer {
    /// Serves `script` on `listener` until stopped.
    pub fn start(script: MockScript, listener: TcpListener) -> std::io::Result<MockServer> {
        let address = listener.local_addr()?;
        let state = Arc::new(MockState {
            rule_hits: script.rules.iter().map(|_| AtomicU64::new(0)).collect(),
            script,
            requests: AtomicU64::new(0),
            default_hits: AtomicU64::new(0),
            bodies: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        let app = router(state.clone());
        let task = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future(),
        );
        Ok(MockServer {
            address,
            state,
            stop,
            task,
        })
    }

    /// Binds `127.0.0.1:0` and serves `script`.
    pub async fn spawn(script: MockScript) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Self::start(script, listener)
    }

    /// The base URL to configure a client with (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    pub fn stats(&self) -> MockStats {
        self.state.stats()
    }

    /// The request bodies received so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.state
            .bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops serving and waits until the server has stopped.
    pub async fn stop(self) -> std::io::Result<()> {
        self.stop.cancel();
        self.task
            .await
            .map_err(|err| std::io::Error::other(err.to_string()))?
    }
}

fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/mock/stats", get(stats))
        .route("/mock/requests", get(requests))
        .with_state(state)
}

async fn stats(State(state): State<Arc<MockState>>) -> Response {
    axum::Json(state.stats()).into_response()
}

async fn requests(State(state): State<Arc<MockState>>) -> Response {
    let bodies = state
        .bodies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    axum::Json(bodies).into_response()
}

fn model_name(script: &MockScript) -> String {
    script
        .model
        .clone()
        .unwrap_or_else(|| "mock-model".to_owned())
}

async fn models(State(state): State<Arc<MockState>>) -> Response {
    let mut ids = state.script.models.clone();
    if ids.is_empty() {
        ids.push(model_name(&state.script));
    }
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "object": "model", "owned_by": "toolsmith-mock"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

fn error_response(status: u16, message: &str, retry_after: Option<&str>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body =
        json!({"error": {"message": message, "type": "mock_error", "code": status.as_u16()}});
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(value) = retry_after.and_then(|v| v.parse().ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The phase a request is for: the schema's name, else the marker in the prompt.
fn request_phase(body: &Value) -> Option<String> {
    if let Some(name) = body
        .pointer("/response_format/json_schema/name")
        .and_then(Value::as_str)
    {
        return Some(name.to_owned());
    }
    body.get("messages")?.as_array()?.iter().find_map(|m| {
        let content = m.get("content")?.as_str()?;
        let rest = &content[content.find(PHASE_MARKER)? + PHASE_MARKER.len()..];
        rest.split_whitespace().next().map(str::to_owned)
    })
}

fn message_text(body: &Value) -> String {
    body.get("messages")
        .and_then(Value::as_array)
        .map(|messages| {
            messages
                .iter()
                .filter_map(|m| match m.get("content") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                    None => None,
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

async fn chat_completions(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let script = &state.script;
    if let Some(key) = &script.api_key {
        let expected = format!("Bearer {key}");
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return error_response(401, "Incorrect API key provided", None);
        }
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(err) => return error_response(400, &format!("the body is not JSON: {err}"), None),
    };
    {
        let mut bodies = state.bodies.lock().unwrap_or_else(|e| e.into_inner());
        if bodies.len() == KEEP_REQUESTS {
            bodies.remove(0);
        }
        bodies.push(body.clone());
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if !script.models.is_empty() && !script.models.contains(&model) {
        return error_response(
            404,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            None,
        );
    }
    if let Some(kind) = body
        .pointer("/response_format/type")
        .and_then(Value::as_str)
        && script.rejects.iter().any(|r| r == kind)
    {
        return error_response(
            400,
            &format!("response_format type '{kind}' is not supported by this model"),
            None,
        );
    }

    let phase = request_phase(&body);
    let text = message_text(&body);
    let matched = script.rules.iter().enumerate().find(|(i, rule)| {
        let phase_ok = rule.phase.is_none() || rule.phase == phase;
        let text_ok = rule.contains.iter().all(|c| text.contains(c.as_str()));
        let times_ok = rule
            .times
            .is_none_or(|t| state.rule_hits[*i].load(Ordering::SeqCst) < u64::from(t));
        phase_ok && text_ok && times_ok
    });

    let (reply, delay_ms) = match matched {
        Some((i, rule)) => {
            let hit = state.rule_hits[i].fetch_add(1, Ordering::SeqCst) + 1;
            let failing = match rule.fail_times {
                Some(n) => hit <= u64::from(n),
                None => rule.error.is_some(),
            };
            if failing {
                sleep_ms(rule.delay_ms).await;
                let (status, message, retry_after) = match &rule.error {
                    Some(e) => (e.status, e.message.clone(), e.retry_after.clone()),
                    None => (500, None, None),
                };
                let message = message.unwrap_or_else(|| format!("scripted failure {hit}"));
                return error_response(status, &message, retry_after.as_deref());
            }
            match &rule.reply {
                Some(reply) => (reply, rule.delay_ms),
                None => {
                    return error_response(500, "the matching mock rule has no reply", None);
                }
            }
        }
        None => match &script.default {
            Some(reply) => {
                state.default_hits.fetch_add(1, Ordering::SeqCst);
                (reply, 0)
            }
            None => {
                let phase = phase.as_deref().unwrap_or("none");
                return error_response(
                    500,
                    &format!(
                        "the mock script has no rule for this request (phase {phase}) and no default"
                    ),
                    None,
                );
            }
        },
    };
    sleep_ms(delay_ms + reply.delay_ms).await;
    completion(reply, &body, &model_or(&model, script), n)
}

fn model_or(requested: &str, script: &MockScript) -> String {
    if requested.is_empty() {
        model_name(script)
    } else {
        requested.to_owned()
    }
}

async fn sleep_ms(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn completion(reply: &MockReply, request: &Value, model: &str, n: u64) -> Response {
    if reply.content.is_none()
        && reply.json.is_none()
        && reply.refusal.is_none()
        && let Some(raw) = &reply.raw
    {
        let status = StatusCode::from_u16(reply.status.unwrap_or(200)).unwrap_or(StatusCode::OK);
        return (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            raw.clone(),
        )
            .into_response();
    }
    let content: Option<String> = match (&reply.content, &reply.json) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(v)) if reply.fenced => Some(format!("```json\n{v:#}\n```")),
        (None, Some(v)) => Some(v.to_string()),
        (None, None) => None,
    };
    let mut message = json!({"role": "assistant"});
    match (&content, &reply.refusal) {
        (Some(text), _) if reply.parts => {
            message["content"] = json!([{"type": "text", "text": text}]);
        }
        (Some(text), _) => message["content"] = json!(text),
        (None, refusal) => {
            message["content"] = Value::Null;
            message["refusal"] = json!(refusal);
        }
    }
    let mut choice = json!({"index": 0, "message": message, "logprobs": null});
    if let Some(reason) = &reply.finish_reason {
        choice["finish_reason"] = json!(reason);
    }
    let prompt_tokens: i64 = message_text(request).split('\n').map(estimate_tokens).sum();
    let completion_tokens = content.as_deref().map(estimate_tokens).unwrap_or(0);
    let mut body = json!({
        "id": format!("chatcmpl-mock-{n}"),
        "object": "chat.completion",
        "created": toolsmith_domain::time::now_ms() / 1000,
        "model": model,
        "choices": [choice],
        "system_fingerprint": "toolsmith-mock",
    });
    if !reply.omit_usage {
        body["usage"] = json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        });
    }
    axum::Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_parse_and_typos_are_rejected() {
        let script = MockScript::from_json(
            r#"{"rules": [{"phase": "plan", "contains": "mean", "reply": {"json": {"a": 1}}, "failTimes": 1}],
                "default": {"content": "hi"}}"#,
        )
        .expect("parse");
        assert_eq!(script.rules[0].contains, ["mean"]);
        assert_eq!(script.rules[0].fail_times, Some(1));
        assert_eq!(
            script
                .default
                .as_ref()
                .and_then(|d| d.finish_reason.as_deref()),
            Some("stop")
        );
        let err = MockScript::from_json(r#"{"rules": [{"phse": "plan"}]}"#).expect_err("typo");
        assert!(err.contains("unknown field `phse`"), "{err}");
    }

    #[test]
    fn the_phase_comes_from_the_schema_or_the_marker() {
        let body =
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "plan"}}});
        assert_eq!(request_phase(&body).as_deref(), Some("plan"));
        let body =
            json!({"messages": [{"role": "system", "content": "toolsmith-phase: fix\nAnswer..."}]});
        assert_eq!(request_phase(&body).as_deref(), Some("fix"));
        assert_eq!(request_phase(&json!({"messages": []})), None);
    }
}
