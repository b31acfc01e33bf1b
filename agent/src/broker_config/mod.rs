//! Broker configs: Kafka's settings as this agent has them, and the dynamic ones (KIP-226) kept
//! in the metastore, cluster-wide (resource name "") or for one agent (its broker id).
//!
//! Precedence, as in Kafka: this agent's dynamic override, then the cluster's dynamic default,
//! then the agent's own setting (flags and file), then Kafka's default. Topic configs a topic
//! does not set fall back to the broker-wide defaults here ([`BrokerView::topic_default`]), so
//! whatever reads a topic config through [`crate::context::Agent::topic_config`] sees a dynamic
//! change.
//!
//! Every agent reads the dynamic configs from the metastore once per [`refresh_interval`] (a
//! fifth of the session timeout, as often as it heartbeats), and the agent that made a change
//! applies the metastore's answer at once: a change is in force on every agent within one
//! interval of its commit.

pub mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::types::{BrokerConfigs, ConfigOp};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::AgentConfig;
use table::{Mode, Row, Setting, Static, Type};

/// Kafka's `ConfigSource` values.
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

/// Kafka's `offset.metadata.max.bytes` default.
const DEFAULT_OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// How often an agent reads the dynamic configs: as often as it heartbeats.
pub fn refresh_interval(config: &AgentConfig) -> Duration {
    (config.session_timeout / 5).max(Duration::from_millis(100))
}

/// The dynamic configs as this agent last read them.
#[derive(Default)]
pub struct DynamicConfigs {
    current: RwLock<Arc<BrokerConfigs>>,
}

impl DynamicConfigs {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn get(&self) -> Arc<BrokerConfigs> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes `configs` unless what is here is as new: a read sent before an alter may be
    /// answered after the alter's own answer was applied.
    pub fn set(&self, configs: BrokerConfigs) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if configs.version > current.version {
            info!(entries = configs.len(), "dynamic broker configs changed");
            *current = Arc::new(configs);
        }
    }

    pub async fn refresh(&self, metastore: &dyn MetastoreClient) -> Result<(), MetastoreError> {
        self.set(metastore.broker_configs().await?);
        Ok(())
    }

    /// Reads the configs every `every` until `shutdown`; a failed read keeps the last ones.
    pub fn spawn(
        self: Arc<Self>,
        metastore: Arc<dyn MetastoreClient>,
        every: Duration,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        crate::refresh::every("dynamic broker configs", every, shutdown, move || {
            let this = self.clone();
            let metastore = metastore.clone();
            async move { this.refresh(metastore.as_ref()).await }
        })
    }
}

/// One level of a setting's value, as DescribeConfigs lists synonyms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synonym {
    pub name: &'static str,
    pub value: Option<String>,
    pub source: i8,
}

/// A setting's value in force, where it comes from, and (in precedence order, the first being
/// the one in force) every level that sets it or one of its synonyms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub value: Option<String>,
    pub source: i8,
    pub synonyms: Vec<Synonym>,
}

/// This agent's broker settings with the dynamic configs in force.
pub struct BrokerView<'a> {
    dynamic: Arc<BrokerConfigs>,
    broker_id: i32,
    config: &'a AgentConfig,
}

impl<'a> BrokerView<'a> {
    pub fn new(dynamic: Arc<BrokerConfigs>, broker_id: i32, config: &'a AgentConfig) -> Self {
        Self {
            dynamic,
            broker_id,
            config,
        }
    }

    fn agent_setting(&self, setting: Setting) -> String {
        let c = self.config;
        let ms = |d: Duration| d.as_millis().to_string();
        match setting {
            Setting::BrokerId => self.broker_id.to_string(),
            Setting::Listeners => c
                .all_listeners()
                .iter()
                .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
                .collect::<Vec<_>>()
                .join(","),
            Setting::AutoCreateTopics => c.auto_create_topics.to_string(),
            Setting::NumPartitions => c.num_partitions.to_string(),
            Setting::MessageMaxBytes => c.max_message_bytes.to_string(),
            Setting::SocketRequestMaxBytes => c.max_request_bytes.to_string(),
            Setting::MaxConnections => c.max_connections.to_string(),
            Setting::MaxConnectionsPerIp => {
                c.max_connections_per_ip.min(i32::MAX as usize).to_string()
            }
            Setting::ConnectionsMaxIdleMs => ms(c.connections_max_idle),
            Setting::GroupMaxSize => c.group_max_size.min(i32::MAX as usize).to_string(),
            Setting::GroupConsumerMaxSize => {
                c.group_consumer_max_size.min(i32::MAX as usize).to_string()
            }
            Setting::FetchMaxBytes => c.fetch_max_bytes.to_string(),
            Setting::GroupMinSessionTimeoutMs => ms(c.group_min_session_timeout),
            Setting::GroupMaxSessionTimeoutMs => ms(c.group_max_session_timeout),
            Setting::GroupInitialRebalanceDelayMs => ms(c.group_initial_rebalance_delay),
            Setting::GroupConsumerSessionTimeoutMs => ms(c.group_consumer_session_timeout),
            Setting::GroupConsumerHeartbeatIntervalMs => ms(c.group_consumer_heartbeat_interval),
            Setting::TransactionMaxTimeoutMs => ms(c.transaction_max_timeout),
            Setting::TransactionalIdExpirationMs => ms(c.transactional_id_expiration),
            Setting::TransactionCleanupIntervalMs => ms(c.transaction_cleanup_interval),
        }
    }

    /// The levels that set `row`'s name, in precedence order; the last is its static value or
    /// default, even when null.
    fn levels(&self, row: &'static Row) -> Vec<Synonym> {
        let mut out = Vec::with_capacity(2);
        let dynamic = [
            (
                self.dynamic.brokers.get(&self.broker_id),
                SOURCE_DYNAMIC_BROKER,
            ),
            (Some(&self.dynamic.cluster), SOURCE_DYNAMIC_DEFAULT_BROKER),
        ];
        for (configs, source) in dynamic {
            if row.mode != Mode::Dynamic {
                break;
            }
            if let Some(v) = configs.and_then(|c| c.get(row.name)) {
                out.push(Synonym {
                    name: row.name,
                    value: Some(v.clone()),
                    source,
                });
            }
        }
        let (value, source) = match row.value {
            Static::Kafka(default) => (default.map(str::to_owned), SOURCE_DEFAULT),
            Static::Agent(setting, default) => {
                let v = self.agent_setting(setting);
                let source = if Some(v.as_str()) == default {
                    SOURCE_DEFAULT
                } else {
                    SOURCE_STATIC_BROKER
                };
                (Some(v), source)
            }
        };
        out.push(Synonym {
            name: row.name,
            value,
            source,
        });
        out
    }

    /// A broker setting as DescribeConfigs on the broker shows it: its own value, with its
    /// synonyms' levels after its own.
    pub fn setting(&self, row: &'static Row) -> Resolved {
        let own = self.levels(row);
        let in_force = own.first().cloned().unwrap_or(Synonym {
            name: row.name,
            value: None,
            source: SOURCE_DEFAULT,
        });
        let mut synonyms = own;
        if let Some((topic, _)) = row.topic {
            for other in table::synonyms_of(topic).filter(|r| r.name != row.name) {
                synonyms.extend(self.levels(other));
            }
        }
        synonyms.retain(|s| s.value.is_some());
        Resolved {
            value: in_force.value,
            source: in_force.source,
            synonyms,
        }
    }

    /// The broker-wide default of a topic config, in the topic config's unit: the first of its
    /// broker synonyms set dynamically (this agent's, then the cluster's), else the first with
    /// a static value. `None` for topic configs without a broker synonym (Skiff's own).
    pub fn topic_default(&self, topic_config: &str) -> Option<Resolved> {
        let rows: Vec<&'static Row> = table::synonyms_of(topic_config).collect();
        if rows.is_empty() {
            return None;
        }
        let mut levels: Vec<(Synonym, i64)> = Vec::new();
        for row in &rows {
            let scale = row.topic.map_or(1, |(_, s)| s);
            levels.extend(self.levels(row).into_iter().map(|l| (l, scale)));
        }
        // Level-major: every synonym's dynamic levels outrank any static value.
        levels.sort_by_key(|(l, _)| l.source);
        let in_force = levels
            .iter()
            .find_map(|(l, scale)| Some((l.value.as_deref()?, *scale, l.source)));
        let synonyms = levels
            .iter()
            .filter(|(l, _)| l.value.is_some())
            .map(|(l, _)| l.clone())
            .collect();
        let (value, source) = match in_force {
            Some((v, scale, source)) => (Some(to_topic_unit(v, scale)), source),
            None => (None, SOURCE_DEFAULT),
        };
        Some(Resolved {
            value,
            source,
            synonyms,
        })
    }

    /// Kafka's `offset.metadata.max.bytes`: longer OffsetCommit metadata is refused.
    pub fn offset_metadata_max_bytes(&self) -> usize {
        table::row("offset.metadata.max.bytes")
            .and_then(|row| self.levels(row).into_iter().next())
            .and_then(|l| l.value?.trim().parse().ok())
            .unwrap_or(DEFAULT_OFFSET_METADATA_MAX_BYTES)
    }

    /// A broker setting as a number, through the same levels DescribeConfigs shows; `None` for
    /// a name not in the table or a value that is not a number.
    fn number(&self, name: &str) -> Option<i64> {
        table::row(name)
            .and_then(|row| self.levels(row).into_iter().next())
            .and_then(|l| l.value?.trim().parse().ok())
    }

    /// Kafka's `transaction.max.timeout.ms`.
    pub fn transaction_max_timeout_ms(&self) -> i64 {
        self.number("transaction.max.timeout.ms")
            .unwrap_or(DEFAULT_TRANSACTION_MAX_TIMEOUT_MS)
    }

    /// Kafka's `transactional.id.expiration.ms`.
    pub fn transactional_id_expiration_ms(&self) -> i64 {
        self.number("transactional.id.expiration.ms")
            .unwrap_or(DEFAULT_TRANSACTIONAL_ID_EXPIRATION_MS)
    }
}

/// Kafka's defaults of the transaction settings.
const DEFAULT_TRANSACTION_MAX_TIMEOUT_MS: i64 = 900_000;
const DEFAULT_TRANSACTIONAL_ID_EXPIRATION_MS: i64 = 604_800_000;

/// A broker setting's value in its topic config's unit: hours to milliseconds, a negative
/// number of hours (Kafka: no limit) to -1.
fn to_topic_unit(value: &str, scale: i64) -> String {
    if scale == 1 {
        return value.trim().to_owned();
    }
    match value.trim().parse::<i64>() {
        Ok(v) if v < 0 => "-1".to_owned(),
        Ok(v) => v.saturating_mul(scale).to_string(),
        Err(_) => value.trim().to_owned(),
    }
}

/// Why an alter of broker configs was refused, with Kafka's code for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlterError {
    /// INVALID_REQUEST: a static setting, a bad value, a duplicate name.
    Request(String),
    /// INVALID_CONFIG: an unknown name, a list operation on a setting that is not a list.
    Config(String),
}

/// Checks an alter of one broker resource whose dynamic configs are `current`, and turns it into
/// the operations the metastore applies (a list operation becomes the `Set` of its result). With
/// `replace` (AlterConfigs) the resource's configs become exactly the `Set`s.
pub fn check_alter(
    current: &BTreeMap<String, String>,
    replace: bool,
    ops: &[ConfigOp],
) -> Result<Vec<ConfigOp>, AlterError> {
    let name_of = |op: &ConfigOp| match op {
        ConfigOp::Set { name, .. }
        | ConfigOp::Delete { name }
        | ConfigOp::Append { name, .. }
        | ConfigOp::Subtract { name, .. } => name.clone(),
    };
    let mut seen = BTreeSet::new();
    if !ops.iter().all(|op| seen.insert(name_of(op))) {
        return Err(AlterError::Request(
            "Error due to duplicate config keys".into(),
        ));
    }
    let mut after = if replace {
        BTreeMap::new()
    } else {
        current.clone()
    };
    let mut out = Vec::with_capacity(ops.len());
    let mut not_dynamic = Vec::new();
    for op in ops {
        let name = name_of(op);
        let row = table::row(&name);
        if matches!(op, ConfigOp::Delete { .. }) {
            after.remove(&name);
            out.push(op.clone());
            continue;
        }
        let Some(row) = row else {
            return Err(AlterError::Config(format!("Unknown config name: {name}")));
        };
        let value = match op {
            ConfigOp::Set { value, .. } => value.clone(),
            ConfigOp::Append { .. } | ConfigOp::Subtract { .. } => {
                if row.ty != Type::List {
                    let what = if matches!(op, ConfigOp::Append { .. }) {
                        "append"
                    } else {
                        "subtract"
                    };
                    return Err(AlterError::Config(format!(
                        "Config value {what} is not allowed for config key: {name}"
                    )));
                }
                list_result(op, after.get(&name).map(String::as_str).or(default_of(row)))
            }
            ConfigOp::Delete { .. } => continue,
        };
        if row.mode == Mode::Static {
            not_dynamic.push(name.clone());
            continue;
        }
        after.insert(name.clone(), value.clone());
        out.push(ConfigOp::Set { name, value });
    }
    if !not_dynamic.is_empty() {
        return Err(AlterError::Request(format!(
            "Cannot update these configs dynamically: Set({})",
            not_dynamic.join(", ")
        )));
    }
    for op in &out {
        if let ConfigOp::Set { name, value } = op {
            validate(name, value).map_err(AlterError::Request)?;
        }
    }
    Ok(out)
}

fn default_of(row: &Row) -> Option<&'static str> {
    match row.value {
        Static::Kafka(v) | Static::Agent(_, v) => v,
    }
}

/// An append (items not there yet go last) or a subtract, on a list's current value.
fn list_result(op: &ConfigOp, current: Option<&str>) -> String {
    let items = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut list = current.map(items).unwrap_or_default();
    match op {
        ConfigOp::Append { value, .. } => {
            for item in items(value) {
                if !list.contains(&item) {
                    list.push(item);
                }
            }
        }
        ConfigOp::Subtract { value, .. } => {
            let gone = items(value);
            list.retain(|i| !gone.contains(i));
        }
        ConfigOp::Set { .. } | ConfigOp::Delete { .. } => {}
    }
    list.join(",")
}

/// Checks a dynamic setting's value: a topic config's default as that topic config, in its unit;
/// Skiff's own by type.
fn validate(name: &str, value: &str) -> Result<(), String> {
    let Some(row) = table::row(name) else {
        return Err(format!("Unknown config name: {name}"));
    };
    let bad = |why: &str| format!("Invalid value {value} for configuration {name}: {why}");
    if matches!(row.ty, Type::Int) && value.trim().parse::<i32>().is_err() {
        return Err(bad("Not a number of type INT"));
    }
    match row.topic {
        Some((topic, scale)) => {
            crate::topic_config::validate(topic, &to_topic_unit(value, scale)).map_err(|e| {
                // The topic config's message names the topic config; the client asked about
                // the broker's.
                e.0.replacen(
                    &format!("configuration {topic}"),
                    &format!("configuration {name}"),
                    1,
                )
            })
        }
        None => match value.trim().parse::<i32>() {
            Ok(v) if v >= 0 => Ok(()),
            _ => Err(bad("must be a number of at least 0")),
        },
    }
}

#[cfg(test)]
mod tests;
