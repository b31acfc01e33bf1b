//! Topic configs: the names Kafka knows, what values each takes, and what a topic gets when it
//! does not say. CreateTopics, IncrementalAlterConfigs and AlterConfigs check names and values
//! here, so a typo is an INVALID_CONFIG error at once instead of a setting silently ignored.
//!
//! Kafka's names are all accepted, including those that mean nothing without local logs
//! (`segment.ms`, `flush.messages`, …): tools set them, and refusing them would break tools.
//! Those Skiff acts on are listed in docs/operations.md.

use std::collections::BTreeMap;

use skiff_metastore::types::ConfigOp;

/// A config's kind: how its value is checked.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// An integer in `min..=max`.
    Long(i64, i64),
    /// A number in `min..=max`.
    Double(f64, f64),
    Bool,
    /// One of these.
    Choice(&'static [&'static str]),
    /// A comma-separated list of these (at least one).
    List(&'static [&'static str]),
    /// Anything (replica lists, versions).
    Text,
    /// A Parquet export's JSON projection, `name:type,…` (`skiff_format::projection`).
    Projection,
}

const CLEANUP_POLICIES: &[&str] = &["delete", "compact"];
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const LONG: Kind = Kind::Long(i64::MIN, i64::MAX);

/// Every topic config Kafka defines (and Skiff's own), with its kind and its default. A default
/// of `None` is one the agent fills in from its own settings.
const CONFIGS: &[(&str, Kind, Option<&str>)] = &[
    (
        "cleanup.policy",
        Kind::List(CLEANUP_POLICIES),
        Some("delete"),
    ),
    (
        "compression.type",
        Kind::Choice(COMPRESSION_TYPES),
        Some("producer"),
    ),
    ("compression.gzip.level", Kind::Long(-1, 9), Some("-1")),
    ("compression.lz4.level", Kind::Long(1, 17), Some("9")),
    (
        "compression.zstd.level",
        Kind::Long(-131_072, 22),
        Some("3"),
    ),
    (
        "delete.retention.ms",
        Kind::Long(0, i64::MAX),
        Some("86400000"),
    ),
    (
        "file.delete.delay.ms",
        Kind::Long(0, i64::MAX),
        Some("60000"),
    ),
    (
        "flush.messages",
        Kind::Long(1, i64::MAX),
        Some("9223372036854775807"),
    ),
    (
        "flush.ms",
        Kind::Long(0, i64::MAX),
        Some("9223372036854775807"),
    ),
    (
        "follower.replication.throttled.replicas",
        Kind::Text,
        Some(""),
    ),
    (
        "index.interval.bytes",
        Kind::Long(0, i64::MAX),
        Some("4096"),
    ),
    (
        "leader.replication.throttled.replicas",
        Kind::Text,
        Some(""),
    ),
    (
        "local.retention.bytes",
        Kind::Long(-2, i64::MAX),
        Some("-2"),
    ),
    ("local.retention.ms", Kind::Long(-2, i64::MAX), Some("-2")),
    (
        "max.compaction.lag.ms",
        Kind::Long(1, i64::MAX),
        Some("9223372036854775807"),
    ),
    ("max.message.bytes", Kind::Long(0, i32::MAX as i64), None),
    ("message.downconversion.enable", Kind::Bool, Some("true")),
    ("message.format.version", Kind::Text, Some("3.0-IV1")),
    // Kafka 4.0's default (KIP-1030); 3.x's was Long.MAX_VALUE.
    (
        "message.timestamp.after.max.ms",
        Kind::Long(0, i64::MAX),
        Some("3600000"),
    ),
    (
        "message.timestamp.before.max.ms",
        Kind::Long(0, i64::MAX),
        Some("9223372036854775807"),
    ),
    (
        "message.timestamp.difference.max.ms",
        Kind::Long(0, i64::MAX),
        Some("9223372036854775807"),
    ),
    (
        "message.timestamp.type",
        Kind::Choice(&["CreateTime", "LogAppendTime"]),
        Some("CreateTime"),
    ),
    (
        "min.cleanable.dirty.ratio",
        Kind::Double(0.0, 1.0),
        Some("0.5"),
    ),
    ("min.compaction.lag.ms", Kind::Long(0, i64::MAX), Some("0")),
    (
        "min.insync.replicas",
        Kind::Long(1, i32::MAX as i64),
        Some("1"),
    ),
    ("preallocate", Kind::Bool, Some("false")),
    ("remote.log.copy.disable", Kind::Bool, Some("false")),
    ("remote.log.delete.on.disable", Kind::Bool, Some("false")),
    ("remote.storage.enable", Kind::Bool, Some("false")),
    ("retention.bytes", LONG, Some("-1")),
    ("retention.ms", Kind::Long(-1, i64::MAX), Some("604800000")),
    (
        "segment.bytes",
        Kind::Long(14, i32::MAX as i64),
        Some("1073741824"),
    ),
    (
        "segment.index.bytes",
        Kind::Long(4, i32::MAX as i64),
        Some("10485760"),
    ),
    ("segment.jitter.ms", Kind::Long(0, i64::MAX), Some("0")),
    ("segment.ms", Kind::Long(1, i64::MAX), Some("604800000")),
    ("unclean.leader.election.enable", Kind::Bool, Some("false")),
    // Skiff's own: export the topic to Parquet, projecting JSON values (docs/operations.md).
    ("skiff.parquet.enable", Kind::Bool, Some("false")),
    ("skiff.parquet.json.schema", Kind::Projection, Some("")),
];

/// Why a config was refused; the message goes to the client with INVALID_CONFIG.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn kind(name: &str) -> Result<Kind, ConfigError> {
    CONFIGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, k, _)| *k)
        .ok_or_else(|| ConfigError(format!("Unknown topic config name: {name}")))
}

/// Checks one config's name and value.
pub fn validate(name: &str, value: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        ConfigError(format!(
            "Invalid value {value} for configuration {name}: {why}"
        ))
    };
    match kind(name)? {
        Kind::Long(min, max) => {
            let v: i64 = value.trim().parse().map_err(|_| bad("not a number"))?;
            if !(min..=max).contains(&v) {
                return Err(bad(&format!("must be between {min} and {max}")));
            }
        }
        Kind::Double(min, max) => {
            let v: f64 = value.trim().parse().map_err(|_| bad("not a number"))?;
            if !(min..=max).contains(&v) {
                return Err(bad(&format!("must be between {min} and {max}")));
            }
        }
        Kind::Bool => {
            if !matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false") {
                return Err(bad("must be true or false"));
            }
        }
        Kind::Choice(choices) => {
            if !choices.contains(&value.trim()) {
                return Err(bad(&format!("must be one of {}", choices.join(", "))));
            }
        }
        Kind::List(items) => {
            let given: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if given.is_empty() || given.iter().any(|g| !items.contains(g)) {
                return Err(bad(&format!("must be a list of {}", items.join(", "))));
            }
        }
        Kind::Text => {}
        Kind::Projection => {
            value
                .parse::<skiff_format::projection::Projection>()
                .map_err(|e| ConfigError(format!("Invalid value for configuration {name}: {e}")))?;
        }
    }
    Ok(())
}

/// Checks every config of a CreateTopics or AlterConfigs request.
pub fn validate_all(configs: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    configs.iter().try_for_each(|(n, v)| validate(n, v))
}

/// Checks IncrementalAlterConfigs operations against the topic's `current` overrides: each name,
/// and each value the topic would end up with.
pub fn validate_ops(
    current: &BTreeMap<String, String>,
    ops: &[ConfigOp],
) -> Result<(), ConfigError> {
    let mut after = current.clone();
    for op in ops {
        match op {
            ConfigOp::Set { name, value } => {
                validate(name, value)?;
                after.insert(name.clone(), value.clone());
            }
            ConfigOp::Delete { name } => {
                kind(name)?;
                after.remove(name);
            }
            ConfigOp::Append { name, value } | ConfigOp::Subtract { name, value } => {
                if !matches!(kind(name)?, Kind::List(_)) {
                    return Err(ConfigError(format!(
                        "Config value append or subtract is not allowed for config {name}, which is not a list"
                    )));
                }
                validate(name, value)?;
                let mut items: Vec<String> = after
                    .get(name)
                    .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
                    .unwrap_or_default();
                let given = value.split(',').map(|s| s.trim().to_owned());
                if matches!(op, ConfigOp::Append { .. }) {
                    items.extend(given);
                } else {
                    let gone: Vec<String> = given.collect();
                    items.retain(|i| !gone.contains(i));
                }
                if items.is_empty() {
                    // Kafka refuses an empty cleanup.policy too; dropping the override instead
                    // would silently bring back the default (`delete`) on a compact-only topic.
                    return Err(ConfigError(format!(
                        "Invalid value for configuration {name}: subtracting would leave it empty"
                    )));
                }
                after.insert(name.clone(), items.join(","));
            }
        }
    }
    validate_all(&after)
}

/// Kafka appends to (and subtracts from) a list config's default when the topic does not set
/// it: `delete` plus `compact` is `delete,compact`. This makes that explicit for the metastore,
/// which knows no defaults: a `Set` of the default goes before the first such operation.
pub fn with_list_defaults(current: &BTreeMap<String, String>, ops: Vec<ConfigOp>) -> Vec<ConfigOp> {
    let mut set: std::collections::BTreeSet<String> = current.keys().cloned().collect();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        match &op {
            ConfigOp::Set { name, .. } => {
                set.insert(name.clone());
            }
            ConfigOp::Delete { name } => {
                set.remove(name);
            }
            ConfigOp::Append { name, .. } | ConfigOp::Subtract { name, .. } => {
                if !set.contains(name) {
                    if let Some((_, _, Some(default))) = CONFIGS.iter().find(|(n, _, _)| n == name)
                    {
                        out.push(ConfigOp::Set {
                            name: name.clone(),
                            value: (*default).to_owned(),
                        });
                    }
                    set.insert(name.clone());
                }
            }
        }
        out.push(op);
    }
    out
}

/// Whether `name` is a topic config.
pub fn known(name: &str) -> bool {
    CONFIGS.iter().any(|(n, _, _)| *n == name)
}

/// Kafka's default of a topic config, where it has one that does not come from the agent.
pub fn default_of(name: &str) -> Option<&'static str> {
    CONFIGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .and_then(|(_, _, d)| *d)
}

/// A topic config's type as DescribeConfigs v3+ shows it (Kafka's `ConfigType`).
pub fn config_type(name: &str) -> i8 {
    use crate::broker_config::table::Type;
    let ty = match CONFIGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, k, _)| *k)
    {
        Some(Kind::Long(_, max)) if max <= i64::from(i32::MAX) => Type::Int,
        Some(Kind::Long(..)) => Type::Long,
        Some(Kind::Double(..)) => Type::Double,
        Some(Kind::Bool) => Type::Boolean,
        Some(Kind::List(_)) => Type::List,
        Some(Kind::Choice(_) | Kind::Text | Kind::Projection) => Type::String,
        None => return 0,
    };
    ty as i8
}

/// A topic's configs as they are in force: its own settings, and what it gets for the others.
/// `fallback` answers the broker-wide default in force for a name (dynamic, then the agent's
/// setting: [`crate::context::Agent::in_force`]); Kafka's default comes after it.
pub struct InForce<'a> {
    pub own: &'a BTreeMap<String, String>,
    pub fallback: &'a (dyn Fn(&str) -> Option<String> + Sync),
}

impl<'a> InForce<'a> {
    /// Only the topic's own settings over Kafka's defaults.
    pub fn own(own: &'a BTreeMap<String, String>) -> Self {
        InForce {
            own,
            fallback: &|_| None,
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.own
            .get(name)
            .map(|v| v.trim().to_owned())
            .or_else(|| (self.fallback)(name))
            .or_else(|| default_of(name).map(str::to_owned))
    }

    fn get_long(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|v| v.trim().parse().ok())
    }
}

/// Whether a topic's `message.timestamp.type` is `LogAppendTime`: its batches are then stamped
/// with the agent's clock when a flush window takes them in, whatever the producer wrote.
pub fn log_append_time(configs: &InForce<'_>) -> bool {
    configs.get("message.timestamp.type").as_deref() == Some("LogAppendTime")
}

/// Whether a topic's `cleanup.policy` includes `compact`: every record it takes needs a key.
pub fn compacted(configs: &InForce<'_>) -> bool {
    configs
        .get("cleanup.policy")
        .is_some_and(|v| v.split(',').any(|p| p.trim() == "compact"))
}

/// How far in the past and in the future (ms) a `CreateTime` record's timestamp may be from the
/// agent's clock (KIP-937): `message.timestamp.before.max.ms` and `message.timestamp.after.max.ms`.
/// The deprecated `message.timestamp.difference.max.ms` stands in for a bound the topic does
/// not set, or sets to `Long.MAX_VALUE` (as Kafka 3.6 to 3.9 read it; Kafka 4.0 dropped it).
pub fn timestamp_bounds(configs: &InForce<'_>) -> (i64, i64) {
    let bound = |name: &str| {
        let own = configs
            .own
            .get(name)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|&v| v != i64::MAX);
        let deprecated = configs
            .own
            .get("message.timestamp.difference.max.ms")
            .and_then(|v| v.trim().parse::<i64>().ok());
        own.or(deprecated)
            .or_else(|| configs.get_long(name))
            .unwrap_or(i64::MAX)
    };
    (
        bound("message.timestamp.before.max.ms"),
        bound("message.timestamp.after.max.ms"),
    )
}

/// The default of every config, for DescribeConfigs. `max_message_bytes` is the agent's.
pub fn defaults(max_message_bytes: usize) -> impl Iterator<Item = (&'static str, String)> {
    CONFIGS.iter().map(move |(name, _, default)| {
        let value = match default {
            Some(v) => (*v).to_owned(),
            None => max_message_bytes.to_string(),
        };
        (*name, value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_checked() {
        assert!(validate("retention.ms", "2000").is_ok());
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("retention.ms", "soon").is_err());
        assert!(validate("retention.msx", "1").is_err());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "compact,shred").is_err());
        assert!(validate("cleanup.policy", "").is_err());
        assert!(validate("min.cleanable.dirty.ratio", "0.01").is_ok());
        assert!(validate("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate("skiff.parquet.enable", "TRUE").is_ok());
        assert!(validate("message.timestamp.type", "LogAppendTime").is_ok());
        assert!(validate("skiff.parquet.json.schema", "n:int64,name:string").is_ok());
        assert!(validate("skiff.parquet.json.schema", "offset:int64").is_err());
        assert!(validate("skiff.parquet.json.schema", "n:uuid").is_err());
    }

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn timestamp_bounds_default_to_kafka_4s_and_the_deprecated_name_fills_in() {
        assert_eq!(
            timestamp_bounds(&InForce::own(&configs(&[]))),
            (i64::MAX, 3_600_000)
        );
        let own = configs(&[
            ("message.timestamp.before.max.ms", "10"),
            ("message.timestamp.after.max.ms", "20"),
            ("message.timestamp.difference.max.ms", "5"),
        ]);
        assert_eq!(timestamp_bounds(&InForce::own(&own)), (10, 20));
        let deprecated = configs(&[("message.timestamp.difference.max.ms", "5")]);
        assert_eq!(timestamp_bounds(&InForce::own(&deprecated)), (5, 5));
        let max = configs(&[
            ("message.timestamp.after.max.ms", "9223372036854775807"),
            ("message.timestamp.difference.max.ms", "5"),
        ]);
        assert_eq!(timestamp_bounds(&InForce::own(&max)), (5, 5));
        let unbounded = configs(&[("message.timestamp.after.max.ms", "9223372036854775807")]);
        assert_eq!(
            timestamp_bounds(&InForce::own(&unbounded)),
            (i64::MAX, i64::MAX)
        );
    }

    #[test]
    fn timestamp_type_and_compaction_are_read_with_their_defaults() {
        assert!(!log_append_time(&InForce::own(&configs(&[]))));
        assert!(log_append_time(&InForce::own(&configs(&[(
            "message.timestamp.type",
            "LogAppendTime"
        )]))));
        assert!(!compacted(&InForce::own(&configs(&[]))));
        assert!(compacted(&InForce::own(&configs(&[(
            "cleanup.policy",
            "delete, compact"
        )]))));
        assert!(compacted(&InForce::own(&configs(&[(
            "cleanup.policy",
            "compact"
        )]))));
        assert!(!compacted(&InForce::own(&configs(&[(
            "cleanup.policy",
            "delete"
        )]))));
    }

    #[test]
    fn list_operations_start_from_the_default() {
        let ops = with_list_defaults(
            &BTreeMap::new(),
            vec![ConfigOp::Append {
                name: "cleanup.policy".into(),
                value: "compact".into(),
            }],
        );
        assert_eq!(
            ops[0],
            ConfigOp::Set {
                name: "cleanup.policy".into(),
                value: "delete".into()
            }
        );
        assert_eq!(ops.len(), 2);
    }

    #[test]
    fn operations_are_checked_on_the_result() {
        let current: BTreeMap<String, String> =
            [("cleanup.policy".to_owned(), "delete".to_owned())].into();
        let append = ConfigOp::Append {
            name: "cleanup.policy".into(),
            value: "compact".into(),
        };
        assert!(validate_ops(&current, &[append]).is_ok());
        let append_to_number = ConfigOp::Append {
            name: "retention.ms".into(),
            value: "5".into(),
        };
        assert!(validate_ops(&current, &[append_to_number]).is_err());
        let empty = ConfigOp::Subtract {
            name: "cleanup.policy".into(),
            value: "delete".into(),
        };
        assert!(validate_ops(&current, &[empty]).is_err());
        let delete_unknown = ConfigOp::Delete {
            name: "nope".into(),
        };
        assert!(validate_ops(&current, &[delete_unknown]).is_err());
    }
}
