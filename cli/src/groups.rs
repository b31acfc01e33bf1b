//! `skiff groups`: consumer groups seen through the Kafka protocol, like `kafka-consumer-groups
//! --list` and `--describe`. Talks to any broker (Skiff agents or Kafka) over plain TCP.
//!
//! - `list`: Metadata for the brokers, then ListGroups on each (a broker lists the groups it
//!   coordinates), merged.
//! - `describe`: FindCoordinator, then DescribeGroups on the coordinator; a group it does not know
//!   (Dead, or GROUP_ID_NOT_FOUND), or knows only by its committed offsets (Empty, no members),
//!   is asked for again with ConsumerGroupDescribe (KIP-848 groups). Then OffsetFetch for every
//!   committed offset, and ListOffsets (latest) at each partition's leader for the lag.

mod assignment;
use crate::kafka::wire;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Subcommand;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, ConsumerGroupDescribeRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse, OffsetFetchRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use wire::Client;

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// List every broker's consumer groups: type (classic or consumer), state, protocol type
    List {
        /// Any broker's Kafka address (host:port)
        #[arg(long)]
        bootstrap: String,
    },
    /// Describe groups: state, and per partition the committed offset, log end offset, lag and
    /// owning member
    Describe {
        /// Any broker's Kafka address (host:port)
        #[arg(long)]
        bootstrap: String,
        /// The groups to describe
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

pub fn run(cmd: GroupsCommand) -> anyhow::Result<()> {
    let mut client = Client::default();
    match cmd {
        GroupsCommand::List { bootstrap } => list(&mut client, &bootstrap),
        GroupsCommand::Describe { bootstrap, groups } => describe(&mut client, &bootstrap, &groups),
    }
}

// --- errors -------------------------------------------------------------------------------------

const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const UNSUPPORTED_VERSION: i16 = 35;
const GROUP_ID_NOT_FOUND: i16 = 69;

use crate::kafka::error_name as kafka_error;

/// A coordinator that moved, or is not ready yet: describing the group again may work.
#[derive(Debug)]
struct Retriable(String);

impl std::fmt::Display for Retriable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Retriable {}

/// Ok for no error, a [`Retriable`] for the coordinator errors, else the error.
fn check_group_code(code: i16, what: &str) -> anyhow::Result<()> {
    match code {
        0 => Ok(()),
        COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR => {
            Err(Retriable(format!("{what}: {}", kafka_error(code))).into())
        }
        _ => bail!("{what}: {}", kafka_error(code)),
    }
}

// --- output -------------------------------------------------------------------------------------

/// `-` for an empty value, so every row splits into as many words as there are columns.
fn cell(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (c, w) in cells.zip(&widths) {
            out.push_str(c);
            out.extend(std::iter::repeat_n(
                ' ',
                w.saturating_sub(c.chars().count()) + 2,
            ));
        }
        println!("{}", out.trim_end());
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}

// --- cluster ------------------------------------------------------------------------------------

fn address(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Metadata: `None` asks for every topic, `Some(names)` for those (none: brokers only).
fn metadata(
    client: &mut Client,
    bootstrap: &str,
    topics: Option<Vec<String>>,
) -> anyhow::Result<MetadataResponse> {
    let topics = topics.map(|names| {
        names
            .into_iter()
            .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from(n)))))
            .collect()
    });
    client.call(
        bootstrap,
        &MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false),
    )
}

fn broker_addresses(md: &MetadataResponse) -> BTreeMap<i32, String> {
    md.brokers
        .iter()
        .map(|b| (b.node_id.0, address(&b.host, b.port)))
        .collect()
}

// --- list ---------------------------------------------------------------------------------------

struct Listed {
    kind: String,
    state: String,
    protocol_type: String,
}

fn list(client: &mut Client, bootstrap: &str) -> anyhow::Result<()> {
    let md = metadata(client, bootstrap, Some(Vec::new()))?;
    let mut brokers = broker_addresses(&md);
    if brokers.is_empty() {
        brokers.insert(-1, bootstrap.to_owned());
    }
    let mut groups: BTreeMap<String, Listed> = BTreeMap::new();
    let mut failures = Vec::new();
    for (id, addr) in &brokers {
        let response = match client.call(addr, &ListGroupsRequest::default()) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("broker {id}: {e:#}"));
                continue;
            }
        };
        if response.error_code != 0 {
            failures.push(format!(
                "broker {id} ({addr}): ListGroups: {}",
                kafka_error(response.error_code)
            ));
            continue;
        }
        for g in response.groups {
            // A group moving between coordinators may show on two brokers: the first one wins.
            groups.entry(g.group_id.0.to_string()).or_insert(Listed {
                kind: if g.group_type.is_empty() {
                    "classic".to_owned()
                } else {
                    g.group_type.to_lowercase()
                },
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
            });
        }
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|(id, g)| {
            vec![
                cell(id),
                cell(&g.kind),
                cell(&g.state),
                cell(&g.protocol_type),
            ]
        })
        .collect();
    print_table(&["GROUP", "TYPE", "STATE", "PROTOCOL-TYPE"], &rows);
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("skiff groups list: {f}");
        }
        bail!(
            "the list is incomplete: {} of {} brokers did not answer",
            failures.len(),
            brokers.len()
        );
    }
    Ok(())
}

// --- describe -----------------------------------------------------------------------------------

struct Member {
    id: String,
    host: String,
    client_id: String,
    /// Assigned partitions by topic name.
    partitions: Vec<(String, i32)>,
    /// Assigned partitions by topic id, for a KIP-848 assignment that came without names.
    by_topic_id: Vec<(String, i32)>,
}

struct Group {
    id: String,
    /// "classic" or "consumer" (KIP-848).
    kind: &'static str,
    state: String,
    /// The classic group's protocol (its assignor), or the KIP-848 group's assignor.
    protocol: String,
    coordinator: String,
    members: Vec<Member>,
}

struct Described {
    group: Group,
    /// Committed offsets by (topic, partition).
    committed: BTreeMap<(String, i32), i64>,
    warnings: Vec<String>,
}

fn describe(client: &mut Client, bootstrap: &str, groups: &[String]) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    let mut printed = false;
    for group in groups {
        match describe_with_retries(client, bootstrap, group) {
            Ok(d) => {
                if printed {
                    println!();
                }
                print_group(client, bootstrap, d);
                printed = true;
            }
            Err(e) if groups.len() == 1 => return Err(e),
            Err(e) => {
                eprintln!("skiff groups describe: {e:#}");
                failed.push(group.as_str());
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} groups could not be described: {}",
            failed.len(),
            groups.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// Coordinators move (an agent joins or leaves) and load: ask again for a while.
fn describe_with_retries(
    client: &mut Client,
    bootstrap: &str,
    group: &str,
) -> anyhow::Result<Described> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match describe_once(client, bootstrap, group) {
            Err(e) if e.is::<Retriable>() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(300));
            }
            other => return other,
        }
    }
}

fn describe_once(client: &mut Client, bootstrap: &str, group: &str) -> anyhow::Result<Described> {
    let coordinator = find_coordinator(client, bootstrap, group)?;
    let mut warnings = Vec::new();
    let classic = describe_classic(client, &coordinator, group, &mut warnings)?;
    let needs_848 = match &classic {
        None => true,
        // A KIP-848 group may show here as Empty through its committed offsets alone.
        Some(g) => g.state == "Empty" && g.members.is_empty(),
    };
    let consumer = if needs_848 {
        match describe_consumer(client, &coordinator, group) {
            Ok(found) => found,
            Err(e) if e.is::<Retriable>() => return Err(e),
            // A broker without KIP-848 (say, a Kafka before 3.7): the classic answer stands.
            Err(_) if classic.is_some() => None,
            Err(e) => bail!("group {group} does not exist as a classic group, and {e:#}"),
        }
    } else {
        None
    };
    let Some(group) = consumer.or(classic) else {
        bail!("group {group} does not exist");
    };
    let committed = fetch_offsets(client, &group, &mut warnings)?;
    Ok(Described {
        group,
        committed,
        warnings,
    })
}

fn find_coordinator(client: &mut Client, bootstrap: &str, group: &str) -> anyhow::Result<String> {
    let r = client.call(
        bootstrap,
        &FindCoordinatorRequest::default()
            .with_key(StrBytes::from(group.to_owned()))
            .with_key_type(0),
    )?;
    let what = format!("FindCoordinator({group}) at {bootstrap}");
    match r.error_code {
        0 => {}
        COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR => {
            return Err(Retriable(format!("{what}: {}", kafka_error(r.error_code))).into())
        }
        code => {
            let why = r.error_message.as_deref().unwrap_or_default();
            bail!("{what}: {} {why}", kafka_error(code));
        }
    }
    if r.host.is_empty() || !(1..=65535).contains(&r.port) {
        bail!(
            "{what}: the coordinator's address {:?}:{} is not usable",
            r.host.as_str(),
            r.port
        );
    }
    Ok(address(&r.host, r.port))
}

/// DescribeGroups; `None` for a group the coordinator does not know as a classic group.
fn describe_classic(
    client: &mut Client,
    coordinator: &str,
    group: &str,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Option<Group>> {
    let r = client.call(
        coordinator,
        &DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from(group.to_owned()))]),
    )?;
    let Some(g) = r.groups.into_iter().find(|g| g.group_id.as_str() == group) else {
        bail!("DescribeGroups at {coordinator}: the answer does not mention group {group}");
    };
    if g.error_code == GROUP_ID_NOT_FOUND {
        return Ok(None);
    }
    check_group_code(
        g.error_code,
        &format!("DescribeGroups({group}) at {coordinator}"),
    )?;
    if g.group_state.as_str() == "Dead" {
        return Ok(None);
    }
    let consumer_protocol = g.protocol_type.as_str() == "consumer";
    let members = g
        .members
        .into_iter()
        .map(|m| {
            let partitions = if consumer_protocol {
                assignment::parse(&m.member_assignment).unwrap_or_else(|| {
                    warnings.push(format!(
                        "member {}: its assignment ({} bytes) is not in the consumer protocol's format",
                        m.member_id.as_str(),
                        m.member_assignment.len()
                    ));
                    Vec::new()
                })
            } else {
                Vec::new()
            };
            Member {
                id: m.member_id.to_string(),
                host: m.client_host.to_string(),
                client_id: m.client_id.to_string(),
                partitions,
                by_topic_id: Vec::new(),
            }
        })
        .collect();
    Ok(Some(Group {
        id: group.to_owned(),
        kind: "classic",
        state: g.group_state.to_string(),
        protocol: g.protocol_data.to_string(),
        coordinator: coordinator.to_owned(),
        members,
    }))
}

/// ConsumerGroupDescribe; `None` for a group the coordinator does not know as a KIP-848 group
/// (or an answer that it does not know the API version).
fn describe_consumer(
    client: &mut Client,
    coordinator: &str,
    group: &str,
) -> anyhow::Result<Option<Group>> {
    let what = format!("ConsumerGroupDescribe({group}) at {coordinator}");
    let r = client.call(
        coordinator,
        &ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(StrBytes::from(group.to_owned()))]),
    )?;
    let Some(g) = r.groups.into_iter().find(|g| g.group_id.as_str() == group) else {
        bail!("{what}: the answer does not mention the group");
    };
    match g.error_code {
        GROUP_ID_NOT_FOUND | UNSUPPORTED_VERSION => return Ok(None),
        code => check_group_code(code, &what)?,
    }
    if g.group_state.as_str() == "Dead" {
        return Ok(None);
    }
    let members = g
        .members
        .into_iter()
        .map(|m| {
            let mut partitions = Vec::new();
            let mut by_topic_id = Vec::new();
            for tp in m.assignment.topic_partitions {
                for p in tp.partitions {
                    if tp.topic_name.is_empty() {
                        by_topic_id.push((tp.topic_id.to_string(), p));
                    } else {
                        partitions.push((tp.topic_name.to_string(), p));
                    }
                }
            }
            Member {
                id: m.member_id.to_string(),
                host: m.client_host.to_string(),
                client_id: m.client_id.to_string(),
                partitions,
                by_topic_id,
            }
        })
        .collect();
    Ok(Some(Group {
        id: group.to_owned(),
        kind: "consumer",
        state: g.group_state.to_string(),
        protocol: g.assignor_name.to_string(),
        coordinator: coordinator.to_owned(),
        members,
    }))
}

/// OffsetFetch of every committed offset of the group, at its coordinator.
fn fetch_offsets(
    client: &mut Client,
    group: &Group,
    warnings: &mut Vec<String>,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let what = format!("OffsetFetch({}) at {}", group.id, group.coordinator);
    let r = client.call(
        &group.coordinator,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from(group.id.clone())))
            .with_topics(None),
    )?;
    if r.error_code == GROUP_ID_NOT_FOUND {
        return Ok(BTreeMap::new());
    }
    check_group_code(r.error_code, &what)?;
    let mut committed = BTreeMap::new();
    for t in r.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                warnings.push(format!(
                    "the committed offset of {}-{}: {}",
                    t.name.as_str(),
                    p.partition_index,
                    kafka_error(p.error_code)
                ));
            } else if p.committed_offset >= 0 {
                committed.insert((t.name.to_string(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(committed)
}

/// The log end offsets of `partitions`, asked of each partition's leader (of `bootstrap` when
/// the leader is unknown). Partitions without an answer are missing, with a warning.
fn log_end_offsets(
    client: &mut Client,
    bootstrap: &str,
    md: &MetadataResponse,
    partitions: &BTreeSet<(String, i32)>,
    warnings: &mut Vec<String>,
) -> BTreeMap<(String, i32), i64> {
    let brokers = broker_addresses(md);
    let mut leaders: HashMap<(&str, i32), &str> = HashMap::new();
    for t in &md.topics {
        let Some(name) = t.name.as_ref() else {
            continue;
        };
        for p in &t.partitions {
            if let Some(addr) = brokers.get(&p.leader_id.0) {
                leaders.insert((name.as_str(), p.partition_index), addr.as_str());
            }
        }
    }
    // leader address -> topic -> partitions
    let mut by_leader: BTreeMap<&str, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for (topic, p) in partitions {
        let leader = leaders
            .get(&(topic.as_str(), *p))
            .copied()
            .unwrap_or(bootstrap);
        by_leader
            .entry(leader)
            .or_default()
            .entry(topic.as_str())
            .or_default()
            .push(*p);
    }
    let mut ends = BTreeMap::new();
    for (addr, topics) in by_leader {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(
                topics
                    .iter()
                    .map(|(t, ps)| {
                        ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from((*t).to_owned())))
                            .with_partitions(
                                ps.iter()
                                    .map(|p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(*p)
                                            .with_timestamp(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = match client.call(addr, &request) {
            Ok(r) => r,
            Err(e) => {
                warnings.push(format!("log end offsets: {e:#}"));
                continue;
            }
        };
        for t in response.topics {
            for p in t.partitions {
                if p.error_code != 0 {
                    warnings.push(format!(
                        "the log end offset of {}-{}: {}",
                        t.name.as_str(),
                        p.partition_index,
                        kafka_error(p.error_code)
                    ));
                } else if p.offset >= 0 {
                    ends.insert((t.name.to_string(), p.partition_index), p.offset);
                }
            }
        }
    }
    ends
}

fn print_group(client: &mut Client, bootstrap: &str, d: Described) {
    let Described {
        mut group,
        committed,
        mut warnings,
    } = d;
    // Every partition with a committed offset or an owner.
    let mut partitions: BTreeSet<(String, i32)> = committed.keys().cloned().collect();
    let unnamed = group.members.iter().any(|m| !m.by_topic_id.is_empty());
    for m in &group.members {
        partitions.extend(m.partitions.iter().cloned());
    }
    let mut ends = BTreeMap::new();
    if !partitions.is_empty() || unnamed {
        let topics: BTreeSet<String> = partitions.iter().map(|(t, _)| t.clone()).collect();
        // Topic ids without names need every topic's metadata to name them.
        let wanted = (!unnamed).then(|| topics.into_iter().collect());
        match metadata(client, bootstrap, wanted) {
            Ok(md) => {
                if unnamed {
                    let names: HashMap<String, String> = md
                        .topics
                        .iter()
                        .filter_map(|t| {
                            Some((t.topic_id.to_string(), t.name.as_ref()?.to_string()))
                        })
                        .collect();
                    for m in &mut group.members {
                        for (id, p) in std::mem::take(&mut m.by_topic_id) {
                            let name = names.get(&id).cloned().unwrap_or(id);
                            partitions.insert((name.clone(), p));
                            m.partitions.push((name, p));
                        }
                    }
                }
                ends = log_end_offsets(client, bootstrap, &md, &partitions, &mut warnings);
            }
            Err(e) => warnings.push(format!("no log end offsets: {e:#}")),
        }
    }
    let mut owners: HashMap<(&str, i32), &Member> = HashMap::new();
    for m in &group.members {
        for (t, p) in &m.partitions {
            owners.insert((t.as_str(), *p), m);
        }
    }

    print_table(
        &[
            "GROUP",
            "TYPE",
            "STATE",
            "PROTOCOL",
            "MEMBERS",
            "COORDINATOR",
        ],
        &[vec![
            cell(&group.id),
            group.kind.to_owned(),
            cell(&group.state),
            cell(&group.protocol),
            group.members.len().to_string(),
            cell(&group.coordinator),
        ]],
    );
    println!();
    let dash = || "-".to_owned();
    let mut rows = Vec::new();
    for (topic, p) in &partitions {
        let current = committed.get(&(topic.clone(), *p)).copied();
        let end = ends.get(&(topic.clone(), *p)).copied();
        let lag = match (current, end) {
            (Some(c), Some(e)) => (e - c).to_string(),
            _ => dash(),
        };
        let owner = owners.get(&(topic.as_str(), *p));
        rows.push(vec![
            cell(&group.id),
            cell(topic),
            p.to_string(),
            current.map_or_else(dash, |c| c.to_string()),
            end.map_or_else(dash, |e| e.to_string()),
            lag,
            owner.map_or_else(dash, |m| cell(&m.id)),
            owner.map_or_else(dash, |m| cell(&m.host)),
            owner.map_or_else(dash, |m| cell(&m.client_id)),
        ]);
    }
    // Members without partitions still show, as kafka-consumer-groups does.
    for m in group.members.iter().filter(|m| m.partitions.is_empty()) {
        rows.push(vec![
            cell(&group.id),
            dash(),
            dash(),
            dash(),
            dash(),
            dash(),
            cell(&m.id),
            cell(&m.host),
            cell(&m.client_id),
        ]);
    }
    print_table(
        &[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &rows,
    );
    for w in warnings {
        eprintln!("skiff groups describe: {}: {w}", group.id);
    }
}
