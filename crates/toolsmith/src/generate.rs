//! `toolsmith generate`: one requirement to a running server, its progress, and the tool.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::GenerateArgs;

fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

pub async fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let base = format!("{}/api/v1", args.server.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let mut request = client.post(format!("{base}/jobs")).json(&json!({
        "toolRequirements": [{"description": args.description, "input": args.input, "output": args.output}],
        "metadata": {"clientId": "toolsmith-generate"}
    }));
    if let Some(user) = &args.user {
        request = request.header("X-User-Id", user);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("could not reach Toolsmith at {}", args.server))?;
    let status = response.status();
    let created: Value = response
        .json()
        .await
        .context("the server's answer is not JSON")?;
    if !status.is_success() {
        bail!(
            "{} ({status}): {}",
            created["code"].as_str().unwrap_or("error"),
            created["error"].as_str().unwrap_or("")
        );
    }
    let job_id = created["jobId"].as_str().unwrap_or_default().to_owned();
    let session_id = created["sessionId"].as_str().unwrap_or_default().to_owned();
    say(format!("job {job_id}"));
    let started = Instant::now();
    let mut last = String::new();
    let job = loop {
        let job: Value = client
            .get(format!("{base}/jobs/{job_id}"))
            .send()
            .await?
            .json()
            .await?;
        let session: Value = client
            .get(format!("{base}/sessions/{session_id}"))
            .send()
            .await?
            .json()
            .await?;
        let line = format!(
            "{} — {} {}%",
            job["status"].as_str().unwrap_or(""),
            session["currentPhase"].as_str().unwrap_or("queued"),
            session["progress"]
        );
        if line != last {
            say(format!(
                "[{:>5.1}s] {line}",
                started.elapsed().as_secs_f64()
            ));
            last = line;
        }
        if ["completed", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or("")) {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for file in job["toolFiles"].as_array().into_iter().flatten() {
        say(format!(
            "\n# {} (tool {})",
            file["filePath"].as_str().unwrap_or(""),
            file["toolId"].as_str().unwrap_or("")
        ));
        say(file["code"].as_str().unwrap_or("").trim_end());
    }
    for failure in job["failures"].as_array().into_iter().flatten() {
        say(format!(
            "\nfailed: {}",
            failure["error"].as_str().unwrap_or("")
        ));
    }
    if job["status"] != "completed" {
        bail!("no tool was produced");
    }
    Ok(())
}
