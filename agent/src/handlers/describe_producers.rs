//! DescribeProducers (KIP-664): each partition's active idempotent producers, from the producer
//! state the metastore keeps for idempotence. Skiff has no transactions, so no producer has a
//! coordinator epoch or an open transaction (-1 both). `last_timestamp` is when the metastore
//! last committed one of the producer's batches to the partition.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use skiff_metastore::limits::MAX_PARTITIONS_PER_READ;
use skiff_metastore::types::TopicPartition;

use crate::context::Agent;
use crate::protocol::codes;
use crate::topics::is_internal_topic;

pub async fn handle(agent: &Agent, req: DescribeProducersRequest) -> DescribeProducersResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let meta = if is_internal_topic(&t.name) {
            Ok(None)
        } else {
            agent.topic_named(&t.name).await
        };
        let mut partitions: Vec<PartitionResponse> = t
            .partition_indexes
            .iter()
            .map(|&p| PartitionResponse::default().with_partition_index(p))
            .collect();
        match meta {
            Err(e) => {
                let code = codes::metastore_error(&e);
                partitions.iter_mut().for_each(|p| p.error_code = code);
            }
            Ok(meta) => {
                let known: Vec<(usize, TopicPartition)> = partitions
                    .iter_mut()
                    .enumerate()
                    .filter_map(|(i, p)| match &meta {
                        Some(m) if (0..m.partitions).contains(&p.partition_index) => Some((
                            i,
                            TopicPartition {
                                topic_id: m.topic_id,
                                partition: p.partition_index,
                            },
                        )),
                        _ => {
                            p.error_code = codes::UNKNOWN_TOPIC_OR_PARTITION;
                            None
                        }
                    })
                    .collect();
                for chunk in known.chunks(MAX_PARTITIONS_PER_READ) {
                    let tps = chunk.iter().map(|(_, tp)| *tp).collect();
                    match agent.metastore.producers(tps).await {
                        Ok(answers) => {
                            for ((i, _), answer) in chunk.iter().zip(answers) {
                                let Some(p) = partitions.get_mut(*i) else {
                                    continue;
                                };
                                match answer {
                                    Ok(producers) => {
                                        p.active_producers = producers
                                            .into_iter()
                                            .map(|s| {
                                                ProducerState::default()
                                                    .with_producer_id(ProducerId(s.producer_id))
                                                    .with_producer_epoch(i32::from(s.epoch))
                                                    .with_last_sequence(s.last_sequence)
                                                    .with_last_timestamp(s.last_write_ms)
                                                    .with_coordinator_epoch(-1)
                                                    .with_current_txn_start_offset(
                                                        s.current_txn_start_offset,
                                                    )
                                            })
                                            .collect()
                                    }
                                    Err(e) => p.error_code = codes::meta_error(&e),
                                }
                            }
                        }
                        Err(e) => {
                            let code = codes::metastore_error(&e);
                            for (i, _) in chunk {
                                if let Some(p) = partitions.get_mut(*i) {
                                    p.error_code = code;
                                }
                            }
                        }
                    }
                }
            }
        }
        topics.push(
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DescribeProducersResponse::default().with_topics(topics)
}
