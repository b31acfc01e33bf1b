//! The state machine alone: how fast `apply` appends a 100-partition commit as the index grows,
//! and what cloning the state (a snapshot's start) costs. No Raft, no journal, no network: what
//! this measures bounds the commits/s of any quorum from above, since every replica applies
//! commits one at a time.
//!
//! ```sh
//! cargo bench -p skiff-metastore --bench apply                   # 10,000 partitions, to 8 M runs
//! cargo bench -p skiff-metastore --bench apply -- runs=20000000
//! ```
//!
//! It prints figures and checks nothing about speed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use skiff_metastore::state_machine::StateMachine;
use skiff_metastore::types::{
    Command, CommandResponse, CommitBatch, CommitObject, CreateTopic, ObjectId, TopicPartition,
};
use uuid::Uuid;

const PARTITIONS: i32 = 10_000;
const NOW: i64 = 1_700_000_000_000;

fn commit(n: u64, rng: &mut fastrand::Rng, partitions: usize) -> Command {
    let mut chosen = std::collections::BTreeSet::new();
    while chosen.len() < partitions {
        chosen.insert(rng.i32(0..PARTITIONS));
    }
    let len = (8u32 << 20) / partitions as u32;
    Command::CommitObject(CommitObject {
        object: ObjectId(ulid::Ulid::from_parts(NOW as u64, u128::from(n))),
        size: 8 << 20,
        batches: chosen
            .into_iter()
            .enumerate()
            .map(|(i, p)| CommitBatch {
                tp: TopicPartition {
                    topic_id: Uuid::from_u128(1),
                    partition: p,
                },
                position: 32 + i as u64 * u64::from(len),
                len,
                last_offset_delta: 9,
                record_count: 10,
                first_timestamp: NOW,
                max_timestamp: NOW,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                transactional: false,
            })
            .collect(),
        now_ms: NOW,
    })
}

fn main() {
    let mut target: u64 = 8_000_000;
    for arg in std::env::args().skip(1).filter(|a| !a.starts_with('-')) {
        if let Some(v) = arg.strip_prefix("runs=") {
            target = v.replace('_', "").parse().expect("a number");
        }
    }
    let mut sm = StateMachine::new();
    let created = sm.apply(&Command::CreateTopic(CreateTopic {
        name: "t".into(),
        topic_id: Uuid::from_u128(1),
        partitions: PARTITIONS,
        configs: BTreeMap::new(),
        now_ms: NOW,
    }));
    assert!(
        matches!(created, CommandResponse::TopicCreated(Ok(_))),
        "{created:?}"
    );
    let mut rng = fastrand::Rng::with_seed(1);
    let (mut runs, mut n) = (0u64, 0u64);
    println!("apply, one thread, {PARTITIONS} partitions:");
    let mut next_report = 0u64;
    loop {
        if runs >= next_report {
            // 2,000 commits of exactly 100 partitions, timed.
            let cmds: Vec<Command> = (0..2000)
                .map(|i| commit(u64::MAX / 2 + n * 10_000 + i, &mut rng, 100))
                .collect();
            let started = Instant::now();
            let mut refused = 0usize;
            for c in &cmds {
                if let CommandResponse::Committed(answer) = sm.apply(c) {
                    refused += answer.iter().filter(|a| a.is_err()).count();
                }
            }
            assert_eq!(refused, 0, "every batch appends");
            let took = started.elapsed().as_secs_f64();
            runs += 200_000;
            let started = Instant::now();
            let copy = sm.clone();
            let clone_us = started.elapsed().as_secs_f64() * 1e6;
            drop(copy);
            println!(
                "  at {runs:>10} runs: {:>7.0} commits/s of 100 partitions ({:.1} µs per batch); clone {clone_us:.1} µs",
                2000.0 / took,
                took * 1e6 / 200_000.0
            );
            if runs >= target {
                break;
            }
            next_report = (next_report * 2).max(1_000_000).min(target);
        }
        // The load: objects of 100 to 1,000 partitions, untimed.
        let count = rng.usize(100..=1000);
        let answer = sm.apply(&commit(n, &mut rng, count));
        assert!(
            matches!(&answer, CommandResponse::Committed(a) if a.iter().all(Result::is_ok)),
            "{answer:?}"
        );
        runs += count as u64;
        n += 1;
    }
}
