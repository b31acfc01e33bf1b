//! The derived state kept incrementally matches what a full scan computes, through random
//! sequences of every command that changes an index.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use uuid::Uuid;

use super::*;
use crate::types::{
    AddPartitionsToTxn, Command, CommandResponse, CommitBatch, CommitObject, CreateTopic, EndTxn,
    EnforceRetention, InitTransactionalProducer, ReplaceBatches, RunLayout, TopicId,
    TopicPartition, TxnProducer,
};

const PARTITIONS: i32 = 3;

struct Run {
    sm: StateMachine,
    rng: fastrand::Rng,
    topics: Vec<(String, TopicId)>,
    next_id: u128,
}

impl Run {
    fn id(&mut self) -> u128 {
        self.next_id += 1;
        self.next_id
    }

    fn create(&mut self, name: String) {
        let topic_id = Uuid::from_u128(self.id());
        self.sm.apply(&Command::CreateTopic(CreateTopic {
            name: name.clone(),
            topic_id,
            partitions: PARTITIONS,
            configs: BTreeMap::new(),
            now_ms: 0,
        }));
        self.topics.push((name, topic_id));
    }

    fn tp(&mut self) -> TopicPartition {
        let (_, topic_id) = self.topics[self.rng.usize(..self.topics.len())].clone();
        TopicPartition {
            topic_id,
            partition: self.rng.i32(0..PARTITIONS + 1),
        }
    }

    fn step(&mut self) {
        match self.rng.u8(0..100) {
            40..=44 => self.txn(),
            0..=39 => {
                let object = ObjectId(ulid::Ulid(self.id()));
                let batches = (0..self.rng.usize(1..5))
                    .map(|_| {
                        let ts = self.rng.i64(0..1000);
                        CommitBatch {
                            tp: self.tp(),
                            position: 0,
                            len: self.rng.u32(1..1000),
                            last_offset_delta: self.rng.i32(0..3),
                            record_count: 1,
                            first_timestamp: ts,
                            max_timestamp: ts,
                            producer_id: -1,
                            producer_epoch: -1,
                            base_sequence: -1,
                            transactional: false,
                        }
                    })
                    .collect();
                let commit = CommitObject {
                    object,
                    size: 1,
                    batches,
                    now_ms: 0,
                };
                self.sm.apply(&Command::CommitObject(commit.clone()));
                if self.rng.u8(0..10) == 0 {
                    // A retry changes nothing.
                    self.sm.apply(&Command::CommitObject(commit));
                }
            }
            45..=54 => {
                let tp = self.tp();
                let offset = self.rng.i64(-1..200);
                self.sm.apply(&Command::DeleteRecords { tp, offset });
            }
            55..=61 => {
                self.sm.apply(&Command::EnforceRetention(EnforceRetention {
                    now_ms: 1000,
                    default_retention_ms: if self.rng.bool() {
                        self.rng.i64(0..1100)
                    } else {
                        -1
                    },
                    default_retention_bytes: self.rng.i64(-1..20_000),
                }));
            }
            62..=84 => self.replace(),
            85..=89 => {
                let (name, _) = self.topics.remove(self.rng.usize(..self.topics.len()));
                self.sm.apply(&Command::DeleteTopic {
                    name: name.clone(),
                    now_ms: 0,
                });
                self.create(name);
            }
            _ => {
                let mut objects: Vec<ObjectId> = self
                    .sm
                    .unreferenced_objects()
                    .into_iter()
                    .map(|u| u.object)
                    .filter(|_| self.rng.bool())
                    .collect();
                // And one still referenced, which must stay.
                objects.extend(self.referenced_one());
                self.sm.apply(&Command::ForgetObjects { objects });
            }
        }
    }

    /// A transaction of one of three transactional ids: a batch in each of up to two
    /// partitions, then a commit, an abort, or nothing (the next InitProducerId of the id
    /// aborts it): markers enter the indexes.
    fn txn(&mut self) {
        let id = format!("txn-{}", self.rng.u8(0..3));
        let now_ms = self.rng.i64(0..1000);
        let CommandResponse::ProducerId(Ok(p)) = self.sm.apply(
            &Command::InitTransactionalProducer(InitTransactionalProducer {
                transactional_id: id.clone(),
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                now_ms,
            }),
        ) else {
            return;
        };
        let producer = TxnProducer {
            transactional_id: id,
            producer_id: p.producer_id,
            producer_epoch: p.producer_epoch,
        };
        let mut tps: Vec<TopicPartition> = (0..self.rng.usize(1..3)).map(|_| self.tp()).collect();
        tps.sort();
        tps.dedup();
        self.sm
            .apply(&Command::AddPartitionsToTxn(AddPartitionsToTxn {
                producer: producer.clone(),
                partitions: tps.clone(),
                now_ms,
            }));
        let ts = self.rng.i64(0..1000);
        let batches = tps
            .iter()
            .map(|&tp| CommitBatch {
                tp,
                position: 0,
                len: self.rng.u32(1..1000),
                last_offset_delta: self.rng.i32(0..3),
                record_count: 1,
                first_timestamp: ts,
                max_timestamp: ts,
                producer_id: p.producer_id,
                producer_epoch: p.producer_epoch,
                base_sequence: 0,
                transactional: true,
            })
            .collect();
        let object = ObjectId(ulid::Ulid(self.id()));
        self.sm.apply(&Command::CommitObject(CommitObject {
            object,
            size: 1,
            batches,
            now_ms,
        }));
        if self.rng.u8(0..10) < 7 {
            self.sm.apply(&Command::EndTxn(EndTxn {
                producer,
                commit: self.rng.bool(),
                bump_epoch: false,
                now_ms: self.rng.i64(0..1000),
            }));
        }
    }

    fn referenced_one(&mut self) -> Option<ObjectId> {
        let tp = self.tp();
        let part = self.sm.partition(tp).ok()?;
        part.index.iter().next().map(|b| b.object)
    }

    /// Rewrites a run of up to four entries into one new object, with new timestamps.
    fn replace(&mut self) {
        let tp = self.tp();
        let Ok(part) = self.sm.partition(tp) else {
            return;
        };
        let entries: Vec<BatchLocation> = part.index.iter().copied().collect();
        if entries.is_empty() {
            return;
        }
        let start = self.rng.usize(..entries.len());
        let end = (start + self.rng.usize(1..5)).min(entries.len());
        let run = &entries[start..end];
        let object = ObjectId(ulid::Ulid(self.id()));
        let mut batches: Vec<BatchLocation> = run
            .iter()
            .map(|b| BatchLocation {
                object,
                max_timestamp: self.rng.i64(0..1000),
                len: self.rng.u32(1..1000),
                // A marker rewritten is a control batch in the new object.
                layout: match b.layout {
                    RunLayout::Marker { .. } => RunLayout::Flushed,
                    layout => layout,
                },
                ..*b
            })
            .collect();
        if self.rng.bool() {
            // A compaction that emptied a batch.
            batches.remove(self.rng.usize(..batches.len()));
        }
        self.sm.apply(&Command::ReplaceBatches(ReplaceBatches {
            tp,
            object,
            size: 1,
            replaced: run.iter().map(|b| (b.base_offset, b.object)).collect(),
            batches,
            now_ms: 0,
        }));
    }

    /// The marker entries in every index.
    fn markers(&self) -> usize {
        self.sm
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.index.iter().filter(|b| b.is_marker()).count())
            .sum()
    }

    /// What is kept incrementally is what a scan computes.
    fn check(&self) {
        assert_eq!(
            self.sm.unreferenced_objects(),
            self.sm.unreferenced_objects_by_scan()
        );
        for topic in self.sm.topics.values() {
            for part in topic.partitions.iter() {
                let bytes: u64 = part.index.iter().map(|b| u64::from(b.len)).sum();
                assert_eq!(part.bytes(), bytes);
                let mut rebuilt = part.clone();
                rebuilt.rebuild_timestamp_highs();
                assert_eq!(part.timestamp_highs, rebuilt.timestamp_highs);
            }
        }
        let mut again = self.sm.clone();
        again.rebuild_derived();
        assert_eq!(again.refs.0.counts, self.sm.refs.0.counts);
        assert_eq!(again.refs.0.unreferenced, self.sm.refs.0.unreferenced);
    }
}

#[test]
fn derived_state_matches_a_full_scan_through_random_commands() {
    for seed in 0..40 {
        let mut run = Run {
            sm: StateMachine::new(),
            rng: fastrand::Rng::with_seed(seed),
            topics: Vec::new(),
            next_id: 0,
        };
        run.create("a".into());
        run.create("b".into());
        let mut markers = 0;
        for _ in 0..300 {
            run.step();
            run.check();
            markers = markers.max(run.markers());
        }
        assert!(!run.sm.objects.is_empty());
        assert!(
            markers > 0,
            "seed {seed}: no transaction marker was ever in an index"
        );
    }
}

#[test]
fn a_decoded_state_derives_the_same_as_the_one_encoded() {
    let mut run = Run {
        sm: StateMachine::new(),
        rng: fastrand::Rng::with_seed(7),
        topics: Vec::new(),
        next_id: 0,
    };
    run.create("a".into());
    for _ in 0..200 {
        run.step();
    }
    let bytes = crate::codec::encode(&run.sm).unwrap();
    let mut decoded: StateMachine = crate::codec::decode(&bytes).unwrap();
    // Not yet derived: GC's answer comes from a scan, and is the same.
    assert!(decoded.derived_unreferenced().is_none());
    assert_eq!(
        decoded.unreferenced_objects(),
        run.sm.unreferenced_objects()
    );
    decoded.rebuild_derived();
    assert_eq!(decoded, run.sm);
    assert_eq!(decoded.refs.0.counts, run.sm.refs.0.counts);
    assert_eq!(decoded.refs.0.unreferenced, run.sm.refs.0.unreferenced);
    for (a, b) in decoded.topics.values().zip(run.sm.topics.values()) {
        for (p, q) in a.partitions.iter().zip(b.partitions.iter()) {
            assert_eq!(p.bytes(), q.bytes());
        }
    }
}
