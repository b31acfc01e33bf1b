//! `skiff`: one binary, one subcommand per role.

mod dev;
mod settings;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "skiff",
    version,
    about = "Skiff: a diskless, Kafka-compatible streaming platform on object storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: a single-node metastore, one agent, and the local
    /// filesystem as the object store. For development and tests; no external services needed.
    Dev(settings::DevArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Dev(args) => runtime.block_on(dev::run(settings::DevSettings::resolve(args)?)),
    }
}
