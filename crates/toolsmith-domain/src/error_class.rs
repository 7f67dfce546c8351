//! The error classes of seed 000 / SPEC §7, with severity and whether the healer may fix them,
//! and the rule that puts a failed execution in one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Timeout,
    Network,
    Auth,
    Permission,
    Endpoint,
    RateLimit,
    Parsing,
    CodeError,
    Dependency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Network => "network",
            ErrorClass::Auth => "auth",
            ErrorClass::Permission => "permission",
            ErrorClass::Endpoint => "endpoint",
            ErrorClass::RateLimit => "rate_limit",
            ErrorClass::Parsing => "parsing",
            ErrorClass::CodeError => "code_error",
            ErrorClass::Dependency => "dependency",
        }
    }

    /// Seed 000's table.
    pub fn severity(self) -> Severity {
        match self {
            ErrorClass::Timeout | ErrorClass::RateLimit => Severity::Medium,
            ErrorClass::Network
            | ErrorClass::Endpoint
            | ErrorClass::Parsing
            | ErrorClass::CodeError => Severity::High,
            ErrorClass::Auth | ErrorClass::Permission | ErrorClass::Dependency => {
                Severity::Critical
            }
        }
    }

    pub fn auto_healable(self) -> bool {
        !matches!(self, ErrorClass::Auth | ErrorClass::Permission)
    }

    /// Classifies a failure from the exception text (`Type: message`) and whether a time limit
    /// ended the run.
    pub fn classify(error: &str, timed_out: bool) -> ErrorClass {
        if timed_out {
            return ErrorClass::Timeout;
        }
        let exception = error.split(':').next().unwrap_or("").trim();
        let lower = error.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
        match exception {
            "ModuleNotFoundError" | "ImportError" => return ErrorClass::Dependency,
            "TimeoutError" | "socket.timeout" => return ErrorClass::Timeout,
            "PermissionError" => return ErrorClass::Permission,
            "JSONDecodeError"
            | "json.decoder.JSONDecodeError"
            | "UnicodeDecodeError"
            | "ParseError" => {
                return ErrorClass::Parsing;
            }
            "ConnectionError"
            | "ConnectionRefusedError"
            | "ConnectionResetError"
            | "gaierror"
            | "socket.gaierror"
            | "URLError" => {
                return ErrorClass::Network;
            }
            _ => {}
        }
        if has(&["not json serializable", "is not json:"]) {
            // The tool returned something JSON cannot carry (a set, an object): its own bug.
            ErrorClass::CodeError
        } else if has(&["could not install", "no solution found", "no module named"]) {
            ErrorClass::Dependency
        } else if has(&["401", "unauthorized", "invalid api key", "authentication"]) {
            ErrorClass::Auth
        } else if has(&["403", "forbidden"]) {
            ErrorClass::Permission
        } else if has(&["429", "too many requests", "rate limit"]) {
            ErrorClass::RateLimit
        } else if has(&["404 not found", "404 client error", "endpoint not found"]) {
            ErrorClass::Endpoint
        } else if has(&["timed out", "timeout"]) {
            ErrorClass::Timeout
        } else if has(&[
            "connection refused",
            "name or service not known",
            "network is unreachable",
            "temporary failure in name resolution",
        ]) {
            ErrorClass::Network
        } else if has(&["decode", "parse", "not json", "malformed"]) {
            ErrorClass::Parsing
        } else {
            ErrorClass::CodeError
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let cases = [
            (
                "ModuleNotFoundError: No module named 'rdkit'",
                false,
                ErrorClass::Dependency,
            ),
            ("KeyError: 'x'", false, ErrorClass::CodeError),
            (
                "TypeError: unsupported operand",
                false,
                ErrorClass::CodeError,
            ),
            ("ValueError: bad input", false, ErrorClass::CodeError),
            (
                "JSONDecodeError: Expecting value: line 1 column 1",
                false,
                ErrorClass::Parsing,
            ),
            (
                "ConnectionRefusedError: [Errno 111] Connection refused",
                false,
                ErrorClass::Network,
            ),
            (
                "HTTPError: 401 Client Error: Unauthorized",
                false,
                ErrorClass::Auth,
            ),
            (
                "HTTPError: 403 Client Error: Forbidden",
                false,
                ErrorClass::Permission,
            ),
            (
                "HTTPError: 429 Client Error: Too Many Requests",
                false,
                ErrorClass::RateLimit,
            ),
            (
                "HTTPError: 404 Client Error: Not Found for url",
                false,
                ErrorClass::Endpoint,
            ),
            ("PermissionError: [Errno 13]", false, ErrorClass::Permission),
            (
                "the result is not JSON: Object of type set is not JSON serializable",
                false,
                ErrorClass::CodeError,
            ),
            ("anything at all", true, ErrorClass::Timeout),
            (
                "ReadTimeout: HTTPSConnectionPool read timed out",
                false,
                ErrorClass::Timeout,
            ),
        ];
        for (text, timed_out, want) in cases {
            assert_eq!(ErrorClass::classify(text, timed_out), want, "{text}");
        }
    }

    #[test]
    fn seed_table() {
        assert_eq!(ErrorClass::Auth.severity(), Severity::Critical);
        assert!(!ErrorClass::Auth.auto_healable());
        assert!(!ErrorClass::Permission.auto_healable());
        assert!(ErrorClass::Dependency.auto_healable());
        assert_eq!(ErrorClass::Dependency.severity(), Severity::Critical);
        assert_eq!(ErrorClass::Timeout.severity(), Severity::Medium);
        assert_eq!(ErrorClass::CodeError.severity(), Severity::High);
    }
}
