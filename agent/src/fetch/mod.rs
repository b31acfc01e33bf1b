//! The read path: from index entries to the bytes a Fetch response carries. Handlers see only
//! [`Reader`], so a cache (memory + disk) can sit behind it without touching them.

mod answer;
pub mod blocks;
mod error;
mod index_cache;
mod reader;
mod segment_index;

pub use blocks::{BlockCache, BlockCacheConfig};
pub use error::ReadError;
pub use index_cache::IndexCache;
pub use reader::{PartitionRead, Reader};
