//! Samples of the transaction requests for the guard's tests.

use bytes::Bytes;
use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{ApiKey, ProducerId, TransactionalId};
use kafka_protocol::protocol::{Decodable, Message, VersionRange};

use super::{encode, group, name, s, tags};

fn txn_id() -> TransactionalId {
    TransactionalId(s("txn"))
}

pub(super) fn samples(api: ApiKey, v: i16) -> Option<Vec<Bytes>> {
    Some(match api {
        ApiKey::AddPartitionsToTxn => {
            let topic = AddPartitionsToTxnTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![0, 1, 2])
                .with_unknown_tagged_fields(tags());
            let topics = vec![topic.clone(), topic];
            let req = if v >= 4 {
                let txn = AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(txn_id())
                    .with_producer_id(ProducerId(7))
                    .with_producer_epoch(3)
                    .with_verify_only(true)
                    .with_topics(topics)
                    .with_unknown_tagged_fields(tags());
                AddPartitionsToTxnRequest::default().with_transactions(vec![txn.clone(), txn])
            } else {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(txn_id())
                    .with_v3_and_below_producer_id(ProducerId(7))
                    .with_v3_and_below_producer_epoch(3)
                    .with_v3_and_below_topics(topics)
            };
            vec![encode(req.with_unknown_tagged_fields(tags()), v)]
        }
        ApiKey::AddOffsetsToTxn => vec![encode(
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(txn_id())
                .with_producer_id(ProducerId(7))
                .with_producer_epoch(3)
                .with_group_id(group("g"))
                .with_unknown_tagged_fields(tags()),
            v,
        )],
        ApiKey::TxnOffsetCommit => {
            let partition = |metadata: Option<&'static str>| {
                let p = TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(42)
                    .with_committed_metadata(metadata.map(s))
                    .with_unknown_tagged_fields(tags());
                if v >= 2 {
                    p.with_committed_leader_epoch(5)
                } else {
                    p
                }
            };
            let topic = TxnOffsetCommitRequestTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![partition(Some("meta")), partition(None)])
                .with_unknown_tagged_fields(tags());
            let req = |instance: Option<&'static str>| {
                let r = TxnOffsetCommitRequest::default()
                    .with_transactional_id(txn_id())
                    .with_group_id(group("g"))
                    .with_producer_id(ProducerId(7))
                    .with_producer_epoch(3)
                    .with_topics(vec![topic.clone(), topic.clone()])
                    .with_unknown_tagged_fields(tags());
                if v >= 3 {
                    r.with_generation_id(4)
                        .with_member_id(s("member"))
                        .with_group_instance_id(instance.map(s))
                } else {
                    r
                }
            };
            vec![encode(req(Some("instance")), v), encode(req(None), v)]
        }
        ApiKey::EndTxn => vec![encode(
            EndTxnRequest::default()
                .with_transactional_id(txn_id())
                .with_producer_id(ProducerId(7))
                .with_producer_epoch(3)
                .with_committed(true)
                .with_unknown_tagged_fields(tags()),
            v,
        )],
        _ => return None,
    })
}

pub(super) fn kafka_versions(api: ApiKey) -> Option<VersionRange> {
    Some(match api {
        ApiKey::AddPartitionsToTxn => AddPartitionsToTxnRequest::VERSIONS,
        ApiKey::AddOffsetsToTxn => AddOffsetsToTxnRequest::VERSIONS,
        ApiKey::TxnOffsetCommit => TxnOffsetCommitRequest::VERSIONS,
        ApiKey::EndTxn => EndTxnRequest::VERSIONS,
        _ => return None,
    })
}

pub(super) fn kafka_decode(api: ApiKey, v: i16, body: &[u8]) -> Option<Result<usize, String>> {
    fn len<T: Decodable>(v: i16, body: &[u8]) -> Result<usize, String> {
        let mut buf = Bytes::copy_from_slice(body);
        T::decode(&mut buf, v).map_err(|e| e.to_string())?;
        Ok(body.len() - buf.len())
    }
    Some(match api {
        ApiKey::AddPartitionsToTxn => len::<AddPartitionsToTxnRequest>(v, body),
        ApiKey::AddOffsetsToTxn => len::<AddOffsetsToTxnRequest>(v, body),
        ApiKey::TxnOffsetCommit => len::<TxnOffsetCommitRequest>(v, body),
        ApiKey::EndTxn => len::<EndTxnRequest>(v, body),
        _ => return None,
    })
}
