//! `toolsmith tools …` and `toolsmith buffers …`: the registry and the buffers of a running
//! server, through its API. Each prints a short summary (or, with `--json`, the API's answer)
//! and fails with the service's error code and message when the API refuses.

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::{BuffersArgs, BuffersCommand, ServerArgs, ToolsArgs, ToolsCommand};
use crate::follow::say;

struct Api {
    http: reqwest::Client,
    base: String,
    user: Option<String>,
    /// Print refusals as the API's JSON too.
    json: bool,
}

/// `toolsmith tools exec`: the tool ran and failed (exit status 3, apart from the API
/// refusing, which is 1).
#[derive(Debug)]
pub struct ToolFailed(pub String);

impl std::fmt::Display for ToolFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ToolFailed {}

impl Api {
    fn new(server: &ServerArgs) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: format!("{}/api/v1", server.server.trim_end_matches('/')),
            user: server.user.clone(),
            json: server.json,
        }
    }

    /// `base/segment/segment…`, each segment escaped by `Url`.
    fn url(&self, segments: &[&str]) -> anyhow::Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&self.base)
            .with_context(|| format!("{} is not a server URL", self.base))?;
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("{} is not a server URL", self.base))?
            .extend(segments);
        Ok(url)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, self.url(segments)?).query(query);
        if let Some(user) = &self.user {
            request = request.header("X-User-Id", user);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("could not reach Toolsmith at {}", self.base))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .context("the service's answer is not JSON")?;
        if !status.is_success() {
            if self.json {
                say(pretty(&body));
            }
            let mut message = format!(
                "{} ({status}): {}",
                body["code"].as_str().unwrap_or("error"),
                body["error"].as_str().unwrap_or("")
            );
            if body["details"]["status"] == "deprecated" {
                message.push_str(" (with this command: --allow-deprecated)");
            }
            for error in body["details"]["errors"].as_array().into_iter().flatten() {
                message.push_str(&format!(
                    "\n  {}: {}",
                    error["path"].as_str().unwrap_or(""),
                    error["message"].as_str().unwrap_or("")
                ));
            }
            if let Some(id) = body["requestId"].as_str() {
                message.push_str(&format!("\n  request id: {id}"));
            }
            bail!(message);
        }
        Ok(body)
    }

    async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, segments, query, None).await
    }

    async fn post(&self, segments: &[&str], body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, segments, &[], Some(body))
            .await
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

pub async fn tools(args: ToolsArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.server);
    let json_out = args.server.json;
    match args.command {
        ToolsCommand::List {
            query,
            status,
            tag,
            owner,
            limit,
            cursor,
        } => {
            let mut params = vec![("limit", limit.to_string())];
            for (key, value) in [
                ("q", query),
                ("status", status),
                ("tag", tag),
                ("user", owner),
                ("cursor", cursor),
            ] {
                if let Some(value) = value {
                    params.push((key, value));
                }
            }
            let page = api.get(&["tools"], &params).await?;
            if json_out {
                say(pretty(&page));
                return Ok(());
            }
            let items = page["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                say("no tools");
            } else {
                say(format!(
                    "{:<24}  {:<32}  {:<9}  {:<10}  {:>6}  {:>7}",
                    "ID", "NAME", "VERSION", "STATUS", "USES", "QUALITY"
                ));
            }
            for tool in &items {
                say(format!(
                    "{:<24}  {:<32}  {:<9}  {:<10}  {:>6}  {:>7.2}",
                    text(&tool["toolId"]),
                    text(&tool["name"]),
                    text(&tool["currentVersion"]),
                    text(&tool["status"]),
                    tool["usageCount"].as_i64().unwrap_or(0),
                    tool["qualityScore"].as_f64().unwrap_or(0.0)
                ));
            }
            if let Some(next) = page["nextCursor"].as_str() {
                say(format!("more: --cursor {next}"));
            }
        }
        ToolsCommand::Show { id } => {
            let tool = api.get(&["tools", &id], &[]).await?;
            if json_out {
                say(pretty(&tool));
                return Ok(());
            }
            let current = &tool["current"];
            say(format!(
                "{} {} ({}), tool {}",
                text(&tool["name"]),
                text(&tool["currentVersion"]),
                text(&tool["status"]),
                text(&tool["toolId"])
            ));
            say(text(&tool["description"]));
            say(format!(
                "owner {}, used {} times, quality {:.2}",
                text(&tool["userId"]),
                tool["usageCount"].as_i64().unwrap_or(0),
                tool["qualityScore"].as_f64().unwrap_or(0.0)
            ));
            say(format!("sha256 {}", text(&current["sha256"])));
            let deps: Vec<&str> = current["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            say(format!(
                "dependencies: {}",
                if deps.is_empty() {
                    "none".to_owned()
                } else {
                    deps.join(", ")
                }
            ));
            say(format!("input schema: {}", current["inputSchema"]));
            say(format!("output schema: {}", current["outputSchema"]));
            say(format!("\n{}", text(&current["code"]).trim_end()));
        }
        ToolsCommand::Versions { id } => {
            let page = api
                .get(&["tools", &id, "versions"], &[("limit", "500".to_owned())])
                .await?;
            if json_out {
                say(pretty(&page));
                return Ok(());
            }
            let tool = api.get(&["tools", &id], &[]).await?;
            for version in page["items"].as_array().into_iter().flatten() {
                let marker = if version["version"] == tool["currentVersion"] {
                    "*"
                } else {
                    " "
                };
                say(format!(
                    "{marker} {:<9}  {}  {}  {}",
                    text(&version["version"]),
                    text(&version["createdAt"]),
                    &text(&version["sha256"])[..text(&version["sha256"]).len().min(12)],
                    text(&version["changeReason"])
                ));
            }
        }
        ToolsCommand::Rollback { id, to } => {
            let body = match to {
                Some(version) => json!({"version": version}),
                None => json!({}),
            };
            let tool = api.post(&["tools", &id, "rollback"], body).await?;
            if json_out {
                say(pretty(&tool));
            } else {
                say(format!(
                    "{} now runs version {}",
                    text(&tool["name"]),
                    text(&tool["currentVersion"])
                ));
            }
        }
        ToolsCommand::Deprecate { id } => {
            let tool = api.post(&["tools", &id, "deprecate"], json!({})).await?;
            if json_out {
                say(pretty(&tool));
            } else {
                say(format!(
                    "{} is {}",
                    text(&tool["name"]),
                    text(&tool["status"])
                ));
            }
        }
        ToolsCommand::Exec {
            id,
            input,
            version,
            allow_deprecated,
            triggered_by,
        } => {
            let input_text = match input.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file)
                    .with_context(|| format!("could not read {file}"))?,
                None => input,
            };
            let input: Value = serde_json::from_str(&input_text).context("--input is not JSON")?;
            let mut body = json!({"input": input, "triggeredBy": triggered_by, "allowDeprecated": allow_deprecated});
            if let Some(version) = version {
                body["version"] = json!(version);
            }
            let execution = api.post(&["tools", &id, "execute"], body).await?;
            if json_out {
                say(pretty(&execution));
            } else if execution["success"] == true {
                say(execution["result"].to_string());
            }
            if execution["success"] != true {
                let mut message = format!(
                    "the tool failed ({}): {}",
                    text(&execution["errorType"]),
                    text(&execution["error"])
                );
                if !execution["result"].is_null() {
                    message.push_str(&format!("\n  it returned: {}", execution["result"]));
                }
                message.push_str(&format!(
                    "\n  execution {}",
                    text(&execution["executionId"])
                ));
                return Err(ToolFailed(message).into());
            }
        }
    }
    Ok(())
}

pub async fn buffers(args: BuffersArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.server);
    let json_out = args.server.json;
    let answer = match &args.command {
        BuffersCommand::Status { id: Some(id) } => api.get(&["buffers", id], &[]).await?,
        BuffersCommand::Status { id: None } => api.get(&["buffers"], &[]).await?,
        BuffersCommand::Flush { id } => api.post(&["buffers", id, "flush"], json!({})).await?,
        BuffersCommand::Clear { id, yes } => {
            if !yes {
                bail!(
                    "clear drops every item waiting in buffer {id:?} without writing it; \
                     run `toolsmith buffers flush {id}` to keep them, or add --yes to drop them"
                );
            }
            api.post(&["buffers", id, "clear"], json!({})).await?
        }
    };
    if json_out {
        say(pretty(&answer));
        return Ok(());
    }
    let describe = |b: &Value| {
        let strategy = match (b["maxSize"].as_u64(), b["flushIntervalMs"].as_u64()) {
            (Some(size), Some(ms)) => format!("batched ({size} items / {} s)", ms as f64 / 1000.0),
            _ => text(&b["strategy"]).to_owned(),
        };
        let mut line = format!(
            "{}: {strategy}; {} buffered ({} bytes in {} spool files)\n  since start: {} taken, {} written in {} store writes ({} failed), {} duplicates skipped, {} rejected, {} cleared, {} recovered from stopped processes, {} written directly",
            text(&b["id"]),
            b["buffered"],
            b["spoolBytes"],
            b["spoolSegments"],
            b["bufferedTotal"],
            b["flushedTotal"],
            b["flushes"],
            b["failedFlushes"],
            b["duplicatesSkipped"],
            b["rejectedTotal"],
            b["clearedTotal"],
            b["recovered"],
            b["writtenDirectly"]
        );
        if let Some(error) = b["lastError"].as_str() {
            line.push_str(&format!("\n  last error: {error}"));
        }
        for path in b["corruptSegments"].as_array().into_iter().flatten() {
            line.push_str(&format!(
                "\n  unreadable spool file, set aside: {}",
                text(path)
            ));
        }
        line
    };
    match &args.command {
        BuffersCommand::Status { id: Some(_) } => say(describe(&answer)),
        BuffersCommand::Status { id: None } => {
            for buffer in answer["items"].as_array().into_iter().flatten() {
                say(describe(buffer));
            }
        }
        BuffersCommand::Flush { .. } => say(format!(
            "wrote {} ({} already in the store, {} rejected)\n{}",
            answer["written"],
            answer["duplicates"],
            answer["rejected"],
            describe(&answer["buffer"])
        )),
        BuffersCommand::Clear { .. } => say(format!(
            "dropped {} without writing them\n{}",
            answer["cleared"],
            describe(&answer["buffer"])
        )),
    }
    Ok(())
}
