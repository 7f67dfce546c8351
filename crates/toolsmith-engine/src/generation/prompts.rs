//! What the workflow asks the model, phase by phase. The answers' shapes are the schemas of
//! `toolsmith_llm::StructuredPhase`; these texts say what goes in them.

use serde_json::Value;
use toolsmith_domain::ToolRequirement;
use toolsmith_llm::Message;

const SPEC_SYSTEM: &str = "You write precise specifications for small Python tools that other programs call as functions. \
Answer with the specification JSON.\n\
- toolName: a snake_case Python identifier naming the function.\n\
- toolType: `api_caller` only if the tool must call a network API; `data_processing`, `file_manipulation` or `default` otherwise.\n\
- inputParameters: the function's parameters; `type` is a Python type (str, int, float, bool, list[float], dict[str, int]…).\n\
- dependencies: PyPI packages the tool needs beyond the standard library (empty if none).\n\
- testCases: 2 to 5 cases; `input` maps parameter names to JSON values; `expectedOutput` is exactly the JSON value the \
function returns for that input (compute it carefully; numbers are compared with a relative tolerance of 1e-6).\n\
If the requirement is too vague to specify — you cannot tell what to compute or from what — answer only \
{\"insufficientReason\": \"<what is missing>\"}.";

pub fn specification(requirement: &ToolRequirement) -> Vec<Message> {
    vec![
        Message::system(SPEC_SYSTEM),
        Message::user(format!(
            "Requirement: {}\nInput: {}\nOutput: {}",
            requirement.description, requirement.input, requirement.output
        )),
    ]
}

pub fn plan(spec: &Value) -> Vec<Message> {
    vec![
        Message::system(
            "You plan the implementation of a small Python tool from its specification. Answer with the plan JSON: \
             an overview, the steps, the estimated complexity (low, medium or high), risks and fallback strategies.",
        ),
        Message::user(format!("Specification:\n{spec:#}")),
    ]
}

fn type_guidance(tool_type: &str) -> &'static str {
    match tool_type {
        "api_caller" => {
            "This tool calls a network API: use `requests` (declare it), set timeouts on every call, \
                         raise a clear exception on HTTP errors, and take credentials from parameters or environment variables named in the spec."
        }
        "data_processing" => {
            "This tool processes data: validate the input's shape first, handle empty input explicitly, \
                              and return plain JSON values (lists, dicts, numbers, strings)."
        }
        "file_manipulation" => {
            "This tool works on files: only read and write paths relative to the working directory, \
                                never absolute paths, and close every file (use `with`)."
        }
        _ => "Keep it simple and deterministic.",
    }
}

pub fn implementation(spec: &Value, plan: &Value, examples: &[Value]) -> Vec<Message> {
    let name = spec["toolName"].as_str().unwrap_or("tool");
    let tool_type = spec["toolType"].as_str().unwrap_or("default");
    let network = if tool_type == "api_caller" {
        ""
    } else {
        "- No network access of any kind.\n"
    };
    let mut user = format!("Specification:\n{spec:#}\n\nPlan:\n{plan:#}\n");
    if !examples.is_empty() {
        user.push_str(
            "\nRegistered tools of this user, for style and reuse (do not import them):\n",
        );
        for example in examples {
            user.push_str(&format!("{example:#}\n"));
        }
    }
    vec![
        Message::system(format!(
            "You implement small Python tools. Answer with the implementation JSON: `code` (the whole module), \
             `entryPoint` (\"{name}\"), `dependencies` (PyPI packages beyond the standard library).\n\
             Rules:\n\
             - Python 3.10 or later; the standard library unless a package is declared in `dependencies`.\n\
             - Exactly one entry function, `def {name}(...)`, at the top level, with exactly the spec's parameters \
             (optional ones with defaults), type hints on every parameter and the return, and a docstring.\n\
             - Return JSON-serialisable values; raise ValueError with a clear message on invalid input; do not print.\n\
             {network}\
             - No eval/exec, no subprocess or os.system, no pickle, no writes outside the working directory, no secrets in the code.\n\
             {}",
            type_guidance(tool_type)
        )),
        Message::user(user),
    ]
}

pub fn tests(spec: &Value, code: &str) -> Vec<Message> {
    let name = spec["toolName"].as_str().unwrap_or("tool");
    vec![
        Message::system(format!(
            "You write pytest tests for a Python tool. Answer with the tests JSON: `testCode`, the whole test module. \
             The tool is the file `{name}.py` in the working directory: import it as `from {name} import {name}`. \
             Cover normal use, edge cases and error handling (pytest.raises) as the specification describes. \
             Use only pytest and the standard library. Compare floats with pytest.approx."
        )),
        Message::user(format!(
            "Specification:\n{spec:#}\n\nTool:\n```python\n{code}```"
        )),
    ]
}

pub fn fix(
    spec: &Value,
    code: &str,
    test_code: &str,
    dependencies: &[String],
    failure: &str,
) -> Vec<Message> {
    let name = spec["toolName"].as_str().unwrap_or("tool");
    vec![
        Message::system(format!(
            "You fix a Python tool that failed its checks. Answer with the fix JSON: `code` (the whole corrected module, \
             same entry function `{name}`), `dependencies` (the COMPLETE list of PyPI packages the corrected tool needs; \
             an empty list means none), and `explanation` (what was wrong). Change the tests \
             (`testCode`, with `testCorrectionJustification`) only when they contradict the specification's own test \
             cases; the specification wins. Keep every rule the tool had to follow."
        )),
        Message::user(format!(
            "Specification:\n{spec:#}\n\nTool:\n```python\n{code}```\n\nCurrent dependencies: {}\n\nTests:\n```python\n{test_code}```\n\nWhat failed:\n{failure}",
            if dependencies.is_empty() {
                "none".to_owned()
            } else {
                dependencies.join(", ")
            }
        )),
    ]
}
