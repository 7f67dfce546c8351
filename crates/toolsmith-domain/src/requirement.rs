//! Tool requirements and request metadata, and the rules that make them valid (SPEC §1).
//!
//! Validation works on the raw JSON so that every problem of a request is reported at once,
//! each with the path of the offending field, instead of stopping at serde's first error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const MAX_REQUIREMENTS: usize = 50;
pub const MAX_TEXT_CHARS: usize = 10_000;
pub const MAX_METADATA_CHARS: usize = 256;

/// Seed 002 `UserToolRequirement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRequirement {
    pub description: String,
    pub input: String,
    pub output: String,
}

/// Seed 002 `RequestMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata {
    pub session_id: Option<String>,
    pub client_id: Option<String>,
}

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// What is wrong with a job request, split by the error code it answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestProblem {
    /// The envelope is wrong (not an object, bad metadata): `INVALID_REQUEST`.
    Malformed(Vec<FieldError>),
    /// The requirements are wrong: `INVALID_TOOL_REQUIREMENT`.
    Requirements(Vec<FieldError>),
}

/// A validated job request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    pub requirements: Vec<ToolRequirement>,
    pub metadata: RequestMetadata,
}

/// Validates the body of `POST /jobs`. Unknown fields are ignored, so clients may send more
/// than the seed lists; known fields of the wrong type are errors.
pub fn validate_job_request(body: &Value) -> Result<JobRequest, RequestProblem> {
    let Some(object) = body.as_object() else {
        return Err(RequestProblem::Malformed(vec![FieldError::new(
            "",
            format!("the body must be a JSON object, not {}", kind(body)),
        )]));
    };

    let metadata = validate_metadata(object.get("metadata")).map_err(RequestProblem::Malformed)?;

    let mut errors = Vec::new();
    let items = match object.get("toolRequirements") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(
                "toolRequirements",
                "is required: a list of 1 to 50 requirements",
            ));
            &[][..]
        }
        Some(Value::Array(items)) => {
            if items.is_empty() {
                errors.push(FieldError::new(
                    "toolRequirements",
                    "must hold at least one requirement",
                ));
            } else if items.len() > MAX_REQUIREMENTS {
                errors.push(FieldError::new(
                    "toolRequirements",
                    format!(
                        "holds {} requirements; at most {MAX_REQUIREMENTS} are allowed per job",
                        items.len()
                    ),
                ));
            }
            &items[..]
        }
        Some(other) => {
            errors.push(FieldError::new(
                "toolRequirements",
                format!("must be a list, not {}", kind(other)),
            ));
            &[][..]
        }
    };

    let mut requirements = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate().take(MAX_REQUIREMENTS) {
        let base = format!("toolRequirements[{i}]");
        let Some(fields) = item.as_object() else {
            errors.push(FieldError::new(
                base,
                format!("must be an object, not {}", kind(item)),
            ));
            continue;
        };
        let mut text = |name: &str| -> Option<String> {
            let path = format!("{base}.{name}");
            match fields.get(name) {
                None | Some(Value::Null) => {
                    errors.push(FieldError::new(path, "is required"));
                    None
                }
                Some(Value::String(s)) if s.trim().is_empty() => {
                    errors.push(FieldError::new(path, "must not be blank"));
                    None
                }
                Some(Value::String(s)) if s.chars().count() > MAX_TEXT_CHARS => {
                    errors.push(FieldError::new(
                        path,
                        format!(
                            "is {} characters long; at most {MAX_TEXT_CHARS} are allowed",
                            s.chars().count()
                        ),
                    ));
                    None
                }
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => {
                    errors.push(FieldError::new(
                        path,
                        format!("must be a string, not {}", kind(other)),
                    ));
                    None
                }
            }
        };
        let description = text("description");
        let input = text("input");
        let output = text("output");
        if let (Some(description), Some(input), Some(output)) = (description, input, output) {
            requirements.push(ToolRequirement {
                description,
                input,
                output,
            });
        }
    }

    if errors.is_empty() {
        Ok(JobRequest {
            requirements,
            metadata,
        })
    } else {
        Err(RequestProblem::Requirements(errors))
    }
}

fn validate_metadata(value: Option<&Value>) -> Result<RequestMetadata, Vec<FieldError>> {
    let fields = match value {
        None | Some(Value::Null) => return Ok(RequestMetadata::default()),
        Some(Value::Object(fields)) => fields,
        Some(other) => {
            return Err(vec![FieldError::new(
                "metadata",
                format!("must be an object, not {}", kind(other)),
            )]);
        }
    };
    let mut errors = Vec::new();
    let mut text = |name: &str| -> Option<String> {
        let path = format!("metadata.{name}");
        match fields.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() > MAX_METADATA_CHARS => {
                errors.push(FieldError::new(
                    path,
                    format!("is longer than {MAX_METADATA_CHARS} characters"),
                ));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                errors.push(FieldError::new(
                    path,
                    format!("must be a string, not {}", kind(other)),
                ));
                None
            }
        }
    };
    let metadata = RequestMetadata {
        session_id: text("sessionId"),
        client_id: text("clientId"),
    };
    if errors.is_empty() {
        Ok(metadata)
    } else {
        Err(errors)
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn requirement() -> Value {
        json!({"description": "compute the mean", "input": "a list of numbers", "output": "the mean"})
    }

    #[track_caller]
    fn check_requirements(body: Value, expected: &[(&str, &str)]) {
        match validate_job_request(&body) {
            Err(RequestProblem::Requirements(errors)) => {
                let got: Vec<(&str, &str)> = errors
                    .iter()
                    .map(|e| (e.path.as_str(), e.message.as_str()))
                    .collect();
                assert_eq!(got.len(), expected.len(), "{got:?}");
                for ((path, msg), (want_path, want_msg)) in got.iter().zip(expected) {
                    assert_eq!(path, want_path);
                    assert!(msg.contains(want_msg), "{msg:?} lacks {want_msg:?}");
                }
            }
            other => panic!("expected requirement errors, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_validates() {
        let body = json!({"toolRequirements": [requirement()], "metadata": {"sessionId": "s1", "clientId": "web"}, "extra": 1});
        let request = validate_job_request(&body).expect("valid");
        assert_eq!(request.requirements.len(), 1);
        assert_eq!(request.requirements[0].description, "compute the mean");
        assert_eq!(request.metadata.session_id.as_deref(), Some("s1"));
        assert_eq!(request.metadata.client_id.as_deref(), Some("web"));
    }

    #[test]
    fn requirement_rules() {
        check_requirements(json!({}), &[("toolRequirements", "is required")]);
        check_requirements(
            json!({"toolRequirements": []}),
            &[("toolRequirements", "at least one")],
        );
        check_requirements(
            json!({"toolRequirements": {"a": 1}}),
            &[("toolRequirements", "must be a list")],
        );
        let many: Vec<Value> = (0..51).map(|_| requirement()).collect();
        check_requirements(
            json!({"toolRequirements": many}),
            &[("toolRequirements", "at most 50")],
        );
        check_requirements(
            json!({"toolRequirements": [{"description": "  ", "input": 3}]}),
            &[
                ("toolRequirements[0].description", "blank"),
                ("toolRequirements[0].input", "must be a string"),
                ("toolRequirements[0].output", "is required"),
            ],
        );
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        check_requirements(
            json!({"toolRequirements": [requirement(), {"description": long, "input": "i", "output": "o"}]}),
            &[("toolRequirements[1].description", "at most 10000")],
        );
        check_requirements(
            json!({"toolRequirements": ["text"]}),
            &[("toolRequirements[0]", "must be an object")],
        );
        // Exactly at the limit is fine.
        let edge = "x".repeat(MAX_TEXT_CHARS);
        let body =
            json!({"toolRequirements": [{"description": edge, "input": "i", "output": "o"}]});
        assert!(validate_job_request(&body).is_ok());
    }

    #[test]
    fn envelope_problems_are_malformed_requests() {
        for body in [
            json!([1, 2]),
            json!("text"),
            json!({"toolRequirements": [requirement()], "metadata": 5}),
            json!({"toolRequirements": [requirement()], "metadata": {"sessionId": 5}}),
        ] {
            assert!(
                matches!(
                    validate_job_request(&body),
                    Err(RequestProblem::Malformed(_))
                ),
                "{body}"
            );
        }
    }
}
