//! The sandbox against the escape suite (`tests/escapes/*.py`), plus its accounting.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toolsmith_sandbox::{Isolation, LimitHit, Limits, RunResult, RunSpec, Sandbox, SandboxConfig};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace")
}

/// The base Python environment `scripts/setup.sh` makes.
pub fn python_env() -> PathBuf {
    let env = workspace().join(".tools/py");
    assert!(
        env.join("bin/python").exists(),
        "{} is missing: run scripts/setup.sh",
        env.display()
    );
    env
}

pub struct TestSandbox {
    pub sandbox: Sandbox,
    staging: PathBuf,
    uid_base: u32,
    _dir: tempfile::TempDir,
}

pub fn sandbox(uid_base: u32) -> TestSandbox {
    sandbox_with(uid_base, Isolation::Enforced)
}

pub fn sandbox_with(uid_base: u32, isolation: Isolation) -> TestSandbox {
    let dir = tempfile::tempdir().expect("tempdir");
    // The sandbox users must be able to traverse to the staging area.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let staging = dir.path().join("staging");
    let config = SandboxConfig {
        uid_base,
        slots: 1,
        isolation,
        ..SandboxConfig::new(
            PathBuf::from(env!("CARGO_BIN_EXE_toolsmith")),
            staging.clone(),
        )
    };
    TestSandbox {
        sandbox: Sandbox::new(config).expect("sandbox"),
        staging,
        uid_base,
        _dir: dir,
    }
}

pub fn limits() -> Limits {
    const MIB: u64 = 1024 * 1024;
    Limits {
        wall: Duration::from_secs(6),
        cpu_seconds: 2,
        memory_bytes: 256 * MIB,
        processes: 32,
        file_size_bytes: 16 * MIB,
        open_files: 64,
        disk_bytes: 32 * MIB,
        output_bytes: 64 * 1024,
        output_kill_bytes: 4 * MIB,
    }
}

fn run_python(
    sandbox: &TestSandbox,
    name: &str,
    code: &[u8],
    env: Vec<(String, String)>,
) -> RunResult {
    sandbox
        .sandbox
        .run(&RunSpec {
            program: vec!["python".into(), name.into()],
            files: vec![(PathBuf::from(name), code.to_vec())],
            env,
            python_env: python_env(),
            harness: Vec::new(),
            report: false,
            limits: limits(),
        })
        .unwrap_or_else(|err| panic!("{name}: the sandbox failed: {err}"))
}

/// How an attack must end, besides printing no `ESCAPED`.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Runs to its end; every attempt refused.
    Refused,
    /// Ended by one of these limits (a wall-clock timeout included where listed).
    Limit(&'static [LimitHit]),
}

const ATTACKS: &[(&str, Expect)] = &[
    ("cpu_spin.py", Expect::Limit(&[LimitHit::CpuTime])),
    (
        "disk_big_file.py",
        Expect::Limit(&[LimitHit::FileSize, LimitHit::Disk]),
    ),
    (
        "disk_dev_shm.py",
        Expect::Limit(&[LimitHit::FileSize, LimitHit::Disk]),
    ),
    (
        "disk_many_files.py",
        Expect::Limit(&[LimitHit::Disk, LimitHit::WallTime]),
    ),
    ("forge_status.py", Expect::Refused),
    (
        "fork_bomb.py",
        Expect::Limit(&[LimitHit::Processes, LimitHit::WallTime, LimitHit::CpuTime]),
    ),
    ("fork_bomb_nproc.py", Expect::Refused),
    ("inherited_fds.py", Expect::Refused),
    ("memory_bytearray.py", Expect::Limit(&[LimitHit::Memory])),
    ("memory_mmap.py", Expect::Limit(&[LimitHit::Memory])),
    ("net_host_loopback.py", Expect::Refused),
    ("net_ipv6.py", Expect::Refused),
    ("net_tcp_egress.py", Expect::Refused),
    ("net_udp_egress.py", Expect::Refused),
    ("output_flood.py", Expect::Limit(&[LimitHit::Output])),
    ("persist_pth.py", Expect::Refused),
    ("ptrace.py", Expect::Refused),
    ("secrets_env.py", Expect::Refused),
    ("secrets_files.py", Expect::Refused),
    ("setsid_orphan.py", Expect::Refused),
    ("shadow_harness.py", Expect::Refused),
    ("signals.py", Expect::Refused),
    (
        "sleep_past_timeout.py",
        Expect::Limit(&[LimitHit::WallTime]),
    ),
    ("symlink_plant.py", Expect::Refused),
    ("unix_sockets.py", Expect::Refused),
    ("unshare_mount.py", Expect::Refused),
    ("write_outside.py", Expect::Refused),
];

/// Host processes running as one of the sandbox's uids.
fn processes_of(uids: std::ops::Range<u32>) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse::<u32>().ok());
        if uid.is_some_and(|u| uids.contains(&u)) {
            found.push(format!(
                "{}: {}",
                entry.file_name().to_string_lossy(),
                status.lines().next().unwrap_or("")
            ));
        }
    }
    found
}

#[test]
fn every_escape_attempt_is_blocked_and_the_host_is_unharmed() {
    let sandbox = sandbox(62_000);
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let listener6 = TcpListener::bind("[::1]:0").ok();
    let abstract_name = format!("toolsmith-escape-{}", std::process::id());
    let unix = UnixListener::bind_addr(
        &SocketAddr::from_abstract_name(abstract_name.as_bytes()).expect("name"),
    )
    .expect("abstract socket");
    unix.set_nonblocking(true).expect("nonblocking");
    let mut env = vec![
        (
            "HOST_PORT".to_owned(),
            listener.local_addr().expect("addr").port().to_string(),
        ),
        ("HOST_ABSTRACT".to_owned(), abstract_name.clone()),
        ("SERVICE_PID".to_owned(), std::process::id().to_string()),
    ];
    if let Some(l6) = &listener6 {
        l6.set_nonblocking(true).expect("nonblocking");
        env.push((
            "HOST_PORT6".to_owned(),
            l6.local_addr().expect("addr").port().to_string(),
        ));
    }
    // Values from this process's environment that must never be seen inside (whole values,
    // which no attack file spells out).
    let secrets: Vec<String> = ["CARGO_MANIFEST_DIR", "PATH"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .filter(|v| v.len() > 4)
        .collect();

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/escapes");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("escapes")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".py"))
        .collect();
    files.sort();
    let known: Vec<&str> = ATTACKS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        files, known,
        "every attack file needs an expectation in ATTACKS, and only those"
    );

    for (name, expect) in ATTACKS {
        let code = std::fs::read(dir.join(name)).expect("attack");
        let result = run_python(&sandbox, name, &code, env.clone());
        let output = format!("{name}: {result:#?}");
        eprintln!(
            "{name:<24} exit {:?} signal {:?} limit {:?} wall {} ms cpu {} ms peak {} KiB",
            result.exit_code,
            result.signal,
            result.limit_hit,
            result.wall_ms,
            result.cpu_ms,
            result.peak_memory_kb
        );
        assert!(!result.stdout.contains("ESCAPED"), "{output}");
        assert!(!result.stderr.contains("ESCAPED"), "{output}");
        match expect {
            Expect::Refused => {
                assert_eq!(result.exit_code, Some(0), "{output}");
                assert_eq!(result.limit_hit, None, "{output}");
                assert!(
                    !result.stdout.is_empty(),
                    "the attack reported nothing: {output}"
                );
            }
            Expect::Limit(allowed) => {
                let hit = result
                    .limit_hit
                    .unwrap_or_else(|| panic!("no limit stopped it: {output}"));
                assert!(
                    allowed.contains(&hit),
                    "stopped by {hit:?}, expected one of {allowed:?}: {output}"
                );
                assert_eq!(result.timed_out, hit == LimitHit::WallTime, "{output}");
            }
        }
        // The host: nobody reached its listeners, nothing was left running, nothing was
        // left staged, none of its environment leaked.
        assert_eq!(
            listener.accept().map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::WouldBlock),
            "{name}"
        );
        if let Some(l6) = &listener6 {
            assert_eq!(
                l6.accept().map(|_| ()).map_err(|e| e.kind()),
                Err(ErrorKind::WouldBlock),
                "{name}"
            );
        }
        assert_eq!(
            unix.accept().map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::WouldBlock),
            "{name}"
        );
        let leftovers = processes_of(sandbox.uid_base..sandbox.uid_base + 1);
        assert!(
            leftovers.is_empty(),
            "{name} left processes behind: {leftovers:?}"
        );
        let staged = std::fs::read_dir(&sandbox.staging)
            .expect("staging")
            .count();
        assert_eq!(staged, 0, "{name} left its staging directory");
        for secret in &secrets {
            assert!(
                !result.stdout.contains(secret.as_str())
                    && !result.stderr.contains(secret.as_str()),
                "{name} saw the service's environment ({secret}): {output}"
            );
        }
    }

    // Nothing an attack wrote is seen by the next run.
    let check = run_python(
        &sandbox,
        "check.py",
        b"import os, sys\nprint('EVIL' in os.environ, 'sitecustomize' in sys.modules and hasattr(sys.modules['sitecustomize'], 'EVIL'))\n",
        vec![],
    );
    assert_eq!(check.stdout.trim(), "False False", "{check:#?}");
}

#[test]
fn a_run_reports_exit_status_usage_and_truncation() {
    let sandbox = sandbox(62_100);
    let code = b"import sys\nx = bytearray(64 * 1024 * 1024)\nfor i in range(0, len(x), 4096): x[i] = 1\nprint('out' * 40000)\nprint('err', file=sys.stderr)\nsys.exit(3)\n";
    let result = run_python(
        &sandbox,
        "usage.py",
        code,
        vec![("GREETING".into(), "hi".into())],
    );
    assert_eq!(result.exit_code, Some(3), "{result:#?}");
    assert_eq!(result.signal, None);
    assert!(result.peak_memory_kb >= 64 * 1024, "{result:#?}");
    assert!(result.cpu_ms > 0);
    assert_eq!(
        result.stdout.len(),
        64 * 1024,
        "kept exactly the output cap"
    );
    assert!(result.stdout_truncated && !result.stderr_truncated);
    assert_eq!(result.stderr, "err\n");
    assert_eq!(result.limit_hit, Some(LimitHit::Output));

    let env = run_python(
        &sandbox,
        "env.py",
        b"import os\nprint(os.environ['GREETING'])\n",
        vec![("GREETING".into(), "hi".into())],
    );
    assert_eq!(env.stdout, "hi\n");
    assert!(env.exited_cleanly(), "{env:#?}");

    let killed = run_python(
        &sandbox,
        "kill.py",
        b"import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n",
        vec![],
    );
    assert_eq!(
        (killed.exit_code, killed.signal),
        (None, Some(15)),
        "{killed:#?}"
    );
}

#[test]
fn environments_are_built_once_per_dependency_set_and_used_read_only() {
    use toolsmith_sandbox::envs::{EnvConfig, EnvError, EnvManager};
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let manager = EnvManager::new(EnvConfig::new(
        workspace().join(".tools/uv/bin/uv"),
        dir.path(),
    ));

    let first = manager.ensure(&["six==1.16.0".to_owned()]).expect("env");
    assert!(first.created);
    // Same set, other spelling and order of nothing: reused, no install.
    let again = manager
        .ensure(&["Six==1.16.0".to_owned(), "six==1.16.0".to_owned()])
        .expect("env");
    assert!(!again.created);
    assert_eq!(again.path, first.path);

    let sandbox = sandbox(62_700);
    let run = sandbox
        .sandbox
        .run(&RunSpec {
            program: vec!["python".into(), "check.py".into()],
            files: vec![(
                PathBuf::from("check.py"),
                b"import six, pytest\nprint(six.__version__, pytest.__version__)\ntry:\n    open('/env/evil.pth', 'w')\n    print('ESCAPED')\nexcept OSError as err:\n    print('read-only:', err.errno)\n".to_vec(),
            )],
            env: Vec::new(),
            python_env: first.path.clone(),
            harness: Vec::new(),
            report: false,
            limits: limits(),
        })
        .expect("run");
    assert_eq!(run.stdout, "1.16.0 9.2.0\nread-only: 30\n", "{run:#?}");

    let missing = manager.ensure(&["toolsmith-surely-no-such-package-zz".to_owned()]);
    match missing {
        Err(EnvError::Install { message, .. }) => {
            assert!(
                message.contains("toolsmith-surely-no-such-package-zz"),
                "{message}"
            );
        }
        other => panic!("expected an install error, got {other:?}"),
    }
    assert!(matches!(
        manager.ensure(&["pkg @ https://example.com/pkg.whl".to_owned()]),
        Err(EnvError::InvalidDependency { .. })
    ));
    // Nothing half-built is left behind.
    let leftovers: Vec<String> = std::fs::read_dir(dir.path().join("envs"))
        .expect("envs")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".build-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn without_isolation_limits_the_wall_clock_and_verdicts_still_hold() {
    use toolsmith_sandbox::verdict::{harness_files, pytest_env, pytest_program, pytest_verdict};
    let sandbox = sandbox_with(62_800, Isolation::Disabled);
    let run = run_python(
        &sandbox,
        "where.py",
        b"import os\nprint(os.getcwd().endswith('/work'), os.path.exists('/etc/hostname'))\n",
        vec![],
    );
    assert_eq!(
        run.stdout, "True True\n",
        "it runs on the host, in its own work directory: {run:#?}"
    );

    // A daemon in its own session does not survive the wall clock.
    let daemon = b"import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\ntime.sleep(600)\n";
    let run = run_python(&sandbox, "daemon.py", daemon, vec![]);
    assert_eq!(run.limit_hit, Some(LimitHit::WallTime), "{run:#?}");
    let leftovers = processes_of(62_800..62_801);
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let run = sandbox
        .sandbox
        .run(&RunSpec {
            program: pytest_program(&[PathBuf::from("test_it.py")]),
            files: vec![(
                PathBuf::from("test_it.py"),
                b"import os\ndef test_a():\n    assert 1\ndef test_b():\n    os._exit(0)\n"
                    .to_vec(),
            )],
            env: pytest_env(),
            python_env: python_env(),
            harness: harness_files(),
            report: true,
            limits: limits(),
        })
        .expect("run");
    let verdict = pytest_verdict(&run);
    assert_eq!(verdict.collected, 2, "{verdict:#?}");
    assert!(
        !verdict.passed,
        "os._exit(0) is caught without isolation too: {verdict:#?}"
    );
}
