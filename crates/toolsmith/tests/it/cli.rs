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
    assert!(
        stdout.contains("execution logs: 3 waiting in the executions buffer"),
        "{stdout}"
    );
    assert!(
        stdout.contains("POST /buffers/executions/flush: 3 written"),
        "{stdout}"
    );
    assert!(stdout.contains("triggeredBy=\"demo\""), "{stdout}");
}

/// `toolsmith tools|buffers …` against a running server: exit status, stdout, stderr.
fn toolsmith(server: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_toolsmith"))
        .args(args)
        .args(["--server", server])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run toolsmith");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_and_buffer_commands_work_against_a_server() {
    let app = crate::helpers::spawn_app().await;
    crate::helpers::twice_tool(&app).await;
    let tool = crate::helpers::twice_tool(&app).await; // 1.1.0 of the same tool
    let server = app.address.clone();
    let server = server.as_str();
    let ok = |args: &[&str]| {
        let (code, stdout, stderr) = toolsmith(server, args);
        assert_eq!(code, Some(0), "{args:?}: {stdout}\n{stderr}");
        stdout
    };
    // The server refused (or could not be reached): 1; the tool ran and failed: 3.
    let exits = |expected: i32, args: &[&str]| {
        let (code, stdout, stderr) = toolsmith(server, args);
        assert_eq!(code, Some(expected), "{args:?}: {stdout}\n{stderr}");
        stderr
    };
    let refused = |args: &[&str]| exits(1, args);

    let list = ok(&["tools", "list"]);
    assert!(
        list.contains(&tool) && list.contains("twice") && list.contains("1.1.0"),
        "{list}"
    );
    assert!(ok(&["tools", "list", "--query", "nothing-like-this"]).contains("no tools"));
    let show = ok(&["tools", "show", &tool]);
    assert!(show.contains("def twice"), "{show}");
    let versions = ok(&["tools", "versions", &tool]);
    assert!(
        versions.contains("* 1.1.0") && versions.contains("  1.0.0"),
        "{versions}"
    );

    assert!(ok(&["tools", "rollback", &tool]).contains("now runs version 1.0.0"));
    assert!(ok(&["tools", "rollback", &tool, "--to", "1.1.0"]).contains("now runs version 1.1.0"));
    let missing = refused(&["tools", "rollback", &tool, "--to", "9.9.9"]);
    assert!(missing.contains("9.9.9"), "{missing}");

    assert_eq!(
        ok(&["tools", "exec", &tool, "--input", r#"{"x": 4}"#]).trim(),
        "8"
    );
    let json_out = ok(&["tools", "exec", &tool, "--input", r#"{"x": 5}"#, "--json"]);
    let answer: serde_json::Value = serde_json::from_str(&json_out).expect("json");
    assert_eq!(answer["result"], 10);
    let failed = exits(3, &["tools", "exec", &tool, "--input", r#"{"x": -1}"#]);
    assert!(
        failed.contains("code_error") && failed.contains("must not be negative"),
        "{failed}"
    );
    let wrong = exits(3, &["tools", "exec", &tool, "--input", r#"{"x": 7}"#]);
    assert!(
        wrong.contains("output schema") && wrong.contains("it returned: \"seven\""),
        "{wrong}"
    );
    let bad = refused(&["tools", "exec", &tool, "--input", r#"{"x": "four"}"#]);
    assert!(
        bad.contains("INVALID_REQUEST") && bad.contains("/x") && bad.contains("request id: "),
        "{bad}"
    );
    let (code, stdout, _) = toolsmith(
        server,
        &[
            "tools",
            "exec",
            &tool,
            "--input",
            r#"{"x": "four"}"#,
            "--json",
        ],
    );
    assert_eq!(code, Some(1));
    let refusal: serde_json::Value = serde_json::from_str(&stdout).expect("the ErrorResponse");
    assert_eq!(refusal["details"]["errors"][0]["path"], "/x");
    assert!(refused(&["tools", "exec", &tool, "--input", "{x"]).contains("not JSON"));

    let status = ok(&["buffers", "status"]);
    assert!(
        status.contains("executions: batched (100 items / 5 s); 4 buffered"),
        "{status}"
    );
    let flushed = ok(&["buffers", "flush", "executions"]);
    assert!(flushed.contains("wrote 4"), "{flushed}");
    ok(&["tools", "exec", &tool, "--input", r#"{"x": 6}"#]);
    assert!(refused(&["buffers", "clear", "executions"]).contains("--yes"));
    assert!(ok(&["buffers", "clear", "executions", "--yes"]).contains("dropped 1"));
    assert!(refused(&["buffers", "status", "nope"]).contains("\"nope\" was not found"));

    assert!(ok(&["tools", "deprecate", &tool]).contains("is deprecated"));
    let deprecated = refused(&["tools", "exec", &tool, "--input", r#"{"x": 1}"#]);
    assert!(deprecated.contains("--allow-deprecated"), "{deprecated}");
    assert_eq!(
        ok(&[
            "tools",
            "exec",
            &tool,
            "--input",
            r#"{"x": 1}"#,
            "--allow-deprecated"
        ])
        .trim(),
        "2"
    );
    let (code, _, stderr) = toolsmith("http://127.0.0.1:9", &["tools", "list"]);
    assert!(
        code == Some(1) && stderr.contains("could not reach"),
        "{stderr}"
    );
}
