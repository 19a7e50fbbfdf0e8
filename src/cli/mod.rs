//! The `warden` command line: one file per subcommand group.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod bundle;
pub mod ledger;
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
    /// Download the tenant's evidence file (entries, checkpoints, keys).
    Export(ledger::ExportArgs),
    /// Verify an evidence file offline with a trusted public key.
    Verify(ledger::VerifyArgs),
    /// Verify one receipt and its inclusion proof offline.
    VerifyReceipt(ledger::VerifyReceiptArgs),
    /// Re-derive every log from the store and name any tampered entry.
    Fsck(ledger::FsckArgs),
    /// Evaluate a recorded decision again with its pinned bundle and captured values.
    Replay(ledger::ReplayArgs),
    /// Which past decisions (and workflows) a candidate bundle revision would change.
    Impact(ledger::ImpactArgs),
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
        Command::Export(args) => ledger::export(args),
        Command::Verify(args) => ledger::verify(args),
        Command::VerifyReceipt(args) => ledger::verify_receipt(args),
        Command::Fsck(args) => ledger::fsck(args),
        Command::Replay(args) => ledger::replay(args),
        Command::Impact(args) => ledger::impact(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
