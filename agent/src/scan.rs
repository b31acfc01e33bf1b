//! Running a record decoder over one batch: in place when the batch is uncompressed, on the
//! blocking pool when it is compressed. Shared by ListOffsets (which looks for one record) and
//! produce (which checks the records of the topics and batches that need it).

use skiff_format::batch::{Batch, Compression};
use tokio::sync::Semaphore;

/// Compressed batches scanned at once, across the process. Each scan may hold 64 MiB of
/// decompressed records and a zstd window as large again: pipelined requests would otherwise
/// multiply that by the size of the blocking pool.
static DECOMPRESSIONS: Semaphore = Semaphore::const_new(2);

/// Runs `f` over a batch: in place when it is uncompressed (a scan of bytes already in memory),
/// on the blocking pool when it is compressed, since decompressing up to 64 MiB would otherwise
/// hold a runtime worker for tens of milliseconds. `None` if the blocking task did not finish
/// (it panicked, or the runtime is shutting down).
pub async fn scan<T: Send + 'static>(
    batch: Batch,
    f: impl FnOnce(&Batch) -> T + Send + 'static,
) -> Option<T> {
    if batch.header.compression() == Compression::None {
        return Some(f(&batch));
    }
    let permit = DECOMPRESSIONS.acquire().await.ok()?;
    // The permit goes with the closure: if the request is aborted the scan still runs to its end,
    // and must be counted until then.
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f(&batch)
    })
    .await
    .ok()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use skiff_format::batch::BatchHeader;
    use skiff_format::encode::BatchBuilder;

    use super::*;

    #[tokio::test]
    async fn compressed_batches_are_scanned_two_at_a_time() {
        const GZIP: i16 = 1;
        let bytes = BatchBuilder::new(0)
            .attributes(GZIP)
            .record(0, None, None)
            .build();
        let header = BatchHeader::parse(&bytes).expect("header");
        assert_eq!(header.compression(), Compression::Gzip);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let scans = (0..8).map(|_| {
            let batch = Batch {
                header,
                bytes: bytes.clone(),
            };
            let (running, most) = (running.clone(), most.clone());
            scan(batch, move |_| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(50));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        let done = futures::future::join_all(scans).await;
        assert!(done.iter().all(Option::is_some));
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
