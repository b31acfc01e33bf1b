use super::*;

fn topic(configs: &[(&str, &str)]) -> TopicMeta {
    TopicMeta {
        name: "t".into(),
        topic_id: skiff_metastore::types::TopicId::from_u128(1),
        partitions: 1,
        configs: configs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        created_ms: 0,
    }
}

#[test]
fn topics_without_their_own_settings_follow_the_clusters_defaults() {
    let none = BTreeMap::new();
    assert_eq!(Policy::of(&topic(&[]), &none), None);
    let cluster: BTreeMap<String, String> = [
        ("log.cleanup.policy", "compact"),
        ("log.cleaner.min.cleanable.ratio", "0.1"),
        ("log.cleaner.delete.retention.ms", "5"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let policy = Policy::of(&topic(&[]), &cluster).expect("compacted by the default");
    assert_eq!(policy.min_cleanable_dirty_ratio, 0.1);
    assert_eq!(policy.delete_retention_ms, 5);
    // The topic's own settings win.
    let own = topic(&[("cleanup.policy", "delete"), ("delete.retention.ms", "7")]);
    assert_eq!(Policy::of(&own, &cluster), None);
    let own = topic(&[("delete.retention.ms", "7")]);
    assert_eq!(
        Policy::of(&own, &cluster).map(|p| p.delete_retention_ms),
        Some(7)
    );
}
