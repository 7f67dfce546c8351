use clap::Parser;
use toolsmith::cli::{Cli, Command};
use toolsmith::{Application, Config, telemetry};
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
