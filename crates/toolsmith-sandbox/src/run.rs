//! [`Sandbox`]: staging a run, starting bubblewrap, enforcing the wall clock and the output
//! caps, and reading the outcome.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Instant;

use thiserror::Error;

use crate::init::{InitArgs, MESSAGE_PREFIX, SETUP_FAILED, SUBCOMMAND, Status};
use crate::{LimitHit, Limits, RunResult};

/// Where things are inside the sandbox.
const INPUT: &str = "/input";
const WORK: &str = "/work";
const ENV: &str = "/env";
const HARNESS: &str = "/harness";
const INIT: &str = "/.toolsmith/init";
/// The uid and gid the program sees.
const INSIDE_ID: &str = "1000";
/// The descriptor the init reports on (see `init::Status`).
const STATUS_FD: i32 = 3;
/// The descriptor the service reads the program's report from, as passed to bubblewrap (the
/// init hands it to the program as `init::REPORT_FD`).
const REPORT_PIPE_FD: i32 = 6;

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub bwrap: PathBuf,
    /// The `toolsmith` binary, bound read-only into the sandbox and run as its init.
    pub init_binary: PathBuf,
    /// Where runs are staged; made traversable by the sandbox users.
    pub staging_root: PathBuf,
    /// When the service runs as root, run `n` of the `slots` concurrent runs uses host uid
    /// `uid_base + n`: an unprivileged user of its own, so process limits hold (they are not
    /// enforced for root) and runs cannot signal each other.
    pub uid_base: u32,
    pub slots: u32,
    pub isolation: Isolation,
}

/// Whether runs are confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Namespaces, Landlock and seccomp; a run that cannot have them does not start.
    Enforced,
    /// `--unsafe-no-sandbox`: the same runner, limits, wall clock and verdict channels, but no
    /// namespaces, Landlock or seccomp. Runs see the host. For machines without user
    /// namespaces, where the operator accepts that generated code runs unconfined.
    Disabled,
}

impl SandboxConfig {
    pub fn new(init_binary: PathBuf, staging_root: PathBuf) -> Self {
        SandboxConfig {
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            init_binary,
            staging_root,
            uid_base: 61_000,
            slots: 8,
            isolation: Isolation::Enforced,
        }
    }
}

/// Where a run's directories are, as the program sees them.
struct RunPaths {
    input: PathBuf,
    work: PathBuf,
    env: PathBuf,
    harness: PathBuf,
    writable: Vec<PathBuf>,
}

impl RunPaths {
    fn sandboxed() -> Self {
        RunPaths {
            input: INPUT.into(),
            work: WORK.into(),
            env: ENV.into(),
            harness: HARNESS.into(),
            writable: vec![WORK.into(), "/tmp".into(), "/dev/shm".into()],
        }
    }

    /// Without isolation the run sees the host: its directories are the staging ones.
    fn unconfined(staging: &Path, python_env: &Path) -> Self {
        RunPaths {
            input: staging.join("input"),
            work: staging.join("work"),
            env: python_env.to_owned(),
            harness: staging.join("harness"),
            writable: vec![staging.join("work")],
        }
    }

    /// `text` with the sandbox's directories replaced by these (programs and environment
    /// values are written for the sandbox). Each `:`-separated part is mapped once, by its
    /// leading directory, so a mapped path is never mapped again.
    fn translate(&self, text: &str) -> String {
        let map = [
            (HARNESS, &self.harness),
            (ENV, &self.env),
            (INPUT, &self.input),
            (WORK, &self.work),
        ];
        text.split(':')
            .map(|part| {
                for (logical, actual) in &map {
                    if let Some(rest) = part.strip_prefix(logical)
                        && (rest.is_empty() || rest.starts_with('/'))
                    {
                        return format!("{}{rest}", actual.display());
                    }
                }
                part.to_owned()
            })
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// The program's whole environment.
fn run_env(spec: &RunSpec, paths: &RunPaths) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            format!("{ENV}/bin:/usr/local/bin:/usr/bin:/bin"),
        ),
        ("HOME".into(), WORK.into()),
        ("TMPDIR".into(), "/tmp".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
        ("PYTHONNOUSERSITE".into(), "1".into()),
    ];
    env.extend(spec.env.iter().cloned());
    env.into_iter()
        .map(|(k, v)| (k, paths.translate(&v)))
        .collect()
}

fn init_args(spec: &RunSpec, paths: &RunPaths, confine: bool) -> InitArgs {
    let limits = &spec.limits;
    InitArgs {
        input: paths.input.clone(),
        work: paths.work.clone(),
        writable: paths.writable.clone(),
        cpu_seconds: limits.cpu_seconds,
        memory_bytes: limits.memory_bytes,
        processes: limits.processes,
        file_size_bytes: limits.file_size_bytes,
        open_files: limits.open_files,
        status_fd: Some(STATUS_FD),
        report_fd: spec.report.then_some(REPORT_PIPE_FD),
        confine,
        program: spec.program.iter().map(|a| paths.translate(a)).collect(),
    }
}

/// One program to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// `argv`; `python` is the tool environment's interpreter (`/env/bin` is first on `PATH`).
    pub program: Vec<String>,
    /// Files placed in the working directory, by relative path.
    pub files: Vec<(PathBuf, Vec<u8>)>,
    /// The only environment variables the program sees, besides `PATH`, `HOME`, `TMPDIR`,
    /// `LANG` and Python's own settings.
    pub env: Vec<(String, String)>,
    /// A Python environment (a venv or an installation prefix), mounted read-only at `/env`.
    pub python_env: PathBuf,
    /// Read-only files at `/harness` (the service's own scripts: test runners, plugins).
    pub harness: Vec<(PathBuf, Vec<u8>)>,
    /// Give the program a report channel (see `init::REPORT_FD`); its nonce-tagged lines
    /// end up in [`RunResult::report`].
    pub report: bool,
    pub limits: Limits,
}

#[derive(Debug, Error)]
pub enum SandboxError {
    #[error(
        "bubblewrap is not installed at {0} (run scripts/setup.sh, or install the Debian package bubblewrap)"
    )]
    BwrapMissing(PathBuf),
    #[error("the sandbox init binary {0} does not exist")]
    InitMissing(PathBuf),
    #[error(
        "{path} is not readable by the sandbox's unprivileged user: make it and its parent directories world-readable/traversable"
    )]
    NotAccessible { path: PathBuf },
    #[error("invalid file name {0:?} for a run: it must be a relative path without `..`")]
    InvalidFileName(PathBuf),
    #[error("could not stage the run in {path}")]
    Staging {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not start bubblewrap")]
    Spawn(#[source] std::io::Error),
    #[error("the sandbox could not be set up: {0}")]
    Setup(String),
}

pub struct Sandbox {
    config: SandboxConfig,
    run_as_other_users: bool,
    slots: Mutex<Vec<bool>>,
    slot_freed: Condvar,
}

impl Sandbox {
    /// Checks what a run needs and prepares the staging root.
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        if config.isolation == Isolation::Enforced && !is_executable(&config.bwrap) {
            return Err(SandboxError::BwrapMissing(config.bwrap.clone()));
        }
        if !config.init_binary.is_file() {
            return Err(SandboxError::InitMissing(config.init_binary.clone()));
        }
        let staging = |source| SandboxError::Staging {
            path: config.staging_root.clone(),
            source,
        };
        std::fs::create_dir_all(&config.staging_root).map_err(staging)?;
        std::fs::set_permissions(&config.staging_root, std::fs::Permissions::from_mode(0o711))
            .map_err(staging)?;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            for path in [&config.init_binary, &config.staging_root] {
                if !reachable_by_others(path) {
                    return Err(SandboxError::NotAccessible { path: path.clone() });
                }
            }
        }
        if config.isolation == Isolation::Disabled && root {
            // Without a pid namespace, a run's orphans would be reparented to the host's pid 1,
            // which may never reap them: this process adopts them instead (see `sweep`).
            // SAFETY: prctl with constant arguments.
            unsafe {
                libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            }
        }
        let slots = vec![false; config.slots.max(1) as usize];
        Ok(Sandbox {
            config,
            run_as_other_users: root,
            slots: Mutex::new(slots),
            slot_freed: Condvar::new(),
        })
    }

    pub fn isolation(&self) -> Isolation {
        self.config.isolation
    }

    /// Whether `path` (a Python environment, say) can be mounted into a run.
    pub fn check_readable(&self, path: &Path) -> Result<(), SandboxError> {
        if self.run_as_other_users && !reachable_by_others(path) {
            return Err(SandboxError::NotAccessible {
                path: path.to_owned(),
            });
        }
        Ok(())
    }

    /// Runs `spec` to its end and reports how it went. Blocks: call it from a blocking task.
    pub fn run(&self, spec: &RunSpec) -> Result<RunResult, SandboxError> {
        for (name, _) in spec.files.iter().chain(&spec.harness) {
            if !is_plain_relative(name) {
                return Err(SandboxError::InvalidFileName(name.clone()));
            }
        }
        self.check_readable(&spec.python_env)?;
        let slot = self.acquire_slot();
        let staging = Staging::create(&self.config.staging_root, &spec.files, &spec.harness);
        let result = match staging {
            Ok(staging) => self.run_staged(spec, &staging.path, slot.index),
            Err(err) => Err(err),
        };
        drop(slot);
        result
    }

    fn acquire_slot(&self) -> SlotGuard<'_> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(index) = slots.iter().position(|busy| !busy) {
                slots[index] = true;
                return SlotGuard {
                    sandbox: self,
                    index,
                };
            }
            slots = self
                .slot_freed
                .wait(slots)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn bwrap_args(&self, spec: &RunSpec, staging: &Path) -> Vec<OsString> {
        let limits = &spec.limits;
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |parts: &[&str]| args.extend(parts.iter().map(OsString::from));
        push(&[
            "--unshare-user",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--disable-userns",
            // The init is the pid namespace's pid 1: bubblewrap waits for it directly, and
            // when it exits the kernel kills and reaps whatever is left in the namespace
            // (bubblewrap's own reaper would outlive the run as an orphan).
            "--as-pid-1",
            "--uid",
            INSIDE_ID,
            "--gid",
            INSIDE_ID,
            "--hostname",
            "sandbox",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--clearenv",
        ]);
        push(&["--ro-bind", "/usr", "/usr"]);
        // Locally installed software and its configuration are none of the run's business.
        push(&["--tmpfs", "/usr/local", "--remount-ro", "/usr/local"]);
        // Merged-/usr systems have /bin, /lib… as links into /usr; others get them bound.
        for dir in ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"] {
            match std::fs::read_link(dir) {
                Ok(target) => push(&["--symlink", &target.to_string_lossy(), dir]),
                Err(_) if Path::new(dir).is_dir() => push(&["--ro-bind", dir, dir]),
                Err(_) => {}
            }
        }
        push(&["--proc", "/proc", "--dev", "/dev"]);
        let size = |bytes: u64| bytes.max(1024 * 1024).to_string();
        push(&["--size", &size(limits.disk_bytes), "--tmpfs", WORK]);
        push(&["--size", &size(limits.disk_bytes / 4), "--tmpfs", "/tmp"]);
        push(&[
            "--size",
            &size(limits.disk_bytes / 4),
            "--tmpfs",
            "/dev/shm",
        ]);
        args.extend([
            "--ro-bind".into(),
            staging.join("input").into(),
            INPUT.into(),
        ]);
        args.extend([
            "--ro-bind".into(),
            staging.join("harness").into(),
            HARNESS.into(),
        ]);
        args.extend([
            "--ro-bind".into(),
            spec.python_env.clone().into(),
            ENV.into(),
        ]);
        args.extend([
            "--ro-bind".into(),
            self.config.init_binary.clone().into(),
            INIT.into(),
        ]);
        let paths = RunPaths::sandboxed();
        for (key, value) in run_env(spec, &paths) {
            args.extend(["--setenv".into(), key.into(), value.into()]);
        }
        args.extend([
            "--chdir".into(),
            WORK.into(),
            "--".into(),
            INIT.into(),
            SUBCOMMAND.into(),
        ]);
        args.extend(
            init_args(spec, &paths, true)
                .to_args()
                .into_iter()
                .map(OsString::from),
        );
        args
    }

    fn run_staged(
        &self,
        spec: &RunSpec,
        staging: &Path,
        slot: usize,
    ) -> Result<RunResult, SandboxError> {
        let run_uid = self
            .run_as_other_users
            .then(|| self.config.uid_base + u32::try_from(slot).unwrap_or(0));
        let mut command = match self.config.isolation {
            Isolation::Enforced => {
                let mut command = Command::new(&self.config.bwrap);
                command.args(self.bwrap_args(spec, staging)).env_clear();
                command
            }
            Isolation::Disabled => {
                let paths = RunPaths::unconfined(staging, &spec.python_env);
                let work = &paths.work;
                let err = |source| SandboxError::Staging {
                    path: work.clone(),
                    source,
                };
                std::fs::create_dir_all(work).map_err(err)?;
                std::fs::set_permissions(work, std::fs::Permissions::from_mode(0o700))
                    .map_err(err)?;
                if let Some(id) = run_uid {
                    std::os::unix::fs::chown(work, Some(id), Some(id)).map_err(err)?;
                }
                let mut command = Command::new(&self.config.init_binary);
                command
                    .arg(SUBCOMMAND)
                    .args(init_args(spec, &paths, false).to_args())
                    .env_clear()
                    .envs(run_env(spec, &paths))
                    .current_dir(work)
                    // Its own process group, so the wall clock can end it all.
                    .process_group(0);
                command
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(id) = run_uid {
            // std drops supplementary groups when root changes uid.
            command.uid(id).gid(id);
        }
        let (status_read, status_write) = pipe().map_err(SandboxError::Spawn)?;
        let (report_read, report_write) = pipe().map_err(SandboxError::Spawn)?;
        let status_write_fd = std::os::fd::AsRawFd::as_raw_fd(&status_write);
        let report_write_fd = spec
            .report
            .then(|| std::os::fd::AsRawFd::as_raw_fd(&report_write));
        // SAFETY: between fork and exec the closure only calls fcntl and dup2, which are
        // async-signal-safe. Both ends are first copied above the target numbers (close-on-
        // exec), so placing one cannot clobber the other; dup2 leaves the placed copies
        // inheritable.
        unsafe {
            command.pre_exec(move || {
                let high = |fd: libc::c_int| {
                    let copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100);
                    if copy < 0 {
                        Err(std::io::Error::last_os_error())
                    } else {
                        Ok(copy)
                    }
                };
                let status = high(status_write_fd)?;
                let report = report_write_fd.map(high).transpose()?;
                if libc::dup2(status, STATUS_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(fd) = report
                    && libc::dup2(fd, REPORT_PIPE_FD) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let spawned = command.spawn();
        drop(status_write);
        drop(report_write);
        let mut child = spawned.map_err(SandboxError::Spawn)?;
        let keep_report = spec.limits.output_bytes;
        let report_reader = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = std::fs::File::from(report_read)
                .take(keep_report as u64 * 4)
                .read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        });
        let status_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::fs::File::from(status_read).read_to_string(&mut text);
            serde_json::from_str::<Status>(text.trim()).ok()
        });
        let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
        let killer = Arc::new(Killer {
            pid,
            reaped: Mutex::new(false),
            isolation: self.config.isolation,
            run_uid,
        });
        let output_killed = Arc::new(AtomicBool::new(false));
        let limits = &spec.limits;
        let stdout = child.stdout.take().map(|pipe| {
            capture(
                pipe,
                limits.output_bytes,
                limits.output_kill_bytes,
                killer.clone(),
                output_killed.clone(),
            )
        });
        let stderr = child.stderr.take().map(|pipe| {
            capture(
                pipe,
                limits.output_bytes,
                limits.output_kill_bytes,
                killer.clone(),
                output_killed.clone(),
            )
        });

        let (done_tx, done_rx) = mpsc::channel();
        let waiter_killer = killer.clone();
        std::thread::spawn(move || {
            let outcome = wait_for(pid);
            *waiter_killer
                .reaped
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = true;
            let _ = done_tx.send(outcome);
        });
        let mut timed_out = false;
        let outcome = match done_rx.recv_timeout(limits.wall) {
            Ok(outcome) => outcome,
            Err(_) => {
                timed_out = true;
                killer.kill();
                match done_rx.recv_timeout(std::time::Duration::from_secs(5)) {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        killer.kill_bwrap();
                        done_rx.recv().unwrap_or_default()
                    }
                }
            }
        };
        if self.config.isolation == Isolation::Disabled {
            match run_uid {
                Some(uid) => sweep(uid),
                // SAFETY: signalling the run's own process group.
                None => unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                },
            }
        }
        let wall = started.elapsed();
        let (stdout, stdout_truncated) = stdout.map(join_capture).unwrap_or_default();
        let (stderr, stderr_truncated) = stderr.map(join_capture).unwrap_or_default();
        drop(child);

        // The init's report is about the program itself and cannot be forged by it; bubblewrap's
        // status is what is left when the init died with the sandbox (a timeout, a kill).
        let status = status_reader.join().unwrap_or(None);
        let report_text = report_reader.join().unwrap_or_default();
        // Only lines tagged with the nonce the init gave the program's harness count.
        let report = match status.as_ref().and_then(|s| s.report_nonce.as_deref()) {
            Some(nonce) => report_text
                .lines()
                .filter_map(|line| line.strip_prefix(nonce)?.strip_prefix(' '))
                .filter_map(|json| serde_json::from_str(json).ok())
                .collect(),
            None => Vec::new(),
        };
        if let Some(Status {
            setup_error: Some(message),
            ..
        }) = &status
        {
            return Err(SandboxError::Setup(message.clone()));
        }
        let (exit_code, signal, cpu_ms, peak_memory_kb) = match &status {
            Some(s) => (s.exit_code, s.signal, s.cpu_ms, s.peak_memory_kb),
            None => (
                outcome.exit.0,
                outcome.exit.1,
                outcome.cpu_ms,
                outcome.peak_memory_kb,
            ),
        };
        if status.is_none()
            && exit_code == Some(SETUP_FAILED)
            && let Some(message) = stderr.lines().find_map(|l| l.strip_prefix(MESSAGE_PREFIX))
        {
            return Err(SandboxError::Setup(message.to_owned()));
        }
        // bubblewrap's own failures happen before the init starts, so no status was reported;
        // a program that prints `bwrap: …` itself does not get here.
        if status.is_none()
            && exit_code == Some(1)
            && let Some(message) = stderr
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("bwrap: "))
        {
            return Err(SandboxError::Setup(format!("bubblewrap: {message}")));
        }
        let mut result = RunResult {
            exit_code,
            signal,
            timed_out,
            wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
            cpu_ms,
            peak_memory_kb,
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            limit_hit: None,
            report,
        };
        result.limit_hit = classify(&result, limits, output_killed.load(Ordering::SeqCst));
        Ok(result)
    }
}

struct SlotGuard<'a> {
    sandbox: &'a Sandbox,
    index: usize,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut slots = self.sandbox.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots[self.index] = false;
        self.sandbox.slot_freed.notify_one();
    }
}

/// The run's files on the host, removed when the run ends.
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn create(
        root: &Path,
        files: &[(PathBuf, Vec<u8>)],
        harness: &[(PathBuf, Vec<u8>)],
    ) -> Result<Staging, SandboxError> {
        let path = root.join(format!("run-{}", toolsmith_domain::ids::new_request_id()));
        let staging = Staging { path };
        let err = |source| SandboxError::Staging {
            path: staging.path.clone(),
            source,
        };
        let mut dirs = std::fs::DirBuilder::new();
        dirs.mode(0o755).recursive(true);
        dirs.create(&staging.path).map_err(err)?;
        let input = files
            .iter()
            .map(|(name, content)| (Path::new("input").join(name), content));
        let harness = harness
            .iter()
            .map(|(name, content)| (Path::new("harness").join(name), content));
        dirs.create(staging.path.join("input")).map_err(err)?;
        dirs.create(staging.path.join("harness")).map_err(err)?;
        for (name, content) in input.chain(harness) {
            let target = staging.path.join(name);
            if let Some(parent) = target.parent() {
                dirs.create(parent).map_err(err)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&target)
                .map_err(err)?;
            std::io::Write::write_all(&mut file, content).map_err(err)?;
        }
        Ok(staging)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %err, "could not remove a run's staging directory");
        }
    }
}

/// Ends a run early. It kills the run's init — pid 1 of the run's pid namespace, bubblewrap's
/// child — which takes every process of the namespace with it, orphans included, and lets
/// bubblewrap reap it and exit. (Killing bubblewrap instead would leave the init to be
/// reparented to the host's pid 1, which may never reap it.) Nothing is killed once
/// bubblewrap has been reaped: its pid could belong to another process by then.
struct Killer {
    pid: libc::pid_t,
    reaped: Mutex<bool>,
    isolation: Isolation,
    /// The run's own host uid, when it has one.
    run_uid: Option<u32>,
}

impl Killer {
    fn kill(&self) {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if *reaped || self.pid <= 0 {
            return;
        }
        if self.isolation == Isolation::Disabled {
            // No pid namespace to take everything down: the run's process group, and every
            // process of its uid (which catches those that left the group).
            // SAFETY: signalling our child's process group and the run's own processes.
            unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
            }
            if let Some(uid) = self.run_uid {
                let _ = kill_all_of(uid);
            }
            return;
        }
        let children = children_of(self.pid);
        let targets = if children.is_empty() {
            vec![self.pid]
        } else {
            children
        };
        for pid in targets {
            // SAFETY: plain syscall on a process of this run (bubblewrap is unreaped, so its
            // children's pids are still theirs).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }

    /// The last resort when bubblewrap itself does not go away.
    fn kill_bwrap(&self) {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if !*reaped && self.pid > 0 {
            // SAFETY: as above; bubblewrap is our unreaped child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
        }
    }
}

/// Ends whatever a run without isolation left behind: kills every process of its uid and
/// reaps those this process adopted, until none is left (at most two seconds).
fn sweep(uid: u32) {
    let deadline = Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let left = kill_all_of(uid);
        for pid in &left {
            let mut status = 0;
            // SAFETY: non-blocking wait for a process we may have adopted; ECHILD otherwise.
            unsafe {
                libc::waitpid(*pid, &mut status, libc::WNOHANG);
            }
        }
        if left.is_empty() || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// SIGKILLs every process running as `uid` (a run's own uid); returns their pids.
fn kill_all_of(uid: u32) -> Vec<libc::pid_t> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<libc::pid_t>() else {
            continue;
        };
        let owner = std::fs::read_to_string(entry.path().join("status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().next())
                    .and_then(|u| u.parse::<u32>().ok())
            });
        if owner == Some(uid) {
            // SAFETY: the process runs as the run's own uid.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            found.push(pid);
        }
    }
    found
}

/// The direct children of `pid`, from /proc.
fn children_of(pid: libc::pid_t) -> Vec<libc::pid_t> {
    let listed = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
    if let Ok(text) = listed {
        return text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<libc::pid_t>().ok());
        if ppid == Some(pid)
            && let Ok(child) = entry.file_name().to_string_lossy().parse()
        {
            children.push(child);
        }
    }
    children
}

#[derive(Debug, Default)]
struct Outcome {
    exit: (Option<i32>, Option<i32>),
    cpu_ms: u64,
    peak_memory_kb: u64,
}

/// Waits for bubblewrap. Its rusage covers the processes it reaped, so the whole tree.
fn wait_for(pid: libc::pid_t) -> Outcome {
    let mut status: libc::c_int = 0;
    // SAFETY: zeroed rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: status and usage are valid for writes.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        if rc == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return Outcome::default();
    }
    let millis = |tv: libc::timeval| {
        u64::try_from(tv.tv_sec).unwrap_or(0) * 1000 + u64::try_from(tv.tv_usec).unwrap_or(0) / 1000
    };
    // bubblewrap passes the program's exit status on, or 128 + the signal that ended it.
    let exit = if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            code @ 129..=192 => (None, Some(code - 128)),
            code => (Some(code), None),
        }
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    Outcome {
        exit,
        cpu_ms: millis(usage.ru_utime) + millis(usage.ru_stime),
        peak_memory_kb: u64::try_from(usage.ru_maxrss).unwrap_or(0),
    }
}

type Capture = std::thread::JoinHandle<(Vec<u8>, bool)>;

/// Reads a pipe to its end, keeping `keep` bytes; past `kill_at` bytes the run is killed.
fn capture(
    mut pipe: impl Read + Send + 'static,
    keep: usize,
    kill_at: u64,
    killer: Arc<Killer>,
    killed: Arc<AtomicBool>,
) -> Capture {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let total = AtomicU64::new(0);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let room = keep.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
            let so_far = total.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
            if so_far > kill_at && !killed.swap(true, Ordering::SeqCst) {
                killer.kill();
            }
        }
        let truncated = total.load(Ordering::Relaxed) > kept.len() as u64;
        (kept, truncated)
    })
}

fn join_capture(handle: Capture) -> (String, bool) {
    let (bytes, truncated) = handle.join().unwrap_or_default();
    (String::from_utf8_lossy(&bytes).into_owned(), truncated)
}

/// Which limit ended the run, from how it ended and what Python said about it.
fn classify(result: &RunResult, limits: &Limits, output_killed: bool) -> Option<LimitHit> {
    if result.timed_out {
        return Some(LimitHit::WallTime);
    }
    if output_killed {
        return Some(LimitHit::Output);
    }
    if result.signal == Some(libc::SIGXCPU)
        || (result.signal == Some(libc::SIGKILL) && result.cpu_ms >= limits.cpu_seconds * 1000)
    {
        return Some(LimitHit::CpuTime);
    }
    if result.signal == Some(libc::SIGXFSZ) {
        return Some(LimitHit::FileSize);
    }
    let said = |text: &str| result.stderr.contains(text);
    if result.exit_code != Some(0) {
        if said("MemoryError") || said("Cannot allocate memory") {
            return Some(LimitHit::Memory);
        }
        if said("File too large") {
            return Some(LimitHit::FileSize);
        }
        if said("No space left on device") {
            return Some(LimitHit::Disk);
        }
        if said("Too many open files") {
            return Some(LimitHit::OpenFiles);
        }
        if said("Resource temporarily unavailable") {
            return Some(LimitHit::Processes);
        }
    }
    if result.stdout_truncated || result.stderr_truncated {
        return Some(LimitHit::Output);
    }
    None
}

fn pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these two descriptors, owned by nobody else.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

fn is_plain_relative(path: &Path) -> bool {
    !path.as_os_str().is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether a user other than the owner can reach `path`: every ancestor traversable by
/// others, and the path itself readable.
fn reachable_by_others(path: &Path) -> bool {
    let Ok(path) = path.canonicalize() else {
        return false;
    };
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode())
            .unwrap_or(0)
    };
    let ancestors_ok = path.ancestors().skip(1).all(|dir| mode(dir) & 0o001 != 0);
    let target = mode(&path);
    let readable = if path.is_dir() {
        target & 0o005 == 0o005 || target & 0o001 != 0
    } else {
        target & 0o004 != 0
    };
    ancestors_ok && readable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_file_names_must_stay_inside() {
        assert!(is_plain_relative(Path::new("main.py")));
        assert!(is_plain_relative(Path::new("tests/test_x.py")));
        assert!(!is_plain_relative(Path::new("../x.py")));
        assert!(!is_plain_relative(Path::new("/etc/passwd")));
        assert!(!is_plain_relative(Path::new("a/../../b")));
        assert!(!is_plain_relative(Path::new("")));
    }
}
