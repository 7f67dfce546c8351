//! `toolsmith generate`: one requirement to a running server, its progress, and the tool.

use anyhow::bail;
use serde_json::json;

use crate::cli::GenerateArgs;
use crate::follow::{follow, say, submit};

pub async fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let base = format!("{}/api/v1", args.server.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let body = json!({
        "toolRequirements": [{"description": args.description, "input": args.input, "output": args.output}],
        "metadata": {"clientId": "toolsmith-generate"}
    });
    let submitted = submit(&client, &base, &body, args.user.as_deref()).await?;
    say(format!("job {}", submitted.job_id));
    let job = follow(&client, &base, &submitted).await?;
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
