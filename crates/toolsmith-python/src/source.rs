//! A parsed module and what the checks ask of it.

use ruff_python_ast::{Expr, ModModule, Stmt, StmtFunctionDef};
use ruff_python_parser::{Parsed, parse_module};
use ruff_text_size::{Ranged, TextRange, TextSize};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

pub struct Module {
    source: String,
    parsed: Parsed<ModModule>,
}

/// One parameter of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    /// The annotation as written, if any.
    pub annotation: Option<String>,
    pub has_default: bool,
}

/// The entry function as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub line: usize,
    pub parameters: Vec<Parameter>,
    /// `*args` or `**kwargs` present.
    pub variadic: bool,
    pub returns: Option<String>,
    pub docstring: Option<String>,
    pub is_async: bool,
}

impl Module {
    pub fn parse(source: &str) -> Result<Module, SyntaxError> {
        match parse_module(source) {
            Ok(parsed) => Ok(Module {
                source: source.to_owned(),
                parsed,
            }),
            Err(err) => {
                let (line, column) = line_column(source, err.location.start());
                Err(SyntaxError {
                    line,
                    column,
                    message: err.error.to_string(),
                })
            }
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn body(&self) -> &[Stmt] {
        &self.parsed.syntax().body
    }

    /// 1-based line of an offset.
    pub fn line(&self, offset: TextSize) -> usize {
        line_column(&self.source, offset).0
    }

    pub fn text(&self, range: TextRange) -> &str {
        &self.source[range.start().to_usize()..range.end().to_usize()]
    }

    /// The module's docstring, if it has one.
    pub fn docstring(&self) -> Option<String> {
        docstring(self.body())
    }

    /// The top-level function `name`.
    pub fn function(&self, name: &str) -> Option<&StmtFunctionDef> {
        self.body().iter().find_map(|stmt| match stmt {
            Stmt::FunctionDef(f) if f.name.as_str() == name => Some(f),
            _ => None,
        })
    }

    /// The names of the top-level functions, in order.
    pub fn function_names(&self) -> Vec<String> {
        self.body()
            .iter()
            .filter_map(|stmt| match stmt {
                Stmt::FunctionDef(f) => Some(f.name.as_str().to_owned()),
                _ => None,
            })
            .collect()
    }

    pub fn signature(&self, name: &str) -> Option<Signature> {
        let function = self.function(name)?;
        let p = &function.parameters;
        let parameters = p
            .posonlyargs
            .iter()
            .chain(&p.args)
            .chain(&p.kwonlyargs)
            .map(|arg| Parameter {
                name: arg.parameter.name.as_str().to_owned(),
                annotation: arg
                    .parameter
                    .annotation
                    .as_ref()
                    .map(|a| self.text(a.range()).to_owned()),
                has_default: arg.default.is_some(),
            })
            .collect();
        Some(Signature {
            name: name.to_owned(),
            line: self.line(function.range().start()),
            parameters,
            variadic: p.vararg.is_some() || p.kwarg.is_some(),
            returns: function
                .returns
                .as_ref()
                .map(|r| self.text(r.range()).to_owned()),
            docstring: docstring(&function.body),
            is_async: function.is_async,
        })
    }
}

fn docstring(body: &[Stmt]) -> Option<String> {
    match body.first() {
        Some(Stmt::Expr(expr)) => match expr.value.as_ref() {
            Expr::StringLiteral(s) => Some(s.value.to_str().to_owned()),
            _ => None,
        },
        _ => None,
    }
}

fn line_column(source: &str, offset: TextSize) -> (usize, usize) {
    let offset = offset.to_usize().min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = offset - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_have_a_line() {
        let err = Module::parse("def f(x):\n    return x +\n")
            .err()
            .expect("syntax error");
        assert_eq!(err.line, 2, "{err}");
        assert!(Module::parse("x = 1\n").is_ok());
    }

    #[test]
    fn signatures_as_declared() {
        let module = Module::parse(
            "\"\"\"Mod.\"\"\"\nfrom typing import Optional\n\n\
             def mean(values: list[float], *, places: Optional[int] = None) -> float:\n    \"\"\"The mean.\"\"\"\n    return 0.0\n\n\
             async def other(x, *rest, **kw):\n    pass\n",
        )
        .expect("parse");
        assert_eq!(module.docstring().as_deref(), Some("Mod."));
        let sig = module.signature("mean").expect("mean");
        assert_eq!(sig.line, 4);
        assert_eq!(sig.returns.as_deref(), Some("float"));
        assert_eq!(sig.docstring.as_deref(), Some("The mean."));
        assert_eq!(
            sig.parameters,
            vec![
                Parameter {
                    name: "values".into(),
                    annotation: Some("list[float]".into()),
                    has_default: false
                },
                Parameter {
                    name: "places".into(),
                    annotation: Some("Optional[int]".into()),
                    has_default: true
                },
            ]
        );
        let other = module.signature("other").expect("other");
        assert!(other.is_async && other.variadic && other.docstring.is_none());
        assert_eq!(module.function_names(), ["mean", "other"]);
        assert!(module.signature("missing").is_none());
    }
}
