//! `app`: serve (default), run the job workers, migrate, print the OpenAPI document, or manage accounts.

use std::process::ExitCode;

use app::{
    Application,
    cli::{Cli, Command},
    config, shutdown_signal, telemetry,
};
use app_core::config::{Config, LogConfig};
use clap::Parser;

/// mimalloc: request handling allocates many small, short-lived objects, which it serves with
/// far fewer instructions than the system allocator (measured by `scripts/bench.sh`); see
/// [`app::alloc`] for how it is called.
#[global_allocator]
static GLOBAL: app::alloc::MiMalloc = app::alloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Openapi { output }) = &cli.command {
        return runtime.block_on(print_openapi(output.as_deref()));
    }
    if let Some(Command::ConfigTable) = &cli.command {
        print!("{}", config::table(&app::modules()));
        return ExitCode::SUCCESS;
    }
    let loaded = match config::load(&app::modules(), cli.config.as_deref(), std::env::vars()) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let config = loaded.config;
    telemetry::init(config.get::<LogConfig>(), config.profile);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    match cli.command.unwrap_or(Command::Serve) {
        // Signal handlers first: a SIGTERM during start-up must stop the app gracefully.
        Command::Serve => runtime.block_on(async { serve(config, shutdown_signal()).await }),
        Command::Worker => runtime.block_on(async { worker(config, shutdown_signal()).await }),
        Command::Migrate => runtime.block_on(migrate(config)),
        Command::Openapi { .. } | Command::ConfigTable => unreachable!("handled above"),
        Command::User { command } => runtime.block_on(user(config, command)),
    }
}

async fn user(config: Config, command: app::cli::UserCommand) -> ExitCode {
    let password = match &command {
        app::cli::UserCommand::Create { .. } => {
            let mut line = String::new();
            if let Err(err) = std::io::stdin().read_line(&mut line) {
                eprintln!("error: cannot read the password from standard input: {err}");
                return ExitCode::FAILURE;
            }
            // Only the line break is removed: the password is used exactly as typed otherwise.
            Some(line.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&line).to_owned())
        }
        _ => None,
    };
    match app::accounts::run(config, command, password).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> ExitCode {
    let app = match Application::builder(app::modules(), config).build().await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("error: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: the server failed: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn worker(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> ExitCode {
    match app::app::run_workers(app::modules(), config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: cannot run the workers: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: Config) -> ExitCode {
    let result = async {
        let migrations = app::modules().migrations().map_err(|e| e.to_string())?;
        let db = app_database::Database::connect(config.get::<app_database::DatabaseConfig>())
            .await
            .map_err(|e| e.to_string())?;
        let migrated = db.migrate(&migrations).await.map_err(|e| e.to_string());
        db.close().await;
        migrated
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!("migrations applied");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn print_openapi(output: Option<&std::path::Path>) -> ExitCode {
    let spec = match app::routes::spec(app::modules()).await {
        Ok(spec) => spec,
        Err(err) => {
            eprintln!("error: cannot build the OpenAPI document: {err}");
            return ExitCode::FAILURE;
        }
    };
    let written = match output {
        Some(path) => std::fs::write(path, spec + "\n").map_err(|e| e.to_string()),
        None => {
            use std::io::Write;
            writeln!(std::io::stdout(), "{spec}").map_err(|e| e.to_string())
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
