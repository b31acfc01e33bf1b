//! Client quotas (KIP-13, KIP-55): produce and fetch byte rates per user, per client id, or per
//! both, with Kafka's `<default>` entities, enforced as Kafka's brokers do: a request's bytes are
//! recorded against the most specific entity that has a quota, and when the rate over the
//! window passes the quota the answer carries `throttle_time_ms` and the connection is muted for
//! that long (KIP-219), so a client is held to its rate whether or not it honours the field.
//!
//! Each agent measures only the bytes it serves: a client spread over N agents may reach N
//! times its quota, as a Kafka client spread over N brokers may.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use skiff_metastore::client::{MetastoreClient, MetastoreError};
use skiff_metastore::security::{ClientQuotas, QuotaEntity, QuotaName};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Kafka's quota keys this agent enforces.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Keys AlterClientQuotas accepts: the two enforced, and the two Kafka has that are kept but not
/// enforced here (request time and controller mutations have no counterpart worth metering).
pub const KNOWN_KEYS: [&str; 4] = [
    PRODUCER_BYTE_RATE,
    CONSUMER_BYTE_RATE,
    "request_percentage",
    "controller_mutation_rate",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Produce,
    Fetch,
}

/// Kafka's `quota.window.num` and `quota.window.size.seconds`.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub samples: u32,
    pub size: Duration,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            samples: 11,
            size: Duration::from_secs(1),
        }
    }
}

/// Byte-rate trackers kept at most, per kind: one per (user, client id) a quota applies to, so a
/// client inventing client ids under a `<default>` client-id quota cannot grow it without bound.
/// Past it, idle trackers are dropped, and new callers share one tracker.
const MAX_TRACKERS: usize = 50_000;

/// The quotas in force, from the metastore, and the rates measured against them.
pub struct Quotas {
    window: Window,
    config: RwLock<Arc<Config>>,
    trackers: Mutex<Trackers>,
}

/// The rates, and when idle ones were last dropped.
#[derive(Default)]
struct Trackers {
    rates: HashMap<(Kind, Bucket), Rate>,
    swept: Option<Instant>,
}

impl std::ops::Deref for Trackers {
    type Target = HashMap<(Kind, Bucket), Rate>;
    fn deref(&self) -> &Self::Target {
        &self.rates
    }
}

impl std::ops::DerefMut for Trackers {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.rates
    }
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Config {
    version: u64,
    /// Whether any entity has a produce (fetch) quota: checked on every request.
    any_produce: bool,
    any_fetch: bool,
    /// Byte-rate quotas by entity, only the enforced keys.
    rates: HashMap<QuotaEntity, Rates>,
}

#[derive(Clone, Copy, Default)]
struct Rates {
    produce: Option<f64>,
    fetch: Option<f64>,
}

impl Rates {
    fn of(self, kind: Kind) -> Option<f64> {
        match kind {
            Kind::Produce => self.produce,
            Kind::Fetch => self.fetch,
        }
    }
}

/// Whose bytes a tracker counts: the entity that matched, with `<default>` made the caller's own
/// name (so that a default user quota gives every user a quota of their own, as in Kafka).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Bucket {
    Entity {
        user: Option<String>,
        client_id: Option<String>,
    },
    /// Callers past [`MAX_TRACKERS`].
    Overflow,
}

impl Quotas {
    pub fn new(window: Window) -> Self {
        Self {
            window,
            config: RwLock::new(Arc::new(Config::default())),
            trackers: Mutex::new(Trackers::default()),
        }
    }

    /// Takes a newer copy of the metastore's quotas; an older one is ignored.
    pub fn replace(&self, quotas: &ClientQuotas) {
        let mut config = self.config.write().unwrap_or_else(PoisonError::into_inner);
        if quotas.version <= config.version && config.version != 0 {
            return;
        }
        let mut rates = HashMap::with_capacity(quotas.entries.len());
        for (entity, values) in &quotas.entries {
            let mut r = Rates::default();
            for (key, value) in values {
                match key.as_str() {
                    PRODUCER_BYTE_RATE => r.produce = Some(value.get()),
                    CONSUMER_BYTE_RATE => r.fetch = Some(value.get()),
                    _ => {}
                }
            }
            if r.produce.is_some() || r.fetch.is_some() {
                rates.insert(entity.clone(), r);
            }
        }
        *config = Arc::new(Config {
            version: quotas.version,
            any_produce: rates.values().any(|r| r.produce.is_some()),
            any_fetch: rates.values().any(|r| r.fetch.is_some()),
            rates,
        });
    }

    /// Records `bytes` of `kind` for the caller and answers how long it must wait: zero when
    /// no quota applies or the rate is within it.
    pub fn record(
        &self,
        kind: Kind,
        user: &str,
        client_id: &str,
        bytes: u64,
        now: Instant,
    ) -> Duration {
        let Some((bucket, quota)) = self.resolve(kind, user, client_id) else {
            return Duration::ZERO;
        };
        let mut trackers = self.trackers.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = self.admit(&mut trackers, kind, bucket, now);
        let rate = trackers
            .entry((kind, bucket))
            .or_insert_with(|| Rate::new(self.window, now));
        rate.record(bytes, now);
        rate.throttle(quota, now)
    }

    /// Admits `bytes` of `kind` if the caller is within its quota now, recording them and
    /// answering the throttle they earn (`Ok`); if it is already over, records nothing and
    /// answers how long until it is back within (`Err`), for a fetch to be answered empty.
    pub fn try_record(
        &self,
        kind: Kind,
        user: &str,
        client_id: &str,
        bytes: u64,
        now: Instant,
    ) -> Result<Duration, Duration> {
        let Some((bucket, quota)) = self.resolve(kind, user, client_id) else {
            return Ok(Duration::ZERO);
        };
        let mut trackers = self.trackers.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = self.admit(&mut trackers, kind, bucket, now);
        let rate = trackers
            .entry((kind, bucket))
            .or_insert_with(|| Rate::new(self.window, now));
        rate.roll(now);
        let already = rate.throttle(quota, now);
        if !already.is_zero() {
            return Err(already);
        }
        rate.record(bytes, now);
        Ok(rate.throttle(quota, now))
    }

    /// How long before the caller is back within its quota of `kind`, recording nothing: zero
    /// when it is within, or has none.
    pub fn over_by(&self, kind: Kind, user: &str, client_id: &str, now: Instant) -> Duration {
        let Some((bucket, quota)) = self.resolve(kind, user, client_id) else {
            return Duration::ZERO;
        };
        let mut trackers = self.trackers.lock().unwrap_or_else(PoisonError::into_inner);
        match trackers.get_mut(&(kind, bucket)) {
            Some(rate) => {
                rate.roll(now);
                rate.throttle(quota, now)
            }
            None => Duration::ZERO,
        }
    }

    /// A fetch answer of `bytes` (see [`Quotas::try_record`]): sent with its throttle, or, the
    /// caller being over its quota already, emptied. Kafka empties every answer that would pass
    /// the quota; sending the first one keeps a batch larger than the quota's window from never
    /// being delivered, and the mute that follows holds the rate all the same.
    pub fn record_fetch(&self, user: &str, client_id: &str, bytes: u64, now: Instant) -> Fetched {
        match self.try_record(Kind::Fetch, user, client_id, bytes, now) {
            Ok(t) => Fetched::Send(t),
            Err(t) => Fetched::Empty(t),
        }
    }

    /// The most bytes the caller's quota of `kind` admits over its window, if it has one.
    pub fn window_bytes(&self, kind: Kind, user: &str, client_id: &str) -> Option<u64> {
        let (_, quota) = self.resolve(kind, user, client_id)?;
        let span = (self.window.size * self.window.samples).as_secs_f64();
        Some((quota * span).min(u64::MAX as f64) as u64)
    }

    pub async fn refresh(&self, metastore: &dyn MetastoreClient) -> Result<(), MetastoreError> {
        self.replace(&metastore.client_quotas().await?);
        Ok(())
    }

    /// Reads the quotas every `every` until `shutdown`; a failed read keeps the last ones.
    pub fn spawn(
        self: Arc<Self>,
        metastore: Arc<dyn MetastoreClient>,
        every: Duration,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        crate::refresh::every("client quotas", every, shutdown, move || {
            let this = self.clone();
            let metastore = metastore.clone();
            async move { this.refresh(metastore.as_ref()).await }
        })
    }

    /// Whether any quota of `kind` is set: when none is, callers skip measuring altogether.
    pub fn any(&self, kind: Kind) -> bool {
        let config = self.config.read().unwrap_or_else(PoisonError::into_inner);
        match kind {
            Kind::Produce => config.any_produce,
            Kind::Fetch => config.any_fetch,
        }
    }

    /// A place for a new tracker: its own, or past the bound (after dropping idle ones) the
    /// shared overflow tracker.
    fn admit(&self, trackers: &mut Trackers, kind: Kind, bucket: Bucket, now: Instant) -> Bucket {
        if trackers.contains_key(&(kind, bucket.clone())) || trackers.len() < MAX_TRACKERS {
            return bucket;
        }
        // Dropping idle trackers is a pass over all of them: at most once a window, so that a
        // client inventing client ids cannot make every request pay for one.
        let span = self.window.size * self.window.samples;
        if trackers
            .swept
            .is_none_or(|t| now.saturating_duration_since(t) >= self.window.size)
        {
            trackers.swept = Some(now);
            trackers
                .rates
                .retain(|_, r| now.saturating_duration_since(r.last) < span);
        }
        if trackers.len() < MAX_TRACKERS {
            bucket
        } else {
            Bucket::Overflow
        }
    }

    /// Kafka's order of precedence (most specific first), for the first entity with a quota of
    /// `kind`.
    fn resolve(&self, kind: Kind, user: &str, client_id: &str) -> Option<(Bucket, f64)> {
        let config = self.config.read().unwrap_or_else(PoisonError::into_inner);
        if config.rates.is_empty() {
            return None;
        }
        let named = |s: &str| Some(QuotaName::Named(s.to_owned()));
        let default = || Some(QuotaName::Default);
        let candidates = [
            (named(user), named(client_id)),
            (named(user), default()),
            (named(user), None),
            (default(), named(client_id)),
            (default(), default()),
            (default(), None),
            (None, named(client_id)),
            (None, default()),
        ];
        candidates.into_iter().find_map(|(u, c)| {
            let has = (u.is_some(), c.is_some());
            let entity = QuotaEntity {
                user: u,
                client_id: c,
            };
            let quota = config.rates.get(&entity)?.of(kind)?;
            let bucket = Bucket::Entity {
                user: has.0.then(|| user.to_owned()),
                client_id: has.1.then(|| client_id.to_owned()),
            };
            Some((bucket, quota))
        })
    }
}

/// What to do with a fetch's answer under its caller's quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Send it, with this throttle time (zero when within the quota).
    Send(Duration),
    /// Send it empty, with this throttle time.
    Empty(Duration),
}

/// Bytes over a sliding window of `samples` samples of `size` each, as Kafka's `Rate` over a
/// `SampledStat` measures them.
struct Rate {
    window: Window,
    /// Each sample's start and bytes, oldest first; at most `window.samples`.
    samples: std::collections::VecDeque<(Instant, u64)>,
    last: Instant,
}

impl Rate {
    fn new(window: Window, now: Instant) -> Self {
        Self {
            window,
            samples: std::collections::VecDeque::with_capacity(window.samples as usize),
            last: now,
        }
    }

    fn roll(&mut self, now: Instant) {
        let span = self.window.size * self.window.samples;
        while self
            .samples
            .front()
            .is_some_and(|(start, _)| now.saturating_duration_since(*start) >= span)
        {
            self.samples.pop_front();
        }
        let current = self
            .samples
            .back()
            .is_some_and(|(start, _)| now.saturating_duration_since(*start) < self.window.size);
        if !current {
            if self.samples.len() == self.window.samples as usize {
                self.samples.pop_front();
            }
            self.samples.push_back((now, 0));
        }
    }

    fn record(&mut self, bytes: u64, now: Instant) {
        self.roll(now);
        if let Some((_, b)) = self.samples.back_mut() {
            *b = b.saturating_add(bytes);
        }
        self.last = now;
    }

    /// The elapsed window the rate is over: since the oldest sample, but never less than all
    /// samples but one, so that the first bytes of a new client are not a huge rate.
    fn elapsed(&self, now: Instant) -> Duration {
        let since = self.samples.front().map_or(Duration::ZERO, |(start, _)| {
            now.saturating_duration_since(*start)
        });
        since.max(self.window.size * self.window.samples.saturating_sub(1))
    }

    fn bytes_per_second(&self, now: Instant) -> f64 {
        let total: u64 = self.samples.iter().map(|(_, b)| b).sum();
        let elapsed = self.elapsed(now).as_secs_f64();
        if elapsed <= 0.0 {
            return 0.0;
        }
        total as f64 / elapsed
    }

    /// Kafka's throttle time: how long, at no traffic, until the rate is back at the quota
    /// (`(rate - quota) / quota * window`), at most the whole window, so that one huge request
    /// cannot mute a connection for longer than the rate remembers it.
    fn throttle(&self, quota: f64, now: Instant) -> Duration {
        let rate = self.bytes_per_second(now);
        if quota <= 0.0 || rate <= quota {
            return Duration::ZERO;
        }
        let secs = (rate - quota) / quota * self.elapsed(now).as_secs_f64();
        let span = (self.window.size * self.window.samples).as_secs_f64();
        Duration::from_secs_f64(secs.min(span))
    }
}

/// A connection's mute (KIP-219): after a throttled answer, the connection's next request is
/// not read until the throttle time has passed.
#[derive(Debug, Default)]
pub struct Mute {
    until: Mutex<Option<Instant>>,
    /// The (user, client id) the connection's last produce was metered as: until its rate is
    /// back within its quota, the connection's next request is not read.
    producer: Mutex<Option<(String, String)>>,
}

impl Mute {
    /// Notes whose produce quota the connection's requests count against.
    pub fn metered_as(&self, user: &str, client_id: &str) {
        let mut p = self.producer.lock().unwrap_or_else(PoisonError::into_inner);
        if p.as_ref().is_none_or(|(u, c)| u != user || c != client_id) {
            *p = Some((user.to_owned(), client_id.to_owned()));
        }
    }

    /// How long before the connection's producer is back within its quota: zero if it is.
    pub fn producer_wait(&self, quotas: &Quotas) -> Duration {
        let p = self.producer.lock().unwrap_or_else(PoisonError::into_inner);
        match p.as_ref() {
            Some((user, client_id)) => {
                quotas.over_by(Kind::Produce, user, client_id, Instant::now())
            }
            None => Duration::ZERO,
        }
    }

    pub fn extend(&self, throttle: Duration) {
        if throttle.is_zero() {
            return;
        }
        let until = Instant::now() + throttle;
        let mut current = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        if current.is_none_or(|c| c < until) {
            *current = Some(until);
        }
    }

    /// When the connection may read again, if it is muted now.
    pub fn until(&self) -> Option<Instant> {
        let mut current = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        match *current {
            Some(u) if u > Instant::now() => Some(u),
            _ => {
                *current = None;
                None
            }
        }
    }
}

/// Milliseconds for a response's `throttle_time_ms`.
pub fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

#[cfg(test)]
#[path = "quotas_tests.rs"]
mod tests;
