//! Per-tool Python environments, made with uv outside the sandbox and mounted read-only in it.
//!
//! An environment holds the tool's declared dependencies plus pytest. It is keyed by the
//! sorted, normalised dependency set (and the interpreter and base packages), so tools with
//! the same dependencies share one, and a second tool costs no install. uv's download cache is
//! shared by all environments. An environment is built in a temporary directory and renamed
//! into place when complete, so a half-built one is never used and concurrent builds of the
//! same set are harmless. Only wheels are installed (`--only-binary :all:`): installing never
//! runs a package's build code on the host.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};
use thiserror::Error;
use toolsmith_domain::ids::{new_request_id, to_hex};

#[derive(Debug, Clone)]
pub struct EnvConfig {
    /// The uv binary (`scripts/setup.sh` puts one in `.tools/uv/bin/uv`).
    pub uv: PathBuf,
    /// The interpreter environments are made from; must be readable by the sandbox users.
    pub python: PathBuf,
    /// Where environments live (`<data dir>/envs`).
    pub root: PathBuf,
    /// uv's cache (`<data dir>/uv-cache`).
    pub cache: PathBuf,
    /// Installed in every environment.
    pub base_packages: Vec<String>,
}

impl EnvConfig {
    pub fn new(uv: PathBuf, data_dir: &Path) -> Self {
        EnvConfig {
            uv,
            python: PathBuf::from("/usr/bin/python3"),
            root: data_dir.join("envs"),
            cache: data_dir.join("uv-cache"),
            base_packages: vec!["pytest==9.2.0".to_owned()],
        }
    }
}

#[derive(Debug, Error)]
pub enum EnvError {
    #[error("invalid dependency {spec:?}: {reason}")]
    InvalidDependency { spec: String, reason: String },
    /// The `dependency` error class of SPEC §7: uv could not install the set.
    #[error("could not install {dependencies:?}: {message}")]
    Install {
        dependencies: Vec<String>,
        message: String,
    },
    #[error("could not prepare the environment in {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A ready environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    pub path: PathBuf,
    /// The dependency set's key.
    pub key: String,
    /// Built by this call (false: an existing one was reused).
    pub created: bool,
    pub build_ms: u64,
}

pub struct EnvManager {
    config: EnvConfig,
}

/// PEP 503 normalisation of a project name.
fn normalise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_sep {
                out.push('-');
            }
            last_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            last_sep = false;
        }
    }
    out
}

/// Checks a requirement string: a project name, optional extras, optional version specifiers.
/// URLs, local paths, environment markers and pip options are refused. Returns the
/// normalised form.
pub fn validate_dependency(spec: &str) -> Result<String, EnvError> {
    let invalid = |reason: &str| EnvError::InvalidDependency {
        spec: spec.to_owned(),
        reason: reason.to_owned(),
    };
    let spec_trimmed = spec.trim();
    if spec_trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    if spec_trimmed.len() > 200 {
        return Err(invalid("it is longer than 200 characters"));
    }
    if spec_trimmed.starts_with('-') {
        return Err(invalid("pip options are not allowed"));
    }
    if spec_trimmed.contains("://") || spec_trimmed.contains('@') {
        return Err(invalid("URLs and direct references are not allowed"));
    }
    if spec_trimmed.starts_with(['.', '/', '~']) || spec_trimmed.contains(['/', '\\']) {
        return Err(invalid("local paths are not allowed"));
    }
    if spec_trimmed.contains(';') {
        return Err(invalid("environment markers are not allowed"));
    }
    let name_end = spec_trimmed
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec_trimmed.len());
    let name = &spec_trimmed[..name_end];
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(invalid("it does not start with a valid project name"));
    }
    let mut rest = spec_trimmed[name_end..].trim_start();
    let mut extras = String::new();
    if let Some(after) = rest.strip_prefix('[') {
        let close = after.find(']').ok_or_else(|| invalid("unclosed extras"))?;
        let list = &after[..close];
        if list.is_empty()
            || !list.split(',').all(|e| {
                !e.trim().is_empty()
                    && e.trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            })
        {
            return Err(invalid("malformed extras"));
        }
        extras = format!(
            "[{}]",
            list.split(',')
                .map(|e| normalise_name(e.trim()))
                .collect::<Vec<_>>()
                .join(",")
        );
        rest = after[close + 1..].trim_start();
    }
    let mut specifiers = Vec::new();
    if !rest.is_empty() {
        for clause in rest.split(',') {
            let clause = clause.trim();
            let op_len = ["===", "==", "!=", "<=", ">=", "~=", "<", ">"]
                .iter()
                .find(|op| clause.starts_with(**op))
                .map(|op| op.len())
                .ok_or_else(|| {
                    invalid("a version specifier must start with ==, !=, <=, >=, ~=, < or >")
                })?;
            let version = clause[op_len..].trim();
            if version.is_empty()
                || !version.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '*' | '+' | '!' | '-' | '_')
                })
            {
                return Err(invalid("malformed version"));
            }
            specifiers.push(format!("{}{}", &clause[..op_len], version));
        }
    }
    Ok(format!(
        "{}{extras}{}",
        normalise_name(name),
        specifiers.join(",")
    ))
}

impl EnvManager {
    pub fn new(config: EnvConfig) -> Self {
        EnvManager { config }
    }

    /// The key of a dependency set (after validation).
    pub fn key(&self, dependencies: &[String]) -> Result<(String, Vec<String>), EnvError> {
        let mut normalised = dependencies
            .iter()
            .map(|d| validate_dependency(d))
            .collect::<Result<Vec<_>, _>>()?;
        normalised.sort();
        normalised.dedup();
        let mut hasher = Sha256::new();
        hasher.update(self.config.python.to_string_lossy().as_bytes());
        for line in self.config.base_packages.iter().chain(&normalised) {
            hasher.update(b"\n");
            hasher.update(line.as_bytes());
        }
        Ok((to_hex(&hasher.finalize())[..20].to_owned(), normalised))
    }

    /// The environment for `dependencies`, built if there is none yet. Blocks (uv runs).
    pub fn ensure(&self, dependencies: &[String]) -> Result<PythonEnv, EnvError> {
        let started = Instant::now();
        let (key, normalised) = self.key(dependencies)?;
        let path = self.config.root.join(&key);
        if path.join(".ready").exists() {
            if path.join("bin/python").exists() {
                return Ok(PythonEnv {
                    path,
                    key,
                    created: false,
                    build_ms: 0,
                });
            }
            // Damaged (its interpreter is gone): moved aside, removed, and built anew.
            tracing::warn!(env = %path.display(), "environment without its interpreter; building it again");
            let aside = self
                .config
                .root
                .join(format!(".broken-{key}-{}", &new_request_id()[..8]));
            if std::fs::rename(&path, &aside).is_ok() {
                let _ = std::fs::remove_dir_all(&aside);
            }
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| EnvError::Io { path, source }
        };
        std::fs::create_dir_all(&self.config.root).map_err(io(&self.config.root))?;
        let building = self
            .config
            .root
            .join(format!(".build-{key}-{}", &new_request_id()[..8]));
        let result = self.build(&building, &normalised);
        if let Err(err) = result {
            let _ = std::fs::remove_dir_all(&building);
            return Err(err);
        }
        std::fs::write(building.join(".ready"), normalised.join("\n")).map_err(io(&building))?;
        if let Err(err) = std::fs::rename(&building, &path) {
            // Someone else finished the same set first: use theirs.
            let _ = std::fs::remove_dir_all(&building);
            if !path.join(".ready").exists() {
                return Err(EnvError::Io { path, source: err });
            }
        }
        Ok(PythonEnv {
            path,
            key,
            created: true,
            build_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    fn build(&self, dir: &Path, dependencies: &[String]) -> Result<(), EnvError> {
        let uv = |args: &[&str]| -> Result<(), EnvError> {
            let output = Command::new(&self.config.uv)
                .args(args)
                .env("UV_CACHE_DIR", &self.config.cache)
                .env("UV_NO_CONFIG", "1")
                .env("UV_PYTHON_DOWNLOADS", "never")
                .output()
                .map_err(|source| EnvError::Io {
                    path: self.config.uv.clone(),
                    source,
                })?;
            if output.status.success() {
                return Ok(());
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(EnvError::Install {
                dependencies: dependencies.to_vec(),
                message: stderr
                    .trim()
                    .chars()
                    .rev()
                    .take(2000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect(),
            })
        };
        let dir_text = dir.to_string_lossy().into_owned();
        let python = self.config.python.to_string_lossy().into_owned();
        uv(&[
            "venv",
            "--quiet",
            "--relocatable",
            "--python",
            &python,
            &dir_text,
        ])?;
        let env_python = dir.join("bin/python").to_string_lossy().into_owned();
        let mut args = vec![
            "pip",
            "install",
            "--quiet",
            "--only-binary",
            ":all:",
            "--python",
            env_python.as_str(),
        ];
        args.extend(self.config.base_packages.iter().map(String::as_str));
        args.extend(dependencies.iter().map(String::as_str));
        uv(&args)?;
        make_readable(dir).map_err(|source| EnvError::Io {
            path: dir.to_owned(),
            source,
        })
    }
}

/// Directories 0755 and files at least 0644, so the sandbox users can read the environment.
fn make_readable(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if meta.is_dir() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o755))?;
        for entry in std::fs::read_dir(dir)? {
            make_readable(&entry?.path())?;
        }
    } else {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o444))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(spec: &str, expected: Result<&str, &str>) {
        match (validate_dependency(spec), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{spec}"),
            (Err(EnvError::InvalidDependency { reason, .. }), Err(want)) => {
                assert!(reason.contains(want), "{spec}: {reason}")
            }
            (got, want) => panic!("{spec}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn dependency_specs() {
        check("rdkit", Ok("rdkit"));
        check("RDKit", Ok("rdkit"));
        check("scikit_learn>=1.3, <2", Ok("scikit-learn>=1.3,<2"));
        check(
            "requests[socks,Security]==2.32.3",
            Ok("requests[socks,security]==2.32.3"),
        );
        check("numpy~=2.0", Ok("numpy~=2.0"));
        check("zope.interface", Ok("zope-interface"));
        check("", Err("empty"));
        check("pkg @ https://evil.example/pkg.whl", Err("URLs"));
        check("git+https://github.com/x/y", Err("URLs"));
        check("./local/pkg", Err("paths"));
        check("/tmp/pkg.whl", Err("paths"));
        check("-e .", Err("options"));
        check("--index-url=http://evil", Err("options"));
        check("pkg; python_version < '3.8'", Err("markers"));
        check("pkg >> 1", Err("malformed version"));
        check("pkg 1.0", Err("version specifier"));
        check("_pkg", Err("project name"));
        check("pkg[", Err("unclosed extras"));
    }
}
