//! `skiff`: one binary, one subcommand per role.

mod acls;
mod agent;
mod compactor;
mod dev;
mod export;
mod groups;
mod kafka;
mod metastore;
mod s3;
mod serve;
mod settings;
mod transactions;

use clap::{Args, Parser, Subcommand};

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

// Parsed once at start-up and then taken apart: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: a single-node metastore, one agent, and the local
    /// filesystem as the object store. For development and tests; no external services needed.
    Dev(settings::DevArgs),
    /// Run a stateless agent: the Kafka protocol for clients, objects in the shared object
    /// store, commits to a metastore quorum (--metastore).
    Agent(settings::AgentArgs),
    /// Run a compactor: retention, merging small objects into segments, and deleting objects
    /// nothing points at, for the cluster of a metastore quorum (--metastore). Several may run.
    Compactor(settings::CompactorArgs),
    /// Run one node of the metastore quorum (the Raft-replicated index of topics, partitions and
    /// objects), or manage a running quorum with the subcommands.
    Metastore(MetastoreCommand),
    /// Consumer groups of a running cluster, through the Kafka protocol (like
    /// kafka-consumer-groups): list them, or describe their members, offsets and lag.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// ACL bindings of a running cluster, through the Kafka protocol (like kafka-acls.sh): add,
    /// remove and list them
    #[command(subcommand)]
    Acls(acls::AclsCommand),
    /// SCRAM users of a running cluster, through the Kafka protocol (like kafka-configs.sh
    /// --entity-type users): add, delete and list them
    #[command(subcommand)]
    Users(acls::UsersCommand),
    /// Transactional ids of a running cluster, at its metastore (like kafka-transactions.sh):
    /// list them, describe one, or abort one's ongoing transaction.
    #[command(subcommand)]
    Transactions(transactions::TransactionsCommand),
    /// Export a topic to files for analytics engines (`skiff export parquet`).
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Prepare an S3 bucket for Skiff (`skiff s3 init`).
    #[command(subcommand)]
    S3(s3::S3Command),
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct MetastoreCommand {
    #[command(subcommand)]
    admin: Option<metastore::AdminCommand>,
    #[command(flatten)]
    node: settings::MetastoreArgs,
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
        Command::Agent(args) => {
            runtime.block_on(agent::run(settings::RemoteAgentSettings::resolve(args)?))
        }
        Command::Compactor(args) => {
            runtime.block_on(compactor::run(settings::CompactorSettings::resolve(args)?))
        }
        Command::Metastore(MetastoreCommand {
            admin: Some(cmd), ..
        }) => runtime.block_on(metastore::admin(cmd)),
        Command::Metastore(MetastoreCommand { admin: None, node }) => runtime.block_on(
            metastore::run_node(settings::MetastoreSettings::resolve(node)?),
        ),
        // Blocking sockets, one request at a time: no need for the runtime. Errors are one
        // line (no backtrace even with RUST_BACKTRACE set: they are about the cluster).
        Command::S3(cmd) => runtime.block_on(s3::run(cmd)),
        Command::Export(cmd) => runtime.block_on(export::run(cmd)).or_else(|e| {
            eprintln!("skiff export: {e:#}");
            std::process::exit(1)
        }),
        Command::Transactions(cmd) => runtime.block_on(transactions::run(cmd)).or_else(|e| {
            eprintln!("skiff transactions: {e:#}");
            std::process::exit(1)
        }),
        Command::Acls(cmd) => acls::run(cmd).or_else(|e| {
            eprintln!("skiff acls: {e:#}");
            std::process::exit(1)
        }),
        Command::Users(cmd) => acls::users(cmd).or_else(|e| {
            eprintln!("skiff users: {e:#}");
            std::process::exit(1)
        }),
        Command::Groups(cmd) => groups::run(cmd).or_else(|e| {
            eprintln!("skiff groups: {e:#}");
            std::process::exit(1)
        }),
    }
}
