//! What the benchmarks share: a service generating `double_number` against the mock LLM.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use toolsmith::{Application, Config, SandboxSettings, Workflows};
use toolsmith_llm::mock::{MockScript, MockServer};

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The service on a fresh data directory, its generation workflow answered at once by a
/// mock LLM that always writes `double_number`.
pub struct Service {
    pub app: Application,
    pub base: String,
    pub client: reqwest::Client,
    _mock: MockServer,
    _dir: tempfile::TempDir,
}

impl Service {
    pub async fn start(configure: impl FnOnce(&mut Config)) -> Service {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .expect("workspace");
        let code = "def double_number(x: int) -> int:\n    \"\"\"Twice x.\"\"\"\n    if not isinstance(x, int):\n        raise ValueError('x must be an int')\n    return 2 * x\n";
        let tests = "import pytest\nfrom double_number import double_number\n\n\ndef test_values():\n    assert double_number(2) == 4\n\n\ndef test_rejects_text():\n    with pytest.raises(ValueError):\n        double_number('a')\n";
        let spec = json!({
            "title": "Double a number", "objective": "Return twice x.", "toolName": "double_number", "toolType": "default",
            "functionalRequirements": ["2x"], "nonFunctionalRequirements": [],
            "inputParameters": [{"name": "x", "type": "int", "description": "x", "required": true}],
            "expectedOutputFormat": {"type": "int", "description": "2x"}, "errorHandling": [], "dependencies": [], "requiredSecrets": [],
            "testCases": [{"name": "two", "input": {"x": 2}, "expectedOutput": 4, "description": ""}]
        });
        let script = json!({"rules": [
            {"phase": "specification", "reply": {"json": spec}},
            {"phase": "plan", "reply": {"json": {"overview": "2x", "steps": [{"title": "multiply", "description": "2 * x"}], "estimatedComplexity": "low", "riskAssessment": [], "fallbackStrategies": []}}},
            {"phase": "implementation", "reply": {"json": {"code": code, "entryPoint": "double_number", "dependencies": []}}},
            {"phase": "tests", "reply": {"json": {"testCode": tests}}}
        ]});
        let mock = MockServer::spawn(MockScript::from_json(&script.to_string()).expect("script"))
            .await
            .expect("mock");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .expect("chmod");
        let mut config = Config::new(dir.path().to_path_buf());
        config.port = 0;
        config.llm.base_url = Some(mock.base_url());
        config.llm.model = Some("mock-model".into());
        config.sandbox = SandboxSettings {
            init_binary: Some(env!("CARGO_BIN_EXE_toolsmith").into()),
            python_env: workspace.join(".tools/py"),
            uv: workspace.join(".tools/uv/bin/uv"),
            unsafe_no_sandbox: false,
        };
        configure(&mut config);
        let app = Application::build(config, Workflows::Generation)
            .await
            .expect("app");
        Service {
            base: format!("http://127.0.0.1:{}/api/v1", app.port()),
            app,
            client: reqwest::Client::new(),
            _mock: mock,
            _dir: dir,
        }
    }

    /// Runs a one-tool job for `user` to its end; returns the job as answered.
    pub async fn generate(&self, user: &str, description: &str) -> Value {
        let created: Value = self
            .client
            .post(format!("{}/jobs", self.base))
            .header("X-User-Id", user)
            .json(&json!({"toolRequirements": [{"description": description, "input": "x", "output": "2x"}]}))
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("json");
        let job_id = created["jobId"].as_str().expect("job").to_owned();
        loop {
            let job: Value = self
                .client
                .get(format!("{}/jobs/{job_id}", self.base))
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            match job["status"].as_str() {
                Some("completed") => return job,
                Some("failed" | "cancelled") => panic!("{job}"),
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    pub async fn stop(self) {
        self.app.shutdown_token().cancel();
        self.app.run_until_stopped().await.expect("stop");
    }
}
