//! Appending a flush: offsets, index runs and idempotence. A child module of the state
//! machine, as deterministic as `apply`.

use std::collections::VecDeque;

use super::{
    ObjectEntry, PartitionState, ProducerState, SequencedBatch, StateMachine, PRODUCER_BATCHES_KEPT,
};
use crate::types::{
    BatchAppend, BatchLocation, CommitBatch, CommitObject, InitProducerId, MetaError, ObjectId,
    ProducerIdAndEpoch, RunLayout, MAX_RUN_BYTES,
};

impl StateMachine {
    pub(super) fn init_producer_id(
        &mut self,
        _req: &InitProducerId,
    ) -> Result<ProducerIdAndEpoch, MetaError> {
        let producer_id = self.next_producer_id;
        self.next_producer_id += 1;
        Ok(ProducerIdAndEpoch {
            producer_id,
            producer_epoch: 0,
        })
    }

    pub(super) fn commit_object(
        &mut self,
        commit: &CommitObject,
    ) -> Vec<Result<BatchAppend, MetaError>> {
        if let Some(done) = self.objects.get(&commit.object) {
            return done.answer.clone();
        }
        // After the lookup: a retried commit that landed in time keeps its answer however late
        // the retry. Not remembered, so the object stays unknown and is collected as an orphan.
        if crate::limits::commit_too_late(commit.object, commit.now_ms) {
            return vec![Err(MetaError::ObjectTooOld); commit.batches.len()];
        }
        let mut runs = 0;
        let answer: Vec<_> = commit
            .batches
            .iter()
            .map(|batch| self.commit_batch(commit.object, batch, &mut runs))
            .collect();
        self.add_refs(commit.object, runs);
        self.objects.insert(
            commit.object,
            ObjectEntry {
                size: commit.size,
                created_ms: commit.now_ms,
                answer: answer.clone(),
            },
        );
        self.note_object(commit.object);
        answer
    }

    /// Appends one batch of a commit; `runs` counts the index entries the commit started.
    fn commit_batch(
        &mut self,
        object: ObjectId,
        batch: &CommitBatch,
        runs: &mut usize,
    ) -> Result<BatchAppend, MetaError> {
        let next_producer_id = self.next_producer_id;
        if batch.transactional {
            self.partition(batch.tp)?;
            if batch.producer_id < 0 {
                return Err(MetaError::InvalidProducerIdMapping);
            }
            self.check_txn_batch(batch.tp, batch.producer_id, batch.producer_epoch)?;
        }
        let part = self.partition_mut(batch.tp)?;
        if batch.producer_id < 0 {
            return Ok(part.append(object, batch, runs));
        }
        if batch.producer_id >= next_producer_id {
            return Err(MetaError::UnknownProducerId);
        }
        let appended = Self::append_sequenced(part, object, batch, runs)?;
        if batch.transactional && !appended.duplicate {
            part.note_txn_write(batch.producer_id, appended.base_offset);
        }
        Ok(appended)
    }

    /// Appends an idempotent producer's batch, checking its epoch and sequence against what the
    /// partition remembers of the producer: a retry of a batch among the last five gets its
    /// first answer again.
    fn append_sequenced(
        part: &mut PartitionState,
        object: ObjectId,
        batch: &CommitBatch,
        runs: &mut usize,
    ) -> Result<BatchAppend, MetaError> {
        let last_seq = increment_sequence(batch.base_sequence, batch.last_offset_delta.max(0));
        let Some(producer) = part.producers.get(&batch.producer_id) else {
            // As Kafka does for a producer it has no state of (never seen here, or expired by
            // `producer.id.expiration.ms`): any sequence is accepted and starts the state.
            return Ok(part.append_idempotent(object, batch, last_seq, true, runs));
        };
        if batch.producer_epoch < producer.epoch {
            return Err(MetaError::InvalidProducerEpoch);
        }
        if batch.producer_epoch > producer.epoch {
            // A new epoch restarts the sequence: only its first batch can be accepted.
            if batch.base_sequence != 0 {
                return Err(MetaError::OutOfOrderSequence);
            }
            return Ok(part.append_idempotent(object, batch, last_seq, true, runs));
        }
        if let Some(dup) = producer
            .batches
            .iter()
            .find(|b| b.first_seq == batch.base_sequence && b.last_seq == last_seq)
        {
            return Ok(BatchAppend {
                base_offset: dup.base_offset,
                duplicate: true,
                log_start_offset: part.log_start_offset,
            });
        }
        let expected = producer
            .batches
            .back()
            .map_or(0, |b| increment_sequence(b.last_seq, 1));
        if batch.base_sequence != expected {
            return Err(MetaError::OutOfOrderSequence);
        }
        Ok(part.append_idempotent(object, batch, last_seq, false, runs))
    }
}

impl PartitionState {
    /// Appends a batch at the high watermark. It joins the partition's last run if it lies
    /// right after it in the same object (an agent lays a partition's batches of one flush out
    /// back to back) and the run stays under [`MAX_RUN_BYTES`]; otherwise it starts a run and
    /// counts it in `runs`.
    pub(super) fn append(
        &mut self,
        object: ObjectId,
        batch: &CommitBatch,
        runs: &mut usize,
    ) -> BatchAppend {
        // The agent validates batch headers; a negative delta would otherwise move the high
        // watermark backwards on every replica.
        let delta = i64::from(batch.last_offset_delta.max(0));
        let base_offset = self.high_watermark;
        let last_offset = base_offset + delta;
        let tail = self.index.last_mut().filter(|run| {
            run.object == object
                && run.layout == RunLayout::Flushed
                && run.last_offset.checked_add(1) == Some(base_offset)
                && run.position.checked_add(u64::from(run.len)) == Some(batch.position)
                && run.len.saturating_add(batch.len) <= MAX_RUN_BYTES
        });
        let run_base = match tail {
            Some(run) => {
                run.last_offset = last_offset;
                run.len += batch.len;
                run.max_timestamp = run.max_timestamp.max(batch.max_timestamp);
                run.base_offset
            }
            None => {
                *runs += 1;
                self.index.push(BatchLocation {
                    base_offset,
                    last_offset,
                    object,
                    position: batch.position,
                    len: batch.len,
                    first_timestamp: batch.first_timestamp,
                    max_timestamp: batch.max_timestamp,
                    layout: RunLayout::Flushed,
                });
                base_offset
            }
        };
        self.add_bytes(batch.len);
        self.high_watermark = last_offset + 1;
        // A new high is the run's: the run's entry rises if it holds the last high already.
        match self.timestamp_highs.last().copied() {
            Some((ts, _)) if batch.max_timestamp <= ts => {}
            Some((_, base)) if base == run_base => {
                self.timestamp_highs.pop_back();
                self.timestamp_highs
                    .push_back((batch.max_timestamp, run_base));
            }
            _ => self
                .timestamp_highs
                .push_back((batch.max_timestamp, run_base)),
        }
        BatchAppend {
            base_offset,
            duplicate: false,
            log_start_offset: self.log_start_offset,
        }
    }

    fn append_idempotent(
        &mut self,
        object: ObjectId,
        batch: &CommitBatch,
        last_seq: i32,
        reset: bool,
        runs: &mut usize,
    ) -> BatchAppend {
        let appended = self.append(object, batch, runs);
        let producer = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerState {
                epoch: batch.producer_epoch,
                batches: VecDeque::new(),
                last_write_ms: None,
            });
        if reset {
            producer.epoch = batch.producer_epoch;
            producer.batches.clear();
        }
        if producer.batches.len() == PRODUCER_BATCHES_KEPT {
            producer.batches.pop_front();
        }
        producer.batches.push_back(SequencedBatch {
            first_seq: batch.base_sequence,
            last_seq,
            base_offset: appended.base_offset,
        });
        appended
    }
}

/// Kafka's sequence arithmetic: sequences live in `0..=i32::MAX` and wrap to 0.
pub(super) fn increment_sequence(seq: i32, by: i32) -> i32 {
    if seq > i32::MAX - by {
        by - (i32::MAX - seq) - 1
    } else {
        seq + by
    }
}
