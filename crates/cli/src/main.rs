//! `airlock`: the gateway for AI agents' outbound traffic.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "airlock",
    version,
    about = "The gateway for AI agents' outbound traffic"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (without --config: the built-in default on 127.0.0.1:4000/4002).
    Serve {
        #[arg(long, env = "AIRLOCK_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Validate a config file and exit non-zero naming the bad key and line.
    Check {
        #[arg(long, env = "AIRLOCK_CONFIG")]
        config: PathBuf,
    },
    /// Agent keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Spend and tokens from the ledger, grouped.
    Usage {
        #[arg(long, env = "AIRLOCK_CONFIG")]
        config: Option<PathBuf>,
        /// How far back, e.g. 1h, 24h, 30d.
        #[arg(long, default_value = "24h")]
        since: String,
        /// agent, model, team, kind or provider.
        #[arg(long, default_value = "agent")]
        by: String,
        /// Print JSON rows instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a fresh key and print the line to put in the agent's config.
    New {
        #[arg(long)]
        agent: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => commands::serve::run(config),
        Command::Check { config } => commands::check::run(&config),
        Command::Keys {
            command: KeysCommand::New { agent },
        } => commands::keys::new(&agent),
        Command::Usage {
            config,
            since,
            by,
            json,
        } => commands::usage::run(config, &since, &by, json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("airlock: {e:#}");
            ExitCode::FAILURE
        }
    }
}
