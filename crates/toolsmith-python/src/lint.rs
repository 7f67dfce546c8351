//! ruff on the tool's source: undefined names, unused imports and the other pyflakes rules
//! (`F`), plus syntax errors (`E9`). ruff reads the code from stdin and never runs it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Deserialize;
use thiserror::Error;

use crate::{Finding, Severity};

#[derive(Debug, Error)]
pub enum LintError {
    #[error("could not run ruff at {path}")]
    Spawn {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ruff failed: {0}")]
    Failed(String),
}

#[derive(Deserialize)]
struct RuffMessage {
    code: Option<String>,
    message: String,
    location: RuffLocation,
}

#[derive(Deserialize)]
struct RuffLocation {
    row: usize,
}

/// ruff's findings on `source` (as `file_name`); unused imports are warnings, the rest errors.
pub fn lint(ruff: &Path, source: &str, file_name: &str) -> Result<Vec<Finding>, LintError> {
    let mut child = Command::new(ruff)
        .args([
            "check",
            "--isolated",
            "--no-cache",
            "--select",
            "F,E9",
            "--output-format",
            "json",
            "--stdin-filename",
            file_name,
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| LintError::Spawn {
            path: ruff.display().to_string(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(source.as_bytes())
            .map_err(|e| LintError::Failed(format!("could not send the source: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| LintError::Failed(e.to_string()))?;
    // 0: clean, 1: findings; anything else is ruff failing.
    if !matches!(output.status.code(), Some(0 | 1)) {
        return Err(LintError::Failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    let messages: Vec<RuffMessage> = serde_json::from_slice(&output.stdout)
        .map_err(|e| LintError::Failed(format!("unreadable output: {e}")))?;
    Ok(messages
        .into_iter()
        .map(|m| {
            let code = m.code.unwrap_or_else(|| "syntax".to_owned());
            Finding {
                severity: if code == "F401" || code == "F841" {
                    Severity::Warning
                } else {
                    Severity::Error
                },
                rule: code,
                line: m.location.row,
                message: m.message,
            }
        })
        .collect())
}
