//! Verdicts, and how far the code under test can bend them.
//!
//! Tests and spec cases run through the service's own harness (`harness/`, mounted read-only
//! at `/harness`), which streams results over the run's report channel: a pipe the service
//! reads, each line tagged with a nonce the harness takes before any of the run's code is
//! imported. Nothing is read back from files the run could rewrite; the run's conftest and
//! ini files are ignored, plugins it registers are reported, its files cannot shadow the
//! harness or pytest (`PYTHONSAFEPATH`), and the exit status comes from the sandbox's init.
//! A pytest verdict needs all of it to agree — as many results as tests collected, a
//! `finished` record, exit status 0, no limit hit — so a test or tool that exits early
//! (`os._exit(0)`), plants a conftest or pytest plugin, prints fake result lines or rewrites
//! report files fails.
//!
//! What this cannot stop: pytest and the tool share a Python process, so code written to
//! attack the harness itself (patching pytest's reporting objects, digging the nonce out of
//! memory) can fake a pytest pass. The spec-case verdict does not have that weakness: the
//! expected outputs never enter the sandbox ([`cases_harness`] strips them) and the service
//! compares the results itself ([`json_matches`]), so the only way to pass a case is to
//! return the right value. Accept a tool on its cases; treat its pytest run as evidence.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::RunResult;

const PLUGIN: &[u8] = include_bytes!("../harness/toolsmith_report.py");
const CASES: &[u8] = include_bytes!("../harness/toolsmith_cases.py");
const PYTEST_INI: &[u8] = include_bytes!("../harness/pytest.ini");

/// The harness files, for `RunSpec::harness`.
pub fn harness_files() -> Vec<(PathBuf, Vec<u8>)> {
    vec![
        ("toolsmith_report.py".into(), PLUGIN.to_vec()),
        ("toolsmith_cases.py".into(), CASES.to_vec()),
        ("pytest.ini".into(), PYTEST_INI.to_vec()),
    ]
}

/// `argv` that runs pytest on `test_files` with the reporting plugin, ignoring the run's own
/// conftest and ini files.
pub fn pytest_program(test_files: &[PathBuf]) -> Vec<String> {
    let mut argv: Vec<String> = [
        "python",
        "-m",
        "pytest",
        "-p",
        "toolsmith_report",
        "--noconftest",
        "-c",
        "/harness/pytest.ini",
        "--rootdir",
        "/work",
        "-q",
        "--no-header",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    argv.extend(test_files.iter().map(|f| f.display().to_string()));
    argv
}

/// The environment pytest runs with: the harness importable, the working directory not on
/// the import path until pytest puts it there for collection (so a staged `pytest.py` or
/// `toolsmith_report.py` shadows nothing), no plugin auto-loading (a dependency could bring
/// one).
pub fn pytest_env() -> Vec<(String, String)> {
    vec![
        ("PYTHONPATH".into(), "/harness".into()),
        ("PYTHONSAFEPATH".into(), "1".into()),
        ("PYTEST_DISABLE_PLUGIN_AUTOLOAD".into(), "1".into()),
    ]
}

/// The environment the case runner runs with.
pub fn cases_env() -> Vec<(String, String)> {
    vec![("PYTHONSAFEPATH".into(), "1".into())]
}

/// `argv` that runs `module.function` on the cases in the harness's `cases.json`.
pub fn cases_program(module: &str, function: &str) -> Vec<String> {
    [
        "python",
        "/harness/toolsmith_cases.py",
        module,
        function,
        "/harness/cases.json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// The harness files plus the cases, reduced to `[{name, input}]`: expected outputs never
/// enter the sandbox.
pub fn cases_harness(cases: &Value) -> Vec<(PathBuf, Vec<u8>)> {
    let reduced: Vec<Value> = cases
        .as_array()
        .map(|cases| {
            cases
                .iter()
                .map(|case| {
                    serde_json::json!({
                        "name": case.get("name").cloned().unwrap_or(Value::Null),
                        "input": case.get("input").cloned().unwrap_or_else(|| serde_json::json!({})),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut files = harness_files();
    files.push((
        "cases.json".into(),
        Value::Array(reduced).to_string().into_bytes(),
    ));
    files
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub id: String,
    /// `passed`, `failed` or `skipped`.
    pub outcome: String,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestVerdict {
    pub passed: bool,
    pub collected: usize,
    pub outcomes: Vec<TestOutcome>,
    /// Why the run cannot be trusted or did not finish, beyond failing tests.
    pub problems: Vec<String>,
}

impl TestVerdict {
    pub fn failures(&self) -> impl Iterator<Item = &TestOutcome> {
        self.outcomes.iter().filter(|o| o.outcome == "failed")
    }
}

fn text(event: &Value, key: &str) -> String {
    event
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Judges a pytest run made with [`pytest_program`] and a report channel.
pub fn pytest_verdict(run: &RunResult) -> TestVerdict {
    let mut problems = Vec::new();
    let mut collected: Option<Vec<String>> = None;
    let mut outcomes = Vec::new();
    let mut finished: Option<i64> = None;
    for event in &run.report {
        match event.get("kind").and_then(Value::as_str) {
            Some("collected") if collected.is_none() => {
                let ids = event
                    .get("ids")
                    .and_then(Value::as_array)
                    .map(|ids| {
                        ids.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                collected = Some(ids);
            }
            Some("test") => outcomes.push(TestOutcome {
                id: text(event, "id"),
                outcome: text(event, "outcome"),
                message: event
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }),
            Some("collect_error") => problems.push(format!(
                "could not collect {}: {}",
                text(event, "id"),
                text(event, "message")
            )),
            Some("plugin") => problems.push(format!(
                "the run's own code registered a pytest plugin ({}); its verdict cannot be trusted",
                text(event, "name")
            )),
            Some("teardown") => problems.push(format!(
                "teardown of {} failed: {}",
                text(event, "id"),
                text(event, "message")
            )),
            Some("finished") if finished.is_none() => {
                finished = event.get("exitstatus").and_then(Value::as_i64);
            }
            _ => problems.push(format!("unexpected report line {event}")),
        }
    }
    let collected = collected.unwrap_or_default();
    if collected.is_empty() {
        problems.push("no test was collected".to_owned());
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for outcome in &outcomes {
        *seen.entry(outcome.id.as_str()).or_default() += 1;
    }
    let each_once = collected.iter().all(|id| seen.get(id.as_str()) == Some(&1))
        && outcomes.len() == collected.len();
    if !each_once {
        problems.push(format!(
            "{} tests were collected but {} results were reported: the run ended early (os._exit, a crash or a limit) or reported twice",
            collected.len(),
            outcomes.len()
        ));
    }
    if finished.is_none() {
        problems.push("pytest did not finish: the run ended before its session did".to_owned());
    }
    if let Some(limit) = run.limit_hit {
        problems.push(format!("the run hit a limit: {limit:?}"));
    }
    let all_passed = !outcomes.is_empty() && outcomes.iter().all(|o| o.outcome != "failed");
    match (run.exit_code, finished) {
        (Some(code), Some(status)) if i64::from(code) == status => {}
        (code, status) => problems.push(format!(
            "the program's exit status ({code:?}, signal {:?}) does not match pytest's ({status:?})",
            run.signal
        )),
    }
    if all_passed && run.exit_code != Some(0) {
        problems.push("every test passed but pytest did not exit 0".to_owned());
    }
    TestVerdict {
        passed: problems.is_empty() && all_passed && run.exit_code == Some(0),
        collected: collected.len(),
        outcomes,
        problems,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CaseOutcome {
    Returned { name: String, result: Value },
    Raised { name: String, error: String },
}

/// The outcome of each case of a run made with [`cases_program`], in order; an error when the
/// run did not get through all `expected` cases.
pub fn case_outcomes(run: &RunResult, expected: usize) -> Result<Vec<CaseOutcome>, String> {
    let mut outcomes = Vec::new();
    let mut started = false;
    let mut finished = false;
    for event in &run.report {
        match event.get("kind").and_then(Value::as_str) {
            Some("started") => started = true,
            Some("import_error") => {
                return Err(format!(
                    "the tool could not be imported: {}",
                    text(event, "error")
                ));
            }
            Some("case") if event.get("ok") == Some(&Value::Bool(true)) => {
                outcomes.push(CaseOutcome::Returned {
                    name: text(event, "name"),
                    result: event.get("result").cloned().unwrap_or(Value::Null),
                });
            }
            Some("case") => outcomes.push(CaseOutcome::Raised {
                name: text(event, "name"),
                error: text(event, "error"),
            }),
            Some("finished") => finished = true,
            _ => return Err(format!("unexpected report line {event}")),
        }
    }
    if !started || !finished || outcomes.len() != expected {
        let why = match run.limit_hit {
            Some(limit) => format!(" (limit hit: {limit:?})"),
            None => String::new(),
        };
        return Err(format!(
            "the cases did not run to the end: {} of {expected} reported{why}; exit {:?}, signal {:?}",
            outcomes.len(),
            run.exit_code,
            run.signal
        ));
    }
    Ok(outcomes)
}

/// Whether a result matches the expected JSON: numbers compare with a relative tolerance of
/// 1e-6 (an integer equals the same float), objects by keys, arrays in order.
pub fn json_matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-12),
            _ => a == b,
        },
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_matches(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| json_matches(v, w)))
        }
        _ => expected == actual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_matching() {
        assert!(json_matches(&json!(180.16), &json!(180.160_000_1)));
        assert!(!json_matches(&json!(180.16), &json!(180.159)));
        assert!(json_matches(&json!(2), &json!(2.0)));
        assert!(!json_matches(&json!(2), &json!(2.1)));
        assert!(json_matches(
            &json!({"a": [1, {"b": 0.1}]}),
            &json!({"a": [1, {"b": 0.1000000001}]})
        ));
        assert!(!json_matches(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_matches(&json!([1, 2]), &json!([2, 1])));
        assert!(!json_matches(&json!("1"), &json!(1)));
        assert!(json_matches(&json!(null), &json!(null)));
    }
}
