//! The `herald` command line: `serve`, `plugins list`, `plugins check`,
//! `plugins test`, `plugins new`, `secrets generate-key`.
//!
//! The binary's `main` is one call to [`main`], so the test suite can build
//! the very same entry point.

use crate::automations::slack_workspaces::SlackWorkspaces;
use crate::config::{FileConfig, Overrides, Settings};
use crate::plugins::{PluginRuntime, RuntimeConfig};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Herald: automations for LLM observability data, with WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the daemon: HTTP API, scheduler and plugin host.
    Serve(Box<CommonArgs>),
    /// Inspects plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// The key secrets are sealed under.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Prints a new random key for `secret_key` / `HERALD_SECRET_KEY`
    /// (32 bytes, base64). Nothing is changed: to rotate, start the daemon
    /// with it as `secret_key` and the old key in `secret_key_previous`.
    GenerateKey,
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// Lists the plugins the daemon would load (bundled and from the plugins
    /// directory), and the files that fail to load.
    List {
        #[command(flatten)]
        common: Box<CommonArgs>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Loads one component file offline, checks it against the contract and
    /// prints what its `describe` returns, or why it is rejected.
    Check {
        /// The `.wasm` component.
        file: PathBuf,
    },
    /// Runs a component once against a sample input, in the daemon's
    /// sandbox, and prints what it sent, its logs, duration and peak memory.
    Test {
        /// The `.wasm` component.
        file: PathBuf,
        /// JSON file with the plugin's config (the automation's `action`
        /// without `type`).
        #[arg(long)]
        config: PathBuf,
        /// Which sample input to run it on.
        #[arg(long, value_enum)]
        sample: crate::authoring::trial::Sample,
    },
    /// Writes a new alert destination project that builds and works.
    New {
        /// Its language.
        #[arg(long, value_enum)]
        lang: crate::authoring::scaffold::Language,
        /// The plugin's name (its `action.type`).
        name: String,
        /// Where to write it [default: ./NAME].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Settings shared by the commands; each also reads its environment variable.
#[derive(Debug, Args)]
struct CommonArgs {
    /// TOML config file.
    #[arg(long, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7777].
    #[arg(long, env = "HERALD_LISTEN")]
    listen: Option<SocketAddr>,
    /// Address of the OTLP/gRPC listener [default: off].
    #[arg(long, env = "HERALD_OTLP_GRPC_LISTEN")]
    otlp_grpc_listen: Option<SocketAddr>,
    /// Data directory [default: ./herald-data].
    #[arg(long, env = "HERALD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Plugins directory [default: <data dir>/plugins].
    #[arg(long, env = "HERALD_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Database URL [default: SQLite file in the data dir].
    #[arg(long, env = "HERALD_DATABASE_URL")]
    database_url: Option<String>,
    /// Let plugins reach private, loopback and link-local addresses.
    #[arg(long, env = "HERALD_ALLOW_PRIVATE_NETWORKS", num_args = 0..=1, default_missing_value = "true")]
    allow_private_networks: Option<bool>,
    /// Base URL for links in notifications.
    #[arg(long, env = "HERALD_PUBLIC_BASE_URL")]
    public_base_url: Option<String>,
    /// API keys, comma-separated.
    #[arg(
        long,
        env = "HERALD_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    api_keys: Option<Vec<String>>,
    /// The key secrets are sealed under (base64, 32 bytes) [default: the
    /// data dir's secret-key file].
    #[arg(long, env = "HERALD_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Previous sealing keys during a rotation, comma-separated.
    #[arg(
        long,
        env = "HERALD_SECRET_KEY_PREVIOUS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    secret_key_previous: Option<Vec<String>>,
    /// Slack workspaces' bot tokens, `T…=xoxb-…` comma-separated.
    #[arg(long, env = "HERALD_SLACK_WORKSPACES", hide_env_values = true)]
    slack_workspaces: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "HERALD_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

impl CommonArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let overrides = Overrides {
            listen: self.listen,
            otlp_grpc_listen: self.otlp_grpc_listen,
            data_dir: self.data_dir.clone(),
            plugins_dir: self.plugins_dir.clone(),
            database_url: self.database_url.clone(),
            allow_private_networks: self.allow_private_networks,
            public_base_url: self.public_base_url.clone(),
            api_keys: self.api_keys.clone(),
            secret_key: self.secret_key.clone(),
            secret_key_previous: self.secret_key_previous.clone(),
            slack_workspaces: self
                .slack_workspaces
                .as_deref()
                .map(SlackWorkspaces::parse_list)
                .transpose()
                .map_err(anyhow::Error::msg)?,
        };
        Settings::resolve(file, overrides)
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Parses the command line and runs the command; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Secrets(SecretsCommand::GenerateKey) => {
            println!("{}", crate::sealing::generate_key_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(common) => {
            init_logging(&common.log_format);
            let settings = common.settings()?;
            crate::server::run(settings, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins(PluginsCommand::List { common, json }) => {
            init_logging_quiet();
            let settings = common.settings()?;
            let runtime = PluginRuntime::start(settings.runtime_config()).await?;
            let listing = runtime.list();
            if json {
                println!("{}", serde_json::to_string_pretty(&listing)?);
            } else {
                println!("{:<20} {:<10} {:<20} SOURCE", "NAME", "VERSION", "WORLD");
                for p in &listing.objects {
                    let source = match &p.origin {
                        crate::plugins::Origin::Bundled => "bundled".to_owned(),
                        crate::plugins::Origin::File { path } => path.display().to_string(),
                    };
                    println!(
                        "{:<20} {:<10} {:<20} {source}",
                        p.name,
                        p.version,
                        p.world.name()
                    );
                }
                for f in &listing.failed {
                    println!("FAILED {}: {}", f.path.display(), f.error);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins(PluginsCommand::Test {
            file,
            config,
            sample,
        }) => {
            init_logging_quiet();
            let text = std::fs::read_to_string(&config)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", config.display()))?;
            let config: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", config.display()))?;
            match crate::authoring::trial::run(&file, &config, sample).await {
                Ok(report) => {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                    Ok(if report.ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    })
                }
                Err(error) => {
                    eprintln!("{error:#}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Plugins(PluginsCommand::New { lang, name, dir }) => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            match crate::authoring::scaffold::create(lang, &name, &dir) {
                Ok(files) => {
                    for file in files {
                        println!("wrote {}", file.display());
                    }
                    println!("next: see {}", dir.join("README.md").display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    eprintln!("{error:#}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Plugins(PluginsCommand::Check { file }) => {
            init_logging_quiet();
            let runtime = PluginRuntime::start(RuntimeConfig {
                load_bundled: false,
                ..RuntimeConfig::default()
            })
            .await?;
            match runtime.check_file(&file).await {
                Ok(summary) => {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    eprintln!("{}: rejected: {error}", file.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

fn init_logging_quiet() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}
