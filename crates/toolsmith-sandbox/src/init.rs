//! The sandbox's init: pid 1 of the run's pid namespace (the `toolsmith` binary re-entered as
//! `toolsmith sandbox-init ARGS -- PROGRAM...`). As pid 1 it ignores signals it has no handler
//! for, and when it exits every process left in the namespace is killed.
//!
//! It copies the staged files from the read-only input into `/work`, then forks. The child
//! sets the rlimits, applies Landlock (reading anywhere the mount namespace shows, writing only
//! in the writable directories; no signals or abstract sockets out of its domain) and the
//! seccomp deny-list, and execs the program. The init waits for it with `wait4` and writes the
//! outcome — exit status, CPU time and peak memory of the program's whole tree — as one JSON
//! line ([`Status`]) to the status descriptor. That descriptor is close-on-exec: the program
//! never holds it, cannot forge what it says, and (Landlock's signal scope) cannot kill the
//! init to silence it. Landlock and seccomp are required: if the child cannot apply them it
//! reports why through a close-on-exec error pipe and the program never starts.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use landlock::{
    ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
    path_beneath_rules,
};

/// The subcommand name the binary dispatches on.
pub const SUBCOMMAND: &str = "sandbox-init";
/// Exit status of an init that could not set the sandbox up.
pub const SETUP_FAILED: i32 = 125;
pub const MESSAGE_PREFIX: &str = "toolsmith sandbox-init: ";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitArgs {
    /// Read-only directory of staged files, copied into `work`.
    pub input: PathBuf,
    pub work: PathBuf,
    /// Directories the program may write to (Landlock).
    pub writable: Vec<PathBuf>,
    pub cpu_seconds: u64,
    pub memory_bytes: u64,
    pub processes: u64,
    pub file_size_bytes: u64,
    pub open_files: u64,
    /// Where the [`Status`] line goes.
    pub status_fd: Option<i32>,
    /// A descriptor the service reads reports from; handed to the program as
    /// [`REPORT_FD`], with a nonce to tag its lines on [`NONCE_FD`].
    pub report_fd: Option<i32>,
    /// Apply Landlock and seccomp (false only for `--unsafe-no-sandbox`).
    pub confine: bool,
    pub program: Vec<String>,
}

/// What the init reports about the program, on the status descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub cpu_ms: u64,
    pub peak_memory_kb: u64,
    /// Set when the program could not be started (Landlock, seccomp, limits, exec).
    pub setup_error: Option<String>,
    /// The nonce report lines must start with; only the program's first reader (the
    /// service's harness) could read it.
    pub report_nonce: Option<String>,
}

/// The program's report descriptor.
pub const REPORT_FD: i32 = 4;
/// The program's nonce descriptor: one line, the nonce; read it first, then close it.
pub const NONCE_FD: i32 = 5;

impl InitArgs {
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--input".to_owned(),
            self.input.display().to_string(),
            "--work".to_owned(),
            self.work.display().to_string(),
        ];
        for dir in &self.writable {
            args.push("--rw".to_owned());
            args.push(dir.display().to_string());
        }
        for (flag, value) in [
            ("--cpu-seconds", self.cpu_seconds),
            ("--memory-bytes", self.memory_bytes),
            ("--processes", self.processes),
            ("--file-size-bytes", self.file_size_bytes),
            ("--open-files", self.open_files),
        ] {
            args.push(flag.to_owned());
            args.push(value.to_string());
        }
        if let Some(fd) = self.status_fd {
            args.push("--status-fd".to_owned());
            args.push(fd.to_string());
        }
        if let Some(fd) = self.report_fd {
            args.push("--report-fd".to_owned());
            args.push(fd.to_string());
        }
        if !self.confine {
            args.push("--no-confine".to_owned());
        }
        args.push("--".to_owned());
        args.extend(self.program.iter().cloned());
        args
    }

    pub fn parse(args: &[String]) -> Result<InitArgs, String> {
        let mut parsed = InitArgs {
            input: PathBuf::new(),
            work: PathBuf::new(),
            writable: Vec::new(),
            cpu_seconds: 0,
            memory_bytes: 0,
            processes: 0,
            file_size_bytes: 0,
            open_files: 0,
            status_fd: None,
            report_fd: None,
            confine: true,
            program: Vec::new(),
        };
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            if flag == "--" {
                parsed.program = rest.cloned().collect();
                break;
            }
            if flag == "--no-confine" {
                parsed.confine = false;
                continue;
            }
            let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag} takes a number, not {value:?}"))
            };
            match flag.as_str() {
                "--input" => parsed.input = PathBuf::from(value),
                "--work" => parsed.work = PathBuf::from(value),
                "--rw" => parsed.writable.push(PathBuf::from(value)),
                "--cpu-seconds" => parsed.cpu_seconds = number()?,
                "--memory-bytes" => parsed.memory_bytes = number()?,
                "--processes" => parsed.processes = number()?,
                "--file-size-bytes" => parsed.file_size_bytes = number()?,
                "--open-files" => parsed.open_files = number()?,
                "--status-fd" => parsed.status_fd = Some(descriptor(flag, value)?),
                "--report-fd" => parsed.report_fd = Some(descriptor(flag, value)?),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if parsed.program.is_empty() {
            return Err("no program to run after `--`".to_owned());
        }
        if parsed.input.as_os_str().is_empty() || parsed.work.as_os_str().is_empty() {
            return Err("--input and --work are required".to_owned());
        }
        Ok(parsed)
    }
}

fn descriptor(flag: &str, value: &str) -> Result<i32, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} takes a descriptor, not {value:?}"))
}

/// Runs the init with the arguments after the subcommand and returns its exit status: the
/// program's (128 + the signal when one ended it), or [`SETUP_FAILED`].
pub fn main(args: &[String]) -> i32 {
    match supervise(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{MESSAGE_PREFIX}{message}");
            SETUP_FAILED
        }
    }
}

fn supervise(args: &[String]) -> Result<i32, String> {
    let args = InitArgs::parse(args)?;
    // Not dumpable: /proc/1/fd, /proc/1/mem and the like are closed to the program, so it
    // cannot reach the status descriptor through procfs.
    // SAFETY: prctl with constant arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(format!(
            "could not make the init non-dumpable: {}",
            std::io::Error::last_os_error()
        ));
    }
    close_inherited_descriptors(&[args.status_fd, args.report_fd])?;
    let status_out = match args.status_fd {
        Some(fd) => {
            // SAFETY: the service opened this descriptor for us; nobody else owns it here.
            set_cloexec(fd)?;
            Some(unsafe { std::fs::File::from_raw_fd(fd) })
        }
        None => None,
    };
    copy_tree(&args.input, &args.work).map_err(|err| {
        format!(
            "could not copy the run's files into {}: {err}",
            args.work.display()
        )
    })?;
    // Compiled before the fork so the child does as little as possible.
    let filter = crate::seccomp::deny_list()?;
    let (error_read, error_write) = cloexec_pipe()?;
    let report = match args.report_fd {
        Some(fd) => {
            set_cloexec(fd)?;
            let (nonce_read, nonce_write) = cloexec_pipe()?;
            Some((fd, nonce_read, nonce_write, new_nonce()?))
        }
        None => None,
    };

    // SAFETY: the init is single-threaded (it runs before any runtime starts), so the child
    // may allocate and run ordinary code until it execs.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork failed: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(error_read);
        let message = match &report {
            Some((fd, nonce_read, _, _)) => match hand_over_report(*fd, nonce_read) {
                Ok(()) => start_program(&args, &filter),
                Err(message) => message,
            },
            None => start_program(&args, &filter),
        };
        let mut pipe = std::fs::File::from(error_write);
        let _ = pipe.write_all(message.as_bytes());
        // SAFETY: leaving the forked child without running the parent's destructors.
        unsafe { libc::_exit(SETUP_FAILED) };
    }
    drop(error_write);
    let mut report_nonce = None;
    if let Some((fd, nonce_read, nonce_write, nonce)) = report {
        drop(nonce_read);
        // SAFETY: closing the init's copy; the program has its own.
        unsafe {
            libc::close(fd);
        }
        let _ = std::fs::File::from(nonce_write).write_all(format!("{nonce}\n").as_bytes());
        report_nonce = Some(nonce);
    }
    let mut setup_error = String::new();
    let _ = std::fs::File::from(error_read).read_to_string(&mut setup_error);
    let mut status = wait_for_program(pid);
    if !setup_error.is_empty() {
        status.setup_error = Some(setup_error.clone());
    }
    status.report_nonce = report_nonce;
    if let Some(mut out) = status_out {
        let line = serde_json::to_string(&status).unwrap_or_default();
        let _ = writeln!(out, "{line}");
    }
    if !setup_error.is_empty() {
        return Err(setup_error);
    }
    Ok(match (status.exit_code, status.signal) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => SETUP_FAILED,
    })
}

/// In the forked child: limits, Landlock, seccomp, exec. Returns only the reason it failed.
fn start_program(args: &InitArgs, filter: &seccompiler::BpfProgram) -> String {
    // No set-uid or file-capability gains, confined or not.
    // SAFETY: prctl with constant arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return format!(
            "could not set no_new_privs: {}",
            std::io::Error::last_os_error()
        );
    }
    if let Err(message) = set_limits(args) {
        return message;
    }
    if args.confine {
        if let Err(message) = restrict_filesystem(&args.writable) {
            return message;
        }
        if let Err(err) = seccompiler::apply_filter(filter) {
            return format!("could not apply seccomp: {err}");
        }
    }
    let err = std::process::Command::new(&args.program[0])
        .args(&args.program[1..])
        .current_dir(&args.work)
        .exec();
    format!("could not start {:?}: {err}", args.program[0])
}

fn wait_for_program(pid: libc::pid_t) -> Status {
    let mut raw: libc::c_int = 0;
    // SAFETY: zeroed rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: raw and usage are valid for writes.
        let rc = unsafe { libc::wait4(pid, &mut raw, 0, &mut usage) };
        if rc == pid {
            break;
        }
        if rc == -1 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Status::default();
        }
    }
    let millis = |tv: libc::timeval| {
        u64::try_from(tv.tv_sec).unwrap_or(0) * 1000 + u64::try_from(tv.tv_usec).unwrap_or(0) / 1000
    };
    let (exit_code, signal) = if libc::WIFEXITED(raw) {
        (Some(libc::WEXITSTATUS(raw)), None)
    } else if libc::WIFSIGNALED(raw) {
        (None, Some(libc::WTERMSIG(raw)))
    } else {
        (None, None)
    };
    Status {
        exit_code,
        signal,
        cpu_ms: millis(usage.ru_utime) + millis(usage.ru_stime),
        peak_memory_kb: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        setup_error: None,
        report_nonce: None,
    }
}

/// In the forked child: the report descriptor becomes [`REPORT_FD`] and the nonce pipe
/// [`NONCE_FD`], both inherited by the program.
fn hand_over_report(report_fd: i32, nonce_read: &OwnedFd) -> Result<(), String> {
    let nonce_fd = std::os::fd::AsRawFd::as_raw_fd(nonce_read);
    // The service passes the report descriptor above NONCE_FD and the init's pipes are at 100
    // and up, so these copies clobber nothing. dup2 clears close-on-exec on the copies.
    // SAFETY: dup2 on descriptors this process owns.
    let ok = report_fd > NONCE_FD
        && unsafe { libc::dup2(report_fd, REPORT_FD) >= 0 && libc::dup2(nonce_fd, NONCE_FD) >= 0 };
    if !ok {
        return Err(format!(
            "could not hand the report descriptors over (report descriptor {report_fd}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// 128 random bits from the kernel, as hex.
fn new_nonce() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    // SAFETY: bytes is valid for writes of its length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != 16 {
        return Err(format!(
            "getrandom failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(toolsmith_domain::ids::to_hex(&bytes))
}

/// Closes every descriptor but the standard three and the status one: whatever the service
/// had open (sockets, the database, build-tool pipes) must not reach the program.
fn close_inherited_descriptors(keep: &[Option<i32>]) -> Result<(), String> {
    let listed: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|err| format!("could not list open descriptors: {err}"))?
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect();
    for fd in listed {
        if fd > 2 && !keep.contains(&Some(fd)) {
            // SAFETY: closing a descriptor number; the directory listing's own is gone
            // already, and a stale number only makes close fail.
            unsafe {
                libc::close(fd);
            }
        }
    }
    Ok(())
}

fn set_cloexec(fd: i32) -> Result<(), String> {
    // SAFETY: fcntl on a descriptor number; failure is reported.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    if rc != 0 {
        return Err(format!(
            "status descriptor {fd} is not open: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// A close-on-exec pipe whose ends are numbered 100 and up, clear of the descriptors the
/// program is handed (0–2, [`REPORT_FD`], [`NONCE_FD`]).
fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe failed: {}", std::io::Error::last_os_error()));
    }
    let high = |fd: libc::c_int| -> Result<OwnedFd, String> {
        // SAFETY: fd was just returned by pipe2; F_DUPFD_CLOEXEC copies it, then the low
        // number is closed.
        let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) };
        unsafe {
            libc::close(fd);
        }
        if moved < 0 {
            return Err(format!("fcntl failed: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: moved is a fresh descriptor owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(moved) })
    };
    Ok((high(fds[0])?, high(fds[1])?))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn set_limits(args: &InitArgs) -> Result<(), String> {
    let limits = [
        (
            libc::RLIMIT_CPU,
            args.cpu_seconds,
            args.cpu_seconds + 1,
            "CPU time",
        ),
        (
            libc::RLIMIT_AS,
            args.memory_bytes,
            args.memory_bytes,
            "address space",
        ),
        (
            libc::RLIMIT_NPROC,
            args.processes,
            args.processes,
            "processes",
        ),
        (
            libc::RLIMIT_FSIZE,
            args.file_size_bytes,
            args.file_size_bytes,
            "file size",
        ),
        (
            libc::RLIMIT_NOFILE,
            args.open_files,
            args.open_files,
            "open files",
        ),
        (libc::RLIMIT_CORE, 0, 0, "core dumps"),
    ];
    for (resource, soft, hard, what) in limits {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `limit` is a valid rlimit for the duration of the call.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(format!(
                "could not limit {what}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

fn restrict_filesystem(writable: &[PathBuf]) -> Result<(), String> {
    let abi = ABI::V5;
    let landlock_err = |err: landlock::RulesetError| format!("could not apply Landlock: {err}");
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(landlock_err)?
        // Signals and abstract UNIX sockets stay inside the sandbox (kernels with ABI 6+).
        .scope(Scope::from_all(ABI::V6))
        .map_err(landlock_err)?
        .create()
        .map_err(landlock_err)?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))
        .map_err(landlock_err)?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(abi)))
        .map_err(landlock_err)?
        .add_rules(path_beneath_rules(["/dev/null"], AccessFs::from_file(abi)))
        .map_err(landlock_err)?
        .restrict_self()
        .map_err(landlock_err)?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err(
            "this kernel does not enforce Landlock; refusing to run untrusted code without it \
             (start the service with --unsafe-no-sandbox to accept the risk)"
                .to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        let args = InitArgs {
            input: "/input".into(),
            work: "/work".into(),
            writable: vec!["/work".into(), "/tmp".into()],
            cpu_seconds: 5,
            memory_bytes: 1 << 30,
            processes: 32,
            file_size_bytes: 1 << 20,
            open_files: 64,
            status_fd: Some(3),
            report_fd: Some(6),
            confine: false,
            program: vec!["python".into(), "main.py".into(), "--flag".into()],
        };
        assert_eq!(InitArgs::parse(&args.to_args()), Ok(args));
        assert!(InitArgs::parse(&["--input".into(), "/i".into()]).is_err());
        assert!(InitArgs::parse(&["--bogus".into(), "1".into(), "--".into(), "x".into()]).is_err());
    }
}
