//! The binary's subcommands, run as processes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::Running;

use toolsmith_llm::{ChatModel, ChatRequest, ClientConfig, Message, OpenAiClient, ResponseFormat};

fn example_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mock-llm.json")
}

#[tokio::test]
async fn mock_llm_serves_the_example_script_over_http() {
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_toolsmith"))
            .args(["mock-llm", "--port", "0", "--script"])
            .arg(example_script())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start toolsmith mock-llm"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let base_url = line
        .trim()
        .strip_prefix("mock LLM listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();

    let client = OpenAiClient::new(ClientConfig::new(&base_url)).expect("client");
    let ask = |text: &str| ChatRequest {
        model: "mock-model".into(),
        messages: vec![Message::user(text)],
        temperature: None,
        max_tokens: None,
        response_format: ResponseFormat::Text,
    };
    let first = client.complete(&ask("hello")).await.expect("answer");
    assert_eq!(first.content, "Hello! (you will only see this once)");
    let second = client.complete(&ask("hello")).await.expect("answer");
    assert_eq!(
        second.content,
        "The mock script has no specific answer for this request."
    );

    let models: serde_json::Value = reqwest::get(format!("{base_url}/models"))
        .await
        .expect("models")
        .json()
        .await
        .expect("json");
    assert_eq!(models["data"][0]["id"], "mock-model");
}

#[test]
fn mock_llm_refuses_a_broken_script_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("bad.json");
    std::fs::write(&script, r#"{"rules": [{"phase": "plan", "replly": {}}]}"#).expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_toolsmith"))
        .args(["mock-llm", "--port", "0", "--script"])
        .arg(&script)
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `replly`"), "{stderr}");
}

#[test]
fn serve_refuses_malformed_llm_headers_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_toolsmith"))
        .args(["serve", "--port", "0"])
        .env("TOOLSMITH_DATA_DIR", dir.path())
        .env("TOOLSMITH_LLM_BASE_URL", "http://127.0.0.1:9/v1")
        .env("TOOLSMITH_LLM_HEADERS", "no colon here")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not `Name: value`"), "{stderr}");
}

#[test]
fn the_demo_turns_three_requirements_into_tools_and_runs_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .expect("chmod");
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO_BIN_EXE_toolsmith"))
        .arg("demo")
        .env("TOOLSMITH_DATA_DIR", dir.path())
        .env("TOOLSMITH_PYTHON_ENV", workspace.join(".tools/py"))
        .env("TOOLSMITH_UV", workspace.join(".tools/uv/bin/uv"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("replays a SCRIPTED model"), "{stdout}");
    assert!(
        stdout.contains("job completed: {\"failed\":0,\"successful\":3,\"totalRequested\":3}"),
        "{stdout}"
    );
    assert!(stdout.contains("fix loop: fix 1:"), "{stdout}");
    assert!(
        stdout.contains(
            ">>> calculate_molecular_weight(**{\"smiles\":\"CCO\"}) = {\"molecular_weight\":46.069}"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(">>> celsius_to_fahrenheit(**{\"celsius\":0}) = 32.0"),
        "{stdout}"
    );
    assert!(stdout.contains(">>> word_frequencies("), "{stdout}");
}
