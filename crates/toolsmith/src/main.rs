use std::io::Write;

use anyhow::Context;
use clap::Parser;
use toolsmith::cli::{Cli, Command};
use toolsmith::{Application, Config, telemetry};
use toolsmith_llm::mock::{MockScript, MockServer};
use toolsmith_store::SqliteStore;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            telemetry::init(args.log_format == "json");
            let config = args.config()?;
            // Generation arrives with the workflow; until then the service runs without it.
            let app = Application::build(config, None).await?;
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
