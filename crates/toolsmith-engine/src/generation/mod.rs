//! The generation workflow (SPEC §4): a requirement becomes a registered tool.
//!
//! Each phase reads and writes [`State`], which the engine saves after every phase, so a run
//! resumed after a crash picks up where it stopped. `testing` runs every check; when they pass
//! it jumps to `validation`, otherwise `fixing` asks the model for fixes and checks again, up to
//! the configured number of iterations. A tool is accepted only when its static checks, its
//! pytest run and its spec cases all pass; the spec cases are judged in Rust against expected
//! outputs that never enter the sandbox.

mod prompts;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use toolsmith_domain::{ErrorCode, Phase};
use toolsmith_llm::{CallContext, Llm, LlmError, StructuredPhase};
use toolsmith_python::{
    Finding, Module, SecurityPolicy, Severity, SpecParameter, check_compliance, extract_code,
    function_schema, input_schema, lint, output_schema, render_tool, scan,
};
use toolsmith_sandbox::envs::{EnvError, EnvManager};
use toolsmith_sandbox::verdict::{
    CaseOutcome, case_outcomes, cases_env, cases_harness, cases_program, harness_files,
    json_matches, pytest_env, pytest_program, pytest_verdict,
};
use toolsmith_sandbox::{LimitHit, Limits, RunResult, RunSpec, Sandbox};
use toolsmith_store::{LogLevel, NewGenerationLog, Store, ToolDraft, ToolOutcome};

use crate::workflow::{PhaseContext, PhaseOutcome, RequirementError, Workflow};

#[derive(Debug, Clone)]
pub struct GenerationConfig {
    /// Fix iterations before a requirement fails (`TOOLSMITH_MAX_FIX_ITERATIONS`).
    pub max_fix_iterations: u32,
    /// Limits of every test and case run.
    pub limits: Limits,
    /// The ruff binary.
    pub ruff: PathBuf,
}

pub struct GenerationWorkflow {
    llm: Arc<Llm>,
    sandbox: Arc<Sandbox>,
    envs: Arc<EnvManager>,
    store: Arc<dyn Store>,
    config: GenerationConfig,
}

/// What the phases of one requirement have produced so far (the engine's checkpoint).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct State {
    spec: Option<Value>,
    plan: Option<Value>,
    /// The model for the code phases (a cheaper one for low-complexity plans).
    model: Option<String>,
    examples: Vec<Value>,
    /// A registered tool that already does the job.
    reuse: Option<String>,
    code: Option<String>,
    dependencies: Vec<String>,
    test_code: Option<String>,
    /// What the last checks said, for the fix prompt.
    failure: Option<String>,
    iterations: u32,
    input_schema: Option<Value>,
    output_schema: Option<Value>,
}

/// Modules of the standard library a model may list as "dependencies" by mistake.
const STDLIB: &[&str] = &[
    "abc",
    "argparse",
    "array",
    "ast",
    "asyncio",
    "base64",
    "binascii",
    "bisect",
    "builtins",
    "bz2",
    "calendar",
    "cmath",
    "codecs",
    "collections",
    "colorsys",
    "concurrent",
    "contextlib",
    "copy",
    "csv",
    "ctypes",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "email",
    "enum",
    "errno",
    "fnmatch",
    "fractions",
    "functools",
    "gc",
    "getpass",
    "gettext",
    "glob",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "http",
    "importlib",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "keyword",
    "locale",
    "logging",
    "lzma",
    "math",
    "mimetypes",
    "multiprocessing",
    "numbers",
    "operator",
    "os",
    "pathlib",
    "pickle",
    "platform",
    "pprint",
    "queue",
    "random",
    "re",
    "secrets",
    "shelve",
    "shlex",
    "shutil",
    "signal",
    "socket",
    "sqlite3",
    "ssl",
    "statistics",
    "string",
    "struct",
    "subprocess",
    "sys",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "time",
    "timeit",
    "tomllib",
    "traceback",
    "types",
    "typing",
    "unicodedata",
    "unittest",
    "urllib",
    "uuid",
    "warnings",
    "weakref",
    "xml",
    "zipfile",
    "zlib",
    "zoneinfo",
];

fn ai_error(err: LlmError) -> RequirementError {
    RequirementError::new(err.code(), err.to_string())
}

fn state_of(ctx: &PhaseContext) -> Result<State, RequirementError> {
    if ctx.checkpoint.is_null() || ctx.checkpoint == json!({}) {
        return Ok(State::default());
    }
    serde_json::from_value(ctx.checkpoint.clone()).map_err(|err| {
        RequirementError::new(
            ErrorCode::InternalError,
            format!("the saved state of this requirement is unreadable: {err}"),
        )
    })
}

fn save(ctx: &mut PhaseContext, state: &State) {
    ctx.checkpoint = serde_json::to_value(state).unwrap_or(Value::Null);
}

fn call_context(ctx: &PhaseContext, state: &State) -> CallContext {
    CallContext {
        job_id: Some(ctx.job_id.clone()),
        session_id: Some(ctx.session_id.clone()),
        requirement_index: Some(ctx.index),
        model: state.model.clone(),
    }
}

fn tool_name(state: &State) -> String {
    state
        .spec
        .as_ref()
        .and_then(|s| s["toolName"].as_str())
        .unwrap_or("tool")
        .to_owned()
}

fn spec_parameters(spec: &Value) -> Vec<(SpecParameter, String, String)> {
    spec["inputParameters"]
        .as_array()
        .map(|params| {
            params
                .iter()
                .filter_map(|p| {
                    Some((
                        SpecParameter {
                            name: p["name"].as_str()?.to_owned(),
                            required: p["required"].as_bool().unwrap_or(true),
                        },
                        p["type"].as_str().unwrap_or("").to_owned(),
                        p["description"].as_str().unwrap_or("").to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Dependencies as installable requirements: standard-library names dropped, each validated.
fn clean_dependencies(declared: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = declared
        .iter()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter(|d| {
            // `collections.abc`, `urllib.parse`: the top-level module decides.
            let name = d
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .next()
                .unwrap_or("");
            !STDLIB.contains(&name.to_ascii_lowercase().as_str())
        })
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// How one round of checks went.
struct Checked {
    passed: bool,
    /// For the model: every problem, with lines, test names and values.
    failure: String,
}

impl GenerationWorkflow {
    pub fn new(
        llm: Arc<Llm>,
        sandbox: Arc<Sandbox>,
        envs: Arc<EnvManager>,
        store: Arc<dyn Store>,
        config: GenerationConfig,
    ) -> Self {
        GenerationWorkflow {
            llm,
            sandbox,
            envs,
            store,
            config,
        }
    }

    async fn specification(
        &self,
        ctx: &mut PhaseContext,
        state: &mut State,
    ) -> Result<PhaseOutcome, RequirementError> {
        let reply = self
            .llm
            .complete_structured(
                &call_context(ctx, state),
                StructuredPhase::Specification,
                prompts::specification(&ctx.requirement),
            )
            .await
            .map_err(ai_error)?;
        if let Some(reason) = reply
            .value
            .get("insufficientReason")
            .and_then(Value::as_str)
        {
            return Err(RequirementError::new(
                ErrorCode::InsufficientApiSpecs,
                format!("the requirement is too vague to specify: {reason}"),
            ));
        }
        ctx.tool_name = reply.value["toolName"].as_str().map(str::to_owned);
        state.dependencies = clean_dependencies(
            reply.value["dependencies"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        );
        state.spec = Some(reply.value);
        Ok(PhaseOutcome::Next)
    }

    async fn planning(
        &self,
        ctx: &mut PhaseContext,
        state: &mut State,
    ) -> Result<PhaseOutcome, RequirementError> {
        let spec = state.spec.clone().unwrap_or_default();
        let reply = self
            .llm
            .complete_structured(
                &call_context(ctx, state),
                StructuredPhase::Plan,
                prompts::plan(&spec),
            )
            .await
            .map_err(ai_error)?;
        let complexity = reply.value["estimatedComplexity"]
            .as_str()
            .unwrap_or("medium");
        state.model = Some(self.llm.model_for_complexity(complexity).to_owned());
        state.plan = Some(reply.value);
        Ok(PhaseOutcome::Next)
    }

    /// A registered tool of the same name whose current version passes this spec's cases is
    /// reused; otherwise the user's most similar tools become examples.
    async fn searching(
        &self,
        ctx: &mut PhaseContext,
        state: &mut State,
    ) -> Result<PhaseOutcome, RequirementError> {
        let name = tool_name(state);
        let spec = state.spec.clone().unwrap_or_default();
        let internal = |e: toolsmith_store::StoreError| {
            RequirementError::new(ErrorCode::InternalError, e.to_string())
        };
        if let Some(existing) = self
            .store
            .find_tool(&ctx.user_id, &name)
            .await
            .map_err(internal)?
        {
            let wanted: Vec<String> = spec_parameters(&spec)
                .into_iter()
                .map(|(p, _, _)| p.name)
                .collect();
            let accepts = existing.input_schema["properties"]
                .as_object()
                .is_some_and(|props| wanted.iter().all(|w| props.contains_key(w)));
            if accepts {
                let cases = self
                    .run_cases(ctx, &name, &existing.code, &existing.dependencies, &spec)
                    .await?;
                if cases.is_none() {
                    ctx.log(NewGenerationLog {
                        phase: Phase::Searching.as_str().into(),
                        step: Some("reuse".into()),
                        message: format!(
                            "reusing tool {} ({} {}): it passes every case of this spec",
                            existing.id, existing.name, existing.version
                        ),
                        ..NewGenerationLog::default()
                    })
                    .await;
                    state.reuse = Some(existing.id);
                    return Ok(PhaseOutcome::SkipTo(Phase::Registration));
                }
            }
        }
        let words = |text: &str| -> std::collections::HashSet<String> {
            text.to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.len() > 2)
                .map(str::to_owned)
                .collect()
        };
        let wanted = words(&format!(
            "{} {}",
            ctx.requirement.description,
            spec["objective"].as_str().unwrap_or("")
        ));
        let mut scored: Vec<(usize, Value)> = self
            .store
            .user_tools(&ctx.user_id, 50)
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|t| t.name != name)
            .map(|t| {
                let overlap = words(&t.description).intersection(&wanted).count();
                let code: String = t.code.chars().take(1500).collect();
                (
                    overlap,
                    json!({"name": t.name, "description": t.description, "code": code}),
                )
            })
            .filter(|(overlap, _)| *overlap >= 2)
            .collect();
        scored.sort_by_key(|(overlap, _)| std::cmp::Reverse(*overlap));
        state.examples = scored.into_iter().take(2).map(|(_, v)| v).collect();
        Ok(PhaseOutcome::Next)
    }

    async fn implementation(
        &self,
        ctx: &mut PhaseContext,
        state: &mut State,
    ) -> Result<PhaseOutcome, RequirementError> {
        let spec = state.spec.clone().unwrap_or_default();
        let plan = state.plan.clone().unwrap_or_default();
        let reply = self
            .llm
            .complete_structured(
                &call_context(ctx, state),
                StructuredPhase::Implementation,
                prompts::implementation(&spec, &plan, &state.examples),
            )
            .await
            .map_err(ai_error)?;
        let code = extract_code(reply.value["code"].as_str().unwrap_or(""));
        let mut dependencies = state.dependencies.clone();
        dependencies.extend(clean_dependencies(
            reply.value["dependencies"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        ));
        state.dependencies = clean_dependencies(
            &dependencies
                .into_iter()
                .map(Value::String)
                .collect::<Vec<_>>(),
        );
        state.code = Some(self.render(
            &spec,
            &ctx.requirement.description,
            &state.dependencies,
            &code,
        ));
        Ok(PhaseOutcome::Next)
    }

    fn render(
        &self,
        spec: &Value,
        description: &str,
        dependencies: &[String],
        code: &str,
    ) -> String {
        let title = spec["title"].as_str().unwrap_or("Tool");
        let objective = spec["objective"].as_str().unwrap_or(description);
        render_tool(title, objective, dependencies, code)
    }

    async fn testing(
        &self,
        ctx: &mut PhaseContext,
        state: &mut State,
    ) -> Result<PhaseOutcome, RequirementError> {
        let checked = self.check(ctx, state).await?;
        if checked.passed {
            state.failure = None;
            Ok(PhaseOutcome::SkipTo(Phase::Validation))
        } else {
            state.failure = Some(checked.failure);
            Ok(PhaseOutcome::Next)
        }
    }

    async fn fixing(
        &self,
        ctx: &mut PhaseContext,
        state: &mut State,
    ) -> Result<PhaseOutcome, RequirementError> {
        let spec = state.spec.clone().unwrap_or_default();
        while state.failure.is_some() {
            if state.iterations >= self.config.max_fix_iterations {
                return Err(RequirementError::new(
                    ErrorCode::AiServiceError,
                    format!(
                        "the model did not produce a tool that passes its checks after {} fix iterations; last failure: {}",
                        state.iterations,
                        state.failure.as_deref().unwrap_or("")
                    ),
                ));
            }
            state.iterations += 1;
            let failure = state.failure.clone().unwrap_or_default();
            let reply = self
                .llm
                .complete_structured(
                    &call_context(ctx, state),
                    StructuredPhase::Fix,
                    prompts::fix(
                        &spec,
                        state.code.as_deref().unwrap_or(""),
                        state.test_code.as_deref().unwrap_or(""),
                        &state.dependencies,
                        &failure,
                    ),
                )
                .await
                .map_err(ai_error)?;
            let code = extract_code(reply.value["code"].as_str().unwrap_or(""));
            // A fix states the tool's whole dependency set: a bad dependency can be dropped.
            state.dependencies = clean_dependencies(
                reply.value["dependencies"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            );
            state.code = Some(self.render(
                &spec,
                &ctx.requirement.description,
                &state.dependencies,
                &code,
            ));
            let corrected_tests = reply
                .value
                .get("testCode")
                .and_then(Value::as_str)
                .filter(|t| !t.trim().is_empty());
            let justification = reply
                .value
                .get("testCorrectionJustification")
                .and_then(Value::as_str)
                .unwrap_or("");
            ctx.log(NewGenerationLog {
                phase: Phase::Fixing.as_str().into(),
                step: Some(format!("iteration {}", state.iterations)),
                message: format!(
                    "fix {}: {}",
                    state.iterations,
                    reply.value["explanation"].as_str().unwrap_or("")
                ),
                code_executed: state.code.clone(),
                ..NewGenerationLog::default()
            })
            .await;
            // Corrected tests are taken only when the code already passes the spec's own cases:
            // then the tests, not the code, disagree with the specification.
            if let Some(tests) = corrected_tests {
                let name = tool_name(state);
                let code = state.code.clone().unwrap_or_default();
                let cases_pass = self
                    .run_cases(ctx, &name, &code, &state.dependencies, &spec)
                    .await?
                    .is_none();
                let accepted = cases_pass && !justification.trim().is_empty();
                ctx.log(NewGenerationLog {
                    phase: Phase::Fixing.as_str().into(),
                    step: Some("test-correction".into()),
                    level: if accepted { LogLevel::Warn } else { LogLevel::Info },
                    message: if accepted {
                        format!("tests corrected by the model: {justification}")
                    } else {
                        "test correction refused: the code does not pass the spec's own cases, or no justification".to_owned()
                    },
                    ..NewGenerationLog::default()
                })
                .await;
                if accepted {
                    state.test_code = Some(extract_code(tests));
                }
            }
            let checked = self.check(ctx, state).await?;
            state.failure = (!checked.passed).then_some(checked.failure);
            save(ctx, state);
        }
        Ok(PhaseOutcome::Next)
    }

    async fn validation(
        &self,
        ctx: &mut PhaseContext,
        state: &mut State,
    ) -> Result<PhaseOutcome, RequirementError> {
        let checked = self.check(ctx, state).await?;
        if !checked.passed {
            return Err(RequirementError::new(
                ErrorCode::AiServiceError,
                format!("the final run did not pass: {}", checked.failure),
            ));
        }
        let spec = state.spec.clone().unwrap_or_default();
        let name = tool_name(state);
        let code = state.code.clone().unwrap_or_default();
        let module = Module::parse(&code)
            .map_err(|e| RequirementError::new(ErrorCode::InternalError, e.to_string()))?;
        let signature = module.signature(&name);
        let input = input_schema(&spec_parameters(&spec), signature.as_ref());
        let output = output_schema(
            signature.as_ref().and_then(|s| s.returns.as_deref()),
            spec["expectedOutputFormat"]["type"].as_str().unwrap_or(""),
            spec["expectedOutputFormat"]["description"]
                .as_str()
                .unwrap_or(""),
        );
        let validator = jsonschema::validator_for(&input).map_err(|e| {
            RequirementError::new(
                ErrorCode::InternalError,
                format!("the input schema is invalid: {e}"),
            )
        })?;
        for case in spec["testCases"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let errors: Vec<String> = validator
                .iter_errors(&case["input"])
                .map(|e| e.to_string())
                .collect();
            if !errors.is_empty() {
                return Err(RequirementError::new(
                    ErrorCode::AiServiceError,
                    format!(
                        "test case {:?} does not match the input schema: {}",
                        case["name"],
                        errors.join("; ")
                    ),
                ));
            }
        }
        ctx.log(NewGenerationLog {
            phase: Phase::Validation.as_str().into(),
            step: Some("schemas".into()),
            message: "schemas generated; every spec case input validates".into(),
            execution_result: Some(json!({
                "inputSchema": input,
                "outputSchema": output,
                "function": function_schema(&name, spec["objective"].as_str().unwrap_or(""), &input),
            })),
            ..NewGenerationLog::default()
        })
        .await;
        state.input_schema = Some(input);
        state.output_schema = Some(output);
        Ok(PhaseOutcome::Next)
    }

    fn registration(
        &self,
        ctx: &mut PhaseContext,
        state: &State,
    ) -> Result<PhaseOutcome, RequirementError> {
        if let Some(tool_id) = &state.reuse {
            ctx.outcome = Some(ToolOutcome::Reused {
                tool_id: tool_id.clone(),
            });
            return Ok(PhaseOutcome::Next);
        }
        let spec = state.spec.clone().unwrap_or_default();
        let name = tool_name(state);
        ctx.outcome = Some(ToolOutcome::Generated(Box::new(ToolDraft {
            name: name.clone(),
            description: spec["objective"]
                .as_str()
                .unwrap_or(&ctx.requirement.description)
                .to_owned(),
            code: state.code.clone().unwrap_or_default(),
            entry_point: name,
            input_schema: state.input_schema.clone().unwrap_or_default(),
            output_schema: state.output_schema.clone().unwrap_or_default(),
            dependencies: state.dependencies.clone(),
            test_code: state.test_code.clone(),
            test_cases: spec["testCases"].clone(),
            spec: state.spec.clone(),
            plan: state.plan.clone(),
            model: state
                .model
                .clone()
                .or_else(|| Some(self.llm.settings().model.clone())),
        })));
        Ok(PhaseOutcome::Next)
    }

    /// Every check, in order: static (syntax, security, compliance, ruff), the environment,
    /// the model's pytest tests, the spec's cases.
    async fn check(
        &self,
        ctx: &mut PhaseContext,
        state: &mut State,
    ) -> Result<Checked, RequirementError> {
        let spec = state.spec.clone().unwrap_or_default();
        let name = tool_name(state);
        let code = state.code.clone().unwrap_or_default();
        let findings = self.static_findings(&spec, &name, &code).await;
        let errors: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        ctx.log(NewGenerationLog {
            phase: Phase::Testing.as_str().into(),
            step: Some("static".into()),
            level: if errors.is_empty() {
                LogLevel::Info
            } else {
                LogLevel::Warn
            },
            message: format!(
                "{} static findings ({} errors)",
                findings.len(),
                errors.len()
            ),
            code_executed: Some(code.clone()),
            execution_result: Some(json!(findings)),
            ..NewGenerationLog::default()
        })
        .await;
        if !errors.is_empty() {
            let lines: Vec<String> = errors.iter().map(|f| format!("- {f}")).collect();
            return Ok(Checked {
                passed: false,
                failure: format!("Static checks of {name}.py failed:\n{}", lines.join("\n")),
            });
        }
        if state.test_code.is_none() {
            let reply = self
                .llm
                .complete_structured(
                    &call_context(ctx, state),
                    StructuredPhase::Tests,
                    prompts::tests(&spec, &code),
                )
                .await
                .map_err(ai_error)?;
            state.test_code = Some(extract_code(reply.value["testCode"].as_str().unwrap_or("")));
            save(ctx, state);
        }
        let test_code = state.test_code.clone().unwrap_or_default();
        let env = match self.environment(&state.dependencies).await? {
            Ok(env) => env,
            Err(message) => {
                return Ok(Checked {
                    passed: false,
                    failure: message,
                });
            }
        };
        let started = Instant::now();
        let run = self
            .run(RunSpec {
                program: pytest_program(&[PathBuf::from(format!("test_{name}.py"))]),
                files: vec![
                    (
                        PathBuf::from(format!("{name}.py")),
                        code.clone().into_bytes(),
                    ),
                    (
                        PathBuf::from(format!("test_{name}.py")),
                        test_code.clone().into_bytes(),
                    ),
                ],
                env: pytest_env(),
                python_env: env.clone(),
                harness: harness_files(),
                report: true,
                limits: self.config.limits.clone(),
            })
            .await?;
        let verdict = pytest_verdict(&run);
        ctx.log(NewGenerationLog {
            phase: Phase::Testing.as_str().into(),
            step: Some("pytest".into()),
            level: if verdict.passed { LogLevel::Info } else { LogLevel::Warn },
            message: format!(
                "pytest: {} collected, {} failed{}",
                verdict.collected,
                verdict.failures().count(),
                if verdict.problems.is_empty() { String::new() } else { format!("; {}", verdict.problems.join("; ")) }
            ),
            code_executed: Some(test_code),
            execution_result: Some(json!({"exitCode": run.exit_code, "limitHit": run.limit_hit, "stdout": tail(&run.stdout), "stderr": tail(&run.stderr)})),
            execution_time_ms: i64::try_from(started.elapsed().as_millis()).ok(),
            ..NewGenerationLog::default()
        })
        .await;
        let mut problems = Vec::new();
        if !verdict.passed {
            for failure in verdict.failures() {
                problems.push(format!(
                    "- test {} failed:\n{}",
                    failure.id,
                    tail(failure.message.as_deref().unwrap_or(""))
                ));
            }
            for problem in &verdict.problems {
                problems.push(format!("- {problem}"));
            }
            if problems.is_empty() {
                problems.push(format!(
                    "- pytest did not pass (exit {:?}); output:\n{}",
                    run.exit_code,
                    tail(&run.stdout)
                ));
            }
        }
        if let Some(case_failure) = self
            .run_cases(ctx, &name, &code, &state.dependencies, &spec)
            .await?
        {
            problems.push(case_failure);
        }
        Ok(if problems.is_empty() {
            Checked {
                passed: true,
                failure: String::new(),
            }
        } else {
            Checked {
                passed: false,
                failure: problems.join("\n"),
            }
        })
    }

    async fn static_findings(&self, spec: &Value, name: &str, code: &str) -> Vec<Finding> {
        let module = match Module::parse(code) {
            Ok(module) => module,
            Err(err) => {
                return vec![Finding::error(
                    "syntax",
                    err.line,
                    format!("syntax error: {}", err.message),
                )];
            }
        };
        let policy = SecurityPolicy {
            allow_network: spec["toolType"].as_str() == Some("api_caller"),
        };
        let params: Vec<SpecParameter> = spec_parameters(spec)
            .into_iter()
            .map(|(p, _, _)| p)
            .collect();
        let mut findings = scan(&module, policy);
        findings.extend(check_compliance(&module, name, &params));
        let (ruff, source, file) = (
            self.config.ruff.clone(),
            code.to_owned(),
            format!("{name}.py"),
        );
        // ruff is a process: not on the async threads.
        let linted = tokio::task::spawn_blocking(move || lint(&ruff, &source, &file)).await;
        match linted {
            Ok(Ok(lints)) => findings.extend(lints),
            Ok(Err(err)) => tracing::warn!(error = %err, "ruff could not run; lint skipped"),
            Err(err) => tracing::warn!(error = %err, "the lint task failed; lint skipped"),
        }
        findings
    }

    /// The tool's environment, or the reason it cannot be made (for the fix prompt).
    async fn environment(
        &self,
        dependencies: &[String],
    ) -> Result<Result<PathBuf, String>, RequirementError> {
        let envs = self.envs.clone();
        let dependencies = dependencies.to_vec();
        let made = tokio::task::spawn_blocking(move || envs.ensure(&dependencies))
            .await
            .map_err(|e| RequirementError::new(ErrorCode::InternalError, e.to_string()))?;
        Ok(match made {
            Ok(env) => Ok(env.path),
            Err(err @ (EnvError::InvalidDependency { .. } | EnvError::Install { .. })) => {
                Err(format!(
                    "- dependency error: {err}. Declare only PyPI packages that exist, or use the standard library."
                ))
            }
            Err(err) => {
                return Err(RequirementError::new(
                    ErrorCode::InternalError,
                    err.to_string(),
                ));
            }
        })
    }

    async fn run(&self, spec: RunSpec) -> Result<RunResult, RequirementError> {
        let sandbox = self.sandbox.clone();
        tokio::task::spawn_blocking(move || sandbox.run(&spec))
            .await
            .map_err(|e| RequirementError::new(ErrorCode::InternalError, e.to_string()))?
            .map_err(|e| {
                RequirementError::new(ErrorCode::InternalError, format!("the sandbox failed: {e}"))
            })
    }

    /// Runs the spec's cases on `code`; `None` when every result matches, else what went wrong.
    async fn run_cases(
        &self,
        ctx: &mut PhaseContext,
        name: &str,
        code: &str,
        dependencies: &[String],
        spec: &Value,
    ) -> Result<Option<String>, RequirementError> {
        let cases = spec["testCases"].clone();
        let expected: Vec<Value> = cases.as_array().cloned().unwrap_or_default();
        if expected.is_empty() {
            return Ok(Some("- the specification has no test cases".to_owned()));
        }
        let env = match self.environment(dependencies).await? {
            Ok(env) => env,
            Err(message) => return Ok(Some(message)),
        };
        let started = Instant::now();
        let run = self
            .run(RunSpec {
                program: cases_program(name, name),
                files: vec![(
                    PathBuf::from(format!("{name}.py")),
                    code.as_bytes().to_vec(),
                )],
                env: cases_env(),
                python_env: env,
                harness: cases_harness(&cases),
                report: true,
                limits: self.config.limits.clone(),
            })
            .await?;
        let mut problems = Vec::new();
        match case_outcomes(&run, expected.len()) {
            Err(why) => problems.push(format!(
                "- the spec cases did not run: {why}\n{}",
                tail(&run.stderr)
            )),
            Ok(outcomes) => {
                for (case, outcome) in expected.iter().zip(outcomes) {
                    let want = &case["expectedOutput"];
                    match outcome {
                        CaseOutcome::Returned { result, .. } if json_matches(want, &result) => {}
                        CaseOutcome::Returned { name, result } => problems.push(format!(
                            "- spec case {name:?} with input {}: expected {want}, got {result}",
                            case["input"]
                        )),
                        CaseOutcome::Raised { name, error } => problems.push(format!(
                            "- spec case {name:?} with input {} raised {error}",
                            case["input"]
                        )),
                    }
                }
            }
        }
        ctx.log(NewGenerationLog {
            phase: Phase::Testing.as_str().into(),
            step: Some("spec-cases".into()),
            level: if problems.is_empty() {
                LogLevel::Info
            } else {
                LogLevel::Warn
            },
            message: if problems.is_empty() {
                format!("{} spec cases match", expected.len())
            } else {
                problems.join("\n")
            },
            code_executed: Some(code.to_owned()),
            execution_result: Some(
                json!({"report": run.report, "exitCode": run.exit_code, "limitHit": run.limit_hit}),
            ),
            execution_time_ms: i64::try_from(started.elapsed().as_millis()).ok(),
            ..NewGenerationLog::default()
        })
        .await;
        Ok((!problems.is_empty()).then(|| problems.join("\n")))
    }
}

/// Runs `name(**input)` from `code` once in the sandbox, in the environment of `dependencies`,
/// through the service's case runner: the result, or why there is none.
pub async fn run_tool(
    sandbox: Arc<Sandbox>,
    envs: Arc<EnvManager>,
    name: &str,
    code: &str,
    dependencies: &[String],
    input: &Value,
    limits: Limits,
) -> Result<Value, RunFailure> {
    let failed = |message: String| RunFailure {
        message,
        limit: None,
    };
    let deps = dependencies.to_vec();
    let env = tokio::task::spawn_blocking(move || envs.ensure(&deps))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
    let spec = RunSpec {
        program: cases_program(name, name),
        files: vec![(
            PathBuf::from(format!("{name}.py")),
            code.as_bytes().to_vec(),
        )],
        env: cases_env(),
        python_env: env.path,
        harness: cases_harness(&json!([{"name": "run", "input": input}])),
        report: true,
        limits,
    };
    let run = tokio::task::spawn_blocking(move || sandbox.run(&spec))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
    let outcome = case_outcomes(&run, 1).map_err(|message| RunFailure {
        message,
        limit: run.limit_hit,
    })?;
    match outcome.into_iter().next() {
        Some(CaseOutcome::Returned { result, .. }) => Ok(result),
        Some(CaseOutcome::Raised { error, .. }) => Err(failed(error)),
        None => Err(failed("no result".to_owned())),
    }
}

/// Why [`run_tool`] produced no result.
#[derive(Debug, Clone)]
pub struct RunFailure {
    /// `ExceptionType: message`, or what ended the run.
    pub message: String,
    /// The limit that ended the run, if one did.
    pub limit: Option<LimitHit>,
}

/// The last 2,000 characters of some output.
fn tail(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let start = chars.len().saturating_sub(2000);
    chars[start..].iter().collect()
}

#[async_trait]
impl Workflow for GenerationWorkflow {
    async fn run_phase(
        &self,
        phase: Phase,
        ctx: &mut PhaseContext,
    ) -> Result<PhaseOutcome, RequirementError> {
        let mut state = state_of(ctx)?;
        let outcome = match phase {
            Phase::Specification => self.specification(ctx, &mut state).await,
            Phase::Planning => self.planning(ctx, &mut state).await,
            Phase::Searching => self.searching(ctx, &mut state).await,
            Phase::Implementation => self.implementation(ctx, &mut state).await,
            Phase::Testing => self.testing(ctx, &mut state).await,
            Phase::Fixing => self.fixing(ctx, &mut state).await,
            Phase::Validation => self.validation(ctx, &mut state).await,
            Phase::Registration => self.registration(ctx, &state),
        };
        save(ctx, &state);
        if ctx.tool_name.is_none() && state.spec.is_some() {
            ctx.tool_name = Some(tool_name(&state));
        }
        outcome
    }
}
