//! A small client of the service's own API, shared by `toolsmith demo` and `toolsmith generate`:
//! submit a job, then follow it to its end, printing each requirement's phase as it changes.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

/// One line to stdout (these commands talk to a person).
pub fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

pub struct Submitted {
    pub job_id: String,
    pub session_id: String,
}

/// `POST /jobs`; a refusal becomes an error with the service's code and message.
pub async fn submit(
    client: &reqwest::Client,
    base: &str,
    body: &Value,
    user: Option<&str>,
) -> anyhow::Result<Submitted> {
    let mut request = client.post(format!("{base}/jobs")).json(body);
    if let Some(user) = user {
        request = request.header("X-User-Id", user);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("could not reach Toolsmith at {base}"))?;
    let status = response.status();
    let created: Value = response
        .json()
        .await
        .context("the service's answer is not JSON")?;
    if !status.is_success() {
        bail!(
            "{} ({status}): {}",
            created["code"].as_str().unwrap_or("error"),
            created["error"].as_str().unwrap_or("")
        );
    }
    Ok(Submitted {
        job_id: created["jobId"].as_str().unwrap_or_default().to_owned(),
        session_id: created["sessionId"].as_str().unwrap_or_default().to_owned(),
    })
}

/// Polls the job and its session until the job has finished; returns the final job.
pub async fn follow(
    client: &reqwest::Client,
    base: &str,
    job: &Submitted,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let body: Value = client
            .get(format!("{base}/jobs/{}", job.job_id))
            .send()
            .await?
            .json()
            .await?;
        let status: Value = client
            .get(format!("{base}/sessions/{}/status", job.session_id))
            .send()
            .await?
            .json()
            .await?;
        let requirements: Vec<String> = status["requirements"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let state = if r["status"] == "running" {
                    &r["currentPhase"]
                } else {
                    &r["status"]
                };
                format!(
                    "{}:{}",
                    r["toolName"].as_str().unwrap_or("…"),
                    state.as_str().unwrap_or("")
                )
            })
            .collect();
        let line = format!(
            "{} {:>3}%  {}",
            body["status"].as_str().unwrap_or(""),
            status["progress"],
            requirements.join("  ")
        );
        if line != last {
            say(format!(
                "[{:>5.1}s] {line}",
                started.elapsed().as_secs_f64()
            ));
            last = line;
        }
        if ["completed", "failed", "cancelled"].contains(&body["status"].as_str().unwrap_or("")) {
            return Ok(body);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
