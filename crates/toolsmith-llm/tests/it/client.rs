//! The HTTP client against the mock server: quirks, errors, retries, the breaker.

use std::time::Duration;

use serde_json::json;
use toolsmith_domain::ErrorCode;
use toolsmith_llm::{
    BreakerState, CallContext, ChatModel, ChatRequest, LlmError, Message, OpenAiClient,
    ResponseFormat,
};

use crate::helpers::{env, env_with, fast_config};

fn request(text: &str) -> ChatRequest {
    ChatRequest {
        model: "mock-model".into(),
        messages: vec![Message::user(text)],
        temperature: None,
        max_tokens: None,
        response_format: ResponseFormat::Text,
    }
}

#[tokio::test]
async fn tolerates_parts_missing_usage_and_missing_finish_reason() {
    let env = env(json!({"default": {"content": "hello there", "parts": true, "omitUsage": true, "finishReason": null}})).await;
    let r = env
        .client
        .complete(&request("12345678"))
        .await
        .expect("answer");
    assert_eq!(r.content, "hello there");
    assert_eq!(r.finish_reason, "");
    // Estimated at 4 characters a token.
    assert_eq!((r.usage.prompt_tokens, r.usage.completion_tokens), (2, 3));
    let r = env.client.complete(&request("x")).await.expect("answer");
    assert_eq!(r.model, "mock-model");
}

#[tokio::test]
async fn named_errors_without_retries_for_the_callers_mistakes() {
    let env = env(json!({
        "apiKey": "right",
        "models": ["mock-model"],
        "rules": [
            {"contains": "refuse", "reply": {"refusal": "I can't help with that"}},
            {"contains": "empty", "reply": {"raw": "{\"choices\": []}"}}
        ],
        "default": {"content": "ok"}
    }))
    .await;
    // No key: 401, not retried.
    let err = env.client.complete(&request("hi")).await.expect_err("401");
    assert!(
        matches!(&err, LlmError::Http { status: 401, message } if message.contains("API key")),
        "{err:?}"
    );
    assert_eq!(err.code(), ErrorCode::AiServiceError);
    assert_eq!(env.requests(), 1);

    let mut config = fast_config(&env.mock.base_url());
    config.api_key = Some("right".into());
    let client = OpenAiClient::new(config).expect("client");
    assert_eq!(
        client.complete(&request("hi")).await.expect("ok").content,
        "ok"
    );

    let mut unknown = request("hi");
    unknown.model = "gpt-nonexistent".into();
    let err = client.complete(&unknown).await.expect_err("404");
    assert!(
        matches!(&err, LlmError::Http { status: 404, message } if message.contains("gpt-nonexistent")),
        "{err:?}"
    );

    let before = env.requests();
    let err = client
        .complete(&request("please refuse"))
        .await
        .expect_err("refusal");
    assert_eq!(err, LlmError::Refusal("I can't help with that".into()));
    assert_eq!(env.requests(), before + 1, "a refusal is not retried");

    let err = client
        .complete(&request("empty choices"))
        .await
        .expect_err("no choices");
    assert!(
        matches!(&err, LlmError::InvalidResponse(m) if m.contains("no choices")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_429_storm_is_retried_then_named_rate_limited() {
    let env = env(
        json!({"rules": [{"error": {"status": 429, "retryAfter": "0", "message": "slow down"}}]}),
    )
    .await;
    let err = env
        .client
        .complete(&request("hi"))
        .await
        .expect_err("rate limited");
    assert_eq!(err, LlmError::RateLimited { attempts: 4 });
    assert_eq!(err.code(), ErrorCode::AiServiceRateLimited);
    assert_eq!(env.requests(), 4, "the first attempt and three retries");
}

#[tokio::test]
async fn server_errors_are_retried_until_one_succeeds() {
    let env = env(json!({"rules": [{"failTimes": 2, "error": {"status": 503}, "reply": {"content": "third time lucky"}}]})).await;
    let r = env.client.complete(&request("hi")).await.expect("answer");
    assert_eq!(r.content, "third time lucky");
    assert_eq!(env.mock.stats().rule_hits, [3]);
}

#[tokio::test]
async fn slow_answers_time_out_and_are_named() {
    let env = env_with(
        json!({"default": {"content": "late", "delayMs": 2000}}),
        |mut c| {
            c.timeout = Duration::from_millis(150);
            c.retry.max_retries = 1;
            c
        },
        |s| s,
    )
    .await;
    let err = env
        .client
        .complete(&request("hi"))
        .await
        .expect_err("timeout");
    assert!(
        matches!(err, LlmError::Timeout { attempts: 2, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), ErrorCode::GenerationTimeout);
    assert_eq!(env.requests(), 2);
}

#[tokio::test]
async fn garbled_bodies_are_retried_then_named() {
    let env = env(json!({"rules": [
        {"contains": "truncated", "reply": {"raw": "{\"choices\": [{\"message\": {\"content\": \"abc"}},
        {"contains": "html", "reply": {"raw": "<html><body>502 Bad Gateway</body></html>", "status": 502}}
    ]}))
    .await;
    let err = env
        .client
        .complete(&request("truncated"))
        .await
        .expect_err("invalid");
    assert!(
        matches!(&err, LlmError::InvalidResponse(m) if m.contains("not a chat completion")),
        "{err:?}"
    );
    assert_eq!(env.mock.stats().rule_hits, [4, 0]);

    let err = env
        .client
        .complete(&request("html"))
        .await
        .expect_err("502");
    assert!(
        matches!(&err, LlmError::Http { status: 502, message } if message.contains("Bad Gateway")),
        "{err:?}"
    );
    assert_eq!(env.mock.stats().rule_hits, [4, 4]);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_named() {
    // A port nobody listens on: bind, learn it, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let client =
        OpenAiClient::new(fast_config(&format!("http://127.0.0.1:{port}"))).expect("client");
    let err = client.complete(&request("hi")).await.expect_err("down");
    assert!(
        matches!(&err, LlmError::Unreachable { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), ErrorCode::AiServiceError);
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_then_half_opens_and_closes() {
    let env = env_with(
        json!({"rules": [{"failTimes": 2, "error": {"status": 500}, "reply": {"content": "recovered"}}]}),
        |mut c| {
            c.retry.max_retries = 0;
            c.breaker_threshold = 2;
            c.breaker_cooldown = Duration::from_millis(150);
            c
        },
        |s| s,
    )
    .await;
    for _ in 0..2 {
        let err = env.client.complete(&request("hi")).await.expect_err("500");
        assert!(matches!(err, LlmError::Http { status: 500, .. }), "{err:?}");
    }
    assert!(matches!(
        env.client.breaker().state(),
        BreakerState::Open { .. }
    ));
    let err = env.client.complete(&request("hi")).await.expect_err("open");
    assert!(matches!(err, LlmError::CircuitOpen { .. }), "{err:?}");
    assert_eq!(env.requests(), 2, "an open breaker sends nothing");

    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = env.client.complete(&request("hi")).await.expect("probe");
    assert_eq!(r.content, "recovered");
    assert_eq!(
        env.client.breaker().state(),
        BreakerState::Closed { failures: 0 }
    );
    assert_eq!(env.requests(), 3);
}

#[tokio::test]
async fn text_completions_are_cached_and_accounted() {
    let env = env(json!({"default": {"content": "four"}})).await;
    let ctx = CallContext {
        job_id: Some("job_1".into()),
        requirement_index: Some(0),
        ..CallContext::default()
    };
    let first = env
        .llm
        .complete_text(&ctx, "chat", vec![Message::user("2 + 2?")])
        .await
        .expect("answer");
    let second = env
        .llm
        .complete_text(&ctx, "chat", vec![Message::user("2 + 2?")])
        .await
        .expect("answer");
    assert_eq!(first.content, second.content);
    assert_eq!(env.requests(), 1);
    let usage = env.llm.usage("job_1", None).await.expect("usage");
    assert_eq!(usage.calls, 2);
    assert_eq!(usage.paid(), first.usage.total());
    assert_eq!(usage.cached, first.usage.total());
}
