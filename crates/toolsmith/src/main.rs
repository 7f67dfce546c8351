use std::io::Write;

use anyhow::Context;
use clap::Parser;
use toolsmith::cli::{Cli, Command, SandboxCommand, SandboxExecArgs};
use toolsmith::{Application, Config, Workflows, telemetry};
use toolsmith_llm::mock::{MockScript, MockServer};
use toolsmith_store::SqliteStore;

fn main() -> anyhow::Result<()> {
    // Inside the sandbox the binary is the init. It must run before any other thread exists:
    // Landlock and seccomp apply to the calling thread, which then execs the program.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(toolsmith_sandbox::init::SUBCOMMAND) {
        std::process::exit(toolsmith_sandbox::init::main(&args[2..]));
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?
        .block_on(run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            telemetry::init(args.log_format == "json");
            let config = args.config()?;
            let app = Application::build(config, Workflows::Generation).await?;
            let shutdown = app.shutdown_token();
            tokio::spawn(async move {
                let signal = shutdown_signal().await;
                tracing::info!("received {signal}: shutting down");
                shutdown.cancel();
            });
            app.run_until_stopped().await?;
            tracing::info!("stopped");
        }
        Command::Migrate(args) => {
            telemetry::init(false);
            std::fs::create_dir_all(&args.data_dir)?;
            let config = Config {
                database_url: args.database_url,
                ..Config::new(args.data_dir)
            };
            let url = config.database_url();
            SqliteStore::connect(&url).await?;
            tracing::info!(%url, "database is up to date");
        }
        Command::MockLlm(args) => {
            telemetry::init(false);
            let script = MockScript::from_file(&args.script).map_err(anyhow::Error::msg)?;
            let address = format!("{}:{}", args.host, args.port);
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .with_context(|| format!("could not listen on {address}"))?;
            let rules = script.rules.len();
            let server = MockServer::start(script, listener)?;
            // The one line a caller (a script, the demo) reads to learn where to point clients.
            let mut out = std::io::stdout().lock();
            writeln!(out, "mock LLM listening on {}", server.base_url())?;
            out.flush()?;
            drop(out);
            tracing::info!(rules, script = %args.script.display(), "serving the mock LLM; Ctrl-C stops it");
            let signal = shutdown_signal().await;
            tracing::info!("received {signal}: stopping");
            server.stop().await?;
        }
        Command::Generate(args) => toolsmith::generate::run(args).await?,
        Command::Tools(args) => {
            if let Err(err) = toolsmith::client::tools(args).await {
                if let Some(failed) = err.downcast_ref::<toolsmith::client::ToolFailed>() {
                    let _ = writeln!(std::io::stderr(), "{failed}");
                    std::process::exit(3);
                }
                return Err(err);
            }
        }
        Command::Buffers(args) => toolsmith::client::buffers(args).await?,
        Command::Demo(args) => {
            telemetry::init(false);
            toolsmith::demo::run(args).await?;
        }
        Command::Sandbox(SandboxCommand::Exec(args)) => {
            telemetry::init(false);
            let result = sandbox_exec(args).await?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", serde_json::to_string_pretty(&result)?)?;
        }
    }
    Ok(())
}

async fn shutdown_signal() -> &'static str {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => "SIGINT",
        _ = terminate => "SIGTERM",
    }
}

/// `toolsmith sandbox exec`: stage FILE under its own name and run `python FILE ARGS`.
async fn sandbox_exec(args: SandboxExecArgs) -> anyhow::Result<toolsmith_sandbox::RunResult> {
    use toolsmith_sandbox::{Limits, RunSpec, Sandbox, SandboxConfig};
    let file = std::path::PathBuf::from(&args.command[1]);
    let name = file
        .file_name()
        .map(std::path::PathBuf::from)
        .with_context(|| format!("{} is not a file name", file.display()))?;
    let content =
        std::fs::read(&file).with_context(|| format!("could not read {}", file.display()))?;
    let mut env = Vec::new();
    for pair in &args.env {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--env takes K=V, got {pair:?}"))?;
        env.push((key.to_owned(), value.to_owned()));
    }
    let mut program = vec![args.command[0].clone(), name.display().to_string()];
    program.extend(args.command[2..].iter().cloned());
    let python_env = args.python_env.canonicalize().with_context(|| {
        format!(
            "the Python environment {} does not exist (run scripts/setup.sh)",
            args.python_env.display()
        )
    })?;
    std::fs::create_dir_all(&args.data_dir)?;
    let mut config = SandboxConfig::new(
        std::env::current_exe().context("could not find the toolsmith binary")?,
        args.data_dir.canonicalize()?.join("sandbox"),
    );
    if args.unsafe_no_sandbox {
        tracing::warn!("--unsafe-no-sandbox: the program runs WITHOUT isolation");
        config.isolation = toolsmith_sandbox::Isolation::Disabled;
    }
    let spec = RunSpec {
        program,
        files: vec![(name, content)],
        env,
        python_env,
        harness: Vec::new(),
        report: false,
        limits: Limits {
            wall: std::time::Duration::from_secs(args.timeout_s.max(1)),
            memory_bytes: args.memory_mb.max(16) * 1024 * 1024,
            ..Limits::default()
        },
    };
    tokio::task::spawn_blocking(move || {
        let sandbox = Sandbox::new(config)?;
        sandbox.run(&spec)
    })
    .await
    .context("the sandbox task failed")?
    .map_err(anyhow::Error::from)
}
