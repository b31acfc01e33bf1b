//! `skiff acls` (like kafka-acls.sh) and `skiff users` (like kafka-configs.sh --entity-type
//! users): ACL bindings and SCRAM users through the Kafka protocol, over a secured listener with
//! `--command-config`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
    DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use skiff_metastore::security::ScramMechanism;

use crate::kafka::error_name;
use crate::kafka::security::ClientSecurity;
use crate::kafka::wire::Client;

/// Where the cluster is and how to reach it.
#[derive(Args, Debug)]
pub struct Connection {
    /// Any agent's Kafka address (host:port)
    #[arg(long)]
    bootstrap: String,
    /// A Kafka client properties file: security.protocol, sasl.mechanism, sasl.username and
    /// sasl.password (or sasl.jaas.config), ssl.truststore.location (PEM)
    #[arg(long)]
    command_config: Option<PathBuf>,
}

impl Connection {
    fn client(&self) -> anyhow::Result<Client> {
        let security = match &self.command_config {
            Some(path) => ClientSecurity::from_properties(path)?,
            None => ClientSecurity::default(),
        };
        Ok(Client::with_security(security))
    }
}

#[derive(Subcommand, Debug)]
pub enum AclsCommand {
    /// Add ALLOW or DENY bindings: each principal, host and operation on the resource
    Add {
        #[command(flatten)]
        to: Connection,
        #[command(flatten)]
        binding: Binding,
    },
    /// Remove the bindings that match (every one of a resource without --operation)
    Remove {
        #[command(flatten)]
        to: Connection,
        #[command(flatten)]
        binding: Binding,
    },
    /// List the bindings, of one resource or principal or all
    List {
        #[command(flatten)]
        to: Connection,
        #[command(flatten)]
        resource: ResourceArgs,
        /// Only this principal's
        #[arg(long)]
        principal: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct ResourceArgs {
    /// A topic (`*` for all)
    #[arg(long, group = "resource")]
    topic: Option<String>,
    /// A consumer group (`*` for all)
    #[arg(long, group = "resource")]
    group: Option<String>,
    /// A transactional id (`*` for all)
    #[arg(long, group = "resource")]
    transactional_id: Option<String>,
    /// The cluster
    #[arg(long, group = "resource")]
    cluster: bool,
    /// literal or prefixed; for list and remove also any or match
    #[arg(long, value_enum, default_value = "literal")]
    resource_pattern_type: PatternType,
}

#[derive(Args, Debug)]
pub struct Binding {
    #[command(flatten)]
    resource: ResourceArgs,
    /// Principals allowed (User:alice), repeatable
    #[arg(long)]
    allow_principal: Vec<String>,
    /// Principals denied, repeatable
    #[arg(long)]
    deny_principal: Vec<String>,
    /// Hosts the allowed principals may come from [default: *]
    #[arg(long)]
    allow_host: Vec<String>,
    /// Hosts the denied principals are denied from [default: *]
    #[arg(long)]
    deny_host: Vec<String>,
    /// Operations: Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite, All; repeatable
    #[arg(long)]
    operation: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PatternType {
    Any,
    Match,
    Literal,
    Prefixed,
}

impl PatternType {
    fn code(self) -> i8 {
        match self {
            Self::Any => 1,
            Self::Match => 2,
            Self::Literal => 3,
            Self::Prefixed => 4,
        }
    }
}

const OPERATIONS: [(&str, i8); 11] = [
    ("All", 2),
    ("Read", 3),
    ("Write", 4),
    ("Create", 5),
    ("Delete", 6),
    ("Alter", 7),
    ("Describe", 8),
    ("ClusterAction", 9),
    ("DescribeConfigs", 10),
    ("AlterConfigs", 11),
    ("IdempotentWrite", 12),
];
const RESOURCE_TYPES: [(&str, i8); 4] = [
    ("Topic", 2),
    ("Group", 3),
    ("Cluster", 4),
    ("TransactionalId", 5),
];
const PATTERNS: [(&str, i8); 2] = [("LITERAL", 3), ("PREFIXED", 4)];
const DENY: i8 = 2;
const ALLOW: i8 = 3;

fn name_of(table: &[(&'static str, i8)], code: i8) -> String {
    table
        .iter()
        .find(|(_, c)| *c == code)
        .map_or_else(|| format!("code {code}"), |(n, _)| (*n).to_owned())
}

fn operation(name: &str) -> anyhow::Result<i8> {
    OPERATIONS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.replace(['_', '-'], "").as_str()))
        .map(|(_, c)| *c)
        .with_context(|| format!("unknown operation {name:?}"))
}

impl ResourceArgs {
    /// The resource's type and name, if one was given.
    fn resource(&self) -> Option<(i8, String)> {
        if let Some(t) = &self.topic {
            Some((2, t.clone()))
        } else if let Some(g) = &self.group {
            Some((3, g.clone()))
        } else if let Some(t) = &self.transactional_id {
            Some((5, t.clone()))
        } else if self.cluster {
            Some((4, "kafka-cluster".to_owned()))
        } else {
            None
        }
    }
}

/// Each (principal, host, permission) of a binding's flags.
fn entries(b: &Binding) -> Vec<(String, String, i8)> {
    let hosts = |h: &[String]| {
        if h.is_empty() {
            vec!["*".to_owned()]
        } else {
            h.to_vec()
        }
    };
    let mut out = Vec::new();
    for p in &b.allow_principal {
        for h in hosts(&b.allow_host) {
            out.push((p.clone(), h, ALLOW));
        }
    }
    for p in &b.deny_principal {
        for h in hosts(&b.deny_host) {
            out.push((p.clone(), h, DENY));
        }
    }
    out
}

pub fn run(cmd: AclsCommand) -> anyhow::Result<()> {
    match cmd {
        AclsCommand::Add { to, binding } => add(&mut to.client()?, &to.bootstrap, &binding),
        AclsCommand::Remove { to, binding } => remove(&mut to.client()?, &to.bootstrap, &binding),
        AclsCommand::List {
            to,
            resource,
            principal,
        } => list(&mut to.client()?, &to.bootstrap, &resource, principal),
    }
}

fn add(client: &mut Client, bootstrap: &str, b: &Binding) -> anyhow::Result<()> {
    let (resource_type, name) = b
        .resource
        .resource()
        .context("name a resource: --topic, --group, --transactional-id or --cluster")?;
    let pattern = match b.resource.resource_pattern_type {
        PatternType::Literal | PatternType::Prefixed => b.resource.resource_pattern_type.code(),
        other => bail!("bindings are literal or prefixed, not {other:?}"),
    };
    if b.operation.is_empty() {
        bail!("give at least one --operation");
    }
    let who = entries(b);
    if who.is_empty() {
        bail!("give --allow-principal or --deny-principal");
    }
    let mut creations = Vec::new();
    for op in &b.operation {
        let op = operation(op)?;
        for (principal, host, permission) in &who {
            creations.push(
                AclCreation::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(StrBytes::from_string(name.clone()))
                    .with_resource_pattern_type(pattern)
                    .with_principal(StrBytes::from_string(principal.clone()))
                    .with_host(StrBytes::from_string(host.clone()))
                    .with_operation(op)
                    .with_permission_type(*permission),
            );
        }
    }
    let answer = client.call(
        bootstrap,
        &CreateAclsRequest::default().with_creations(creations.clone()),
    )?;
    let mut failed = false;
    for (c, r) in creations.iter().zip(&answer.results) {
        if r.error_code != 0 {
            failed = true;
            eprintln!(
                "{} {} on {} {}: {}",
                c.principal,
                name_of(&OPERATIONS, c.operation),
                name_of(&RESOURCE_TYPES, c.resource_type),
                c.resource_name,
                message(r.error_code, r.error_message.as_ref())
            );
        }
    }
    if failed {
        bail!("some bindings were not added");
    }
    println!("added {} binding(s)", creations.len());
    Ok(())
}

fn remove(client: &mut Client, bootstrap: &str, b: &Binding) -> anyhow::Result<()> {
    let (resource_type, name) = b
        .resource
        .resource()
        .context("name a resource: --topic, --group, --transactional-id or --cluster")?;
    let ops: Vec<i8> = if b.operation.is_empty() {
        vec![1] // ANY
    } else {
        b.operation
            .iter()
            .map(|o| operation(o))
            .collect::<anyhow::Result<_>>()?
    };
    let who: Vec<(Option<String>, Option<String>, i8)> = if entries(b).is_empty() {
        vec![(None, None, 1)]
    } else {
        entries(b)
            .into_iter()
            .map(|(p, h, perm)| (Some(p), Some(h), perm))
            .collect()
    };
    let mut filters = Vec::new();
    for op in &ops {
        for (principal, host, permission) in &who {
            filters.push(
                DeleteAclsFilter::default()
                    .with_resource_type_filter(resource_type)
                    .with_resource_name_filter(Some(StrBytes::from_string(name.clone())))
                    .with_pattern_type_filter(b.resource.resource_pattern_type.code())
                    .with_principal_filter(principal.clone().map(StrBytes::from_string))
                    .with_host_filter(host.clone().map(StrBytes::from_string))
                    .with_operation(*op)
                    .with_permission_type(*permission),
            );
        }
    }
    let answer = client.call(
        bootstrap,
        &DeleteAclsRequest::default().with_filters(filters),
    )?;
    let mut removed = 0;
    for r in &answer.filter_results {
        if r.error_code != 0 {
            bail!(
                "removing: {}",
                message(r.error_code, r.error_message.as_ref())
            );
        }
        removed += r.matching_acls.len();
    }
    println!("removed {removed} binding(s)");
    Ok(())
}

fn list(
    client: &mut Client,
    bootstrap: &str,
    resource: &ResourceArgs,
    principal: Option<String>,
) -> anyhow::Result<()> {
    let (resource_type, name) = match resource.resource() {
        Some((t, n)) => (t, Some(n)),
        None => (1, None),
    };
    let pattern = match (name.is_some(), resource.resource_pattern_type) {
        // Named without a pattern: what applies to it, as kafka-acls --list does.
        (true, PatternType::Literal) => PatternType::Match.code(),
        (false, PatternType::Literal) => PatternType::Any.code(),
        (_, p) => p.code(),
    };
    let req = DescribeAclsRequest::default()
        .with_resource_type_filter(resource_type)
        .with_resource_name_filter(name.map(StrBytes::from_string))
        .with_pattern_type_filter(pattern)
        .with_principal_filter(principal.map(StrBytes::from_string))
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let answer = client.call(bootstrap, &req)?;
    if answer.error_code != 0 {
        bail!(
            "{}",
            message(answer.error_code, answer.error_message.as_ref())
        );
    }
    for r in &answer.resources {
        println!(
            "Current ACLs for resource `ResourcePattern(resourceType={}, name={}, patternType={})`:",
            name_of(&RESOURCE_TYPES, r.resource_type).to_ascii_uppercase(),
            r.resource_name,
            name_of(&PATTERNS, r.pattern_type)
        );
        for a in &r.acls {
            println!(
                " \t(principal={}, host={}, operation={}, permissionType={})",
                a.principal,
                a.host,
                name_of(&OPERATIONS, a.operation).to_ascii_uppercase(),
                if a.permission_type == ALLOW {
                    "ALLOW"
                } else {
                    "DENY"
                }
            );
        }
        println!();
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Set a user's SCRAM credential (salted here: the password never leaves this process)
    Add {
        #[command(flatten)]
        to: Connection,
        name: String,
        #[arg(long)]
        password: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        #[arg(long, default_value_t = 8192)]
        iterations: i32,
    },
    /// Delete a user's credential for a mechanism
    Delete {
        #[command(flatten)]
        to: Connection,
        name: String,
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
    },
    /// List users and their mechanisms (all, or those named)
    List {
        #[command(flatten)]
        to: Connection,
        names: Vec<String>,
    },
}

fn mechanism(name: &str) -> anyhow::Result<ScramMechanism> {
    ScramMechanism::from_name(name)
        .with_context(|| format!("{name:?}: SCRAM-SHA-256 or SCRAM-SHA-512"))
}

pub fn users(cmd: UsersCommand) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::Add {
            to,
            name,
            password,
            mechanism: m,
            iterations,
        } => {
            let m = mechanism(&m)?;
            let mut salt = vec![0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
                .map_err(|_| anyhow::anyhow!("no randomness for a salt"))?;
            let rounds = u32::try_from(iterations).context("--iterations")?;
            let salted =
                skiff_agent::sasl::scram::salted_password(m, password.as_bytes(), &salt, rounds);
            let upsertion = ScramCredentialUpsertion::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_mechanism(m.kafka_code())
                .with_iterations(iterations)
                .with_salt(salt.into())
                .with_salted_password(salted.into());
            alter(
                &to,
                AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]),
            )?;
            println!("set {} for {name}", m.name());
            Ok(())
        }
        UsersCommand::Delete {
            to,
            name,
            mechanism: m,
        } => {
            let m = mechanism(&m)?;
            let deletion = ScramCredentialDeletion::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_mechanism(m.kafka_code());
            alter(
                &to,
                AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]),
            )?;
            println!("deleted {} of {name}", m.name());
            Ok(())
        }
        UsersCommand::List { to, names } => {
            let users = (!names.is_empty()).then(|| {
                names
                    .iter()
                    .map(|n| UserName::default().with_name(StrBytes::from_string(n.clone())))
                    .collect()
            });
            let answer = to.client()?.call(
                &to.bootstrap,
                &DescribeUserScramCredentialsRequest::default().with_users(users),
            )?;
            if answer.error_code != 0 {
                bail!(
                    "{}",
                    message(answer.error_code, answer.error_message.as_ref())
                );
            }
            for r in &answer.results {
                if r.error_code != 0 {
                    println!("{}: {}", r.user, error_name(r.error_code));
                    continue;
                }
                let creds: Vec<String> = r
                    .credential_infos
                    .iter()
                    .map(|c| {
                        let m = ScramMechanism::from_kafka_code(c.mechanism).map_or_else(
                            || format!("mechanism {}", c.mechanism),
                            |m| m.name().to_owned(),
                        );
                        format!("{m}=[iterations={}]", c.iterations)
                    })
                    .collect();
                println!("{}: {}", r.user, creds.join(", "));
            }
            Ok(())
        }
    }
}

fn alter(to: &Connection, req: AlterUserScramCredentialsRequest) -> anyhow::Result<()> {
    let answer = to.client()?.call(&to.bootstrap, &req)?;
    for r in &answer.results {
        if r.error_code != 0 {
            bail!(
                "{}: {}",
                r.user,
                message(r.error_code, r.error_message.as_ref())
            );
        }
    }
    Ok(())
}

/// An answer's error: its message, or the code's name when it has none.
fn message(code: i16, message: Option<&StrBytes>) -> String {
    message.map_or_else(|| error_name(code), |m| m.to_string())
}
