//! Getting the code out of a model's answer, and the tool template (seed 002 "Python Code
//! Structure"): a module docstring header naming the tool, its description and dependencies.

/// The code in a model's answer: the first fenced block (```python or plain ```), or the
/// whole text when there is no fence.
pub fn extract_code(text: &str) -> String {
    // Code that parses as it is stays as it is (it may well contain ``` in a string).
    if crate::Module::parse(text).is_ok() {
        return text.trim().to_owned() + "\n";
    }
    let Some(start) = text.find("```") else {
        return text.trim().to_owned() + "\n";
    };
    let after = &text[start + 3..];
    let body_start = after.find('\n').map(|i| i + 1).unwrap_or(after.len());
    let body = &after[body_start..];
    let end = body
        .find("\n```")
        .map(|i| i + 1)
        .or_else(|| body.rfind("```"))
        .unwrap_or(body.len());
    body[..end].trim_end().to_owned() + "\n"
}

/// The tool file: the header docstring, then the code without a module docstring of its own.
pub fn render_tool(title: &str, description: &str, dependencies: &[String], code: &str) -> String {
    let clean = |s: &str| s.replace("\"\"\"", "'''").replace('\\', "\\\\");
    let dependencies = if dependencies.is_empty() {
        "none (standard library only)".to_owned()
    } else {
        dependencies.join(", ")
    };
    let body = strip_module_docstring(code);
    format!(
        "\"\"\"\nGenerated Tool: {}\nDescription: {}\nDependencies: {}\n\"\"\"\n\n{}",
        clean(title.trim()),
        clean(description.trim()),
        clean(&dependencies),
        body.trim_start_matches('\n')
    )
}

fn strip_module_docstring(code: &str) -> String {
    let module = match crate::Module::parse(code) {
        Ok(module) => module,
        Err(_) => return code.to_owned(),
    };
    match module.body().first() {
        Some(ruff_python_ast::Stmt::Expr(expr))
            if matches!(expr.value.as_ref(), ruff_python_ast::Expr::StringLiteral(_)) =>
        {
            let end = ruff_text_size::Ranged::range(expr).end().to_usize();
            code[end..].to_owned()
        }
        _ => code.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_extraction() {
        assert_eq!(
            extract_code("```python\ndef f():\n    pass\n```\nDone."),
            "def f():\n    pass\n"
        );
        assert_eq!(extract_code("Here:\n```\nx = 1\n```"), "x = 1\n");
        assert_eq!(extract_code("x = 1"), "x = 1\n");
        assert_eq!(extract_code("```py\nx = '```'\n```"), "x = '```'\n");
        // Unfenced code with a fence inside a string is kept whole.
        assert_eq!(
            extract_code("FENCE = '```'\nx = 1\n"),
            "FENCE = '```'\nx = 1\n"
        );
    }

    #[test]
    fn the_template_replaces_a_module_docstring() {
        let code = "\"\"\"Old docstring.\"\"\"\nimport math\n\n\ndef f(x: float) -> float:\n    \"\"\"Root.\"\"\"\n    return math.sqrt(x)\n";
        let tool = render_tool("Square Root", "Takes a \"\"\"root\"\"\"", &[], code);
        assert!(tool.starts_with("\"\"\"\nGenerated Tool: Square Root\nDescription: Takes a '''root'''\nDependencies: none (standard library only)\n\"\"\"\n\n"), "{tool}");
        assert!(!tool.contains("Old docstring"));
        assert!(tool.ends_with("return math.sqrt(x)\n"));
        let parsed = crate::Module::parse(&tool).expect("still Python");
        assert!(
            parsed
                .docstring()
                .is_some_and(|d| d.contains("Generated Tool"))
        );
        let with_deps = render_tool("T", "D", &["rdkit".into(), "numpy>=2".into()], "x = 1\n");
        assert!(with_deps.contains("Dependencies: rdkit, numpy>=2\n"));
    }
}
