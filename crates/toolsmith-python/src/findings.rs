//! What a check reports.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The code cannot be accepted as it is.
    Error,
    /// Worth fixing; does not block.
    Warning,
}

/// One problem at one place, phrased for the model that has to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable name: `syntax`, `dangerous-eval`, `missing-docstring`, `F401`…
    pub rule: String,
    pub severity: Severity,
    /// 1-based; 0 when the finding is about the whole file.
    pub line: usize,
    pub message: String,
}

impl Finding {
    pub fn error(rule: &str, line: usize, message: impl Into<String>) -> Self {
        Finding {
            rule: rule.to_owned(),
            severity: Severity::Error,
            line,
            message: message.into(),
        }
    }

    pub fn warning(rule: &str, line: usize, message: impl Into<String>) -> Self {
        Finding {
            rule: rule.to_owned(),
            severity: Severity::Warning,
            line,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {} ({})", self.line, self.message, self.rule)
        } else {
            write!(f, "{} ({})", self.message, self.rule)
        }
    }
}
