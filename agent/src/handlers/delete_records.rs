//! DeleteRecords: moves partitions' log start offsets forward (Kafka's `kafka-delete-records`,
//! `AdminClient.deleteRecords`). The metastore drops the batches below; the compactor deletes
//! their objects once nothing points at them.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use skiff_metastore::types::TopicPartition;

use crate::acl::{resource, Caller, Operation};
use crate::context::Agent;
use crate::protocol::codes;

pub async fn handle(
    agent: &Agent,
    caller: &Caller,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        if !agent.allowed(caller, Operation::Delete, resource::TOPIC, &t.name) {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1)
                        .with_error_code(codes::TOPIC_AUTHORIZATION_FAILED)
                })
                .collect();
            topics.push(
                DeleteRecordsTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(partitions),
            );
            continue;
        }
        let last = t.partitions.iter().map(|p| p.partition_index).max();
        let meta = agent.topic_named_covering(&t.name, last.unwrap_or(0)).await;
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let meta = match &meta {
                Ok(Some(m)) if (0..m.partitions).contains(&p.partition_index) => m,
                Ok(_) => {
                    partitions.push(result.with_error_code(codes::UNKNOWN_TOPIC_OR_PARTITION));
                    continue;
                }
                Err(e) => {
                    partitions.push(result.with_error_code(codes::metastore_error(e)));
                    continue;
                }
            };
            let tp = TopicPartition {
                topic_id: meta.topic_id,
                partition: p.partition_index,
            };
            partitions.push(match agent.metastore.delete_records(tp, p.offset).await {
                Ok(o) => result.with_low_watermark(o.log_start_offset),
                Err(e) => result.with_error_code(codes::metastore_error(&e)),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
