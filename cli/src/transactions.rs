//! `skiff transactions`: the transactional ids of a cluster, like `kafka-transactions.sh`, read
//! from and acted on at the metastore quorum (`--metastore`), which holds every id's state.
//!
//! - `list`: every id with its producer id, state and how long its ongoing transaction has run.
//! - `describe --transactional-id X`: the id's producer, epoch, state, timeout, start and the
//!   partitions of its ongoing transaction.
//! - `abort --transactional-id X`: aborts the id's ongoing transaction and fences its producer
//!   (the next request of that producer gets PRODUCER_FENCED), in one metastore command: a hung
//!   transaction (its producer gone, the timeout long) stops holding back read_committed
//!   consumers at once. Kafka's `abort` names a partition and a producer; Skiff's names the
//!   transactional id, since one command ends the transaction on every partition.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Subcommand;
use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::rpc::remote::{RemoteMetastore, RemoteOptions};
use skiff_metastore::rpc::TransactionFilter;
use skiff_metastore::types::{MetaError, TransactionSummary, TxnStatus};

#[derive(Subcommand, Debug)]
pub enum TransactionsCommand {
    /// List the transactional ids: producer id, state, and how long the ongoing transaction has
    /// run (ms)
    List {
        /// The metastore nodes' RPC addresses, comma-separated host:port
        #[arg(long, value_delimiter = ',', required = true, env = "SKIFF_METASTORE")]
        metastore: Vec<String>,
        /// Only ids in these states (Kafka's names: Empty, Ongoing, CompleteCommit,
        /// CompleteAbort), comma-separated
        #[arg(long, value_delimiter = ',')]
        state: Vec<String>,
        /// Only ongoing transactions that have run at least this long
        #[arg(long)]
        min_duration_ms: Option<i64>,
    },
    /// Describe one transactional id: producer, epoch, state, timeout, start, partitions
    Describe {
        #[arg(long, value_delimiter = ',', required = true, env = "SKIFF_METASTORE")]
        metastore: Vec<String>,
        #[arg(long)]
        transactional_id: String,
    },
    /// Abort the id's ongoing transaction and fence its producer
    Abort {
        #[arg(long, value_delimiter = ',', required = true, env = "SKIFF_METASTORE")]
        metastore: Vec<String>,
        #[arg(long)]
        transactional_id: String,
    },
}

/// The most ids `list` prints.
const LIST_LIMIT: u32 = 16_384;

pub async fn run(cmd: TransactionsCommand) -> anyhow::Result<()> {
    print!("{}", execute(cmd).await?);
    Ok(())
}

/// What the command prints.
async fn execute(cmd: TransactionsCommand) -> anyhow::Result<String> {
    Ok(match cmd {
        TransactionsCommand::List {
            metastore,
            state,
            min_duration_ms,
        } => {
            let client = connect(metastore)?;
            let states = state
                .iter()
                .map(|s| status_named(s))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let now_ms = now_ms();
            let filter = TransactionFilter {
                states,
                producer_ids: Vec::new(),
                min_duration_ms: min_duration_ms.unwrap_or(-1),
                now_ms,
                limit: LIST_LIMIT,
            };
            list_table(&client.list_transactions(filter).await?, now_ms)
        }
        TransactionsCommand::Describe {
            metastore,
            transactional_id,
        } => {
            let client = connect(metastore)?;
            let Some(summary) = describe(&client, &transactional_id).await? else {
                bail!("transactional id {transactional_id:?} not found");
            };
            let names = topic_names(&client).await?;
            describe_table(&summary, &names, now_ms())
        }
        TransactionsCommand::Abort {
            metastore,
            transactional_id,
        } => {
            let client = connect(metastore)?;
            match client.abort_transaction(&transactional_id, now_ms()).await {
                Ok(()) => format!(
                    "aborted the ongoing transaction of {transactional_id:?}; its producer is fenced\n"
                ),
                Err(MetastoreError::Rejected(MetaError::InvalidProducerIdMapping)) => {
                    bail!("transactional id {transactional_id:?} not found")
                }
                Err(MetastoreError::Rejected(MetaError::InvalidTxnState)) => {
                    bail!("transactional id {transactional_id:?} has no ongoing transaction")
                }
                Err(e) => return Err(e).context("aborting the transaction"),
            }
        }
    })
}

fn connect(nodes: Vec<String>) -> anyhow::Result<RemoteMetastore> {
    let options = RemoteOptions {
        call_timeout: Duration::from_secs(30),
        auth: crate::settings::cluster::ClusterAuthFlags::from_env()?,
        ..RemoteOptions::default()
    };
    RemoteMetastore::new(nodes, options)
        .map_err(anyhow::Error::msg)
        .context("metastore client")
}

async fn describe(
    client: &RemoteMetastore,
    id: &str,
) -> anyhow::Result<Option<TransactionSummary>> {
    let mut answers = client.describe_transactions(vec![id.to_owned()]).await?;
    Ok(answers.pop().flatten())
}

async fn topic_names(
    client: &RemoteMetastore,
) -> anyhow::Result<BTreeMap<skiff_metastore::types::TopicId, String>> {
    Ok(client
        .topics()
        .await?
        .into_iter()
        .map(|t| (t.topic_id, t.name))
        .collect())
}

fn status_named(name: &str) -> anyhow::Result<TxnStatus> {
    [
        TxnStatus::Empty,
        TxnStatus::Ongoing,
        TxnStatus::CompleteCommit,
        TxnStatus::CompleteAbort,
    ]
    .into_iter()
    .find(|s| s.kafka_name().eq_ignore_ascii_case(name))
    .with_context(|| {
        format!("unknown state {name:?}: expected Empty, Ongoing, CompleteCommit or CompleteAbort")
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long the ongoing transaction has run; -1 if none is.
fn duration_ms(t: &TransactionSummary, now_ms: i64) -> i64 {
    if t.status == TxnStatus::Ongoing && t.start_ms >= 0 {
        now_ms.saturating_sub(t.start_ms).max(0)
    } else {
        -1
    }
}

/// Rows under a header, columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

fn list_table(listed: &[TransactionSummary], now_ms: i64) -> String {
    let rows: Vec<Vec<String>> = listed
        .iter()
        .map(|t| {
            vec![
                t.transactional_id.clone(),
                t.producer_id.to_string(),
                t.status.kafka_name().to_owned(),
                duration_ms(t, now_ms).to_string(),
            ]
        })
        .collect();
    table(
        &[
            "TransactionalId",
            "ProducerId",
            "TransactionState",
            "TransactionDurationMs",
        ],
        &rows,
    )
}

fn describe_table(
    t: &TransactionSummary,
    names: &BTreeMap<skiff_metastore::types::TopicId, String>,
    now_ms: i64,
) -> String {
    let partitions: Vec<String> = t
        .partitions
        .iter()
        .map(|tp| {
            let topic = names
                .get(&tp.topic_id)
                .cloned()
                .unwrap_or_else(|| format!("(deleted topic {})", tp.topic_id));
            format!("{topic}-{}", tp.partition)
        })
        .collect();
    let row = vec![
        t.transactional_id.clone(),
        t.producer_id.to_string(),
        t.producer_epoch.to_string(),
        t.status.kafka_name().to_owned(),
        t.timeout_ms.to_string(),
        t.start_ms.to_string(),
        duration_ms(t, now_ms).to_string(),
        if partitions.is_empty() {
            "-".to_owned()
        } else {
            partitions.join(",")
        },
    ];
    table(
        &[
            "TransactionalId",
            "ProducerId",
            "ProducerEpoch",
            "TransactionState",
            "TransactionTimeoutMs",
            "CurrentTransactionStartTimeMs",
            "TransactionDurationMs",
            "TopicPartitions",
        ],
        &[row],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_metastore::types::TopicPartition;

    fn summary(status: TxnStatus, start_ms: i64) -> TransactionSummary {
        TransactionSummary {
            transactional_id: "tx-1".into(),
            producer_id: 7,
            producer_epoch: 2,
            status,
            timeout_ms: 60_000,
            start_ms,
            last_update_ms: start_ms,
            partitions: Vec::new(),
            groups: Vec::new(),
        }
    }

    #[test]
    fn list_prints_id_producer_state_and_duration() {
        let out = list_table(
            &[
                summary(TxnStatus::Ongoing, 1_000),
                TransactionSummary {
                    transactional_id: "a-much-longer-id".into(),
                    ..summary(TxnStatus::CompleteCommit, -1)
                },
            ],
            1_500,
        );
        assert_eq!(
            out,
            "TransactionalId   ProducerId  TransactionState  TransactionDurationMs\n\
             tx-1              7           Ongoing           500\n\
             a-much-longer-id  7           CompleteCommit    -1\n"
        );
    }

    #[test]
    fn describe_names_partitions_by_topic() {
        let known = uuid_of(1);
        let gone = uuid_of(2);
        let t = TransactionSummary {
            partitions: vec![
                TopicPartition {
                    topic_id: known,
                    partition: 3,
                },
                TopicPartition {
                    topic_id: gone,
                    partition: 0,
                },
            ],
            ..summary(TxnStatus::Ongoing, 100)
        };
        let names = BTreeMap::from([(known, "orders".to_owned())]);
        let out = describe_table(&t, &names, 200);
        let row = out.lines().nth(1).unwrap_or_default();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells[..7],
            ["tx-1", "7", "2", "Ongoing", "60000", "100", "100"]
        );
        assert!(row.contains("orders-3,(deleted topic"), "{row}");
    }

    #[test]
    fn state_names_are_kafkas_in_any_case() {
        assert_eq!(status_named("ongoing").ok(), Some(TxnStatus::Ongoing));
        assert_eq!(
            status_named("CompleteAbort").ok(),
            Some(TxnStatus::CompleteAbort)
        );
        assert!(status_named("PrepareCommit").is_err());
    }

    fn uuid_of(n: u8) -> skiff_metastore::types::TopicId {
        let mut bytes = [0u8; 16];
        bytes[15] = n;
        skiff_metastore::types::TopicId::from_bytes(bytes)
    }

    /// The subcommands against a metastore node served over RPC in this process.
    #[tokio::test]
    async fn list_describe_abort_against_a_metastore_node() {
        use skiff_metastore::types::{
            AddPartitionsToTxn, CreateTopic, InitTransactionalProducer, TxnProducer,
        };
        use std::sync::Arc;

        let dir = tempfile::tempdir().expect("tempdir");
        let node = Arc::new(
            skiff_metastore::LocalMetastore::open(dir.path())
                .await
                .expect("metastore"),
        );
        let listener = skiff_metastore::rpc::server::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = tokio_util::sync::CancellationToken::new();
        let served = tokio::spawn(skiff_metastore::rpc::server::serve(
            listener,
            node.clone(),
            Default::default(),
            stop.clone(),
        ));
        let client = connect(vec![addr.clone()]).expect("client");
        let topic = client
            .create_topic(CreateTopic {
                name: "orders".into(),
                topic_id: uuid_of(9),
                partitions: 2,
                configs: BTreeMap::new(),
                now_ms: now_ms(),
            })
            .await
            .expect("topic");
        let mut producers = Vec::new();
        for id in ["tx-a", "tx-b"] {
            let pe = client
                .init_transactional_producer(InitTransactionalProducer {
                    transactional_id: id.into(),
                    transaction_timeout_ms: 60_000,
                    producer_id: -1,
                    producer_epoch: -1,
                    now_ms: 0,
                })
                .await
                .expect("init");
            producers.push(pe);
        }
        client
            .add_partitions_to_txn(AddPartitionsToTxn {
                producer: TxnProducer {
                    transactional_id: "tx-a".into(),
                    producer_id: producers[0].producer_id,
                    producer_epoch: producers[0].producer_epoch,
                },
                partitions: vec![TopicPartition {
                    topic_id: topic.topic_id,
                    partition: 1,
                }],
                now_ms: 0,
            })
            .await
            .expect("add partitions");

        let metastore = vec![addr];
        let list = |state: Vec<String>| TransactionsCommand::List {
            metastore: metastore.clone(),
            state,
            min_duration_ms: None,
        };
        let out = execute(list(vec![])).await.expect("list");
        let rows: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows.len(), 3, "{out}");
        assert_eq!(
            rows[0][..3],
            ["TransactionalId", "ProducerId", "TransactionState"]
        );
        let a_pid = producers[0].producer_id.to_string();
        let b_pid = producers[1].producer_id.to_string();
        assert_eq!(rows[1][..3], ["tx-a", a_pid.as_str(), "Ongoing"]);
        assert!(rows[1][3].parse::<i64>().expect("duration") >= 0, "{out}");
        assert_eq!(rows[2], ["tx-b", b_pid.as_str(), "Empty", "-1"]);
        let out = execute(list(vec!["empty".into()])).await.expect("list");
        assert_eq!(out.lines().count(), 2, "{out}");

        let describe = |id: &str| TransactionsCommand::Describe {
            metastore: metastore.clone(),
            transactional_id: id.into(),
        };
        let out = execute(describe("tx-a")).await.expect("describe");
        let row: Vec<&str> = out
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(row[3], "Ongoing", "{out}");
        assert_eq!(row[4], "60000", "{out}");
        assert_eq!(row[7], "orders-1", "{out}");
        let e = execute(describe("nope")).await.expect_err("unknown id");
        assert!(e.to_string().contains("not found"), "{e}");

        let abort = |id: &str| TransactionsCommand::Abort {
            metastore: metastore.clone(),
            transactional_id: id.into(),
        };
        let out = execute(abort("tx-a")).await.expect("abort");
        assert!(out.contains("aborted"), "{out}");
        let out = execute(describe("tx-a")).await.expect("describe");
        let row: Vec<&str> = out
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(row[3], "CompleteAbort", "{out}");
        // Fenced: the epoch moved on.
        let epoch: i16 = row[2].parse().expect("epoch");
        assert!(epoch > producers[0].producer_epoch, "{out}");
        let e = execute(abort("tx-a")).await.expect_err("nothing ongoing");
        assert!(e.to_string().contains("no ongoing transaction"), "{e}");
        let e = execute(abort("nope")).await.expect_err("unknown id");
        assert!(e.to_string().contains("not found"), "{e}");

        stop.cancel();
        served.await.expect("join").expect("served");
        node.shutdown().await;
    }
}
