//! Prometheus metrics, and the `/metrics` endpoint that serves them.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::{
    text::encode, EncodeLabelSet, EncodeLabelValue, LabelValueEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// An object-store request kind as a label value.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct StoreOp(pub skiff_store::Op);

impl EncodeLabelValue for StoreOp {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(self.0.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    pub op: StoreOp,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabels {
    /// `write` (PUT, COPY, POST, LIST) or `read` (GET, HEAD), as S3 prices them.
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// `produce`: write-class requests per GiB committed; `consume`: read-class requests per GiB
    /// fetched.
    pub direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// `no_key` (a compacted topic) or `timestamp` (outside the topic's bounds, or a producer's
    /// LogAppendTime).
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupPartitionLabels {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

pub struct Metrics {
    /// Client connections open now.
    pub connections_open: Gauge,
    /// Connections the agent closed, by why: `idle`, `read_timeout`, `too_large`,
    /// `malformed`, `per_ip_limit`.
    pub connections_closed: Family<ReasonLabels, Counter>,
    /// SASL authentications, by result: `succeeded`, `failed`, `unsupported_mechanism`,
    /// `unavailable` (the metastore could not be asked).
    pub authentications: Family<ResultLabels, Counter>,
    pub produce_requests: Counter,
    pub produce_latency: Histogram,
    /// Records refused by the produce checks (Kafka's `NoKeyCompactedTopicRecordsPerSec` and
    /// the timestamp refusals), by reason.
    pub produce_refused_records: Family<RefusalLabels, Counter>,
    pub fetch_requests: Counter,
    pub fetch_latency: Histogram,
    /// Partitions of fetch passes whose index slice came from the agent's cache, or did not.
    pub index_cache_hits: Counter,
    pub index_cache_misses: Counter,
    /// The read cache of object blocks ([`crate::fetch::BlockCache`]).
    pub read_cache: crate::fetch::blocks::BlockMetrics,
    pub flushes: Counter,
    /// Flushes not committed because their commit came too late.
    pub flushes_too_late: Counter,
    pub flush_bytes: Histogram,
    pub flush_duration: Histogram,
    pub store_requests: Family<StoreLabels, Counter>,
    pub store_bytes: Family<StoreLabels, Counter>,
    pub store_failures: Family<StoreLabels, Counter>,
    /// Estimated dollars spent on requests so far, by price class, at `prices`.
    pub store_cost: Family<ClassLabels, Counter<f64, AtomicU64>>,
    /// Requests per GiB and dollars per GiB, by direction: set when /metrics is rendered.
    pub store_requests_per_gib: Family<DirectionLabels, Gauge<f64, AtomicU64>>,
    pub store_dollars_per_gib: Family<DirectionLabels, Gauge<f64, AtomicU64>>,
    /// Record-batch bytes committed (produce) and returned to consumers (fetch).
    pub produced_bytes: Counter,
    pub fetched_bytes: Counter,
    prices: skiff_store::RequestPrices,
    pub store_retries: Family<StoreLabels, Counter>,
    pub metastore_commit_latency: Histogram,
    /// Per group and partition, for the groups this agent coordinates: high watermark minus
    /// committed offset, and the committed offset.
    pub group_lag: Family<GroupPartitionLabels, Gauge>,
    pub group_committed: Family<GroupPartitionLabels, Gauge>,
    /// Transactions ended by this agent's EndTxn answers, and aborted by its timeout passes.
    pub txn_committed: Counter,
    pub txn_aborted: Counter,
    pub txn_timed_out: Counter,
    /// Transactions ongoing in the cluster, as of this agent's last cleanup pass.
    pub txn_open: Gauge,
    /// High watermark minus last stable offset, for the partitions an ongoing transaction
    /// wrote to, as of this agent's last cleanup pass.
    pub lso_lag: Family<PartitionLabels, Gauge>,
    pub end_txn_latency: Histogram,
    registry: Registry,
}

fn latency() -> Histogram {
    // 0.5 ms … ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    pub fn authentication(&self, result: &'static str) {
        self.authentications
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Counts a connection the agent closed.
    pub fn connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Metrics that price object-store requests at S3 Standard's list prices.
    pub fn new() -> Arc<Self> {
        Self::with_prices(skiff_store::RequestPrices::default())
    }

    pub fn with_prices(prices: skiff_store::RequestPrices) -> Arc<Self> {
        Self::with_others(prices, |_| {})
    }

    /// [`Metrics::with_prices`], with more metrics (a compactor's, running alongside) registered
    /// under the same prefix and served on the same endpoint.
    pub fn with_others(
        prices: skiff_store::RequestPrices,
        others: impl FnOnce(&mut Registry),
    ) -> Arc<Self> {
        let mut registry = Registry::with_prefix("skiff");
        others(&mut registry);
        let m = Self {
            connections_open: Gauge::default(),
            connections_closed: Family::default(),
            authentications: Family::default(),
            produce_requests: Counter::default(),
            produce_latency: latency(),
            produce_refused_records: Family::default(),
            fetch_requests: Counter::default(),
            fetch_latency: latency(),
            index_cache_hits: Counter::default(),
            index_cache_misses: Counter::default(),
            read_cache: Default::default(),
            flushes: Counter::default(),
            flushes_too_late: Counter::default(),
            flush_bytes: Histogram::new(exponential_buckets(1024.0, 2.0, 16)),
            flush_duration: latency(),
            store_requests: Family::default(),
            store_bytes: Family::default(),
            store_failures: Family::default(),
            store_cost: Family::default(),
            store_requests_per_gib: Family::default(),
            store_dollars_per_gib: Family::default(),
            produced_bytes: Counter::default(),
            fetched_bytes: Counter::default(),
            prices,
            store_retries: Family::default(),
            metastore_commit_latency: latency(),
            group_lag: Family::default(),
            group_committed: Family::default(),
            txn_committed: Counter::default(),
            txn_aborted: Counter::default(),
            txn_timed_out: Counter::default(),
            txn_open: Gauge::default(),
            lso_lag: Family::default(),
            end_txn_latency: latency(),
            registry: Registry::default(),
        };
        registry.register(
            "connections_open",
            "Client connections open",
            m.connections_open.clone(),
        );
        registry.register(
            "connections_closed",
            "Client connections the agent closed, by reason: idle (connections.max.idle.ms), read_timeout (a request not delivered in time), too_large, malformed, per_ip_limit (max.connections.per.ip)",
            m.connections_closed.clone(),
        );
        registry.register(
            "authentications",
            "SASL authentications, by result: succeeded, failed (wrong credentials, malformed exchange), unsupported_mechanism, unavailable (credentials could not be read)",
            m.authentications.clone(),
        );
        registry.register(
            "produce_requests",
            "Produce requests received",
            m.produce_requests.clone(),
        );
        registry.register(
            "produce_latency_seconds",
            "Time from a produce request's arrival to its response",
            m.produce_latency.clone(),
        );
        registry.register(
            "produce_refused_records",
            "Produced records refused by their topic's rules: no key on a compacted topic, a timestamp out of bounds",
            m.produce_refused_records.clone(),
        );
        registry.register(
            "fetch_requests",
            "Fetch requests received",
            m.fetch_requests.clone(),
        );
        registry.register(
            "fetch_latency_seconds",
            "Time from a fetch request's arrival to its response, long-poll wait included",
            m.fetch_latency.clone(),
        );
        for (name, help, counter) in [
            (
                "read_cache_hits",
                "Object blocks a read found in the read cache",
                &m.read_cache.hits,
            ),
            (
                "read_cache_misses",
                "Object blocks a read fetched from the object store into the read cache",
                &m.read_cache.misses,
            ),
            (
                "read_cache_fetched_bytes",
                "Bytes of object blocks fetched from the object store into the read cache",
                &m.read_cache.fetched_bytes,
            ),
            (
                "read_cache_inserted_bytes",
                "Bytes of object blocks this agent flushed and put into the read cache",
                &m.read_cache.inserted_bytes,
            ),
            (
                "read_cache_evictions",
                "Object blocks evicted from the read cache's memory",
                &m.read_cache.evictions,
            ),
            (
                "read_cache_errors",
                "Reads the read cache failed (its disk) that went to the object store instead",
                &m.read_cache.errors,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "index_cache_hits",
            "Fetched partitions whose index entries came from the agent's cache",
            m.index_cache_hits.clone(),
        );
        registry.register(
            "index_cache_misses",
            "Fetched partitions whose index entries were read from the metastore",
            m.index_cache_misses.clone(),
        );
        registry.register("flushes", "Objects flushed", m.flushes.clone());
        registry.register(
            "flushes_too_late",
            "Objects not committed in time (the agent's commit deadline passed, or the metastore refused them as too old); their producers send again",
            m.flushes_too_late.clone(),
        );
        registry.register(
            "flush_bytes",
            "Size of each flushed object",
            m.flush_bytes.clone(),
        );
        registry.register(
            "flush_duration_seconds",
            "Time to write and commit one flushed object",
            m.flush_duration.clone(),
        );
        registry.register(
            "object_store_requests",
            "Object-store requests by kind",
            m.store_requests.clone(),
        );
        registry.register(
            "object_store_bytes",
            "Object-store bytes moved by kind",
            m.store_bytes.clone(),
        );
        registry.register(
            "object_store_failures",
            "Object-store requests that failed (each try counts), by kind",
            m.store_failures.clone(),
        );
        registry.register(
            "object_store_cost_dollars",
            "Estimated dollars spent on object-store requests, by S3 price class (rate() x 730 h is a monthly bill)",
            m.store_cost.clone(),
        );
        registry.register(
            "object_store_requests_per_gib",
            "Object-store requests per GiB: write-class per GiB produced, read-class per GiB fetched",
            m.store_requests_per_gib.clone(),
        );
        registry.register(
            "object_store_dollars_per_gib",
            "Estimated object-store request dollars per GiB produced or fetched",
            m.store_dollars_per_gib.clone(),
        );
        registry.register(
            "produced_bytes",
            "Record-batch bytes committed",
            m.produced_bytes.clone(),
        );
        registry.register(
            "fetched_bytes",
            "Record-batch bytes returned to consumers",
            m.fetched_bytes.clone(),
        );
        registry.register(
            "object_store_retries",
            "Object-store requests sent again after a failure or a timeout, by kind",
            m.store_retries.clone(),
        );
        registry.register(
            "metastore_commit_latency_seconds",
            "Time for the metastore to apply one object commit",
            m.metastore_commit_latency.clone(),
        );
        registry.register(
            "consumer_group_lag",
            "Records between a consumer group's committed offset and the high watermark, for the groups this agent coordinates",
            m.group_lag.clone(),
        );
        registry.register(
            "consumer_group_committed_offset",
            "A consumer group's committed offset, for the groups this agent coordinates",
            m.group_committed.clone(),
        );
        registry.register(
            "transactions_committed",
            "Transactions committed by EndTxn requests this agent answered",
            m.txn_committed.clone(),
        );
        registry.register(
            "transactions_aborted",
            "Transactions aborted by EndTxn requests this agent answered",
            m.txn_aborted.clone(),
        );
        registry.register(
            "transactions_timed_out",
            "Transactions aborted by this agent's timeout passes (open longer than their transaction.timeout.ms)",
            m.txn_timed_out.clone(),
        );
        registry.register(
            "transactions_open",
            "Transactions ongoing in the cluster, as of this agent's last transaction cleanup pass",
            m.txn_open.clone(),
        );
        registry.register(
            "partition_lso_lag_records",
            "High watermark minus last stable offset of each partition an ongoing transaction wrote to (read_committed consumers wait behind it), as of the last cleanup pass",
            m.lso_lag.clone(),
        );
        registry.register(
            "end_txn_latency_seconds",
            "Time to answer an EndTxn request: one metastore command that writes every marker",
            m.end_txn_latency.clone(),
        );
        Arc::new(Self { registry, ..m })
    }

    /// Requests of one kind so far.
    pub fn store_requests(&self, op: skiff_store::Op) -> u64 {
        self.store_requests
            .get_or_create(&StoreLabels { op: StoreOp(op) })
            .get()
    }

    /// Sets the per-GiB gauges from the counters.
    fn update_per_gib(&self) {
        use skiff_store::{Op, PriceClass};
        const GIB: f64 = (1u64 << 30) as f64;
        // Request counts by price class; the dollars are already summed in `store_cost`.
        let (mut writes, mut reads) = (0.0, 0.0);
        for op in Op::ALL {
            match op.price_class() {
                PriceClass::Write => writes += self.store_requests(op) as f64,
                PriceClass::Read => reads += self.store_requests(op) as f64,
                PriceClass::Free => {}
            }
        }
        let dollars = |class| self.store_cost.get_or_create(&ClassLabels { class }).get();
        let (write_cost, read_cost) = (dollars("write"), dollars("read"));
        for (direction, requests, cost, bytes) in [
            ("produce", writes, write_cost, self.produced_bytes.get()),
            ("consume", reads, read_cost, self.fetched_bytes.get()),
        ] {
            if bytes == 0 {
                continue;
            }
            let gib = bytes as f64 / GIB;
            let labels = DirectionLabels { direction };
            self.store_requests_per_gib
                .get_or_create(&labels)
                .set(requests / gib);
            self.store_dollars_per_gib
                .get_or_create(&labels)
                .set(cost / gib);
        }
    }

    pub fn render(&self) -> String {
        self.update_per_gib();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` fires. The caller binds first, so that
/// once a process says it is ready its metrics answer too.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

impl skiff_store::StoreObserver for Metrics {
    fn request(&self, op: skiff_store::Op, bytes: u64) {
        let labels = StoreLabels { op: StoreOp(op) };
        self.store_requests.get_or_create(&labels).inc();
        self.store_bytes.get_or_create(&labels).inc_by(bytes);
        let class = match op.price_class() {
            skiff_store::PriceClass::Write => "write",
            skiff_store::PriceClass::Read => "read",
            skiff_store::PriceClass::Free => return,
        };
        self.store_cost
            .get_or_create(&ClassLabels { class })
            .inc_by(self.prices.of(op));
    }

    fn failed(&self, op: skiff_store::Op) {
        self.store_failures
            .get_or_create(&StoreLabels { op: StoreOp(op) })
            .inc();
    }

    fn retried(&self, op: skiff_store::Op) {
        self.store_retries
            .get_or_create(&StoreLabels { op: StoreOp(op) })
            .inc();
    }
}
