#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use object_store::memory::InMemory;

use super::*;
use crate::counting::{CountingStore, NoObserver};
use crate::faults::{FaultSpec, FaultyStore};

fn policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        attempt_timeout: Duration::from_millis(200),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

#[derive(Default)]
struct Tally {
    requests: AtomicU32,
    failed: AtomicU32,
    retried: AtomicU32,
}

impl StoreObserver for Tally {
    fn request(&self, _op: Op, _bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    fn failed(&self, _op: Op) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
    fn retried(&self, _op: Op) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }
}

fn layered(spec: &str, retries: u32) -> (Arc<InMemory>, Arc<Tally>, RetryingStore) {
    let mem = Arc::new(InMemory::new());
    let tally = Arc::new(Tally::default());
    let faulty = Arc::new(FaultyStore::new(
        mem.clone(),
        spec.parse::<FaultSpec>().unwrap(),
    ));
    let counted = Arc::new(CountingStore::new(faulty, tally.clone()));
    let store = RetryingStore::new(counted, policy(retries), tally.clone());
    (mem, tally, store)
}

#[tokio::test]
async fn errors_are_retried_until_a_try_succeeds() {
    // Half the requests fail; with 30 retries a PUT and a GET get through.
    let (mem, tally, store) = layered("error_rate=0.5,seed=11", 30);
    let path = Path::from("a/b");
    store
        .put(&path, PutPayload::from_static(b"hello"))
        .await
        .unwrap();
    assert_eq!(
        mem.get(&path).await.unwrap().bytes().await.unwrap(),
        "hello"
    );
    assert_eq!(store.get_range(&path, 1..3).await.unwrap(), "el");
    let requests = tally.requests.load(Ordering::Relaxed);
    let retried = tally.retried.load(Ordering::Relaxed);
    assert!(retried > 0, "seed 11 should fail some request");
    assert_eq!(
        requests,
        retried + 2,
        "each retry is one more request counted"
    );
    assert_eq!(tally.failed.load(Ordering::Relaxed), retried);
}

#[tokio::test]
async fn a_lost_response_is_a_write_of_unknown_outcome_that_happened() {
    let (mem, _, store) = layered("lost_response_rate=1", 2);
    let path = Path::from("x");
    let err = store
        .put(&path, PutPayload::from_static(b"v"))
        .await
        .unwrap_err();
    assert!(outcome_unknown(&err), "{err}");
    assert!(err.to_string().contains("3 tries"), "{err}");
    // It did happen.
    assert_eq!(mem.get(&path).await.unwrap().bytes().await.unwrap(), "v");
}

#[tokio::test]
async fn failed_reads_are_certain_failures() {
    let (mem, _, store) = layered("error_rate=1,ops=get", 1);
    let path = Path::from("r");
    mem.put(&path, PutPayload::from_static(b"v")).await.unwrap();
    let err = store.get_range(&path, 0..1).await.unwrap_err();
    assert!(!outcome_unknown(&err), "{err}");
    assert!(err.to_string().contains("certainly failed"), "{err}");
}

#[tokio::test]
async fn answers_about_the_request_are_not_retried() {
    let (_, tally, store) = layered("", 5);
    let err = store
        .get_range(&Path::from("missing"), 0..1)
        .await
        .unwrap_err();
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    assert_eq!(tally.requests.load(Ordering::Relaxed), 1);
    assert_eq!(tally.retried.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_try_that_hangs_is_abandoned_at_its_deadline() {
    // 1 s of latency against a 200 ms deadline: every try is abandoned before it reaches the
    // store, and the error says why.
    let (mem, tally, store) = layered("latency_ms=1000,ops=put", 2);
    let path = Path::from("slow");
    let err = store
        .put(&path, PutPayload::from_static(b"v"))
        .await
        .unwrap_err();
    assert!(outcome_unknown(&err), "{err}");
    assert!(err.to_string().contains("no answer within 200ms"), "{err}");
    assert_eq!(tally.retried.load(Ordering::Relaxed), 2);
    assert_eq!(
        tally.failed.load(Ordering::Relaxed),
        3,
        "every abandoned try counts as a failure"
    );
    assert!(
        mem.head(&path).await.is_err(),
        "no try got as far as the store"
    );
}

#[test]
fn backoff_stays_under_its_ceiling() {
    let p = RetryPolicy {
        max_retries: 10,
        attempt_timeout: Duration::from_secs(1),
        base_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(800),
    };
    for n in 1..12 {
        for _ in 0..50 {
            assert!(p.backoff(n) <= Duration::from_millis(800));
        }
    }
    assert!(p.backoff(1) <= Duration::from_millis(100));
    assert_eq!(
        p.worst_case(),
        Duration::from_secs(11) + Duration::from_millis(100 + 200 + 400 + 800 * 7)
    );
}

#[tokio::test]
async fn counts_calls_once_per_request() {
    let counter = Arc::new(AtomicU32::new(0));
    struct C(Arc<AtomicU32>);
    impl StoreObserver for C {
        fn request(&self, _: Op, _: u64) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let store = CountingStore::new(Arc::new(InMemory::new()), Arc::new(C(counter.clone())));
    let _ = NoObserver;
    store
        .put(&Path::from("p"), PutPayload::from_static(b"x"))
        .await
        .unwrap();
    store.get_range(&Path::from("p"), 0..1).await.unwrap();
    store.head(&Path::from("p")).await.unwrap();
    assert_eq!(counter.load(Ordering::Relaxed), 3);
}
