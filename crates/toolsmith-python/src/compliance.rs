//! Spec compliance (SPEC §4 step 5): the entry function exists, takes the spec's parameters,
//! has type hints and a docstring.

use crate::{Finding, Module};

/// A parameter as the spec declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecParameter {
    pub name: String,
    pub required: bool,
}

pub fn check_compliance(module: &Module, entry: &str, spec: &[SpecParameter]) -> Vec<Finding> {
    let Some(sig) = module.signature(entry) else {
        let defined = module.function_names();
        let hint = if defined.is_empty() {
            "no top-level function is defined".to_owned()
        } else {
            format!("top-level functions: {}", defined.join(", "))
        };
        return vec![Finding::error(
            "missing-entry-point",
            0,
            format!("the entry function `{entry}` is not defined at the top level ({hint})"),
        )];
    };
    let mut findings = Vec::new();
    let line = sig.line;
    if sig.is_async {
        findings.push(Finding::error(
            "async-entry-point",
            line,
            format!("`{entry}` must be a plain `def`, not `async def`"),
        ));
    }
    for wanted in spec {
        match sig.parameters.iter().find(|p| p.name == wanted.name) {
            None => findings.push(Finding::error(
                "missing-parameter",
                line,
                format!(
                    "`{entry}` has no parameter `{}`, which the spec declares",
                    wanted.name
                ),
            )),
            // The input schema will say it may be left out: the code must agree.
            Some(p) if !wanted.required && !p.has_default => findings.push(Finding::error(
                "optional-without-default",
                line,
                format!(
                    "`{}` is optional in the spec but has no default value",
                    p.name
                ),
            )),
            Some(_) => {}
        }
    }
    for p in &sig.parameters {
        if !p.has_default && !spec.iter().any(|s| s.name == p.name) {
            findings.push(Finding::error(
                "unexpected-parameter",
                line,
                format!("`{entry}` requires `{}`, which the spec does not declare; remove it or give it a default", p.name),
            ));
        }
        if p.annotation.is_none() {
            findings.push(Finding::error(
                "missing-type-hints",
                line,
                format!("parameter `{}` of `{entry}` has no type hint", p.name),
            ));
        }
    }
    if sig.variadic {
        findings.push(Finding::warning(
            "variadic-entry-point",
            line,
            format!("`{entry}` takes *args or **kwargs; declare each parameter"),
        ));
    }
    if sig.returns.is_none() {
        findings.push(Finding::error(
            "missing-type-hints",
            line,
            format!("`{entry}` has no return type hint"),
        ));
    }
    if sig.docstring.as_deref().is_none_or(|d| d.trim().is_empty()) {
        findings.push(Finding::error(
            "missing-docstring",
            line,
            format!("`{entry}` has no docstring"),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Vec<SpecParameter> {
        vec![
            SpecParameter {
                name: "smiles".into(),
                required: true,
            },
            SpecParameter {
                name: "precision".into(),
                required: false,
            },
        ]
    }

    #[track_caller]
    fn check(code: &str, expected: &[&str]) {
        let module = Module::parse(code).expect("parse");
        let findings = check_compliance(&module, "molecular_weight", &spec());
        let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, expected, "{findings:#?}");
    }

    #[test]
    fn compliance_rules() {
        check(
            "def molecular_weight(smiles: str, precision: int = 2) -> dict:\n    \"\"\"Weight.\"\"\"\n    return {}\n",
            &[],
        );
        check("def other(x):\n    pass\n", &["missing-entry-point"]);
        check(
            "def molecular_weight(smiles, precision=2, extra=1):\n    return {}\n",
            &[
                "missing-type-hints",
                "missing-type-hints",
                "missing-type-hints",
                "missing-type-hints",
                "missing-docstring",
            ],
        );
        check(
            "def molecular_weight(smiles: str, precision: int, flag: bool) -> dict:\n    \"\"\"W.\"\"\"\n",
            &["optional-without-default", "unexpected-parameter"],
        );
        check(
            "async def molecular_weight(mol: str) -> dict:\n    \"\"\"W.\"\"\"\n",
            &[
                "async-entry-point",
                "missing-parameter",
                "missing-parameter",
                "unexpected-parameter",
            ],
        );
    }
}
