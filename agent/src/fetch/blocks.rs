//! Objects' bytes by aligned block, kept in foyer's hybrid cache: memory, and local disk when
//! configured.
//!
//! A fetch reads a few partitions' spans of an object; many fetches (one per broker id a
//! librdkafka consumer reads from, one per consumer group) read spans of the same object. Read
//! through blocks, each block of an object is fetched with one GET however many spans and fetches
//! want it, and concurrent reads of one block share that GET (foyer's `get_or_fetch`). The agent
//! also puts every object it flushes into the cache, so consumers tailing what this agent wrote
//! never GET it. Blocks are immutable (objects are written once), so nothing is ever invalidated:
//! blocks of deleted objects age out.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use foyer::{
    BlockEngineConfig, Code, DeviceBuilder, Event, EventListener, FsDeviceBuilder, HybridCache,
    HybridCacheBuilder, RecoverMode,
};
use object_store::ObjectStore;
use prometheus_client::metrics::counter::Counter;
use skiff_metastore::types::ObjectId;
use tracing::warn;

use super::ReadError;
use crate::storage::object_path;

/// The block size when none is set: larger than a flushed object (8 MiB and the batch that
/// crossed it), so a flushed object is one block and one GET.
pub const DEFAULT_BLOCK_BYTES: u64 = 16 << 20;

#[derive(Clone, Debug)]
pub struct BlockCacheConfig {
    /// Bytes of blocks kept in memory.
    pub memory_bytes: usize,
    /// Bytes of blocks kept on local disk under `dir`; 0 for none.
    pub disk_bytes: usize,
    pub dir: Option<PathBuf>,
    /// Blocks are this long and start at multiples of it; the last block of an object is
    /// shorter.
    pub block_bytes: u64,
}

impl Default for BlockCacheConfig {
    fn default() -> Self {
        Self {
            memory_bytes: 512 << 20,
            disk_bytes: 0,
            dir: None,
            block_bytes: DEFAULT_BLOCK_BYTES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlockCacheError {
    #[error("the read cache's disk needs a directory (--read-cache-dir)")]
    NoDir,
    #[error("block size must be at least 64 KiB, not {0}")]
    BlockSize(u64),
    #[error("read cache: {0}")]
    Foyer(String),
}

/// Counters for /metrics.
#[derive(Clone, Default)]
pub struct BlockMetrics {
    pub hits: Counter,
    pub misses: Counter,
    /// Bytes of blocks read from the object store.
    pub fetched_bytes: Counter,
    /// Bytes of blocks put in by flushes.
    pub inserted_bytes: Counter,
    /// Blocks evicted from memory (to disk, when there is one).
    pub evictions: Counter,
    /// Reads the cache failed (a disk error or a corrupt entry) that went to the object store.
    pub errors: Counter,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct BlockKey {
    object: u128,
    block: u64,
}

impl Code for BlockKey {
    fn encode(&self, writer: &mut impl std::io::Write) -> foyer::Result<()> {
        writer
            .write_all(&self.object.to_be_bytes())
            .and_then(|()| writer.write_all(&self.block.to_be_bytes()))
            .map_err(foyer::Error::io_error)
    }

    fn decode(reader: &mut impl std::io::Read) -> foyer::Result<Self> {
        let mut object = [0; 16];
        let mut block = [0; 8];
        reader
            .read_exact(&mut object)
            .and_then(|()| reader.read_exact(&mut block))
            .map_err(foyer::Error::io_error)?;
        Ok(Self {
            object: u128::from_be_bytes(object),
            block: u64::from_be_bytes(block),
        })
    }

    fn estimated_size(&self) -> usize {
        24
    }
}

struct Evictions(Counter);

impl EventListener for Evictions {
    type Key = BlockKey;
    type Value = Bytes;

    fn on_leave(&self, reason: Event, _key: &BlockKey, _value: &Bytes) {
        if reason == Event::Evict {
            self.0.inc();
        }
    }
}

pub struct BlockCache {
    cache: HybridCache<BlockKey, Bytes>,
    block_bytes: u64,
    metrics: BlockMetrics,
}

impl BlockCache {
    pub async fn open(
        config: &BlockCacheConfig,
        metrics: BlockMetrics,
    ) -> Result<Self, BlockCacheError> {
        if config.block_bytes < 64 << 10 {
            return Err(BlockCacheError::BlockSize(config.block_bytes));
        }
        let builder = HybridCacheBuilder::new()
            .with_name("skiff-read-cache")
            .with_event_listener(Arc::new(Evictions(metrics.evictions.clone())))
            .memory(config.memory_bytes.max(1))
            .with_weighter(|_key: &BlockKey, value: &Bytes| value.len())
            .storage();
        let cache = if config.disk_bytes > 0 {
            let dir = config.dir.as_ref().ok_or(BlockCacheError::NoDir)?;
            let device = FsDeviceBuilder::new(dir)
                .with_capacity(config.disk_bytes)
                .build()
                .map_err(|e| BlockCacheError::Foyer(e.to_string()))?;
            // A disk block holds whole entries: room for the largest.
            let engine_block = (config.block_bytes as usize)
                .saturating_mul(2)
                .min(config.disk_bytes);
            builder
                .with_engine_config(BlockEngineConfig::new(device).with_block_size(engine_block))
                // A restart keeps what the disk holds; an entry that fails its checksum is a
                // miss, read again from the object store.
                .with_recover_mode(RecoverMode::Quiet)
                .build()
                .await
        } else {
            builder.build().await
        }
        .map_err(|e| BlockCacheError::Foyer(e.to_string()))?;
        Ok(Self {
            cache,
            block_bytes: config.block_bytes,
            metrics,
        })
    }

    /// `range` of `object`, from its blocks: cached ones as they are, missing ones with one GET
    /// each (shared with any concurrent read of the same block).
    pub async fn get(
        &self,
        store: &Arc<dyn ObjectStore>,
        object: ObjectId,
        range: Range<u64>,
    ) -> Result<Bytes, ReadError> {
        let want = range.end.saturating_sub(range.start);
        if want == 0 {
            return Ok(Bytes::new());
        }
        let first = range.start / self.block_bytes;
        let last = (range.end - 1) / self.block_bytes;
        if first == last {
            let block = self.block(store, object, first).await?;
            return slice(&block, object, first * self.block_bytes, range);
        }
        let mut out = BytesMut::with_capacity(want as usize);
        for b in first..=last {
            let start = b * self.block_bytes;
            let part = range.start.max(start)..range.end.min(start + self.block_bytes);
            let block = self.block(store, object, b).await?;
            out.extend_from_slice(&slice(&block, object, start, part)?);
        }
        Ok(out.freeze())
    }

    async fn block(
        &self,
        store: &Arc<dyn ObjectStore>,
        object: ObjectId,
        block: u64,
    ) -> Result<Bytes, ReadError> {
        let key = BlockKey {
            object: object.0 .0,
            block,
        };
        let start = block * self.block_bytes;
        let range = start..start + self.block_bytes;
        let fetched = Arc::new(AtomicBool::new(false));
        let failed: Arc<std::sync::Mutex<Option<ReadError>>> = Arc::default();
        let entry = {
            let (store, fetched, failed) = (store.clone(), fetched.clone(), failed.clone());
            let range = range.clone();
            self.cache.get_or_fetch(&key, move || async move {
                fetched.store(true, Ordering::Relaxed);
                // The last block of an object is shorter: the store answers what there is.
                match store.get_range(&object_path(object), range).await {
                    Ok(bytes) => Ok(bytes),
                    Err(e) => {
                        let e = ReadError::Store(Arc::new(e));
                        let message = e.to_string();
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        Err(std::io::Error::other(message))
                    }
                }
            })
        }
        .await;
        match entry {
            Ok(entry) => {
                if fetched.load(Ordering::Relaxed) {
                    self.metrics.misses.inc();
                    self.metrics.fetched_bytes.inc_by(entry.len() as u64);
                } else {
                    self.metrics.hits.inc();
                }
                Ok(entry.value().clone())
            }
            Err(e) => {
                if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    return Err(e);
                }
                // The cache itself failed (its disk): read around it.
                self.metrics.errors.inc();
                warn!(object = %object, block, error = %e, "read cache failed; reading the object store");
                store
                    .get_range(&object_path(object), range)
                    .await
                    .map_err(|e| ReadError::Store(Arc::new(e)))
            }
        }
    }

    /// Puts a just-written object in, block by block: `parts` are its bytes in order.
    pub fn insert_object(&self, object: ObjectId, parts: &[Bytes]) {
        let block_bytes = self.block_bytes as usize;
        let mut block = 0u64;
        let mut current = BytesMut::new();
        for part in parts {
            let mut part = part.clone();
            while !part.is_empty() {
                if current.is_empty() && part.len() >= block_bytes {
                    // A whole block inside one part: no copy.
                    self.put(object, block, part.split_to(block_bytes));
                    block += 1;
                    continue;
                }
                let take = (block_bytes - current.len()).min(part.len());
                if current.capacity() == 0 {
                    current.reserve(block_bytes);
                }
                current.extend_from_slice(&part.split_to(take));
                if current.len() == block_bytes {
                    self.put(object, block, current.split().freeze());
                    block += 1;
                }
            }
        }
        if !current.is_empty() {
            self.put(object, block, current.freeze());
        }
    }

    fn put(&self, object: ObjectId, block: u64, bytes: Bytes) {
        self.metrics.inserted_bytes.inc_by(bytes.len() as u64);
        self.cache.insert(
            BlockKey {
                object: object.0 .0,
                block,
            },
            bytes,
        );
    }

    /// Writes what memory holds to disk (if there is one) and stops, so the next start finds it.
    pub async fn close(&self) {
        if let Err(e) = self.cache.close().await {
            warn!(error = %e, "closing the read cache");
        }
    }
}

/// `range` of the object out of the block starting at `start`; a block shorter than the range
/// needs is a short read (the object is shorter than the index says).
fn slice(
    block: &Bytes,
    object: ObjectId,
    start: u64,
    range: Range<u64>,
) -> Result<Bytes, ReadError> {
    let from = (range.start - start) as usize;
    let to = (range.end - start) as usize;
    if to > block.len() {
        return Err(ReadError::ShortRead {
            object,
            want: range.end - range.start,
            got: block.len().saturating_sub(from),
        });
    }
    Ok(block.slice(from..to))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "blocks_tests.rs"]
mod tests;
