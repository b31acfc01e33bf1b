//! DescribeLogDirs: one log dir per agent, named `skiff://<cluster id>` (all agents share one
//! object store). Each agent lists the partitions it leads in Metadata, so that a tool summing
//! partition sizes over every broker counts each partition once. A partition's size is the sum
//! of its index entries' lengths in the metastore: the bytes a fetch of the whole log would read.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use skiff_metastore::limits::MAX_PARTITIONS_PER_READ;
use skiff_metastore::types::{TopicMeta, TopicPartition};

use super::str_bytes;
use crate::brokers::Brokers;
use crate::context::Agent;
use crate::protocol::codes;
use crate::topics::is_internal_topic;

/// Kafka's "unknown" for a log dir's total and usable bytes (v4): an object store has no size.
const UNKNOWN_BYTES: i64 = -1;

pub async fn handle(agent: &Agent, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let brokers = Brokers::known(agent, false);
    let all = match agent.all_topics().await {
        Ok(all) => all,
        Err(e) => {
            return DescribeLogDirsResponse::default().with_error_code(codes::metastore_error(&e))
        }
    };
    // (topic, the partitions asked for that exist and this agent leads).
    let mut wanted: Vec<(&TopicMeta, Vec<i32>)> = Vec::new();
    match &req.topics {
        None => {
            for meta in all.iter().filter(|m| !is_internal_topic(&m.name)) {
                wanted.push((meta, (0..meta.partitions).collect()));
            }
        }
        Some(topics) => {
            for t in topics {
                // Kafka leaves out what it does not host; so does an agent.
                let Some(meta) = all.iter().find(|m| m.name == t.topic.as_str()) else {
                    continue;
                };
                let mut partitions: Vec<i32> = t
                    .partitions
                    .iter()
                    .copied()
                    .filter(|p| (0..meta.partitions).contains(p))
                    .collect();
                partitions.sort_unstable();
                partitions.dedup();
                wanted.push((meta, partitions));
            }
        }
    }
    for (meta, partitions) in &mut wanted {
        partitions.retain(|&p| brokers.leader_agent(meta, p) == brokers.me);
    }
    wanted.retain(|(_, partitions)| !partitions.is_empty());

    let tps: Vec<TopicPartition> = wanted
        .iter()
        .flat_map(|(meta, partitions)| {
            partitions.iter().map(|&partition| TopicPartition {
                topic_id: meta.topic_id,
                partition,
            })
        })
        .collect();
    let mut sizes = Vec::with_capacity(tps.len());
    for chunk in tps.chunks(MAX_PARTITIONS_PER_READ) {
        match agent.metastore.partition_sizes(chunk.to_vec()).await {
            Ok(answer) => sizes.extend(answer),
            Err(e) => {
                let result = log_dir(agent).with_error_code(codes::metastore_error(&e));
                return DescribeLogDirsResponse::default().with_results(vec![result]);
            }
        }
    }

    let mut sizes = sizes.into_iter();
    let mut topics = Vec::with_capacity(wanted.len());
    for (meta, partitions) in wanted {
        let mut described = Vec::with_capacity(partitions.len());
        for p in partitions {
            // A partition deleted between the two reads (or left unanswered) is left out.
            let Some(Ok(size)) = sizes.next() else {
                continue;
            };
            described.push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(p)
                    .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
                    .with_offset_lag(0)
                    .with_is_future_key(false),
            );
        }
        topics.push(
            DescribeLogDirsTopic::default()
                .with_name(TopicName(str_bytes(meta.name.clone())))
                .with_partitions(described),
        );
    }
    DescribeLogDirsResponse::default().with_results(vec![log_dir(agent).with_topics(topics)])
}

/// The name of this agent's one log dir.
pub fn log_dir_name(agent: &Agent) -> String {
    format!("skiff://{}", agent.config.cluster_id)
}

fn log_dir(agent: &Agent) -> DescribeLogDirsResult {
    DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(log_dir_name(agent)))
        .with_total_bytes(UNKNOWN_BYTES)
        .with_usable_bytes(UNKNOWN_BYTES)
}
