//! A mock server from a script, a client and an `Llm` on a fresh SQLite store.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use toolsmith_llm::mock::{MockScript, MockServer};
use toolsmith_llm::{ClientConfig, Llm, LlmSettings, OpenAiClient, RetryPolicy};
use toolsmith_store::SqliteStore;

pub struct Env {
    pub mock: MockServer,
    pub client: Arc<OpenAiClient>,
    pub store: Arc<SqliteStore>,
    pub llm: Llm,
    pub dir: tempfile::TempDir,
}

/// Retries fast (a few ms) so that counts, not waits, are what the tests look at.
pub fn fast_config(base_url: &str) -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_millis(400),
        retry: RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(50),
        },
        breaker_threshold: 100,
        breaker_cooldown: Duration::from_millis(200),
        ..ClientConfig::new(base_url)
    }
}

pub async fn env(script: Value) -> Env {
    env_with(script, |c| c, |s| s).await
}

pub async fn env_with(
    script: Value,
    client: impl FnOnce(ClientConfig) -> ClientConfig,
    settings: impl FnOnce(LlmSettings) -> LlmSettings,
) -> Env {
    let script = MockScript::from_json(&script.to_string()).expect("script");
    let mock = MockServer::spawn(script).await.expect("mock server");
    let client =
        Arc::new(OpenAiClient::new(client(fast_config(&mock.base_url()))).expect("client"));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("store"),
    );
    let llm = Llm::new(
        client.clone(),
        store.clone(),
        settings(LlmSettings::new("mock-model")),
    );
    Env {
        mock,
        client,
        store,
        llm,
        dir,
    }
}

impl Env {
    pub fn requests(&self) -> u64 {
        self.mock.stats().requests
    }
}
