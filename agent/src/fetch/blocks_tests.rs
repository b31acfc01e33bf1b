//! The read cache: what a read returns against the object's bytes, which reads reach the store,
//! and a disk that survives a restart but never serves a corrupt block.

use super::*;
use crate::test_support::{oid, store_with};

const BLOCK: u64 = 64 << 10;

fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn cache(memory_bytes: usize, disk: Option<&std::path::Path>) -> (BlockCache, BlockMetrics) {
    let metrics = BlockMetrics::default();
    let config = BlockCacheConfig {
        memory_bytes,
        disk_bytes: if disk.is_some() { 4 << 20 } else { 0 },
        dir: disk.map(|d| d.to_path_buf()),
        block_bytes: BLOCK,
    };
    (
        BlockCache::open(&config, metrics.clone()).await.unwrap(),
        metrics,
    )
}

#[tokio::test]
async fn reads_match_the_object_and_share_one_get_per_block() {
    let data = bytes_of(3 * BLOCK as usize + 1000, 7);
    let id = oid(1);
    let (store, gets) = store_with(&[(id, data.clone())]).await;
    let (cache, metrics) = cache(8 << 20, None).await;

    // Inside one block, across two, to the object's end, and empty.
    for range in [
        10..5000,
        100..BLOCK + 100,
        BLOCK - 1..3 * BLOCK + 1,
        3 * BLOCK..3 * BLOCK + 1000,
        5..5,
    ] {
        let got = cache.get(&store, id, range.clone()).await.unwrap();
        assert_eq!(
            &got[..],
            &data[range.start as usize..range.end as usize],
            "{range:?}"
        );
    }
    // Four blocks, each fetched once however many reads wanted it; the last one short.
    assert_eq!(gets.count(), 4);
    assert_eq!(metrics.misses.get(), 4);
    assert_eq!(metrics.fetched_bytes.get(), data.len() as u64);
    assert!(metrics.hits.get() >= 3);

    // Past the object's end: a short read, not bytes that are not there.
    let err = cache
        .get(&store, id, 3 * BLOCK..3 * BLOCK + 2000)
        .await
        .unwrap_err();
    assert!(matches!(err, ReadError::ShortRead { .. }), "{err}");
}

#[tokio::test]
async fn concurrent_reads_of_a_block_make_one_get() {
    let data = bytes_of(BLOCK as usize, 3);
    let id = oid(2);
    let (store, gets) = store_with(&[(id, data.clone())]).await;
    let (cache, _) = cache(8 << 20, None).await;
    let cache = Arc::new(cache);
    let reads = (0..16u64).map(|i| {
        let (cache, store) = (cache.clone(), store.clone());
        tokio::spawn(async move { cache.get(&store, id, i * 100..i * 100 + 50).await })
    });
    for (i, read) in reads.enumerate() {
        let got = read.await.unwrap().unwrap();
        let at = i * 100;
        assert_eq!(&got[..], &data[at..at + 50]);
    }
    assert_eq!(gets.count(), 1);
}

#[tokio::test]
async fn a_flushed_object_is_read_without_a_get() {
    let data = bytes_of(2 * BLOCK as usize + 17, 9);
    let id = oid(3);
    let (store, gets) = store_with(&[(id, data.clone())]).await;
    let (cache, metrics) = cache(8 << 20, None).await;
    // Laid out as a flush lays it: a header, batches of all sizes, one part larger than a block.
    let cuts = [
        0,
        61,
        200,
        5000,
        5001,
        5000 + BLOCK as usize + 3,
        data.len(),
    ];
    let parts: Vec<Bytes> = cuts
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&data[w[0]..w[1]]))
        .collect();
    cache.insert_object(id, &parts);
    assert_eq!(metrics.inserted_bytes.get(), data.len() as u64);
    let got = cache.get(&store, id, 0..data.len() as u64).await.unwrap();
    assert_eq!(&got[..], &data[..]);
    assert_eq!(gets.count(), 0);
}

#[tokio::test]
async fn a_failed_get_is_the_reads_error_and_is_not_cached() {
    let id = oid(4);
    let (store, gets) = store_with(&[]).await;
    let (cache, _) = cache(8 << 20, None).await;
    let err = cache.get(&store, id, 0..10).await.unwrap_err();
    assert!(matches!(err, ReadError::Store(_)), "{err}");
    // The object appears (a read raced its PUT): the next read finds it.
    let data = bytes_of(100, 1);
    store
        .put(&object_path(id), data.clone().into())
        .await
        .unwrap();
    assert_eq!(
        &cache.get(&store, id, 0..10).await.unwrap()[..],
        &data[..10]
    );
    assert_eq!(gets.count(), 2);
}

#[tokio::test]
async fn memory_is_bounded_and_evicted_blocks_are_read_again() {
    let data = bytes_of(16 * BLOCK as usize, 5);
    let id = oid(5);
    let (store, gets) = store_with(&[(id, data.clone())]).await;
    // Room for about four blocks.
    let (cache, metrics) = cache(4 * BLOCK as usize, None).await;
    for round in 0..2 {
        for b in 0..16 {
            let range = b * BLOCK..b * BLOCK + 10;
            let got = cache.get(&store, id, range.clone()).await.unwrap();
            assert_eq!(
                &got[..],
                &data[range.start as usize..range.end as usize],
                "round {round}"
            );
        }
    }
    assert!(metrics.evictions.get() >= 16, "{}", metrics.evictions.get());
    assert!(
        gets.count() > 16,
        "a second pass over 16 blocks cannot fit in 4"
    );
}

#[tokio::test]
async fn the_disk_survives_a_restart_and_a_corrupt_block_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = bytes_of(4 * BLOCK as usize, 11);
    let id = oid(6);
    let (store, gets) = store_with(&[(id, data.clone())]).await;
    {
        let (cache, _) = cache(BLOCK as usize, Some(dir.path())).await;
        cache.insert_object(id, &[Bytes::from(data.clone())]);
        cache.close().await;
    }
    {
        let (cache, metrics) = cache(BLOCK as usize, Some(dir.path())).await;
        let got = cache.get(&store, id, 0..data.len() as u64).await.unwrap();
        assert_eq!(&got[..], &data[..]);
        assert_eq!(gets.count(), 0, "every block came from the disk");
        assert_eq!(metrics.misses.get(), 0);
        cache.close().await;
    }
    // Flip bytes all over the cache's files: whatever a read gets must still be the object's.
    for entry in walk(dir.path()) {
        let mut bytes = std::fs::read(&entry).unwrap();
        for i in (0..bytes.len()).step_by(997) {
            bytes[i] ^= 0x5a;
        }
        std::fs::write(&entry, bytes).unwrap();
    }
    let (cache, _) = cache(BLOCK as usize, Some(dir.path())).await;
    let got = cache.get(&store, id, 0..data.len() as u64).await.unwrap();
    assert_eq!(&got[..], &data[..], "a corrupt block was served");
    assert!(gets.count() > 0, "the corrupt blocks were read again");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
