#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use openraft::testing::log_id;
use openraft::{BasicNode, EntryPayload, Membership};
use serde::de::{DeserializeOwned, Visitor};
use uuid::Uuid;

use super::*;
use crate::legacy_commands::{BatchLocationV1, CommitBatchV6, CommitObjectV6, ReplaceBatchesV4};
use crate::raft::log_store::JOURNAL_FILE;
use crate::raft::TypeConfig;
use crate::types::{
    AcquireLeases, AddOffsetsToTxn, AddPartitionsToTxn, AgentHeartbeat, AlterBrokerConfigs,
    AlterTopicConfigs, BatchLocation, Command, CommitBatch, CommitObject, CommitOffsets,
    CommittedOffset, ConfigOp, CoordinatedCommit, CreatePartitions, CreateTopic, EndTxn,
    EnforceRetention, ExpireState, ExpireTransactions, GroupPartition, InitProducerId,
    InitTransactionalProducer, ObjectId, ReplaceBatches, RunLayout, TopicPartition,
    TxnCommitOffsets, TxnProducer,
};

const NODE: u64 = 1;

fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry {
    Entry {
        log_id: log_id(2, NODE, index),
        payload,
    }
}

fn command(index: u64) -> Entry {
    entry(
        index,
        EntryPayload::Normal(Command::InitProducerId(InitProducerId {
            transactional_id: None,
            now_ms: index as i64,
        })),
    )
}

/// Writes a fresh journal at `path` holding one `Append` per entry, and returns where each
/// record starts.
fn write_appends(path: &Path, entries: &[Entry]) -> Vec<u64> {
    let (mut journal, _) = Journal::open(path).unwrap();
    let mut starts = Vec::new();
    let mut at = HEADER_LEN;
    for e in entries {
        let mut buf = Vec::new();
        encode(&RecordRef::Append(std::slice::from_ref(e)), &mut buf).unwrap();
        starts.push(at);
        at += buf.len() as u64;
        journal.write(&buf).unwrap();
    }
    journal.sync().unwrap();
    starts
}

fn indexes(state: &LogState) -> Vec<u64> {
    state.entries.keys().copied().collect()
}

fn journal_in(dir: &Path) -> PathBuf {
    dir.join(JOURNAL_FILE)
}

/// A journal of entries 1 to 4; returns its path, its bytes and the records' starts.
fn four_records(dir: &Path) -> (PathBuf, Vec<u8>, Vec<u64>) {
    let path = journal_in(dir);
    let starts = write_appends(&path, &(1..=4).map(command).collect::<Vec<_>>());
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes, starts)
}

/// Opens `bytes` as a journal: the entries replayed and the file's length afterwards.
fn reopen(path: &Path, bytes: &[u8]) -> Result<(Vec<u64>, u64), JournalError> {
    std::fs::write(path, bytes).unwrap();
    let (journal, replayed) = Journal::open(path)?;
    drop(journal);
    Ok((
        indexes(&replayed.state),
        std::fs::metadata(path).unwrap().len(),
    ))
}

#[test]
fn torn_tails_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, starts) = four_records(dir.path());
    let last = starts[3] as usize;
    let frame_len = bytes.len() - last;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("header cut", bytes[..last + 5].to_vec()),
        ("payload cut", bytes[..bytes.len() - 3].to_vec()),
        ("length only", bytes[..last + FRAME_HEADER_LEN].to_vec()),
    ];
    // The last record whole in length, its payload garbage (an unsynced page).
    let mut garbage = bytes.clone();
    for b in &mut garbage[last + FRAME_HEADER_LEN..] {
        *b = 0x5a;
    }
    cases.push(("garbage payload", garbage));
    // The last record all zeros, and zero pages after it: a file extended before its data landed.
    let mut zeros = bytes[..last].to_vec();
    zeros.resize(last + frame_len + 8192, 0);
    cases.push(("zero filled", zeros));
    // A length past the end of the file, or over the cap. (The same in the middle of the file
    // cannot be told from this: see the module doc.)
    let mut long = bytes.clone();
    long[last..last + 4].copy_from_slice(&(frame_len as u32 * 2).to_le_bytes());
    cases.push(("length past the end", long));
    let mut huge = bytes.clone();
    huge[last..last + 4].copy_from_slice(&(MAX_RECORD_LEN + 1).to_le_bytes());
    cases.push(("length over the cap", huge));
    // The last record whole, then zeros: its checksum fails, nothing but zeros follows.
    let mut flipped = bytes.clone();
    flipped[bytes.len() - 1] ^= 0x01;
    flipped.resize(bytes.len() + 100, 0);
    cases.push(("bad checksum, zeros after", flipped));
    for (what, damaged) in cases {
        let (entries, len) = reopen(&path, &damaged).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(entries, vec![1, 2, 3], "{what}");
        assert_eq!(len, starts[3], "{what}: cut where the torn record starts");
        // Appending continues after the cut.
        let (mut journal, _) = Journal::open(&path).unwrap();
        let mut buf = Vec::new();
        encode(&RecordRef::Append(&[command(4), command(5)]), &mut buf).unwrap();
        journal.write(&buf).unwrap();
        journal.sync().unwrap();
        drop(journal);
        let (_, replayed) = Journal::open(&path).unwrap();
        assert_eq!(indexes(&replayed.state), vec![1, 2, 3, 4, 5], "{what}");
    }
}

#[test]
fn corruption_before_the_tail_is_refused_and_nothing_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, starts) = four_records(dir.path());
    let second = starts[1] as usize;
    let mut flipped = bytes.clone();
    flipped[second + FRAME_HEADER_LEN + 1] ^= 0x10;
    let mut short = bytes.clone();
    short[second..second + 4].copy_from_slice(&3u32.to_le_bytes());
    let mut zero_len = bytes.clone();
    zero_len[second..second + 8].fill(0);
    // A damaged record after the good ones, then a good one: not a torn tail.
    let mut after_garbage = bytes.clone();
    let mut bad = frame(&[0xab; 40]);
    bad[4] ^= 0x01;
    after_garbage.extend_from_slice(&bad);
    after_garbage.extend_from_slice(&bytes[starts[3] as usize..]);
    let cases = [
        ("bit flip", flipped, starts[1], Damage::Checksum),
        ("short length", short, starts[1], Damage::Checksum),
        ("zero header", zero_len, starts[1], Damage::Length(0)),
        (
            "a bad record, then a good one",
            after_garbage,
            bytes.len() as u64,
            Damage::Checksum,
        ),
    ];
    for (what, damaged, at, expected) in cases {
        let err = reopen(&path, &damaged).unwrap_err();
        let JournalError::Corrupt {
            path: p,
            offset,
            damage,
            following,
        } = &err
        else {
            panic!("{what}: {err}");
        };
        assert_eq!(p, &path, "{what}");
        assert_eq!(*offset, at, "{what}");
        assert_eq!(damage, &expected, "{what}");
        assert!(*following > 0, "{what}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(&format!("at byte {at}")), "{message}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            damaged,
            "{what}: nothing cut"
        );
    }
}

/// A frame whose checksum matches `payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

#[test]
fn undecodable_record_is_refused_even_at_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, starts) = four_records(dir.path());
    // Variant 9 of `Record`: what a newer build that did not bump the version could write.
    let unknown = frame(&[9, 1, 2, 3]);
    let mut middle = bytes[..starts[2] as usize].to_vec();
    middle.extend_from_slice(&unknown);
    middle.extend_from_slice(&bytes[starts[2] as usize..]);
    let mut tail = bytes.clone();
    tail.extend_from_slice(&unknown);
    for (what, damaged, at) in [
        ("middle", middle, starts[2]),
        ("tail", tail, bytes.len() as u64),
    ] {
        let err = reopen(&path, &damaged).unwrap_err();
        assert!(
            matches!(&err, JournalError::Undecodable { path: p, offset, .. } if p == &path && *offset == at),
            "{what}: {err}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            damaged,
            "{what}: nothing cut"
        );
    }
}

#[test]
fn newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut bytes, _) = four_records(dir.path());
    bytes[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    let err = reopen(&path, &bytes).unwrap_err();
    assert!(
        matches!(err, JournalError::UnsupportedVersion { version, .. } if version == VERSION + 1),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

fn fixtures() -> PathBuf {
    let root = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    Path::new(&root).join("tests/fixtures")
}

fn version_of(path: &Path) -> u32 {
    let bytes = std::fs::read(path).unwrap();
    u32::from_le_bytes(bytes[8..12].try_into().unwrap())
}

/// The data-dir fixtures' journals are version 2 (postcard, written before version 3): each
/// opens with its entries, is rewritten as the current version, and goes on from there.
#[test]
fn version_2_journals_are_upgraded_in_place() {
    for data_dir in ["data-dir-v2", "data-dir-v3", "data-dir-v4"] {
        let src = fixtures().join(data_dir).join(JOURNAL_FILE);
        assert_eq!(version_of(&src), VERSION_2, "{data_dir}");
        let dir = tempfile::tempdir().unwrap();
        let path = journal_in(dir.path());
        std::fs::copy(&src, &path).unwrap();
        let (mut journal, replayed) = Journal::open(&path).unwrap();
        let old = replayed.state;
        assert!(replayed.records > 0, "{data_dir}");
        assert!(!old.entries.is_empty(), "{data_dir}");
        assert!(old.vote.is_some() && old.committed.is_some(), "{data_dir}");
        assert_eq!(version_of(&path), VERSION, "{data_dir}: rewritten");

        let next = old.last_log_id().unwrap().index + 1;
        let mut buf = Vec::new();
        encode(&RecordRef::Append(&[command(next)]), &mut buf).unwrap();
        journal.write(&buf).unwrap();
        journal.sync().unwrap();
        drop(journal);
        let (_, replayed) = Journal::open(&path).unwrap();
        let new = replayed.state;
        let mut expected = indexes(&old);
        expected.push(next);
        assert_eq!(indexes(&new), expected, "{data_dir}");
        for (i, e) in &old.entries {
            assert_eq!(new.entries.get(i), Some(e), "{data_dir}");
        }
        assert_eq!(new.vote, old.vote, "{data_dir}");
        assert_eq!(new.committed, old.committed, "{data_dir}");
        assert_eq!(new.last_purged, old.last_purged, "{data_dir}");
    }
}

#[tokio::test]
async fn a_corrupt_journal_stops_the_metastore_from_opening() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut bytes, starts) = four_records(dir.path());
    bytes[starts[1] as usize + FRAME_HEADER_LEN] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let err = crate::LocalMetastore::open(dir.path()).await.err().unwrap();
    assert!(
        matches!(
            err,
            crate::OpenError::Journal(JournalError::Corrupt { offset, .. }) if offset == starts[1]
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

// The schema guard.
//
// postcard writes an enum variant as its position and a struct as its fields in order, with no
// names, so the journal's bytes depend on every type a record holds. An older build reading a
// record with a variant it does not have fails to decode it (now: refuses to open); one with a
// variant whose position or fields moved misreads it silently. So any change to these types is a
// new journal VERSION (and, for `Command`, a change to the RPC bodies, which carry no version yet).
//
// The guard: `every_command` holds one value of every variant of every enum in a record, checked
// against the variant lists serde itself derives (so a new variant fails
// `every_variant_has_a_sample` until it gets a sample), and the journal of those values is
// pinned byte for byte in `tests/fixtures/journal-v{VERSION}` (so a new sample, variant or
// field fails `the_encoding_is_pinned`). The fix is never to rewrite the fixture: bump VERSION,
// keep reading the old version, and write the new version's fixture next to the old ones.

/// The variant names serde derives for `T`, in declaration order (postcard's variant indices).
fn variants<T: DeserializeOwned>() -> &'static [&'static str] {
    /// A deserializer that only answers what an enum asks of it.
    struct Probe;

    #[derive(Debug)]
    struct Found(&'static [&'static str]);

    impl std::fmt::Display for Found {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "variants {:?}", self.0)
        }
    }

    impl std::error::Error for Found {}

    impl serde::de::Error for Found {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Found(&[])
        }
    }

    impl<'de> serde::Deserializer<'de> for Probe {
        type Error = Found;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(&[]))
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            Err(Found(variants))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
            ignored_any
        }
    }

    match T::deserialize(Probe) {
        Err(Found(names)) => names,
        Ok(_) => &[],
    }
}

/// The variant name of an externally tagged value.
fn variant_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value).unwrap() {
        serde_json::Value::String(name) => name,
        serde_json::Value::Object(map) if map.len() == 1 => map.keys().next().unwrap().clone(),
        other => panic!("not an enum value: {other}"),
    }
}

const TOPIC: Uuid = Uuid::from_u128(0x5eed_0001);

fn tp() -> TopicPartition {
    TopicPartition {
        topic_id: TOPIC,
        partition: 3,
    }
}

fn object_id(n: u128) -> ObjectId {
    ObjectId(ulid::Ulid(n))
}

fn every_config_op() -> Vec<ConfigOp> {
    vec![
        ConfigOp::Set {
            name: "retention.ms".into(),
            value: "1000".into(),
        },
        ConfigOp::Delete {
            name: "retention.bytes".into(),
        },
        ConfigOp::Append {
            name: "cleanup.policy".into(),
            value: "compact".into(),
        },
        ConfigOp::Subtract {
            name: "cleanup.policy".into(),
            value: "delete".into(),
        },
    ]
}

/// One value of every `Command` variant, in declaration order, every field set to something
/// other than its default where it can be.
fn every_command() -> Vec<Command> {
    let partition = GroupPartition {
        topic: "orders".into(),
        partition: 3,
    };
    vec![
        Command::CreateTopic(CreateTopic {
            name: "orders".into(),
            topic_id: TOPIC,
            partitions: 4,
            configs: BTreeMap::from([("retention.ms".into(), "60000".into())]),
            now_ms: 1,
        }),
        Command::DeleteTopic {
            name: "orders".into(),
            now_ms: 2,
        },
        Command::CommitObjectV6(CommitObjectV6 {
            object: object_id(7),
            size: 4096,
            batches: vec![CommitBatchV6 {
                tp: tp(),
                position: 61,
                len: 300,
                last_offset_delta: 4,
                record_count: 5,
                first_timestamp: 10,
                max_timestamp: 20,
                producer_id: 9,
                producer_epoch: 1,
                base_sequence: 11,
            }],
            now_ms: 3,
        }),
        Command::InitProducerId(InitProducerId {
            transactional_id: Some("tx".into()),
            now_ms: 4,
        }),
        Command::AgentHeartbeat(AgentHeartbeat {
            host: "agent-1".into(),
            port: 9092,
            session_timeout_ms: 3000,
            now_ms: 5,
        }),
        Command::CommitOffsets(CommitOffsets {
            group: "readers".into(),
            offsets: vec![(
                partition.clone(),
                CommittedOffset {
                    offset: 42,
                    leader_epoch: 2,
                    metadata: "m".into(),
                    commit_timestamp_ms: 6,
                },
            )],
        }),
        Command::DeleteGroup {
            group: "readers".into(),
        },
        Command::DeleteOffsets {
            group: "readers".into(),
            partitions: vec![partition],
        },
        Command::DeleteRecords {
            tp: tp(),
            offset: 12,
        },
        Command::EnforceRetention(EnforceRetention {
            now_ms: 7,
            default_retention_ms: 604_800_000,
            default_retention_bytes: -1,
        }),
        Command::ForgetObjects {
            objects: vec![object_id(7), object_id(8)],
        },
        Command::ReplaceBatchesV4(ReplaceBatchesV4 {
            tp: tp(),
            object: object_id(9),
            size: 8192,
            replaced: vec![(0, object_id(7)), (5, object_id(8))],
            batches: vec![BatchLocationV1 {
                base_offset: 0,
                last_offset: 9,
                object: object_id(9),
                position: 0,
                len: 600,
                first_timestamp: 10,
                max_timestamp: 30,
            }],
            now_ms: 8,
        }),
        Command::AcquireLeases(AcquireLeases {
            holder: "compactor-a".into(),
            keys: vec!["merge/orders/3".into()],
            ttl_ms: 30_000,
            now_ms: 9,
        }),
        Command::ReleaseLeases {
            holder: "compactor-a".into(),
            keys: vec!["merge/orders/3".into()],
        },
        Command::AlterTopicConfigs(AlterTopicConfigs {
            name: "orders".into(),
            replace: true,
            ops: every_config_op(),
        }),
        Command::AdvanceExport {
            tp: tp(),
            from: Some(10),
            to: 20,
        },
        Command::ExpireState(ExpireState {
            now_ms: 10,
            producer_id_expiration_ms: 86_400_000,
            commit_answer_retention_ms: 600_000,
            offsets_retention_ms: 604_800_000,
            broker_id_retention_ms: 86_400_001,
        }),
        Command::ReplaceBatches(ReplaceBatches {
            tp: tp(),
            object: object_id(10),
            size: 9000,
            replaced: vec![(0, object_id(9))],
            batches: vec![
                BatchLocation {
                    base_offset: 0,
                    last_offset: 9,
                    object: object_id(10),
                    position: 32,
                    len: 600,
                    first_timestamp: 10,
                    max_timestamp: 30,
                    layout: RunLayout::Segment { index_len: 28 },
                },
                BatchLocation {
                    base_offset: 10,
                    last_offset: 10,
                    object: ObjectId::MARKER,
                    position: 0,
                    len: crate::types::MARKER_LEN,
                    first_timestamp: 31,
                    max_timestamp: 31,
                    layout: RunLayout::Marker {
                        producer_id: 9,
                        producer_epoch: 2,
                        commit: true,
                    },
                },
            ],
            now_ms: 11,
        }),
        Command::CreatePartitions(CreatePartitions {
            name: "orders".into(),
            topic_id: TOPIC,
            count: 8,
        }),
        Command::CommitGroupOffsets(CoordinatedCommit {
            coordinator: 2,
            commit: CommitOffsets {
                group: "g".into(),
                offsets: vec![(
                    GroupPartition {
                        topic: "orders".into(),
                        partition: 4,
                    },
                    CommittedOffset {
                        offset: 12,
                        leader_epoch: 3,
                        metadata: "m".into(),
                        commit_timestamp_ms: 13,
                    },
                )],
            },
        }),
        Command::AlterBrokerConfigs(AlterBrokerConfigs {
            broker: Some(2),
            replace: true,
            ops: every_config_op(),
        }),
        Command::CommitObject(CommitObject {
            object: object_id(11),
            size: 4096,
            batches: vec![CommitBatch {
                tp: tp(),
                position: 61,
                len: 300,
                last_offset_delta: 4,
                record_count: 5,
                first_timestamp: 10,
                max_timestamp: 20,
                producer_id: 9,
                producer_epoch: 1,
                base_sequence: 11,
                transactional: true,
            }],
            now_ms: 14,
        }),
        Command::InitTransactionalProducer(InitTransactionalProducer {
            transactional_id: "tx".into(),
            transaction_timeout_ms: 60_000,
            producer_id: 9,
            producer_epoch: 1,
            now_ms: 15,
        }),
        Command::AddPartitionsToTxn(AddPartitionsToTxn {
            producer: txn_producer(),
            partitions: vec![tp()],
            now_ms: 16,
        }),
        Command::AddOffsetsToTxn(AddOffsetsToTxn {
            producer: txn_producer(),
            group: "g".into(),
            now_ms: 17,
        }),
        Command::TxnCommitOffsets(TxnCommitOffsets {
            producer: txn_producer(),
            coordinator: 3,
            commit: CommitOffsets {
                group: "g".into(),
                offsets: vec![(
                    GroupPartition {
                        topic: "orders".into(),
                        partition: 5,
                    },
                    CommittedOffset {
                        offset: 18,
                        leader_epoch: 4,
                        metadata: "t".into(),
                        commit_timestamp_ms: 19,
                    },
                )],
            },
        }),
        Command::EndTxn(EndTxn {
            producer: txn_producer(),
            commit: true,
            bump_epoch: true,
            now_ms: 20,
        }),
        Command::ExpireTransactions(ExpireTransactions {
            now_ms: 21,
            transactional_id_expiration_ms: 604_800_000,
        }),
        Command::AbortTransaction {
            transactional_id: "tx".into(),
            now_ms: 22,
        },
        Command::ReplaceBatchesDroppingAborts {
            rewrite: ReplaceBatches {
                tp: tp(),
                object: object_id(12),
                size: 700,
                replaced: vec![(0, object_id(10)), (10, ObjectId::MARKER)],
                batches: vec![],
                now_ms: 23,
            },
            aborts: vec![10],
        },
        Command::AlterScramCredentials(crate::security::AlterScramCredentials {
            upsertions: vec![crate::security::ScramUpsertion {
                user: "alice".into(),
                mechanism: crate::security::ScramMechanism::Sha512,
                credential: crate::security::ScramCredential {
                    salt: vec![1, 2],
                    iterations: 4096,
                    stored_key: vec![3, 4],
                    server_key: vec![5, 6],
                },
            }],
            deletions: vec![crate::security::ScramDeletion {
                user: "bob".into(),
                mechanism: crate::security::ScramMechanism::Sha256,
            }],
        }),
        Command::CreateAcls(vec![crate::security::AclBinding {
            resource_type: 2,
            resource_name: "orders".into(),
            pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission_type: 3,
        }]),
        Command::DeleteAcls(vec![crate::security::AclFilter {
            resource_type: 1,
            resource_name: None,
            pattern_type: 2,
            principal: Some("User:bob".into()),
            host: None,
            operation: 1,
            permission_type: 1,
        }]),
        Command::AlterClientQuotas(vec![
            crate::security::QuotaAlteration {
                entity: crate::security::QuotaEntity {
                    user: Some(crate::security::QuotaName::Named("alice".into())),
                    client_id: Some(crate::security::QuotaName::Default),
                },
                set: vec![(
                    "producer_byte_rate".into(),
                    crate::security::QuotaValue::new(1024.5),
                )],
                remove: vec!["consumer_byte_rate".into()],
            },
            crate::security::QuotaAlteration {
                entity: crate::security::QuotaEntity {
                    user: None,
                    client_id: Some(crate::security::QuotaName::Named("app".into())),
                },
                set: vec![],
                remove: vec!["request_percentage".into()],
            },
        ]),
        Command::SetAgentListeners {
            agent: "agent-1:9092".into(),
            listeners: vec![crate::security::AdvertisedListener {
                name: "SASL_SSL".into(),
                host: "agent-1.example".into(),
                port: 9093,
            }],
        },
    ]
}

fn txn_producer() -> TxnProducer {
    TxnProducer {
        transactional_id: "tx".into(),
        producer_id: 9,
        producer_epoch: 2,
    }
}

/// Entries 2 on: a blank, a membership, then every command.
fn every_entry() -> Vec<Entry> {
    let members = BTreeSet::from([1, 2, 3]);
    let nodes: BTreeMap<u64, BasicNode> = members
        .iter()
        .map(|&id| (id, BasicNode::new(format!("node-{id}:7070"))))
        .collect();
    let mut payloads = vec![
        EntryPayload::Blank,
        EntryPayload::Membership(Membership::new(vec![members], nodes)),
    ];
    payloads.extend(every_command().into_iter().map(EntryPayload::Normal));
    payloads
        .into_iter()
        .zip(2..)
        .map(|(payload, index)| entry(index, payload))
        .collect()
}

/// The journal every pinned fixture holds: every kind of record, every entry payload, every
/// command. Replayed, it is `every_entry()` with vote, commit and purge set.
fn pinned_journal() -> Vec<u8> {
    let entries = every_entry();
    let last = entries.last().unwrap().log_id;
    let extra = [entry(last.index + 1, EntryPayload::Blank)];
    let vote = Vote::new(2, NODE);
    let purged = log_id(1, NODE, 1);
    let truncated = extra[0].log_id;
    let committed = Some(last);
    let records = [
        RecordRef::Vote(&vote),
        RecordRef::Purge(&purged),
        RecordRef::Append(&entries),
        RecordRef::Append(&extra),
        RecordRef::Truncate(&truncated),
        RecordRef::Committed(&committed),
    ];
    let mut buf = Vec::new();
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&VERSION.to_le_bytes());
    for r in &records {
        encode(r, &mut buf).unwrap();
    }
    buf
}

fn pinned_fixture(version: u32) -> PathBuf {
    fixtures()
        .join(format!("journal-v{version}"))
        .join(JOURNAL_FILE)
}

#[test]
fn every_variant_has_a_sample() {
    assert_eq!(
        every_command().iter().map(variant_name).collect::<Vec<_>>(),
        variants::<Command>(),
        "every Command variant needs a sample in every_command(), and a new journal VERSION"
    );
    assert_eq!(
        every_config_op()
            .iter()
            .map(variant_name)
            .collect::<Vec<_>>(),
        variants::<ConfigOp>(),
    );
    let payloads: Vec<String> = every_entry()
        .iter()
        .map(|e| variant_name(&e.payload))
        .collect();
    let mut kinds: Vec<&str> = variants::<EntryPayload<TypeConfig>>().to_vec();
    kinds.retain(|k| !payloads.iter().any(|p| p == k));
    assert!(
        kinds.is_empty(),
        "entry payloads without a sample: {kinds:?}"
    );
    let vote = Vote::new(1, NODE);
    let id = log_id(1, NODE, 1);
    let records = [
        RecordRef::Append(&[]),
        RecordRef::Truncate(&id),
        RecordRef::Purge(&id),
        RecordRef::Vote(&vote),
        RecordRef::Committed(&None),
    ];
    assert_eq!(
        records.iter().map(variant_name).collect::<Vec<_>>(),
        variants::<Record>(),
        "RecordRef and Record must list the same variants in the same order"
    );
}

#[test]
fn the_encoding_is_pinned() {
    let path = pinned_fixture(VERSION);
    let pinned = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; journal version {VERSION} needs its fixture: \
             cargo test -p skiff-metastore write_journal_fixture -- --ignored",
            path.display()
        )
    });
    assert!(
        pinned == pinned_journal(),
        "the journal's encoding differs from {}: a type in a journal record changed (a new \
         Command variant or field?). Bump journal::VERSION, keep reading the old version, write \
         the new version's fixture; never rewrite an existing one",
        path.display()
    );
}

/// Writes the current version's pinned journal: `cargo test -p skiff-metastore
/// write_journal_fixture -- --ignored`. Only ever for a new VERSION, in a new directory.
#[test]
#[ignore]
fn write_journal_fixture() {
    let path = pinned_fixture(VERSION);
    assert!(!path.exists(), "a fixture is never overwritten");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, pinned_journal()).unwrap();
}

/// Every pinned journal opens; the current one replays to exactly its values.
#[test]
fn pinned_journals_open() {
    for version in 3..=VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_in(dir.path());
        std::fs::copy(pinned_fixture(version), &path).unwrap();
        let (_, replayed) = Journal::open(&path).unwrap();
        assert_eq!(replayed.records, 6, "v{version}");
        if version == VERSION {
            let state = replayed.state;
            let expected = every_entry();
            assert_eq!(
                state.entries.values().cloned().collect::<Vec<_>>(),
                expected
            );
            assert_eq!(state.vote, Some(Vote::new(2, NODE)));
            assert_eq!(state.last_purged, Some(log_id(1, NODE, 1)));
            assert_eq!(state.committed, expected.last().map(|e| e.log_id));
        }
    }
}
