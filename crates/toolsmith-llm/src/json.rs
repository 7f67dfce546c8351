//! Getting the JSON object out of a model's text: code fences and prose around it are
//! tolerated; anything else that is not JSON (trailing commas, comments, truncation) is an
//! error whose message goes back to the model in a repair request.

use serde_json::Value;

/// The JSON object in `text`.
pub fn extract_json(text: &str) -> Result<Value, String> {
    // The answer as it is first: a JSON string inside it may well contain a code fence.
    if let Ok(value) = serde_json::from_str::<Value>(text.trim()) {
        return object(value);
    }
    let trimmed = strip_fences(text.trim());
    let first_error = match serde_json::from_str::<Value>(trimmed) {
        Ok(value) => return object(value),
        Err(err) => err.to_string(),
    };
    match balanced_object(trimmed) {
        Some(candidate) if candidate.len() < trimmed.len() => {
            serde_json::from_str::<Value>(candidate)
                .map_err(|err| format!("invalid JSON: {err}"))
                .and_then(object)
        }
        _ => Err(format!("invalid JSON: {first_error}")),
    }
}

fn object(value: Value) -> Result<Value, String> {
    if value.is_object() {
        Ok(value)
    } else {
        Err("expected a JSON object, got another JSON value".to_owned())
    }
}

fn strip_fences(text: &str) -> &str {
    let Some(start) = text.find("```") else {
        return text;
    };
    let after = &text[start + 3..];
    // Skip the info string (```json).
    let body_start = after.find('\n').map(|i| i + 1).unwrap_or(0);
    let body = &after[body_start..];
    match body.rfind("```") {
        Some(end) => body[..end].trim(),
        None => body.trim(),
    }
}

/// The first `{ … }` span whose braces balance, skipping braces inside strings.
fn balanced_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text[start..].char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Validates `value` against `schema`; the errors, each with its JSON path, or `Ok`.
pub fn validate(schema: &Value, value: &Value) -> Result<(), Vec<String>> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|err| vec![format!("the schema itself is invalid: {err}")])?;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check(text: &str, expected: Result<Value, &str>) {
        match (extract_json(text), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(got), Err(want)) => assert!(got.contains(want), "{got:?} lacks {want:?}"),
            (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn extraction() {
        check(r#"{"a": 1}"#, Ok(json!({"a": 1})));
        check("```json\n{\"a\": 1}\n```", Ok(json!({"a": 1})));
        check("```\n{\"a\": 1}\n```\nDone.", Ok(json!({"a": 1})));
        check(
            "Here it is:\n{\"a\": {\"b\": \"}\"}}\nHope this helps",
            Ok(json!({"a": {"b": "}"}})),
        );
        check("{\"a\": 1,}", Err("trailing comma"));
        check("{\"a\": ", Err("invalid JSON"));
        check("no json here", Err("invalid JSON"));
        check("[1, 2]", Err("expected a JSON object"));
        check(
            "{\"code\": \"```python\\ndef f(): pass\\n```\"}",
            Ok(json!({"code": "```python\ndef f(): pass\n```"})),
        );
    }

    #[test]
    fn validation_reports_paths() {
        let schema = json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}, "b": {"type": "array", "items": {"type": "string"}}}});
        assert!(validate(&schema, &json!({"a": 1, "b": ["x"]})).is_ok());
        let errors = validate(&schema, &json!({"b": ["x", 2]})).expect_err("invalid");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("\"a\" is a required property")),
            "{errors:?}"
        );
        assert!(errors.iter().any(|e| e.starts_with("/b/1")), "{errors:?}");
    }
}
