//! The command line: `app [serve|worker|migrate|openapi|user]`.

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
    /// Run the job workers only (no HTTP server), to scale them apart from the API. Needs Redis.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (what `/openapi.json` serves) and exit.
    Openapi {
        /// Write it to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Print the README's configuration table (every module's keys, defaults and meaning).
    #[command(hide = true)]
    ConfigTable,
    /// Manage accounts (create the first admin, change roles, delete).
    User {
        /// The account command.
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// `app user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from standard input (one line), never from
    /// the command line: `printf '%s' "$PASSWORD" | app user create --email .. --name .. --admin`.
    Create {
        /// The email address.
        #[arg(long)]
        email: String,
        /// The display name.
        #[arg(long)]
        name: String,
        /// Give the account the `admin` role.
        #[arg(long)]
        admin: bool,
    },
    /// Change an account's role; ends the user's sessions.
    SetRole {
        /// The account's email address.
        #[arg(long)]
        email: String,
        /// The new role.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Delete an account; ends the user's sessions.
    Delete {
        /// The account's email address.
        #[arg(long)]
        email: String,
    },
}

/// A role on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// A regular user.
    User,
    /// An administrator.
    Admin,
}

impl From<RoleArg> for app_core::Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::User => app_core::Role::User,
            RoleArg::Admin => app_core::Role::Admin,
        }
    }
}
