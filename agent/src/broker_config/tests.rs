#![allow(clippy::unwrap_used)]

use super::*;

fn set(name: &str, value: &str) -> ConfigOp {
    ConfigOp::Set {
        name: name.into(),
        value: value.into(),
    }
}

fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn every_row_is_named_once_and_topic_synonyms_name_real_topic_configs() {
    let mut names = BTreeSet::new();
    for row in table::ROWS {
        assert!(names.insert(row.name), "{} listed twice", row.name);
        if let Some((topic, scale)) = row.topic {
            assert!(scale >= 1);
            let default = crate::topic_config::defaults(1)
                .find(|(n, _)| *n == topic)
                .map(|(_, v)| v);
            assert!(default.is_some(), "{}: no topic config {topic}", row.name);
            if let Some(v) = default_of(row).filter(|v| !v.is_empty()) {
                assert_eq!(validate(row.name, v), Ok(()), "{}'s default", row.name);
            }
        }
    }
    for name in [
        "num.partitions",
        "default.replication.factor",
        "log.retention.hours",
        "log.segment.bytes",
        "log.flush.interval.messages",
        "log.flush.interval.ms",
        "message.max.bytes",
        "auto.create.topics.enable",
        "offsets.retention.minutes",
        "group.min.session.timeout.ms",
        "transaction.max.timeout.ms",
        "min.insync.replicas",
        "unclean.leader.election.enable",
        "log.cleanup.policy",
        "compression.type",
        "offset.metadata.max.bytes",
    ] {
        assert!(table::row(name).is_some(), "{name} is not listed");
    }
}

#[test]
fn precedence_is_agent_override_then_cluster_default_then_static() {
    let config = AgentConfig {
        max_message_bytes: 2000,
        ..AgentConfig::default()
    };
    let mut dynamic = BrokerConfigs::default();
    let view = |d: &BrokerConfigs, id| BrokerView::new(Arc::new(d.clone()), id, &config);
    // Nothing dynamic: the agent's flag (not Kafka's default, so static) and Kafka's defaults.
    let max = view(&dynamic, 1)
        .topic_default("max.message.bytes")
        .unwrap();
    assert_eq!(
        (max.value.as_deref(), max.source),
        (Some("2000"), SOURCE_STATIC_BROKER)
    );
    let retention = view(&dynamic, 1).topic_default("retention.ms").unwrap();
    assert_eq!(
        (retention.value.as_deref(), retention.source),
        (Some("604800000"), SOURCE_DEFAULT),
        "log.retention.hours' 168 in ms"
    );
    assert!(view(&dynamic, 1)
        .topic_default("skiff.parquet.enable")
        .is_none());

    dynamic.cluster = configs(&[
        ("log.retention.minutes", "2"),
        ("message.max.bytes", "3000"),
    ]);
    let v = view(&dynamic, 1);
    let retention = v.topic_default("retention.ms").unwrap();
    assert_eq!(
        (retention.value.as_deref(), retention.source),
        (Some("120000"), SOURCE_DYNAMIC_DEFAULT_BROKER)
    );
    assert_eq!(
        v.topic_default("max.message.bytes")
            .unwrap()
            .value
            .as_deref(),
        Some("3000")
    );

    // Agent 1's override shadows the default on agent 1 only.
    dynamic.brokers = BTreeMap::from([(1, configs(&[("log.retention.ms", "5")]))]);
    let on_1 = view(&dynamic, 1).topic_default("retention.ms").unwrap();
    assert_eq!(
        (on_1.value.as_deref(), on_1.source),
        (Some("5"), SOURCE_DYNAMIC_BROKER)
    );
    let names: Vec<_> = on_1.synonyms.iter().map(|s| (s.name, s.source)).collect();
    assert_eq!(
        names,
        [
            ("log.retention.ms", SOURCE_DYNAMIC_BROKER),
            ("log.retention.minutes", SOURCE_DYNAMIC_DEFAULT_BROKER),
            ("log.retention.hours", SOURCE_DEFAULT),
        ]
    );
    let on_2 = view(&dynamic, 2).topic_default("retention.ms").unwrap();
    assert_eq!(on_2.value.as_deref(), Some("120000"));

    // A static setting ignores whatever is stored under its name.
    dynamic.cluster.insert("num.partitions".into(), "9".into());
    let partitions = view(&dynamic, 1).setting(table::row("num.partitions").unwrap());
    assert_eq!(
        (partitions.value.as_deref(), partitions.source),
        (Some("1"), SOURCE_DEFAULT)
    );
}

#[test]
fn offset_metadata_max_bytes_is_dynamic() {
    let config = AgentConfig::default();
    let mut dynamic = BrokerConfigs::default();
    assert_eq!(
        BrokerView::new(Arc::new(dynamic.clone()), 0, &config).offset_metadata_max_bytes(),
        4096
    );
    dynamic.cluster = configs(&[("offset.metadata.max.bytes", "10")]);
    assert_eq!(
        BrokerView::new(Arc::new(dynamic), 0, &config).offset_metadata_max_bytes(),
        10
    );
}

#[test]
fn alters_are_checked_as_kafka_checks_them() {
    let none = BTreeMap::new();
    assert_eq!(
        check_alter(&none, false, &[set("log.retention.ms", "1000")]),
        Ok(vec![set("log.retention.ms", "1000")])
    );
    let static_one = check_alter(
        &none,
        false,
        &[set("broker.id", "3"), set("log.dirs", "/x")],
    );
    assert_eq!(
        static_one,
        Err(AlterError::Request(
            "Cannot update these configs dynamically: Set(broker.id, log.dirs)".into()
        ))
    );
    assert!(matches!(
        check_alter(&none, false, &[set("log.retention.msx", "1")]),
        Err(AlterError::Config(m)) if m == "Unknown config name: log.retention.msx"
    ));
    assert!(matches!(
        check_alter(&none, false, &[set("log.retention.ms", "soon")]),
        Err(AlterError::Request(m)) if m.contains("log.retention.ms")
    ));
    assert!(matches!(
        check_alter(&none, false, &[set("log.message.timestamp.type", "Now")]),
        Err(AlterError::Request(_))
    ));
    assert!(matches!(
        check_alter(&none, false, &[set("offset.metadata.max.bytes", "-1")]),
        Err(AlterError::Request(_))
    ));
    assert!(matches!(
        check_alter(&none, false, &[set("log.segment.bytes", "99999999999")]),
        Err(AlterError::Request(_))
    ));
    let append_to_number = ConfigOp::Append {
        name: "log.retention.ms".into(),
        value: "5".into(),
    };
    assert_eq!(
        check_alter(&none, false, &[append_to_number]),
        Err(AlterError::Config(
            "Config value append is not allowed for config key: log.retention.ms".into()
        ))
    );
    // A list operation starts from the value in force and becomes a Set of its result.
    let append = ConfigOp::Append {
        name: "log.cleanup.policy".into(),
        value: "compact".into(),
    };
    assert_eq!(
        check_alter(&none, false, &[append]),
        Ok(vec![set("log.cleanup.policy", "delete,compact")])
    );
    let current = configs(&[("log.cleanup.policy", "compact,delete")]);
    let subtract = ConfigOp::Subtract {
        name: "log.cleanup.policy".into(),
        value: "delete".into(),
    };
    assert_eq!(
        check_alter(&current, false, std::slice::from_ref(&subtract)),
        Ok(vec![set("log.cleanup.policy", "compact")])
    );
    // A list left empty is refused, as Kafka's validator refuses it.
    let current = configs(&[("log.cleanup.policy", "delete")]);
    assert_eq!(
        check_alter(&current, false, &[subtract]),
        Err(AlterError::Request(
            "Invalid value  for configuration log.cleanup.policy: must be a list of delete, compact"
                .into()
        ))
    );
    assert_eq!(
        check_alter(
            &none,
            false,
            &[set("log.retention.ms", "1"), set("log.retention.ms", "2")]
        ),
        Err(AlterError::Request(
            "Error due to duplicate config keys".into()
        ))
    );
    let delete = ConfigOp::Delete {
        name: "whatever".into(),
    };
    assert_eq!(
        check_alter(&none, false, std::slice::from_ref(&delete)),
        Ok(vec![delete])
    );
}

#[test]
fn an_older_read_never_replaces_a_newer_set() {
    let store = DynamicConfigs::new();
    let at = |version, value: &str| BrokerConfigs {
        cluster: configs(&[("log.retention.ms", value)]),
        version,
        ..BrokerConfigs::default()
    };
    store.set(at(2, "new"));
    store.set(at(1, "old"));
    assert_eq!(store.get().cluster["log.retention.ms"], "new");
    store.set(at(3, "newer"));
    assert_eq!(store.get().version, 3);
}
