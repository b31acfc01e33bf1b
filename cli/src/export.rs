//! `skiff export parquet`: a one-off export of a topic, as it stands now, to Parquet files in any
//! object store, read through the Kafka protocol from any agent. The files have the layout and
//! columns of the compactor's continuous export (`skiff.parquet.enable`), see
//! `skiff_compactor::export`. It reads as a read_committed consumer does: up to each
//! partition's last stable offset, without the records of aborted transactions or any control
//! batch.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, FetchRequest, ListOffsetsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use skiff_compactor::export::{records_of, write_files, ExportRecord, Projection};
use skiff_format::batch::BatchHeader;
use skiff_format::Batch;

use crate::kafka::wire::Client;

#[derive(Subcommand)]
pub enum ExportCommand {
    /// Export a topic's committed records, from its earliest offset to its last stable offset at
    /// the start, to Parquet files under a Hive-style layout: <to>/topic=<topic>/date=<YYYY-MM-DD>/part-….parquet
    Parquet(ParquetArgs),
}

#[derive(Args)]
pub struct ParquetArgs {
    /// Any agent's Kafka address (host:port)
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    /// Where to write: file:///path, s3://bucket/prefix (with the --s3-* flags), memory://
    #[arg(long)]
    to: String,
    /// Project JSON values to typed columns: name:type,… (string, int64, float64, bool,
    /// timestamp_ms)
    #[arg(long)]
    json_schema: Option<String>,
    /// Records per file at most (each partition's records are cut into chunks of this many, or
    /// of --bytes-per-file, whichever comes first)
    #[arg(long, default_value_t = 1_000_000)]
    records_per_file: usize,
    /// Key and value bytes per file at most, and so about the memory the export holds
    #[arg(long, default_value_t = 256 << 20)]
    bytes_per_file: u64,
    /// S3-compatible endpoint for an s3:// destination
    #[arg(long, env = "SKIFF_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    #[arg(long, env = "SKIFF_S3_REGION")]
    s3_region: Option<String>,
    #[arg(long, env = "SKIFF_S3_PATH_STYLE")]
    s3_path_style: Option<bool>,
    /// Never draw a progress bar, even on a terminal
    #[arg(long)]
    no_progress: bool,
}

/// Bytes asked for per fetch.
const FETCH_BYTES: i32 = 16 << 20;

pub async fn run(cmd: ExportCommand) -> anyhow::Result<()> {
    let ExportCommand::Parquet(args) = cmd;
    let projection: Projection = match &args.json_schema {
        Some(spec) => spec.parse()?,
        None => Projection::default(),
    };
    if args.records_per_file == 0 {
        bail!("--records-per-file must be at least 1");
    }
    let mut settings = skiff_store::StoreSettings::new(args.to.clone());
    settings.s3 = skiff_store::S3Settings {
        endpoint: args.s3_endpoint.clone(),
        region: args.s3_region.clone(),
        path_style: args.s3_path_style.unwrap_or(false),
    };
    let sink = skiff_store::open(&settings, Arc::new(skiff_store::counting::NoObserver))
        .await
        .with_context(|| format!("opening {}", args.to))?;

    let mut client = Client::default();
    let partitions = partitions(&mut client, &args.bootstrap, &args.topic)?;
    let ranges = offsets(&mut client, &args.bootstrap, &args.topic, &partitions)?;
    let total: i64 = ranges.values().map(|(lo, hi)| hi - lo).sum();
    let bar = progress_bar(total, args.no_progress);
    let mut exported = 0u64;
    let mut files = 0usize;
    for (&partition, &(low, mut high)) in &ranges {
        let mut offset = low;
        // The records not written yet, and the offset their file is named after.
        let mut pending: Vec<ExportRecord> = Vec::new();
        let mut pending_bytes = 0u64;
        let mut first = low;
        loop {
            let done = offset >= high;
            if !done {
                let records = fetch(&mut client, &args.bootstrap, &args.topic, partition, offset)?;
                let Some(next) = records.next else {
                    if (0..=offset).contains(&records.last_stable_offset) {
                        // A transaction open since the start holds the partition here (an
                        // agent whose ListOffsets answered its high watermark).
                        high = offset;
                        continue;
                    }
                    bail!("partition {partition}: nothing readable at offset {offset}, below the end {high}");
                };
                for r in records.records.into_iter().filter(|r| r.offset < high) {
                    pending_bytes += record_bytes(&r);
                    pending.push(r);
                }
                offset = next;
                if let Some(bar) = &bar {
                    bar.set_position(exported + pending.len() as u64);
                }
            }
            while pending.len() >= args.records_per_file
                || pending_bytes >= args.bytes_per_file
                || (done && !pending.is_empty())
            {
                // The most records that fit both limits (at least one).
                let mut take = 0;
                let mut bytes = 0;
                for r in pending.iter().take(args.records_per_file) {
                    if take > 0 && bytes + record_bytes(r) > args.bytes_per_file {
                        break;
                    }
                    bytes += record_bytes(r);
                    take += 1;
                }
                pending_bytes -= bytes;
                let rest = pending.split_off(take);
                let next_first = rest.first().map_or(offset, |r| r.offset);
                let file = std::mem::replace(&mut pending, rest);
                exported += file.len() as u64;
                files += write_files(&sink, "", &args.topic, partition, first, file, &projection)
                    .await?;
                first = next_first;
            }
            if done {
                break;
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    println!(
        "exported {exported} records of {} ({} partitions) to {} in {files} files",
        args.topic,
        ranges.len(),
        args.to
    );
    Ok(())
}

fn record_bytes(r: &ExportRecord) -> u64 {
    let len = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len() as u64);
    len(&r.key) + len(&r.value)
}

fn progress_bar(total: i64, off: bool) -> Option<indicatif::ProgressBar> {
    if off || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total.max(0) as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} records ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

fn partitions(client: &mut Client, bootstrap: &str, topic: &str) -> anyhow::Result<Vec<i32>> {
    let md = client.call(
        bootstrap,
        &MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from(topic.to_owned()))))]))
            .with_allow_auto_topic_creation(false),
    )?;
    let Some(t) = md.topics.first() else {
        bail!("the broker did not describe topic {topic}");
    };
    if t.error_code != 0 {
        bail!("topic {topic}: {}", crate::kafka::error_name(t.error_code));
    }
    let mut ps: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    ps.sort_unstable();
    Ok(ps)
}

/// Each partition's earliest and latest offsets, now.
fn offsets(
    client: &mut Client,
    bootstrap: &str,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<BTreeMap<i32, (i64, i64)>> {
    let mut at = |timestamp: i64| -> anyhow::Result<BTreeMap<i32, i64>> {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from(topic.to_owned())))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_timestamp(timestamp)
                        })
                        .collect(),
                )])
            // The latest offset is then the last stable offset: what an open transaction
            // wrote may still abort.
            .with_isolation_level(1);
        let response = client.call(bootstrap, &request)?;
        let mut out = BTreeMap::new();
        for t in response.topics {
            for p in t.partitions {
                if p.error_code != 0 {
                    bail!(
                        "offsets of {topic}-{}: {}",
                        p.partition_index,
                        crate::kafka::error_name(p.error_code)
                    );
                }
                out.insert(p.partition_index, p.offset);
            }
        }
        Ok(out)
    };
    let earliest = at(-2)?;
    let latest = at(-1)?;
    Ok(partitions
        .iter()
        .map(|p| {
            let lo = earliest.get(p).copied().unwrap_or(0);
            (*p, (lo, latest.get(p).copied().unwrap_or(lo).max(lo)))
        })
        .collect())
}

struct Fetched {
    records: Vec<ExportRecord>,
    /// Where the next fetch starts: past the last whole batch returned. `None`: nothing came.
    next: Option<i64>,
    /// The partition's, as the response says (-1 if it does not).
    last_stable_offset: i64,
}

fn fetch(
    client: &mut Client,
    bootstrap: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> anyhow::Result<Fetched> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_BYTES)
        .with_isolation_level(1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from(topic.to_owned())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(FETCH_BYTES)])]);
    let response = client.call(bootstrap, &request)?;
    if response.error_code != 0 {
        bail!("fetch: {}", crate::kafka::error_name(response.error_code));
    }
    let data = response
        .responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
        .context("the fetch response left the partition out")?;
    if data.error_code != 0 {
        bail!(
            "fetch of {topic}-{partition} at {offset}: {}",
            crate::kafka::error_name(data.error_code)
        );
    }
    let mut out = Fetched {
        records: Vec::new(),
        next: None,
        last_stable_offset: data.last_stable_offset,
    };
    let mut committed = ReadCommitted::new(
        data.aborted_transactions
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.first_offset, a.producer_id.0)),
    );
    let mut rest: Bytes = data.records.unwrap_or_default();
    // Whole batches only: a broker may cut the last one short.
    while let Ok(header) = BatchHeader::parse(&rest) {
        let len = header.total_len();
        if rest.len() < len {
            break;
        }
        let batch = Batch::parse_stored(rest.split_to(len)).with_context(|| {
            format!(
                "{topic}-{partition}: a corrupt batch at {}",
                header.base_offset
            )
        })?;
        out.next = Some(header.last_offset() + 1);
        if committed.skip(&batch) {
            continue;
        }
        records_of(
            &batch,
            header.base_offset,
            partition,
            offset,
            &mut out.records,
        )
        .map_err(anyhow::Error::msg)
        .with_context(|| {
            format!(
                "{topic}-{partition}: undecodable records at {}",
                header.base_offset
            )
        })?;
    }
    Ok(out)
}

/// What a read_committed consumer leaves out of a fetch response, as Kafka's consumers do: a
/// producer's batches from the first offset of one of its aborted transactions (the response
/// lists them) until its abort marker, and every control batch.
struct ReadCommitted {
    /// (first offset, producer id) of the aborted transactions not reached yet, latest first.
    aborted: Vec<(i64, i64)>,
    /// Producers inside an aborted transaction at the batch being read.
    aborting: HashSet<i64>,
}

impl ReadCommitted {
    fn new(aborted: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let mut aborted: Vec<(i64, i64)> = aborted.into_iter().collect();
        aborted.sort_unstable_by(|a, b| b.cmp(a));
        Self {
            aborted,
            aborting: HashSet::new(),
        }
    }

    /// Whether `batch`, the next in offset order, holds no committed record.
    fn skip(&mut self, batch: &Batch) -> bool {
        let h = &batch.header;
        if !h.is_transactional() {
            return h.is_control();
        }
        while let Some(&(first, producer_id)) = self.aborted.last() {
            if first > h.last_offset() {
                break;
            }
            self.aborting.insert(producer_id);
            self.aborted.pop();
        }
        if h.is_control() {
            let abort = skiff_format::records(batch)
                .ok()
                .and_then(|mut r| r.next())
                .and_then(Result::ok)
                .and_then(|r| r.key)
                .and_then(|k| skiff_format::control::marker_kind(&k))
                == Some(false);
            if abort {
                self.aborting.remove(&h.producer_id);
            }
            return true;
        }
        self.aborting.contains(&h.producer_id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skiff_format::control::Marker;
    use skiff_format::encode::BatchBuilder;

    fn data(base: i64, producer_id: Option<i64>) -> Batch {
        let mut b = BatchBuilder::new(0).base_offset(base);
        if let Some(p) = producer_id {
            b = b.attributes(0x10).producer(p, 0, 0);
        }
        Batch::parse(b.record(0, Some(b"k"), Some(b"v")).build(), 1 << 20).unwrap()
    }

    fn marker(base: i64, producer_id: i64, commit: bool) -> Batch {
        let m = Marker {
            producer_id,
            producer_epoch: 0,
            commit,
            timestamp: 0,
            coordinator_epoch: 0,
        };
        Batch::parse_stored(m.encode(base)).unwrap()
    }

    #[test]
    fn aborted_records_and_markers_are_left_out_and_later_transactions_kept() {
        // Producer 7 aborts 1..=3 and commits 4..=5; producer 8 commits 2..=6.
        let mut c = ReadCommitted::new([(1, 7)]);
        let skipped: Vec<bool> = [
            data(0, None),
            data(1, Some(7)),
            data(2, Some(8)),
            marker(3, 7, false),
            data(4, Some(7)),
            marker(5, 7, true),
            marker(6, 8, true),
        ]
        .iter()
        .map(|b| c.skip(b))
        .collect();
        assert_eq!(skipped, [false, true, false, true, false, true, true]);
    }
}
