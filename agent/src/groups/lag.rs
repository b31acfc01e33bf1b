//! Consumer lag on `/metrics`: for each group this agent coordinates, per partition, the high
//! watermark minus the committed offset. Recomputed every few seconds from the metastore (one
//! read of the groups, one of each group's offsets, one batched read of the high watermarks),
//! not on every scrape.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use skiff_metastore::types::{IndexRead, TopicPartition};
use tokio_util::sync::CancellationToken;

use crate::context::Agent;
use crate::metrics::GroupPartitionLabels;

pub const REFRESH: Duration = Duration::from_secs(5);

pub fn spawn(agent: Arc<Agent>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(REFRESH);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => {
                    if let Err(e) = refresh(&agent).await {
                        tracing::debug!(error = %e, "consumer lag not refreshed");
                    }
                }
            }
        }
    })
}

async fn refresh(agent: &Agent) -> Result<(), skiff_metastore::client::MetastoreError> {
    let mut rows = Vec::new();
    for group in agent.metastore.groups().await? {
        if !agent.coordinates(&group) {
            continue;
        }
        for (gp, committed) in agent.metastore.group_offsets(&group).await? {
            let Ok(Some(topic)) = agent.topic_named(&gp.topic).await else {
                continue;
            };
            let tp = TopicPartition {
                topic_id: topic.topic_id,
                partition: gp.partition,
            };
            rows.push((group.clone(), gp, committed.offset, tp));
        }
    }
    let reads = rows
        .iter()
        .map(|(_, _, _, tp)| IndexRead::offsets_of(*tp))
        .collect();
    let answers = agent.metastore.read_indexes(reads).await?;
    let metrics = &agent.metrics;
    let mut fresh = HashSet::new();
    for ((group, gp, committed, _), answer) in rows.into_iter().zip(answers) {
        let Some(offsets) = answer.offsets else {
            continue;
        };
        let labels = GroupPartitionLabels {
            group,
            topic: gp.topic,
            partition: gp.partition,
        };
        let lag = offsets.high_watermark.saturating_sub(committed).max(0);
        metrics.group_lag.get_or_create(&labels).set(lag);
        metrics
            .group_committed
            .get_or_create(&labels)
            .set(committed);
        fresh.insert(labels);
    }
    // Groups and partitions gone (deleted, or now coordinated elsewhere) leave the page.
    retain(&metrics.group_lag, &fresh);
    retain(&metrics.group_committed, &fresh);
    Ok(())
}

fn retain(
    family: &prometheus_client::metrics::family::Family<
        GroupPartitionLabels,
        prometheus_client::metrics::gauge::Gauge,
    >,
    keep: &HashSet<GroupPartitionLabels>,
) {
    // prometheus-client cannot list a family's label sets, so the kept ones are re-created after
    // a clear; a scrape in that instant misses them, and never sees a stale one.
    let values: Vec<(GroupPartitionLabels, i64)> = keep
        .iter()
        .map(|l| (l.clone(), family.get_or_create(l).get()))
        .collect();
    family.clear();
    for (l, v) in values {
        family.get_or_create(&l).set(v);
    }
}
