//! `airlock`: the gateway for AI agents' outbound traffic.

mod commands;

use commands::admin;

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
    /// The kill switch, on a running gateway (through its admin API).
    Agents {
        #[arg(long, env = "AIRLOCK_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// Pinned MCP tools, on a running gateway (through its admin API).
    Tools {
        #[arg(long, env = "AIRLOCK_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: ToolsCommand,
    },
    /// Calls on a running gateway as they happen, one line each (through its admin API).
    Tail {
        #[arg(long, env = "AIRLOCK_CONFIG")]
        config: Option<PathBuf>,
        /// Only this agent's calls.
        #[arg(long)]
        agent: Option<String>,
        /// Only calls of this kind: llm, mcp, a2a or egress.
        #[arg(long)]
        kind: Option<String>,
        /// Only calls that ended so: served, denied, failed or cancelled.
        #[arg(long)]
        decision: Option<String>,
        /// Print each call's JSON (as /api/events shows it) instead of a line.
        #[arg(long)]
        json: bool,
    },
    /// The ledger's tamper evidence.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The interception CA of the egress proxy (`egress.ca`, `egress.intercept`).
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Spend and tokens from the ledger, grouped.
    Usage {
        #[arg(long, env = "AIRLOCK_CONFIG")]
        config: Option<PathBuf>,
        /// How far back, e.g. 1h, 24h, 30d, or `today` / `month` (UTC).
        #[arg(long, default_value = "24h")]
        since: String,
        /// agent, model, team, kind, provider, route (base_url, intercepted, recognised),
        /// target, outcome, reason, hour or day.
        #[arg(long, default_value = "agent")]
        by: String,
        /// Only this agent's calls.
        #[arg(long)]
        agent: Option<String>,
        /// Only calls of this kind: llm, mcp, a2a or egress.
        #[arg(long)]
        kind: Option<String>,
        /// table (default), json (the admin API's `/api/usage` shape) or csv.
        #[arg(long, value_enum, default_value_t = commands::usage::Format::Table)]
        format: commands::usage::Format,
        /// The same as `--format json`.
        #[arg(long, hide = true)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and check it against the checkpoints; name the first altered,
    /// unlinked or missing event, or the rows deleted from the end (exit 1), or say it is
    /// intact.
    Verify {
        #[arg(long, env = "AIRLOCK_CONFIG")]
        config: Option<PathBuf>,
        /// Check that the chain reaches every checkpoint in this file (repeatable; default:
        /// `state.checkpoint` if the file exists). Rows deleted from the ledger's end show
        /// only this way.
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the events since a moment, oldest first, with their links (for a SIEM).
    Export {
        #[arg(long, env = "AIRLOCK_CONFIG")]
        config: Option<PathBuf>,
        /// How far back, e.g. 1h, 24h, 30d.
        #[arg(long, default_value = "24h")]
        since: String,
        #[arg(long, value_enum, default_value_t = commands::audit::ExportFormat::Jsonl)]
        format: commands::audit::ExportFormat,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Make the CA (unless its files exist), write a trust bundle beside it (the system CAs
    /// plus Airlock's), and print how to make agents trust it.
    Init {
        #[arg(long, env = "AIRLOCK_CONFIG")]
        config: Option<PathBuf>,
        /// The CA certificate file (default: `egress.ca.cert`, else airlock-ca.pem).
        #[arg(long)]
        cert: Option<PathBuf>,
        /// The CA key file (default: `egress.ca.key`, else airlock-ca.key).
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a fresh key and print the line to put in the agent's config.
    New {
        #[arg(long)]
        agent: String,
    },
    /// Make a key on a running gateway (stored as a digest in its ledger); with --rotate,
    /// the old key keeps working for --grace and then stops.
    Create {
        #[arg(long)]
        agent: String,
        #[arg(long)]
        rotate: Option<String>,
        #[arg(long)]
        grace: Option<String>,
        #[arg(long, env = "AIRLOCK_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Revoke a runtime key at once, on every replica.
    Revoke {
        key_id: String,
        #[arg(long, env = "AIRLOCK_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List runtime keys (ids, agents, revocation; never the keys).
    List {
        #[arg(long, env = "AIRLOCK_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AgentsCommand {
    /// Refuse every call of the agent, on every replica, until it is resumed.
    Suspend {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a suspension.
    Resume { id: String },
    /// Agents and their suspension state.
    List,
}

#[derive(Subcommand)]
enum ToolsCommand {
    /// Every upstream tool seen, with its pin status (approved, changed, flagged).
    List {
        /// Print the admin API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Accept the changed definition of a tool: it becomes the pinned one.
    Approve { server: String, tool: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => commands::serve::run(config),
        Command::Check { config } => commands::check::run(&config),
        Command::Keys { command } => keys(command),
        Command::Agents { config, command } => {
            let (method, path, body) = match command {
                AgentsCommand::Suspend { id, reason } => (
                    "POST",
                    format!("/api/agents/{id}/suspend"),
                    Some(serde_json::json!({ "reason": reason })),
                ),
                AgentsCommand::Resume { id } => ("POST", format!("/api/agents/{id}/resume"), None),
                AgentsCommand::List => ("GET", "/api/agents".to_string(), None),
            };
            admin::call(config.as_deref(), method, &path, body).and_then(|v| admin::print(&v))
        }
        Command::Tools { config, command } => match command {
            ToolsCommand::List { json } => commands::tools::list(config.as_deref(), json),
            ToolsCommand::Approve { server, tool } => {
                commands::tools::approve(config.as_deref(), &server, &tool)
            }
        },
        Command::Tail {
            config,
            agent,
            kind,
            decision,
            json,
        } => commands::tail::run(
            config.as_deref(),
            commands::tail::Filter {
                agent,
                kind,
                outcome: decision,
            },
            json,
        ),
        Command::Audit { command } => match command {
            AuditCommand::Verify {
                config,
                checkpoints,
                json,
            } => commands::audit::verify(config.as_deref(), checkpoints, json),
            AuditCommand::Export {
                config,
                since,
                format,
            } => commands::audit::export(config.as_deref(), &since, format),
        },
        Command::Ca {
            command: CaCommand::Init { config, cert, key },
        } => commands::ca::init(config.as_deref(), cert, key),
        Command::Usage {
            config,
            since,
            by,
            agent,
            kind,
            format,
            json,
        } => {
            let format = if json {
                commands::usage::Format::Json
            } else {
                format
            };
            let only = commands::usage::Only { agent, kind };
            commands::usage::run(config, &since, &by, only, format)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("airlock: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::New { agent } => commands::keys::new(&agent),
        KeysCommand::Create {
            agent,
            rotate,
            grace,
            config,
        } => {
            let body = serde_json::json!({ "agent": agent, "rotate": rotate, "grace": grace });
            admin::call(config.as_deref(), "POST", "/api/keys", Some(body))
                .and_then(|v| admin::print(&v))
        }
        KeysCommand::Revoke { key_id, config } => admin::call(
            config.as_deref(),
            "DELETE",
            &format!("/api/keys/{key_id}"),
            None,
        )
        .and_then(|v| admin::print(&v)),
        KeysCommand::List { config } => {
            admin::call(config.as_deref(), "GET", "/api/keys", None).and_then(|v| admin::print(&v))
        }
    }
}
