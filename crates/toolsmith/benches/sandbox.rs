//! `cargo bench -p toolsmith --bench sandbox`: what the sandbox costs, measured in one run.
//!
//! Prints medians over repeated runs of the same work bare (the same interpreter, run directly
//! as this process) and sandboxed (namespaces, Landlock, seccomp, limits, accounting), as
//! ratios: `python -c pass`, and pytest on a small test file (sandboxed with the service's
//! reporting harness). Then the cost of an environment: built once, then reused.
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use toolsmith_sandbox::envs::{EnvConfig, EnvManager};
use toolsmith_sandbox::verdict::{harness_files, pytest_env, pytest_program, pytest_verdict};
use toolsmith_sandbox::{Limits, RunSpec, Sandbox, SandboxConfig};

const RUNS: usize = 30;

const TOOL: &str = "def mean(values: list[float]) -> float:\n    \"\"\"The mean.\"\"\"\n    if not values:\n        raise ValueError('empty')\n    return sum(values) / len(values)\n";
const TESTS: &str = "import pytest\nfrom mean import mean\n\n\
def test_mean():\n    assert mean([1, 2, 3]) == 2\n\n\
def test_one():\n    assert mean([5]) == 5\n\n\
@pytest.mark.parametrize('n', range(20))\ndef test_many(n):\n    assert mean([n, n]) == n\n\n\
def test_empty():\n    with pytest.raises(ValueError):\n        mean([])\n";

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time(mut f: impl FnMut()) -> Vec<Duration> {
    f(); // warm-up
    (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn line(name: &str, bare: Duration, boxed: Duration) {
    println!(
        "{name:<34} bare {:>7.1} ms   sandboxed {:>7.1} ms   ratio {:>5.2}x   overhead {:>6.1} ms",
        ms(bare),
        ms(boxed),
        boxed.as_secs_f64() / bare.as_secs_f64(),
        ms(boxed) - ms(bare)
    );
}

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace");
    let python_env = workspace.join(".tools/py");
    let python = python_env.join("bin/python");
    assert!(python.exists(), "run scripts/setup.sh first");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let sandbox = Sandbox::new(SandboxConfig::new(
        PathBuf::from(env!("CARGO_BIN_EXE_toolsmith")),
        dir.path().join("staging"),
    ))
    .expect("sandbox");
    let spec = |program: Vec<String>, files: Vec<(PathBuf, Vec<u8>)>, report: bool| RunSpec {
        program,
        files,
        env: if report { pytest_env() } else { Vec::new() },
        python_env: python_env.clone(),
        harness: if report { harness_files() } else { Vec::new() },
        report,
        limits: Limits::default(),
    };

    let bare_pass = median(time(|| {
        let ok = Command::new(&python)
            .args(["-c", "pass"])
            .status()
            .expect("python")
            .success();
        assert!(ok);
    }));
    let pass_spec = spec(
        vec!["python".into(), "-c".into(), "pass".into()],
        Vec::new(),
        false,
    );
    let boxed_pass = median(time(|| {
        assert!(sandbox.run(&pass_spec).expect("run").exited_cleanly());
    }));

    let project = dir.path().join("bare");
    std::fs::create_dir_all(&project).expect("dir");
    std::fs::write(project.join("mean.py"), TOOL).expect("write");
    std::fs::write(project.join("test_mean.py"), TESTS).expect("write");
    let bare_pytest = median(time(|| {
        let ok = Command::new(&python)
            .args([
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "test_mean.py",
            ])
            .current_dir(&project)
            .output()
            .expect("pytest")
            .status
            .success();
        assert!(ok);
    }));
    let files = vec![
        (PathBuf::from("mean.py"), TOOL.as_bytes().to_vec()),
        (PathBuf::from("test_mean.py"), TESTS.as_bytes().to_vec()),
    ];
    let pytest_spec = spec(
        pytest_program(&[PathBuf::from("test_mean.py")]),
        files,
        true,
    );
    let boxed_pytest = median(time(|| {
        let run = sandbox.run(&pytest_spec).expect("run");
        let verdict = pytest_verdict(&run);
        assert!(verdict.passed && verdict.collected == 23, "{verdict:?}");
    }));

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!("Sandbox cost (medians of {RUNS} runs, release build, {cores} cores):");
    line("python -c pass", bare_pass, boxed_pass);
    line("pytest, 23 tests (with verdict)", bare_pytest, boxed_pytest);
    println!(
        "sandbox overhead on pytest: {:.1}% of pytest's own time",
        (boxed_pytest.as_secs_f64() / bare_pytest.as_secs_f64() - 1.0) * 100.0
    );

    let envs = EnvManager::new(EnvConfig::new(
        workspace.join(".tools/uv/bin/uv"),
        dir.path(),
    ));
    let deps = vec!["six==1.16.0".to_owned()];
    let started = Instant::now();
    let first = envs.ensure(&deps).expect("env");
    let first_ms = ms(started.elapsed());
    let started = Instant::now();
    let second = envs.ensure(&deps).expect("env");
    let second_ms = ms(started.elapsed());
    assert!(first.created && !second.created);
    println!(
        "environment for [six, pytest]: first tool {first_ms:.0} ms (created), second tool {second_ms:.2} ms (reused, no install)"
    );
}
