#![allow(clippy::unwrap_used)]

use skiff_metastore::types::RunLayout;

use super::*;

fn tp() -> TopicPartition {
    TopicPartition {
        topic_id: skiff_metastore::types::TopicId::from_u128(1),
        partition: 0,
    }
}

/// Runs of `len` bytes and 10 offsets each, the n-th in object `objects[n]`.
fn batches(objects: &[u128], len: u32) -> Vec<BatchLocation> {
    objects
        .iter()
        .zip(0i64..)
        .map(|(&o, n)| BatchLocation {
            base_offset: n * 10,
            last_offset: n * 10 + 9,
            object: ObjectId(ulid::Ulid(o)),
            position: 32,
            len,
            first_timestamp: 0,
            max_timestamp: 0,
            layout: RunLayout::Flushed,
        })
        .collect()
}

fn plan(target: u64, batches: Vec<BatchLocation>) -> (Vec<Vec<i64>>, Option<i64>) {
    let mut planner = Planner::new(tp(), target);
    for b in batches {
        planner.push(b);
    }
    let (groups, resume) = planner.finish();
    let bases = groups
        .iter()
        .map(|g| g.runs.iter().map(|b| b.base_offset).collect())
        .collect();
    (bases, resume)
}

#[test]
fn small_runs_are_packed_up_to_the_target() {
    // Ten objects of 100 bytes each; target 350: groups of three (300), then 3, 3, and the last one
    // alone, which waits for company.
    let (groups, resume) = plan(350, batches(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 100));
    assert_eq!(
        groups,
        [vec![0, 10, 20], vec![30, 40, 50], vec![60, 70, 80]]
    );
    assert_eq!(resume, Some(90));
}

#[test]
fn runs_of_one_object_form_one_span() {
    // Objects 1,1,2,2,3,4: four runs of 200, 200, 100 and 100 bytes with a target of 1000.
    let (groups, resume) = plan(1000, batches(&[1, 1, 2, 2, 3, 4], 100));
    assert_eq!(groups, [vec![0, 10, 20, 30, 40, 50]]);
    // The group may still grow: the next pass starts from it.
    assert_eq!(resume, Some(0));
}

#[test]
fn the_tail_waits_for_a_few_runs() {
    // Three small runs at the end of the log: not yet worth rewriting.
    let (groups, resume) = plan(1000, batches(&[1, 2, 3], 100));
    assert!(groups.is_empty());
    assert_eq!(resume, Some(0));
    // Unless they already make half a segment.
    let (groups, _) = plan(1000, batches(&[1, 1, 1, 2, 2, 2], 100));
    assert_eq!(groups, [vec![0, 10, 20, 30, 40, 50]]);
}

#[test]
fn large_runs_stay_and_split_what_is_around_them() {
    // Target 400: object 9 holds a 250-byte run (over half), which stays.
    let (groups, resume) = plan(400, batches(&[1, 2, 9, 9, 9, 9, 9, 3, 4, 5, 6], 50));
    assert_eq!(groups, [vec![0, 10], vec![70, 80, 90, 100]]);
    assert_eq!(resume, Some(70));
    // An index that ends in a large run leaves nothing to resume from.
    let (groups, resume) = plan(400, batches(&[1, 2, 9, 9, 9, 9, 9], 50));
    assert_eq!(groups, [vec![0, 10]]);
    assert_eq!(resume, None);
}

#[test]
fn a_single_small_run_is_not_rewritten() {
    let (groups, resume) = plan(1000, batches(&[1, 1, 1], 100));
    assert!(groups.is_empty());
    assert_eq!(resume, Some(0));
}

#[test]
fn jobs_hold_groups_up_to_their_budget() {
    let group = |bytes| Group {
        tp: tp(),
        runs: Vec::new(),
        bytes,
    };
    let sizes = |jobs: Vec<Vec<Group>>| -> Vec<Vec<u64>> {
        jobs.iter()
            .map(|j| j.iter().map(|g| g.bytes).collect())
            .collect()
    };
    let packed = jobs(
        vec![group(60), group(30), group(20), group(500), group(10)],
        100,
    );
    assert_eq!(sizes(packed), [vec![60, 30], vec![20], vec![500], vec![10]]);
}

#[test]
fn a_segment_entry_counts_by_the_bytes_of_its_batches() {
    // One entry for a whole segment: over half the target, it stays and splits the groups;
    // under half, it is one span among the small ones.
    let with_segment = |len: u32| {
        let mut runs = batches(&[1, 2, 9, 3, 4, 5, 6], 100);
        runs[2].len = len;
        runs[2].layout = RunLayout::Segment { index_len: 28 };
        runs
    };
    let (groups, resume) = plan(1000, with_segment(500));
    assert_eq!(groups, [vec![0, 10], vec![30, 40, 50, 60]]);
    assert_eq!(resume, Some(30));
    let (groups, _) = plan(1000, with_segment(499));
    assert_eq!(groups, [vec![0, 10, 20, 30, 40, 50]]);
}
