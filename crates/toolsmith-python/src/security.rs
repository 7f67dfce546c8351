//! The security scan (SPEC §4 step 5): code that evaluates strings, starts shells, loads
//! pickles, imports by computed name, writes outside its working directory, carries secrets, or
//! uses the network when its spec does not say it may. Names are resolved through the module's
//! imports, so `from os import system as run; run(...)` is caught as `os.system`.
//!
//! The scan is a first filter that explains itself to the model; the sandbox is what actually
//! holds the code in.

use std::collections::HashMap;

use ruff_python_ast::visitor::{Visitor, walk_expr, walk_stmt};
use ruff_python_ast::{Expr, ExprCall, Stmt};
use ruff_text_size::Ranged;

use crate::{Finding, Module};

/// What the spec allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecurityPolicy {
    /// The spec is an `api_caller` (or declares network use): network modules are fine.
    pub allow_network: bool,
}

const SHELL_CALLS: &[&str] = &[
    "os.system",
    "os.popen",
    "os.execl",
    "os.execle",
    "os.execlp",
    "os.execv",
    "os.execve",
    "os.execvp",
    "os.spawnl",
    "os.spawnv",
    "os.spawnvp",
    "commands.getoutput",
    "pty.spawn",
];
const SUBPROCESS_CALLS: &[&str] = &[
    "subprocess.run",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "subprocess.Popen",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
];
const DESERIALIZERS: &[&str] = &[
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "cPickle.load",
    "cPickle.loads",
    "marshal.load",
    "marshal.loads",
    "shelve.open",
    "dill.load",
    "dill.loads",
    "jsonpickle.decode",
];
const NETWORK_MODULES: &[&str] = &[
    "socket",
    "requests",
    "urllib.request",
    "urllib3",
    "http.client",
    "httpx",
    "aiohttp",
    "ftplib",
    "smtplib",
    "telnetlib",
    "websocket",
    "websockets",
    "paramiko",
    "xmlrpc.client",
];
const DELETERS: &[&str] = &[
    "os.remove",
    "os.unlink",
    "os.rmdir",
    "shutil.rmtree",
    "os.removedirs",
];

struct Scan<'a> {
    module: &'a Module,
    policy: SecurityPolicy,
    /// Local name → qualified name, from the imports.
    aliases: HashMap<String, String>,
    findings: Vec<Finding>,
}

/// Runs every rule over `module`.
pub fn scan(module: &Module, policy: SecurityPolicy) -> Vec<Finding> {
    let mut scan = Scan {
        module,
        policy,
        aliases: HashMap::new(),
        findings: Vec::new(),
    };
    for stmt in module.body() {
        scan.visit_stmt(stmt);
    }
    scan.findings.sort_by_key(|f| f.line);
    scan.findings
}

impl Scan<'_> {
    fn line(&self, node: &impl Ranged) -> usize {
        self.module.line(node.range().start())
    }

    /// `a.b.c` for names and attribute chains, through the import aliases.
    fn qualified(&self, expr: &Expr) -> Option<String> {
        match expr {
            Expr::Name(name) => {
                let id = name.id.as_str();
                Some(
                    self.aliases
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| id.to_owned()),
                )
            }
            Expr::Attribute(attr) => {
                let base = self.qualified(&attr.value)?;
                Some(format!("{base}.{}", attr.attr.as_str()))
            }
            _ => None,
        }
    }

    fn import(&mut self, qualified: &str, line: usize) {
        if self.policy.allow_network {
            return;
        }
        let hit = NETWORK_MODULES
            .iter()
            .find(|m| qualified == **m || qualified.starts_with(&format!("{m}.")));
        if let Some(module) = hit {
            self.findings.push(Finding::error(
                "network-use",
                line,
                format!("imports `{module}`, but the spec declares no network use; compute the result locally"),
            ));
        }
    }

    fn call(&mut self, call: &ExprCall) {
        let line = self.line(call);
        let Some(name) = self.qualified(&call.func) else {
            return;
        };
        let name = name.as_str();
        let keyword_true = |key: &str| {
            call.arguments.keywords.iter().any(|k| {
                k.arg.as_ref().is_some_and(|a| a.as_str() == key)
                    && matches!(&k.value, Expr::BooleanLiteral(b) if b.value)
            })
        };
        if matches!(
            name,
            "eval" | "exec" | "compile" | "builtins.eval" | "builtins.exec"
        ) {
            self.findings.push(Finding::error(
                "dangerous-eval",
                line,
                format!("`{name}()` runs code built from strings; compute the result directly (use `ast.literal_eval` for literals)"),
            ));
        } else if SHELL_CALLS.contains(&name)
            || name.starts_with("os.exec")
            || name.starts_with("os.spawn")
        {
            self.findings.push(Finding::error(
                "shell-command",
                line,
                format!("`{name}()` runs shell commands; tools must not start programs"),
            ));
        } else if SUBPROCESS_CALLS.contains(&name) && keyword_true("shell") {
            self.findings.push(Finding::error(
                "subprocess-shell",
                line,
                format!("`{name}(..., shell=True)` runs a shell; tools must not start programs"),
            ));
        } else if DESERIALIZERS.contains(&name) {
            self.findings.push(Finding::error(
                "unsafe-deserialization",
                line,
                format!("`{name}()` can run code hidden in its input; use `json` instead"),
            ));
        } else if name == "__import__"
            || (name == "importlib.import_module" && !first_arg_is_literal(call))
        {
            self.findings.push(Finding::error(
                "dynamic-import",
                line,
                format!("`{name}()` with a computed name hides what the tool imports; import modules by name at the top"),
            ));
        } else if name == "open" || name == "io.open" || name.ends_with(".write_text") {
            self.check_write(call, name, line);
        } else if DELETERS.contains(&name)
            && let Some(path) = first_string_arg(call)
            && outside_workdir(&path)
        {
            self.findings.push(Finding::error(
                "write-outside-workdir",
                line,
                format!("`{name}({path:?})` touches files outside the working directory"),
            ));
        }
    }

    fn check_write(&mut self, call: &ExprCall, name: &str, line: usize) {
        let Some(path) = first_string_arg(call) else {
            return;
        };
        let mode = call
            .arguments
            .args
            .get(1)
            .or_else(|| {
                call.arguments
                    .keywords
                    .iter()
                    .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == "mode"))
                    .map(|k| &k.value)
            })
            .and_then(string_literal);
        let writes = name.ends_with(".write_text")
            || mode
                .as_deref()
                .is_some_and(|m| m.contains(['w', 'a', 'x', '+']));
        if writes && outside_workdir(&path) {
            self.findings.push(Finding::error(
                "write-outside-workdir",
                line,
                format!(
                    "writes to {path:?}, outside the working directory; write relative paths only"
                ),
            ));
        }
    }

    fn secret(&mut self, text: &str, line: usize, assigned_to: Option<&str>) {
        let looks_like_key = [
            ("sk-", 20),
            ("sk_live_", 16),
            ("AKIA", 16),
            ("ghp_", 30),
            ("github_pat_", 30),
            ("xoxb-", 20),
            ("xoxp-", 20),
            ("AIza", 30),
        ]
        .iter()
        .any(|(prefix, min)| {
            text.starts_with(prefix)
                && text.len() >= prefix.len() + min
                && text[prefix.len()..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }) || text.contains("-----BEGIN") && text.contains("PRIVATE KEY");
        let named_secret = assigned_to.is_some_and(|name| {
            let name = name.to_ascii_lowercase();
            [
                "api_key",
                "apikey",
                "secret",
                "password",
                "passwd",
                "token",
                "private_key",
            ]
            .iter()
            .any(|s| name.contains(s))
        }) && text.len() >= 8
            && !text.contains(' ');
        if looks_like_key || named_secret {
            self.findings.push(Finding::error(
                "hardcoded-secret",
                line,
                "a secret is written in the code; take it from a parameter or an environment variable named in the spec",
            ));
        }
    }
}

fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::StringLiteral(s) => Some(s.value.to_str().to_owned()),
        _ => None,
    }
}

fn first_string_arg(call: &ExprCall) -> Option<String> {
    call.arguments.args.first().and_then(string_literal)
}

fn first_arg_is_literal(call: &ExprCall) -> bool {
    first_string_arg(call).is_some()
}

fn outside_workdir(path: &str) -> bool {
    path.starts_with('/')
        || path.starts_with('~')
        || path.split(['/', '\\']).any(|part| part == "..")
}

impl<'a> Visitor<'a> for Scan<'a> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::Import(import) => {
                for alias in &import.names {
                    let name = alias.name.as_str();
                    let local = alias
                        .asname
                        .as_ref()
                        .map(|a| a.as_str())
                        .unwrap_or_else(|| name.split('.').next().unwrap_or(name));
                    let target = if alias.asname.is_some() { name } else { local };
                    self.aliases.insert(local.to_owned(), target.to_owned());
                    let line = self.line(alias);
                    self.import(name, line);
                }
            }
            Stmt::ImportFrom(import) => {
                let module = import.module.as_ref().map(|m| m.as_str()).unwrap_or("");
                for alias in &import.names {
                    let name = alias.name.as_str();
                    let local = alias.asname.as_ref().map(|a| a.as_str()).unwrap_or(name);
                    let qualified = if module.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{module}.{name}")
                    };
                    self.aliases.insert(local.to_owned(), qualified.clone());
                    let line = self.line(alias);
                    if module.is_empty() {
                        continue;
                    }
                    // `from urllib import request` imports urllib.request.
                    self.import(&qualified, line);
                    self.import(module, line);
                }
            }
            Stmt::Assign(assign) => {
                if let Some(text) = string_literal(&assign.value) {
                    let line = self.line(assign);
                    let target = assign.targets.first().and_then(|t| match t {
                        Expr::Name(n) => Some(n.id.as_str().to_owned()),
                        Expr::Attribute(a) => Some(a.attr.as_str().to_owned()),
                        _ => None,
                    });
                    self.secret(&text, line, target.as_deref());
                }
            }
            _ => {}
        }
        walk_stmt(self, stmt);
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Call(call) => self.call(call),
            Expr::StringLiteral(s) => {
                let line = self.line(s);
                self.secret(s.value.to_str(), line, None);
            }
            _ => {}
        }
        walk_expr(self, expr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(code: &str, policy: SecurityPolicy, expected: &[(&str, usize)]) {
        let module = Module::parse(code).expect("parse");
        let findings = scan(&module, policy);
        let got: Vec<(&str, usize)> = findings.iter().map(|f| (f.rule.as_str(), f.line)).collect();
        let mut got_dedup = got.clone();
        got_dedup.dedup();
        assert_eq!(got_dedup, expected, "{findings:#?}");
    }

    const NONE: SecurityPolicy = SecurityPolicy {
        allow_network: false,
    };

    #[test]
    fn clean_code_passes() {
        check(
            "import json, math\nfrom pathlib import Path\n\ndef f(x: float) -> float:\n    \"\"\"Doc.\"\"\"\n    with open('out.txt', 'w') as fh:\n        fh.write(json.dumps(x))\n    return math.sqrt(x)\n",
            NONE,
            &[],
        );
    }

    #[test]
    fn each_rule_with_its_line() {
        check("x = eval('1+1')\n", NONE, &[("dangerous-eval", 1)]);
        check(
            "import builtins\n\nbuiltins.exec('x=1')\n",
            NONE,
            &[("dangerous-eval", 3)],
        );
        check(
            "from os import system as run\nrun('ls')\n",
            NONE,
            &[("shell-command", 2)],
        );
        check("import os\nos.popen('ls')\n", NONE, &[("shell-command", 2)]);
        check(
            "import subprocess as sp\nsp.run('ls', shell=True)\nsp.run(['ls'])\n",
            NONE,
            &[("subprocess-shell", 2)],
        );
        check(
            "import pickle\npickle.loads(b'')\n",
            NONE,
            &[("unsafe-deserialization", 2)],
        );
        check(
            "m = __import__('o' + 's')\n",
            NONE,
            &[("dynamic-import", 1)],
        );
        check(
            "import importlib\nimportlib.import_module(name)\nimportlib.import_module('json')\n",
            NONE,
            &[("dynamic-import", 2)],
        );
        check(
            "open('/etc/passwd', 'w')\nopen('../up.txt', mode='a')\nopen('/etc/hosts')\nopen('ok.txt', 'w')\n",
            NONE,
            &[("write-outside-workdir", 1), ("write-outside-workdir", 2)],
        );
        check(
            "import shutil\nshutil.rmtree('/tmp/x')\n",
            NONE,
            &[("write-outside-workdir", 2)],
        );
        check(
            "API_KEY = 'abcd1234efgh'\nkey = 'sk-abcdefghijklmnopqrstuvwx'\nlabel = 'a password here'\n",
            NONE,
            &[("hardcoded-secret", 1), ("hardcoded-secret", 2)],
        );
        check(
            "import requests\nfrom urllib import request\nimport socket as s\n",
            NONE,
            &[("network-use", 1), ("network-use", 2), ("network-use", 3)],
        );
        check(
            "import requests\n",
            SecurityPolicy {
                allow_network: true,
            },
            &[],
        );
    }
}
