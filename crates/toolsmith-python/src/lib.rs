//! Python source work, done in Rust with a real Python parser (ruff's): nothing here runs the
//! code. SPEC §4 steps 4, 5 and 8: extracting the code from a model's answer and putting it in
//! the tool template, the static checks (syntax, security scan, spec compliance, ruff lint),
//! and the schemas derived from the spec and the signature.
//!
//! # Layout
//! - `source.rs` — [`Module`]: parsing, line numbers, the entry function's [`Signature`].
//! - `findings.rs` — [`Finding`], what every check reports (rule, line, message).
//! - `security.rs` — the security scan.
//! - `compliance.rs` — spec compliance of the entry function.
//! - `schema.rs` — Python annotations and spec types to JSON Schema 2020-12; function schemas.
//! - `template.rs` — code extraction and the tool template.
//! - `lint.rs` — ruff, run on the source (ruff is trusted; it never runs the code).

mod compliance;
mod findings;
mod lint;
mod schema;
mod security;
mod source;
mod template;

pub use compliance::{SpecParameter, check_compliance};
pub use findings::{Finding, Severity};
pub use lint::{LintError, lint};
pub use schema::{
    annotation_schema, function_schema, input_schema, output_schema, spec_type_schema,
};
pub use security::{SecurityPolicy, scan};
pub use source::{Module, Parameter, Signature, SyntaxError};
pub use template::{extract_code, render_tool};
