#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use uuid::Uuid;

use super::*;
use crate::client::{MetastoreClient, MetastoreError};
use crate::raft::log_store::JOURNAL_FILE;
use crate::types::{
    AcquireLeases, AddOffsetsToTxn, AgentHeartbeat, AlterBrokerConfigs, BrokerConfigs, CommitBatch,
    CommitObject, CommitOffsets, CommittedOffset, ConfigOp, CreateTopic, EndTxn, ExpireState,
    GroupPartition, IndexSlice, InitProducerId, InitTransactionalProducer, MetaError, ObjectId,
    PartitionOffsets, TopicMeta, TopicPartition, TxnProducer, TxnStatus,
};

const TOPIC: Uuid = Uuid::from_u128(0xfeed);

fn tp(partition: i32) -> TopicPartition {
    TopicPartition {
        topic_id: TOPIC,
        partition,
    }
}

fn batch(partition: i32, delta: i32, producer: Option<(i64, i32)>) -> CommitBatch {
    let (producer_id, base_sequence) = producer.unwrap_or((-1, -1));
    CommitBatch {
        tp: tp(partition),
        position: 0,
        len: 100,
        last_offset_delta: delta,
        record_count: delta + 1,
        first_timestamp: 10,
        max_timestamp: 20,
        producer_id,
        producer_epoch: 0,
        base_sequence,
        transactional: false,
    }
}

/// The id of object `n`, made when the test process started: a commit of an object older than
/// `MAX_COMMIT_AGE_MS` by the leader's clock is refused.
fn oid(n: u128) -> ObjectId {
    static MADE_MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let made_ms = *MADE_MS.get_or_init(|| ulid::Ulid::new().timestamp_ms());
    ObjectId(ulid::Ulid::from_parts(made_ms, n))
}

fn object(n: u128, batches: Vec<CommitBatch>) -> CommitObject {
    CommitObject {
        object: oid(n),
        size: 4096,
        batches,
        now_ms: 77,
    }
}

async fn create_topic(ms: &LocalMetastore) {
    ms.create_topic(CreateTopic {
        name: "orders".into(),
        topic_id: TOPIC,
        partitions: 2,
        configs: BTreeMap::new(),
        now_ms: 1,
    })
    .await
    .unwrap();
}

/// Writes a known history: topic, producer, and ten objects mixing plain and idempotent batches.
async fn populate(ms: &LocalMetastore) -> i64 {
    create_topic(ms).await;
    let pid = ms
        .init_producer_id(InitProducerId {
            transactional_id: None,
            now_ms: 2,
        })
        .await
        .unwrap()
        .producer_id;
    for i in 0..10 {
        let answers = ms
            .commit_object(object(
                i,
                vec![batch(0, 2, None), batch(1, 0, Some((pid, i as i32)))],
            ))
            .await
            .unwrap();
        assert_eq!(answers[0].as_ref().unwrap().base_offset, 3 * i as i64);
        assert_eq!(answers[1].as_ref().unwrap().base_offset, i as i64);
    }
    let committed = ms
        .commit_offsets(CommitOffsets {
            group: "readers".into(),
            offsets: vec![(group_partition(1), committed_offset(7))],
        })
        .await
        .unwrap();
    assert_eq!(committed, vec![Ok(())]);
    let leased = ms
        .acquire_leases(AcquireLeases {
            holder: "compactor-a".into(),
            keys: vec![FIXTURE_LEASE.into()],
            ttl_ms: i64::MAX / 2,
            now_ms: 3,
        })
        .await
        .unwrap();
    assert_eq!(leased, vec![true]);
    ms.advance_export(tp(1), None, 5).await.unwrap();
    ms.agent_heartbeat(AgentHeartbeat {
        host: "agent-1".into(),
        port: 9092,
        session_timeout_ms: 10_000,
        now_ms: 6,
    })
    .await
    .unwrap();
    for broker in [None, Some(0)] {
        ms.alter_broker_configs(AlterBrokerConfigs {
            broker,
            replace: false,
            ops: vec![ConfigOp::Set {
                name: "log.retention.ms".into(),
                value: format!("{}", 1000 + broker.unwrap_or(-1)),
            }],
        })
        .await
        .unwrap();
    }
    // A transactional id whose transaction was aborted (fixtures from v8 on).
    let txn = ms
        .init_transactional_producer(InitTransactionalProducer {
            transactional_id: FIXTURE_TXN.into(),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            now_ms: 7,
        })
        .await
        .unwrap();
    let producer = TxnProducer {
        transactional_id: FIXTURE_TXN.into(),
        producer_id: txn.producer_id,
        producer_epoch: txn.producer_epoch,
    };
    ms.add_offsets_to_txn(AddOffsetsToTxn {
        producer: producer.clone(),
        group: "readers".into(),
        now_ms: 8,
    })
    .await
    .unwrap();
    ms.end_txn(EndTxn {
        producer,
        commit: false,
        bump_epoch: false,
        now_ms: 9,
    })
    .await
    .unwrap();
    let answers = ms.alter_scram_credentials(fixture_scram()).await.unwrap();
    assert_eq!(answers, vec![(FIXTURE_USER.to_owned(), Ok(()))]);
    let created = ms.create_acls(vec![fixture_acl()]).await.unwrap();
    assert_eq!(created, vec![Ok(())]);
    let altered = ms.alter_client_quotas(vec![fixture_quota()]).await.unwrap();
    assert_eq!(altered, vec![Ok(())]);
    ms.set_agent_listeners(FIXTURE_AGENT.into(), fixture_listeners())
        .await
        .unwrap();
    pid
}

/// The client quota `populate` sets (fixtures from v10 on).
fn fixture_quota() -> crate::security::QuotaAlteration {
    crate::security::QuotaAlteration {
        entity: crate::security::QuotaEntity {
            user: Some(crate::security::QuotaName::Named(FIXTURE_USER.into())),
            client_id: Some(crate::security::QuotaName::Default),
        },
        set: vec![(
            "producer_byte_rate".into(),
            crate::security::QuotaValue::new(1048576.0),
        )],
        remove: vec![],
    }
}

/// The agent `populate` heartbeats from, and the listeners it sets for it (fixtures from v10
/// on; the state has had room for them since v9).
const FIXTURE_AGENT: &str = "agent-1:9092";

fn fixture_listeners() -> Vec<crate::security::AdvertisedListener> {
    vec![crate::security::AdvertisedListener {
        name: "PLAINTEXT".into(),
        host: "agent-1".into(),
        port: 9092,
    }]
}

/// The ACL `populate` creates (fixtures from v9 on).
fn fixture_acl() -> crate::security::AclBinding {
    crate::security::AclBinding {
        resource_type: crate::security::codes::TOPIC,
        resource_name: "orders".into(),
        pattern_type: crate::security::codes::LITERAL,
        principal: format!("User:{FIXTURE_USER}"),
        host: "*".into(),
        operation: 3,
        permission_type: crate::security::codes::ALLOW,
    }
}

/// The user `populate` gives a SCRAM credential (fixtures from v9 on).
const FIXTURE_USER: &str = "fixture-user";

fn fixture_scram() -> crate::security::AlterScramCredentials {
    crate::security::AlterScramCredentials {
        upsertions: vec![crate::security::ScramUpsertion {
            user: FIXTURE_USER.into(),
            mechanism: crate::security::ScramMechanism::Sha512,
            credential: crate::security::ScramCredential {
                salt: vec![1; 16],
                iterations: 4096,
                stored_key: vec![2; 64],
                server_key: vec![3; 64],
            },
        }],
        deletions: vec![],
    }
}

/// The transactional id `populate` aborts a transaction of (fixtures from v8 on).
const FIXTURE_TXN: &str = "fixture-txn";

/// The dynamic broker configs `populate` sets (fixtures from v7 on).
fn fixture_broker_configs() -> BrokerConfigs {
    let retention = |v: &str| BTreeMap::from([("log.retention.ms".to_owned(), v.to_owned())]);
    BrokerConfigs {
        cluster: retention("999"),
        brokers: BTreeMap::from([(0, retention("1000"))]),
        version: 2,
    }
}

/// Held for ever by "compactor-a" in fixtures from v4 on.
const FIXTURE_LEASE: &str = "rewrite/orders/0";

fn group_partition(partition: i32) -> GroupPartition {
    GroupPartition {
        topic: "orders".into(),
        partition,
    }
}

fn committed_offset(offset: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: "m".into(),
        commit_timestamp_ms: 5,
    }
}

/// Everything a restart must preserve, as observed through the client.
async fn observe(ms: &LocalMetastore) -> (Vec<TopicMeta>, Vec<PartitionOffsets>, Vec<IndexSlice>) {
    let topics = ms.topics().await.unwrap();
    let mut offsets = Vec::new();
    let mut slices = Vec::new();
    for p in 0..2 {
        offsets.push(ms.offsets(tp(p)).await.unwrap());
        slices.push(ms.read_index(tp(p), 0, u64::MAX).await.unwrap());
    }
    (topics, offsets, slices)
}

/// What must hold after any restart of a store written by `populate`.
async fn check_continues(ms: &LocalMetastore, pid: i64) {
    check_continues_with(ms, pid, oid(3)).await;
}

/// [`check_continues`], where `populate` named its fourth object `third`.
async fn check_continues_with(ms: &LocalMetastore, pid: i64, third: ObjectId) {
    // A retry of the last idempotent batch is recognised...
    let dup = ms
        .commit_object(object(100, vec![batch(1, 0, Some((pid, 9)))]))
        .await
        .unwrap();
    let dup = dup[0].as_ref().unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.base_offset, 9);
    // ...a retried object gets its first answer...
    let again = ms
        .commit_object(CommitObject {
            object: third,
            ..object(3, vec![])
        })
        .await
        .unwrap();
    assert_eq!(again[0].as_ref().unwrap().base_offset, 9);
    // ...and new commits continue where the log ended.
    let next = ms
        .commit_object(object(
            101,
            vec![batch(0, 0, None), batch(1, 0, Some((pid, 10)))],
        ))
        .await
        .unwrap();
    assert_eq!(next[0].as_ref().unwrap().base_offset, 30);
    assert_eq!(next[1].as_ref().unwrap().base_offset, 10);
    let pid2 = ms
        .init_producer_id(InitProducerId {
            transactional_id: None,
            now_ms: 3,
        })
        .await
        .unwrap();
    // Producer ids are never reused: past the idempotent producer's and, from v8 on, the
    // transactional id's.
    assert!(pid2.producer_id > pid, "{} after {pid}", pid2.producer_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let ms = LocalMetastore::open(dir.path()).await.unwrap();
    let pid = populate(&ms).await;
    let before = observe(&ms).await;
    assert_eq!(before.1[0].high_watermark, 30);
    ms.shutdown().await;

    let ms = LocalMetastore::open(dir.path()).await.unwrap();
    assert_eq!(observe(&ms).await, before);
    check_continues(&ms, pid).await;
    ms.shutdown().await;
}

/// A crash: the runtime goes away with Raft's tasks mid-flight and nothing is shut down.
#[test]
fn restart_after_crash_keeps_acknowledged_state() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ms = rt.block_on(LocalMetastore::open(dir.path())).unwrap();
    let (pid, before) = rt.block_on(async {
        let pid = populate(&ms).await;
        (pid, observe(&ms).await)
    });
    drop(rt);
    // Only so that the next open does not race the dying writer over the same file; a real crash
    // has no such writer left.
    if let Some(w) = ms.journal.lock().unwrap().take() {
        w.join();
    }
    drop(ms);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ms = LocalMetastore::open(dir.path()).await.unwrap();
        assert_eq!(observe(&ms).await, before);
        check_continues(&ms, pid).await;
        ms.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_snapshot_and_short_journal() {
    let dir = tempfile::tempdir().unwrap();
    let options = LocalMetastoreOptions {
        snapshot_every: 5,
        logs_to_keep: 2,
        log_store: LogStoreOptions {
            compact_after_purged: 4,
        },
        ..Default::default()
    };
    let ms = LocalMetastore::open_with(dir.path(), options.clone())
        .await
        .unwrap();
    let pid = populate(&ms).await;
    let before = observe(&ms).await;
    let applied = ms.raft().metrics().borrow().last_applied.unwrap().index;
    ms.raft()
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index + 5 >= applied),
            "snapshot",
        )
        .await
        .unwrap();
    ms.shutdown().await;
    assert!(dir
        .path()
        .join(crate::raft::snapshot::SNAPSHOT_FILE)
        .exists());

    let ms = LocalMetastore::open_with(dir.path(), options)
        .await
        .unwrap();
    let purged = ms.raft().metrics().borrow().purged.map(|p| p.index);
    assert!(
        purged.is_some_and(|p| p > 0),
        "journal was purged: {purged:?}"
    );
    assert_eq!(observe(&ms).await, before);
    check_continues(&ms, pid).await;
    ms.shutdown().await;
}

fn damage_journal(dir: &Path, cut: u64, garbage: &[u8]) {
    let path = dir.join(JOURNAL_FILE);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - cut).unwrap();
    drop(f);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(garbage).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_journal_tail_is_cut_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let ms = LocalMetastore::open(dir.path()).await.unwrap();
    let pid = populate(&ms).await;
    let before = observe(&ms).await;
    ms.shutdown().await;

    // Garbage after the last good record: nothing acknowledged is lost.
    damage_journal(dir.path(), 0, &[0xab; 37]);
    let ms = LocalMetastore::open(dir.path()).await.unwrap();
    assert_eq!(observe(&ms).await, before);
    check_continues(&ms, pid).await;
    let before = observe(&ms).await;
    ms.shutdown().await;

    // A torn final record: the last write may go (it was a commit pointer or a leader's blank
    // entry here, written after the acknowledged commits), but the store opens and serves.
    damage_journal(dir.path(), 3, &[]);
    let ms = LocalMetastore::open(dir.path()).await.unwrap();
    assert_eq!(observe(&ms).await, before);
    ms.shutdown().await;
}

#[tokio::test]
async fn commits_watch_moves_and_shutdown_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let ms = LocalMetastore::open(dir.path()).await.unwrap();
    create_topic(&ms).await;
    let mut commits = ms.commits();
    let seen = *commits.borrow_and_update();
    ms.commit_object(object(1, vec![batch(0, 0, None)]))
        .await
        .unwrap();
    assert!(commits.has_changed().unwrap());
    assert!(*commits.borrow_and_update() > seen);

    let err = ms
        .create_topic(CreateTopic {
            name: "bad name".into(),
            topic_id: Uuid::from_u128(2),
            partitions: 1,
            configs: BTreeMap::new(),
            now_ms: 1,
        })
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        MetastoreError::Rejected(MetaError::InvalidTopic)
    ));
    assert!(err.is_certainly_not_applied());

    ms.shutdown().await;
    ms.shutdown().await;
    let err = ms.topics().await.unwrap_err();
    assert!(matches!(err, MetastoreError::Unavailable(_)));
    let err = ms.commit_object(object(2, vec![])).await.unwrap_err();
    assert!(err.is_certainly_not_applied(), "{err}");
}

/// Data directories written by each on-disk format (v1: journal and snapshot in JSON; v2:
/// postcard; v3: consumer groups' offsets, journal still v2; v4: compactor leases; v5: producers'
/// last writes and addresses' last heartbeats, journal v4; v6: index runs, journal v5; v7: dynamic
/// broker configs, journal v6; v8: transactions, journal v7; v9: SCRAM users and ACLs, journal
/// v8; v10: client quotas and agents' listeners, journal v9), so that a format change that cannot
/// read one fails here rather than on someone's upgrade. Found at run
/// time: a test binary may be reused by another checkout sharing the target directory.
fn fixture(version: u32) -> std::path::PathBuf {
    let root = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    Path::new(&root).join(format!("tests/fixtures/data-dir-v{version}"))
}
/// The version `write_fixture` writes.
const FIXTURE_CURRENT: u32 = 10;
const FIXTURE_FILES: [&str; 2] = [JOURNAL_FILE, crate::raft::snapshot::SNAPSHOT_FILE];

fn fixture_options() -> LocalMetastoreOptions {
    LocalMetastoreOptions {
        snapshot_every: 8,
        logs_to_keep: 2,
        ..Default::default()
    }
}

/// Writes the current version's fixture: `cargo test -p skiff-metastore write_fixture --
/// --ignored`. Only ever for a new format version, in a new directory (change the path first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let ms = LocalMetastore::open_with(dir.path(), fixture_options())
        .await
        .unwrap();
    populate(&ms).await;
    ms.raft()
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.snapshot.is_some(), "snapshot")
        .await
        .unwrap();
    ms.shutdown().await;
    let target = fixture(FIXTURE_CURRENT);
    assert!(!target.exists(), "a fixture is never overwritten");
    std::fs::create_dir_all(&target).unwrap();
    for f in FIXTURE_FILES {
        std::fs::copy(dir.path().join(f), target.join(f)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_v1_fixture() {
    reads_fixture(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_v2_fixture() {
    reads_fixture(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_v3_fixture() {
    reads_fixture(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_v4_fixture() {
    reads_fixture(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_v5_fixture() {
    reads_fixture(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_v6_fixture() {
    reads_fixture(6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_v7_fixture() {
    reads_fixture(7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_v8_fixture() {
    reads_fixture(8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_v9_fixture() {
    reads_fixture(9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_v10_fixture() {
    reads_fixture(10).await;
}

async fn reads_fixture(version: u32) {
    let dir = tempfile::tempdir().unwrap();
    for f in FIXTURE_FILES {
        std::fs::copy(fixture(version).join(f), dir.path().join(f)).unwrap();
    }
    let ms = LocalMetastore::open_with(dir.path(), fixture_options())
        .await
        .unwrap();
    let (topics, offsets, slices) = observe(&ms).await;
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].name, "orders");
    assert_eq!(offsets[0].high_watermark, 30);
    assert_eq!(offsets[1].high_watermark, 10);
    assert_eq!(slices[0].batches.len(), 10);
    let groups = if version >= 3 {
        vec![(group_partition(1), committed_offset(7))]
    } else {
        vec![]
    };
    assert_eq!(ms.group_offsets("readers").await.unwrap(), groups);
    let broker_configs = if version >= 7 {
        fixture_broker_configs()
    } else {
        BrokerConfigs::default()
    };
    assert_eq!(ms.broker_configs().await.unwrap(), broker_configs);
    let txns = ms
        .describe_transactions(vec![FIXTURE_TXN.into()])
        .await
        .unwrap();
    match &txns[..] {
        [Some(t)] => {
            assert!(version >= 8, "v{version} has no transactions");
            assert_eq!(t.status, TxnStatus::CompleteAbort);
            assert!(t.partitions.is_empty() && t.groups.is_empty());
        }
        [None] => assert!(version < 8, "the transaction survives from v8 on"),
        other => panic!("{other:?}"),
    }
    let credential = ms
        .scram_credential(FIXTURE_USER, crate::security::ScramMechanism::Sha512)
        .await
        .unwrap();
    let expected = (version >= 9).then(|| fixture_scram().upsertions[0].credential.clone());
    assert_eq!(credential, expected, "the user survives from v9 on");
    let acls = ms.acls().await.unwrap().bindings;
    let expected = if version >= 9 {
        vec![fixture_acl()]
    } else {
        vec![]
    };
    assert_eq!(acls, expected, "the ACL survives from v9 on");
    let quotas = ms.client_quotas().await.unwrap();
    let alteration = fixture_quota();
    let expected = if version >= 10 {
        crate::security::ClientQuotas {
            version: 1,
            entries: vec![(alteration.entity, alteration.set)],
        }
    } else {
        crate::security::ClientQuotas::default()
    };
    assert_eq!(quotas, expected, "the quota survives from v10 on");
    let listeners = ms.agent_listeners().await.unwrap();
    let expected = if version >= 10 {
        BTreeMap::from([(FIXTURE_AGENT.to_owned(), fixture_listeners())])
    } else {
        BTreeMap::new()
    };
    assert_eq!(listeners, expected, "the listeners survive from v10 on");
    let someone_else = ms
        .acquire_leases(AcquireLeases {
            holder: "compactor-b".into(),
            keys: vec![FIXTURE_LEASE.into()],
            ttl_ms: 1,
            now_ms: 4,
        })
        .await
        .unwrap();
    assert_eq!(
        someone_else,
        vec![version < 4],
        "the lease survives from v4 on"
    );
    // The fixtures' objects were named in 1970 (`Ulid(n)`): far past the commit age bound, yet
    // a retry of one already committed still gets its first answer.
    // The leader stamps commits with its own clock: the producer's last write is between these.
    let wall_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    let written_after = wall_ms();
    // The fourth object, whatever its name (`Ulid(3)` up to v5; named at write time from v6).
    check_continues_with(&ms, 0, slices[0].batches[3].object).await;
    let written_before = wall_ms();
    // A trigger is ignored while a snapshot is being built, so ask until one covers everything.
    let mut covered = false;
    for _ in 0..100 {
        let m = ms.raft().metrics().borrow().clone();
        if m.snapshot.is_some() && m.snapshot.map(|s| s.index) == m.last_applied.map(|a| a.index) {
            covered = true;
            break;
        }
        ms.raft()
            .trigger()
            .snapshot()
            .await
            .expect("trigger a snapshot");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(covered, "no snapshot of the whole log after the upgrade");
    let before = observe(&ms).await;
    ms.shutdown().await;

    // Opened once, the journal was rewritten and a snapshot taken, both in the current version
    // (byte 8 is the low byte of the version); they read back to the same state.
    for (f, version) in FIXTURE_FILES.iter().zip([9, 10]) {
        let bytes = std::fs::read(dir.path().join(f)).unwrap();
        assert_eq!(bytes[8], version, "{f} is version {}", bytes[8]);
    }
    let ms = LocalMetastore::open_with(dir.path(), fixture_options())
        .await
        .unwrap();
    let after = observe(&ms).await;
    assert_eq!(format!("{before:?}"), format!("{after:?}"));
    assert_eq!(ms.broker_configs().await.unwrap(), broker_configs);
    // The producer's last write (the commit above) came back from the snapshot: it expires a
    // bound after it, not after the pass.
    let pass = |now_ms| ExpireState {
        now_ms,
        producer_id_expiration_ms: 1000,
        commit_answer_retention_ms: -1,
        offsets_retention_ms: -1,
        broker_id_retention_ms: -1,
    };
    let kept = ms.expire_state(pass(written_after + 999)).await.unwrap();
    assert_eq!(kept.producers_expired, 0);
    let expired = ms.expire_state(pass(written_before + 1000)).await.unwrap();
    assert_eq!((expired.producers_expired, expired.left.producers), (1, 0));
    ms.shutdown().await;
}
