//! Verdicts from the service's harness: honest results pass, and the usual ways of faking a
//! pass (exiting early, planting a conftest, forging report lines) do not.

use std::path::PathBuf;

use serde_json::json;
use toolsmith_sandbox::verdict::{
    CaseOutcome, TestVerdict, case_outcomes, cases_env, cases_harness, cases_program,
    harness_files, json_matches, pytest_env, pytest_program, pytest_verdict,
};
use toolsmith_sandbox::{RunResult, RunSpec};

use crate::sandbox::{TestSandbox, limits, python_env, sandbox};

const TOOL: &str = "def double(x: int) -> int:\n    \"\"\"Twice x.\"\"\"\n    return 2 * x\n";

fn pytest(
    sandbox: &TestSandbox,
    tool: &str,
    tests: &str,
    extra: &[(&str, &str)],
) -> (RunResult, TestVerdict) {
    let mut files = vec![
        (PathBuf::from("double.py"), tool.as_bytes().to_vec()),
        (PathBuf::from("test_double.py"), tests.as_bytes().to_vec()),
    ];
    files.extend(
        extra
            .iter()
            .map(|(n, c)| (PathBuf::from(n), c.as_bytes().to_vec())),
    );
    let run = sandbox
        .sandbox
        .run(&RunSpec {
            program: pytest_program(&[PathBuf::from("test_double.py")]),
            files,
            env: pytest_env(),
            python_env: python_env(),
            harness: harness_files(),
            report: true,
            limits: limits(),
        })
        .expect("run");
    let verdict = pytest_verdict(&run);
    (run, verdict)
}

const PASSING: &str = "from double import double\n\ndef test_two():\n    assert double(2) == 4\n\ndef test_zero():\n    assert double(0) == 0\n";
const FAILING: &str = "from double import double\n\ndef test_two():\n    assert double(2) == 4\n\ndef test_wrong():\n    assert double(3) == 7\n";

#[test]
fn honest_results_pass_and_fail_as_they_are() {
    let sandbox = sandbox(62_200);
    let (run, verdict) = pytest(&sandbox, TOOL, PASSING, &[]);
    assert!(verdict.passed, "{verdict:#?}\n{run:#?}");
    assert_eq!(verdict.collected, 2);
    assert!(verdict.problems.is_empty());

    let (run, verdict) = pytest(&sandbox, TOOL, FAILING, &[]);
    assert!(!verdict.passed, "{run:#?}");
    assert!(
        verdict.problems.is_empty(),
        "a plain failure is no problem: {verdict:#?}"
    );
    let failures: Vec<&str> = verdict.failures().map(|f| f.id.as_str()).collect();
    assert_eq!(failures, ["test_double.py::test_wrong"]);
    let message = verdict
        .failures()
        .next()
        .and_then(|f| f.message.clone())
        .unwrap_or_default();
    assert!(message.contains("assert 6 == 7"), "{message}");
}

#[test]
fn exiting_early_with_status_zero_fails() {
    let sandbox = sandbox(62_300);
    let tests = "import os\nfrom double import double\n\ndef test_two():\n    assert double(2) == 4\n\ndef test_wrong():\n    os._exit(0)\n    assert double(3) == 7\n";
    let (run, verdict) = pytest(&sandbox, TOOL, tests, &[]);
    assert_eq!(
        run.exit_code,
        Some(0),
        "the exit status alone would say passed"
    );
    assert!(!verdict.passed, "{verdict:#?}");
    assert!(
        verdict
            .problems
            .iter()
            .any(|p| p.contains("did not finish")),
        "{verdict:#?}"
    );

    // The same from the tool at import time.
    let tool = format!("import os\nos._exit(0)\n{TOOL}");
    let (_, verdict) = pytest(&sandbox, &tool, PASSING, &[]);
    assert!(!verdict.passed && verdict.collected == 0, "{verdict:#?}");
}

#[test]
fn planted_conftest_and_ini_files_are_ignored() {
    let sandbox = sandbox(62_400);
    let conftest = "import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n    outcome = yield\n    outcome.get_result().outcome = 'passed'\n";
    let pyproject =
        "[tool.pytest.ini_options]\naddopts = \"-p no:toolsmith_report --collect-only\"\n";
    let (run, verdict) = pytest(
        &sandbox,
        TOOL,
        FAILING,
        &[
            ("conftest.py", conftest),
            ("pyproject.toml", pyproject),
            ("pytest.ini", "[pytest]\naddopts = --collect-only\n"),
        ],
    );
    assert!(!verdict.passed, "{run:#?}");
    assert_eq!(verdict.failures().count(), 1, "{verdict:#?}");
}

#[test]
fn forged_report_lines_and_files_are_ignored() {
    let sandbox = sandbox(62_500);
    let tool = format!(
        "import os\n\
         for fd in (4, 5, 6):\n\
         \x20   try:\n\
         \x20       os.write(fd, b'{{\"kind\": \"finished\", \"exitstatus\": 0}}\\n')\n\
         \x20       os.write(fd, b'0000 {{\"kind\": \"test\", \"id\": \"test_double.py::test_wrong\", \"outcome\": \"passed\"}}\\n')\n\
         \x20   except OSError:\n\
         \x20       pass\n\
         try:\n\
         \x20   print('nonce left:', repr(os.read(5, 100)))\n\
         except OSError as err:\n\
         \x20   print('no nonce:', err)\n\
         open('report.json', 'w').write('{{\"passed\": true}}')\n\
         open('junit.xml', 'w').write('<testsuite failures=\"0\"/>')\n\
         {TOOL}"
    );
    let (run, verdict) = pytest(&sandbox, &tool, FAILING, &[]);
    assert!(!verdict.passed, "{run:#?}");
    assert!(
        verdict.problems.is_empty(),
        "forged lines are simply not seen: {verdict:#?}"
    );
    assert_eq!(verdict.outcomes.len(), 2, "{verdict:#?}");
    assert_eq!(verdict.failures().count(), 1);
}

fn cases(sandbox: &TestSandbox, tool: &str, cases: serde_json::Value) -> RunResult {
    sandbox
        .sandbox
        .run(&RunSpec {
            program: cases_program("double", "double"),
            files: vec![(PathBuf::from("double.py"), tool.as_bytes().to_vec())],
            env: cases_env(),
            python_env: python_env(),
            harness: cases_harness(&cases),
            report: true,
            limits: limits(),
        })
        .expect("run")
}

#[test]
fn spec_cases_report_what_the_tool_returned_and_the_service_compares() {
    let sandbox = sandbox(62_600);
    let tool = "def double(x):\n    if x == 'boom':\n        raise ValueError('no')\n    if x == 'set':\n        return {1, 2}\n    print('{\"kind\": \"case\", \"ok\": true, \"result\": 999}')\n    return 2 * x\n";
    let run = cases(
        &sandbox,
        tool,
        json!([
            {"name": "two", "input": {"x": 2}},
            {"name": "float", "input": {"x": 0.5}},
            {"name": "boom", "input": {"x": "boom"}},
            {"name": "set", "input": {"x": "set"}}
        ]),
    );
    let outcomes = case_outcomes(&run, 4).expect("outcomes");
    assert_eq!(
        outcomes[0],
        CaseOutcome::Returned {
            name: "two".into(),
            result: json!(4)
        }
    );
    match &outcomes[1] {
        CaseOutcome::Returned { result, .. } => assert!(json_matches(&json!(1.0), result)),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&outcomes[2], CaseOutcome::Raised { error, .. } if error == "ValueError: no"),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[3], CaseOutcome::Raised { error, .. } if error.contains("not JSON")),
        "{outcomes:?}"
    );

    let quitter =
        "import os\ndef double(x):\n    if x == 3:\n        os._exit(0)\n    return 2 * x\n";
    let run = cases(
        &sandbox,
        quitter,
        json!([{"name": "a", "input": {"x": 1}}, {"name": "b", "input": {"x": 3}}]),
    );
    assert_eq!(run.exit_code, Some(0));
    let err = case_outcomes(&run, 2).expect_err("incomplete");
    assert!(err.contains("1 of 2"), "{err}");

    let broken = cases(
        &sandbox,
        "import nonexistent_module\n",
        json!([{"name": "a", "input": {"x": 1}}]),
    );
    let err = case_outcomes(&broken, 1).expect_err("import error");
    assert!(err.contains("ModuleNotFoundError"), "{err}");
}

#[test]
fn staged_modules_cannot_shadow_pytest_or_the_harness_and_run_plugins_are_distrusted() {
    let sandbox = sandbox(62_900);
    // A forged plugin and a fake pytest, staged next to the tests.
    let fake_plugin = "import os\nos.write(1, b'fake plugin loaded')\n";
    let fake_pytest = "import sys\nprint('fake pytest')\nsys.exit(0)\n";
    let (run, verdict) = pytest(
        &sandbox,
        TOOL,
        FAILING,
        &[
            ("toolsmith_report.py", fake_plugin),
            ("pytest.py", fake_pytest),
        ],
    );
    assert!(!run.stdout.contains("fake"), "{run:#?}");
    assert!(!verdict.passed);
    assert_eq!(verdict.failures().count(), 1, "{verdict:#?}");

    // A test module that brings its own plugin to turn failures into passes.
    let evil_plugin = "import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n    outcome = yield\n    outcome.get_result().outcome = 'passed'\n";
    let tests = format!("pytest_plugins = ['evil_plugin']\n{FAILING}");
    let (run, verdict) = pytest(&sandbox, TOOL, &tests, &[("evil_plugin.py", evil_plugin)]);
    assert!(!verdict.passed, "{run:#?}\n{verdict:#?}");
    assert!(
        verdict
            .problems
            .iter()
            .any(|p| p.contains("registered a pytest plugin"))
            || verdict.failures().count() == 1,
        "{verdict:#?}"
    );
}

#[test]
fn expected_outputs_never_enter_the_sandbox() {
    let sandbox = sandbox(63_000);
    let tool = "import json\ndef double(x):\n    return json.load(open('/harness/cases.json'))\n";
    let run = cases(
        &sandbox,
        tool,
        json!([{"name": "two", "input": {"x": 2}, "expectedOutput": 4, "description": "secret"}]),
    );
    let outcomes = case_outcomes(&run, 1).expect("outcomes");
    let CaseOutcome::Returned { result, .. } = &outcomes[0] else {
        panic!("{outcomes:?}");
    };
    assert_eq!(result, &json!([{"name": "two", "input": {"x": 2}}]));
}
