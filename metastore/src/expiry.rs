//! What keeps the state bounded: forgetting producers, commit answers, consumer groups and
//! addresses nothing needs any more. A child module of the state machine, so it sees its
//! private state; as deterministic as `apply`: time and bounds come in the [`ExpireState`]
//! command, which whoever does housekeeping (the compactor holding the housekeeping lease)
//! sends each pass.
//!
//! Each kind is scanned whole, once per pass (every few minutes), read-only first; only what
//! changes is then written, so a pass that forgets nothing copies nothing of the persistent
//! maps a snapshot may be sharing.

use super::StateMachine;
use crate::types::{
    BatchAppend, CommitObject, ExpireState, MetaError, ObjectId, StateCounts, StateExpired, TopicId,
};

/// Whether something last touched at `at` is past `bound` by `now` (Kafka's test: at least
/// `bound` old). A negative bound keeps forever.
fn expired(now: i64, at: i64, bound: i64) -> bool {
    bound >= 0 && now.saturating_sub(at) >= bound
}

/// One partition's producers to forget, and those to give a clock (from an older snapshot).
struct ProducerChanges {
    topic: TopicId,
    partition: usize,
    expire: Vec<i64>,
    stamp: Vec<i64>,
}

impl StateMachine {
    /// Records the commit's time as the last write of every producer whose batch it appended
    /// (or recognised as a duplicate: the producer is alive). Refused batches do not count,
    /// as in Kafka, where only appends move a producer's state.
    pub(super) fn note_producer_writes(
        &mut self,
        commit: &CommitObject,
        answer: &[Result<BatchAppend, MetaError>],
    ) {
        for (batch, result) in commit.batches.iter().zip(answer) {
            if batch.producer_id < 0 || result.is_err() {
                continue;
            }
            let Ok(part) = self.partition_mut(batch.tp) else {
                continue;
            };
            if let Some(p) = part.producers.get_mut(&batch.producer_id) {
                p.last_write_ms = Some(
                    p.last_write_ms
                        .map_or(commit.now_ms, |t| t.max(commit.now_ms)),
                );
            }
        }
    }

    pub(super) fn expire_state(&mut self, pass: &ExpireState) -> StateExpired {
        let now = pass.now_ms;
        let mut report = StateExpired {
            producers_expired: self.expire_producers(now, pass.producer_id_expiration_ms),
            commit_answers_dropped: self.drop_commit_answers(now, pass.commit_answer_retention_ms),
            ..StateExpired::default()
        };
        let groups: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, offsets)| {
                let newest = offsets.values().map(|o| o.commit_timestamp_ms).max();
                newest.is_some_and(|t| expired(now, t, pass.offsets_retention_ms))
            })
            .map(|(g, _)| g.clone())
            .collect();
        for g in &groups {
            self.groups.remove(g);
        }
        report.groups_expired = groups.len() as u64;
        report.broker_ids_forgotten = self.forget_addresses(now, pass.broker_id_retention_ms);
        report.left = self.state_counts();
        report
    }

    fn expire_producers(&mut self, now: i64, bound: i64) -> u64 {
        let mut changes = Vec::new();
        for (id, topic) in &self.topics {
            for (i, part) in topic.partitions.iter().enumerate() {
                let mut change = ProducerChanges {
                    topic: *id,
                    partition: i,
                    expire: Vec::new(),
                    stamp: Vec::new(),
                };
                for (&pid, p) in &part.producers {
                    match p.last_write_ms {
                        None => change.stamp.push(pid),
                        Some(t) if expired(now, t, bound) => change.expire.push(pid),
                        Some(_) => {}
                    }
                }
                if !change.expire.is_empty() || !change.stamp.is_empty() {
                    changes.push(change);
                }
            }
        }
        let mut count = 0;
        for c in changes {
            let Some(part) = self
                .topics
                .get_mut(&c.topic)
                .and_then(|t| t.partitions.get_mut(c.partition))
            else {
                continue;
            };
            for pid in &c.expire {
                part.producers.remove(pid);
            }
            for pid in &c.stamp {
                if let Some(p) = part.producers.get_mut(pid) {
                    p.last_write_ms = Some(now);
                }
            }
            count += c.expire.len() as u64;
        }
        count
    }

    /// Keeps each object's entry (the compactor needs its size and age) but not the answer a
    /// retried commit would get: past the bound, no retry can arrive. Should one arrive all the
    /// same, it gets an empty answer, changes nothing, and the agent answers each of its batches
    /// with a retriable error rather than appending them twice.
    fn drop_commit_answers(&mut self, now: i64, bound: i64) -> u64 {
        let old: Vec<ObjectId> = self
            .objects
            .iter()
            .filter(|(_, o)| !o.answer.is_empty() && expired(now, o.created_ms, bound))
            .map(|(id, _)| *id)
            .collect();
        for id in &old {
            if let Some(o) = self.objects.get_mut(id) {
                o.answer = Vec::new();
            }
        }
        old.len() as u64
    }

    /// Forgets the broker ids of addresses that have not heartbeated for `bound`; a live agent
    /// keeps its id however long ago its address first came. Ids are not reused. An agent that
    /// goes is also dropped from the agents still listed (those leave only at the next
    /// heartbeat otherwise), so it can never come back under its old id; its listeners go with
    /// it, so that they are bounded by the addresses kept.
    fn forget_addresses(&mut self, now: i64, bound: i64) -> u64 {
        let mut gone = Vec::new();
        let mut unstamped = Vec::new();
        for address in self.broker_ids.keys() {
            let live = self
                .agents
                .get(address)
                .is_some_and(|a| now.saturating_sub(a.last_heartbeat_ms) <= a.session_timeout_ms);
            if live {
                continue;
            }
            match self.broker_last_seen.get(address) {
                None => unstamped.push(address.clone()),
                Some(&t) if expired(now, t, bound) => gone.push(address.clone()),
                Some(_) => {}
            }
        }
        for address in unstamped {
            self.broker_last_seen.insert(address, now);
        }
        for address in &gone {
            if let Some(id) = self.broker_ids.remove(address) {
                self.next_broker_id = self.next_broker_id.max(id.saturating_add(1));
            }
            self.broker_last_seen.remove(address);
            self.forget_agent_listeners(address);
            if self.agents.remove(address).is_some() {
                self.agents_epoch += 1;
            }
        }
        gone.len() as u64
    }

    /// What the state keeps of each bounded kind, for metrics.
    pub fn state_counts(&self) -> StateCounts {
        let (mut producers, mut index_entries) = (0u64, 0u64);
        for p in self.topics.values().flat_map(|t| t.partitions.iter()) {
            producers += p.producers.len() as u64;
            index_entries += p.index.len() as u64;
        }
        StateCounts {
            producers,
            commit_answers: self
                .objects
                .values()
                .filter(|o| !o.answer.is_empty())
                .count() as u64,
            groups: self.groups.len() as u64,
            broker_ids: self.broker_ids.len() as u64,
            index_entries,
        }
    }
}

#[cfg(test)]
#[path = "expiry_tests.rs"]
mod tests;
