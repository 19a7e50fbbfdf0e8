//! The `warden` command line: one file per subcommand group.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod bundle;
pub mod serve;

#[derive(Debug, Parser)]
#[command(name = "warden", version, about = "Audit and policy compliance gateway")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (SQLite under ./warden-data by default).
    Serve(serve::ServeArgs),
    /// Write a new Ed25519 key pair (PKCS#8 private, SPKI public, PEM) for signing bundles.
    Keygen {
        /// Directory to write `<name>.pem` and `<name>.pub.pem` into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[arg(long, default_value = "warden-bundle-signing")]
        name: String,
    },
    /// Build, sign, test and push OPA bundles.
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Keygen { out, name } => crate::keys::keygen(&out, &name).map(|(private, public)| {
            println!("private key: {}", private.display());
            println!("public key:  {}", public.display());
            println!("register the public key with: POST /v1/keys {{\"key_id\": \"{name}\", \"algorithm\": \"EdDSA\", \"public_key\": \"<PEM>\"}}");
            ExitCode::SUCCESS
        }),
        Command::Bundle(cmd) => bundle::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
