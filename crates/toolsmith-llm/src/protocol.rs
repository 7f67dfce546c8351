//! The OpenAI Chat Completions wire format. Parsing is tolerant: unknown fields are ignored,
//! `finish_reason` and `usage` may be missing, `content` may be null (with a `refusal`) or a
//! list of parts.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::LlmError;
use crate::types::{ChatRequest, ChatResponse, ResponseFormat, Usage};

pub fn request_body(request: &ChatRequest) -> Value {
    let mut body = json!({
        "model": request.model,
        "messages": request.messages,
    });
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(m) = request.max_tokens {
        body["max_tokens"] = json!(m);
    }
    match &request.response_format {
        ResponseFormat::Text => {}
        ResponseFormat::JsonObject => body["response_format"] = json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": strict}
            });
        }
    }
    body
}

#[derive(Debug, Deserialize)]
struct WireResponse {
    #[serde(default)]
    choices: Option<Vec<WireChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireChoice {
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<i64>,
    #[serde(default)]
    completion_tokens: Option<i64>,
}

/// About 4 characters a token: the estimate used when an endpoint sends no usage.
pub fn estimate_tokens(text: &str) -> i64 {
    i64::try_from(text.chars().count().div_ceil(4)).unwrap_or(i64::MAX)
}

fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let text: String = parts
                .iter()
                .filter_map(|p| match p {
                    Value::String(s) => Some(s.as_str()),
                    Value::Object(o) => o.get("text").and_then(Value::as_str),
                    _ => None,
                })
                .collect();
            Some(text)
        }
        _ => None,
    }
}

/// Parses a 2xx body into a response.
pub fn parse_response(body: &str, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
    let wire: WireResponse = serde_json::from_str(body).map_err(|err| {
        LlmError::InvalidResponse(format!(
            "the body is not a chat completion ({err}): {}",
            excerpt(body)
        ))
    })?;
    let choice = wire
        .choices
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| LlmError::InvalidResponse("the response has no choices".to_owned()))?;
    let message = choice
        .message
        .ok_or_else(|| LlmError::InvalidResponse("the first choice has no message".to_owned()))?;
    let content = message.content.as_ref().and_then(content_text);
    let content = match (content, message.refusal) {
        (Some(text), _) if !text.is_empty() => text,
        (_, Some(refusal)) if !refusal.is_empty() => return Err(LlmError::Refusal(refusal)),
        (Some(text), _) => text,
        (None, _) => {
            return Err(LlmError::InvalidResponse(
                "the message has no content".to_owned(),
            ));
        }
    };
    let prompt_estimate = || {
        request
            .messages
            .iter()
            .map(|m| estimate_tokens(&m.content))
            .sum::<i64>()
    };
    let usage = match wire.usage {
        Some(WireUsage {
            prompt_tokens: Some(p),
            completion_tokens: Some(c),
        }) => Usage {
            prompt_tokens: p,
            completion_tokens: c,
        },
        _ => Usage {
            prompt_tokens: prompt_estimate(),
            completion_tokens: estimate_tokens(&content),
        },
    };
    Ok(ChatResponse {
        content,
        finish_reason: choice.finish_reason.unwrap_or_default(),
        usage,
        model: wire.model.unwrap_or_else(|| request.model.clone()),
    })
}

/// The message of an error body (`{"error": {"message": ...}}` or similar), else an excerpt.
pub fn error_message(body: &str) -> String {
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        let message = value
            .pointer("/error/message")
            .or_else(|| value.get("error").filter(|e| e.is_string()))
            .or_else(|| value.get("message"))
            .or_else(|| value.get("detail"))
            .and_then(Value::as_str);
        if let Some(m) = message {
            return m.to_owned();
        }
    }
    excerpt(body)
}

pub fn excerpt(text: &str) -> String {
    const MAX: usize = 300;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return "(empty body)".to_owned();
    }
    match trimmed.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Message;

    fn request() -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![Message::user("12345678")],
            temperature: None,
            max_tokens: None,
            response_format: ResponseFormat::Text,
        }
    }

    #[test]
    fn tolerant_parsing() {
        let r = parse_response(
            r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi","extra":1}}],"whatever":true}"#,
            &request(),
        )
        .expect("parse");
        assert_eq!(r.content, "hi");
        assert_eq!(r.finish_reason, "");
        assert_eq!(
            r.usage,
            Usage {
                prompt_tokens: 2,
                completion_tokens: 1
            }
        );
        assert_eq!(r.model, "m");

        let r = parse_response(
            r#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":3},"model":"real"}"#,
            &request(),
        )
        .expect("parse");
        assert_eq!(r.content, "ab");
        assert_eq!(r.usage.total(), 10);
        assert_eq!(r.model, "real");
    }

    #[test]
    fn refusals_empty_choices_and_garbage_are_named() {
        let refusal = parse_response(
            r#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#,
            &request(),
        );
        assert_eq!(refusal, Err(LlmError::Refusal("no".into())));
        assert!(
            matches!(parse_response(r#"{"choices":[]}"#, &request()), Err(LlmError::InvalidResponse(m)) if m.contains("no choices"))
        );
        assert!(matches!(
            parse_response(r#"{"choices":[{"message":{"content":"#, &request()),
            Err(LlmError::InvalidResponse(_))
        ));
        assert!(
            matches!(parse_response("<html>bad gateway</html>", &request()), Err(LlmError::InvalidResponse(m)) if m.contains("<html>"))
        );
    }

    #[test]
    fn error_messages_are_extracted() {
        assert_eq!(
            error_message(r#"{"error":{"message":"model not found","type":"x"}}"#),
            "model not found"
        );
        assert_eq!(error_message(r#"{"error":"bad key"}"#), "bad key");
        assert_eq!(error_message("plain"), "plain");
        assert_eq!(error_message(""), "(empty body)");
    }
}
