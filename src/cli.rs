//! The command line: `app [serve|migrate|openapi]`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// SPA backend: feature modules, guarded routes, an OpenAPI-documented HTTP API.
#[derive(Debug, Parser)]
#[command(name = "app", version, about)]
pub struct Cli {
    /// Config file (TOML). Default: `app.toml` in the working directory, if present.
    #[arg(long, global = true, env = "APP_CONFIG")]
    pub config: Option<PathBuf>,

    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (what `/openapi.json` serves) and exit.
    Openapi {
        /// Write it to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}
