//! The agent's part in ending transactions nobody ends: every
//! `transaction.abort.timed.out.transaction.cleanup.interval.ms` it asks the metastore whether a
//! transaction has outlived its `transaction.timeout.ms` or a transactional id has been idle for
//! `transactional.id.expiration.ms`, and if so sends one `ExpireTransactions` pass, which aborts
//! the first (fencing their producers, as Kafka's coordinator does) and forgets the second.
//!
//! Time enters the state machine in the command, so the pass is deterministic on every replica.
//! Every agent runs it: the question is a read, and the pass is sent only when there is work,
//! which the first agent to send it does; a second pass at the same moment finds nothing left.

use std::collections::BTreeSet;
use std::sync::Arc;

use skiff_metastore::client::MetastoreError;
use skiff_metastore::limits::MAX_PARTITIONS_PER_READ;
use skiff_metastore::rpc::TransactionFilter;
use skiff_metastore::types::{
    ExpireTransactions, IndexRead, TopicPartition, TransactionsExpired, TxnStatus,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::context::Agent;
use crate::metrics::PartitionLabels;

/// Runs a pass every cleanup interval until `stop`.
pub fn spawn(agent: Arc<Agent>, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(agent.config.transaction_cleanup_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => {
                    if let Err(e) = pass(&agent).await {
                        debug!(error = %e, "transaction timeouts not checked");
                    }
                }
            }
        }
    })
}

/// The open-transactions gauge and each such transaction's partitions' LSO lag, from one list of
/// the ongoing transactions and one offsets read of their partitions.
async fn observe(agent: &Agent, now_ms: i64) -> Result<(), MetastoreError> {
    let ongoing = agent
        .metastore
        .list_transactions(TransactionFilter {
            states: vec![TxnStatus::Ongoing],
            producer_ids: Vec::new(),
            min_duration_ms: -1,
            now_ms,
            limit: u32::try_from(MAX_PARTITIONS_PER_READ).unwrap_or(u32::MAX),
        })
        .await?;
    agent.metrics.txn_open.set(ongoing.len() as i64);
    let tps: BTreeSet<TopicPartition> = ongoing
        .iter()
        .flat_map(|t| t.partitions.iter().copied())
        .take(MAX_PARTITIONS_PER_READ)
        .collect();
    let reads: Vec<IndexRead> = tps.iter().map(|&tp| IndexRead::offsets_of(tp)).collect();
    let answers = agent.metastore.read_indexes(reads).await?;
    agent.metrics.lso_lag.clear();
    for (tp, answer) in tps.iter().zip(answers) {
        let (Some(o), Ok(Some(topic))) = (answer.offsets, agent.topic_with_id(tp.topic_id).await)
        else {
            continue;
        };
        let labels = PartitionLabels {
            topic: topic.name,
            partition: tp.partition,
        };
        agent
            .metrics
            .lso_lag
            .get_or_create(&labels)
            .set(o.high_watermark.saturating_sub(o.last_stable_offset));
    }
    Ok(())
}

/// One check, and the pass if one is due: what it aborted and forgot.
pub async fn pass(agent: &Agent) -> Result<TransactionsExpired, MetastoreError> {
    let now_ms = agent.clock.now_ms();
    if let Err(e) = observe(agent, now_ms).await {
        debug!(error = %e, "transaction metrics not updated");
    }
    let expiration_ms = agent.broker_view().transactional_id_expiration_ms();
    if !agent
        .metastore
        .transactions_due(now_ms, expiration_ms)
        .await?
    {
        return Ok(TransactionsExpired::default());
    }
    let expired = agent
        .metastore
        .expire_transactions(ExpireTransactions {
            now_ms,
            transactional_id_expiration_ms: expiration_ms,
        })
        .await?;
    agent
        .metrics
        .txn_timed_out
        .inc_by(expired.timed_out.len() as u64);
    if !expired.timed_out.is_empty() || expired.forgotten > 0 {
        info!(
            timed_out = ?expired.timed_out,
            forgotten = expired.forgotten,
            "transactions expired"
        );
    }
    Ok(expired)
}
