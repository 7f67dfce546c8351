//! ruff, as installed by scripts/setup.sh.

use std::path::Path;

use toolsmith_python::{Severity, lint};

fn ruff() -> std::path::PathBuf {
    let ruff = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/py/bin/ruff");
    assert!(
        ruff.exists(),
        "{} is missing: run scripts/setup.sh",
        ruff.display()
    );
    ruff
}

#[test]
fn ruff_reports_undefined_names_and_unused_imports_with_lines() {
    let code = "import os\nimport json\n\n\ndef f(x: int) -> int:\n    \"\"\"Twice.\"\"\"\n    return json.dumps(y)\n";
    let findings = lint(&ruff(), code, "tool.py").expect("ruff");
    let got: Vec<(&str, usize, Severity)> = findings
        .iter()
        .map(|f| (f.rule.as_str(), f.line, f.severity))
        .collect();
    assert_eq!(
        got,
        [("F401", 1, Severity::Warning), ("F821", 7, Severity::Error)],
        "{findings:#?}"
    );
    assert!(findings[1].message.contains("`y`"), "{findings:#?}");
}

#[test]
fn clean_code_has_no_findings_and_syntax_errors_are_reported() {
    let clean = "def f(x: int) -> int:\n    \"\"\"Twice.\"\"\"\n    return 2 * x\n";
    assert_eq!(lint(&ruff(), clean, "tool.py").expect("ruff"), []);
    let broken = lint(&ruff(), "def f(:\n", "tool.py").expect("ruff");
    assert!(
        !broken.is_empty() && broken[0].severity == Severity::Error,
        "{broken:#?}"
    );
}
