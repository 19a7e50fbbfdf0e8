//! `warden serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::app::{self, Bootstrap};
use crate::clock::Clock;
use crate::config::Config;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "WARDEN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8181).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// `sqlite://…` or `postgres://…` (default: SQLite under the data directory).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Directory for the embedded database and keys (default ./warden-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(u) = args.database_url {
        config.database_url = Some(u);
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    config.validate()?;
    init_logging(&config);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let bootstrap_token = std::env::var("WARDEN_BOOTSTRAP_TOKEN").ok().filter(|t| !t.is_empty());
        let listen = config.listen;
        let (state, bootstrap) = app::build(config, Clock::system(), bootstrap_token).await?;
        match bootstrap {
            Bootstrap::Minted(token) => {
                // Printed once, on stdout, outside the structured log.
                println!("bootstrap admin token: {token}");
                println!("(shown once: store it now; create narrower tokens with POST /v1/tokens)");
            }
            Bootstrap::FromEnvironment => {
                println!("bootstrap admin token: the value of WARDEN_BOOTSTRAP_TOKEN");
            }
            Bootstrap::Existing => {}
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let address = listener.local_addr()?;
        tracing::info!(address = %address, store = state.store.backend(), "warden listening");
        // The last line on stdout: after the bootstrap lines, so that a
        // supervisor (or a test) reading stdout knows it has them all.
        println!("listening on http://{address}");
        app::run(listener, state, app::shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn init_logging(config: &Config) {
    let filter = std::env::var("WARDEN_LOG").unwrap_or_else(|_| config.log.level.clone());
    let filter =
        tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        builder.json().flatten_event(true).with_current_span(false).init();
    } else {
        builder.init();
    }
}
