//! The read path: from index entries to the bytes a Fetch response carries. Handlers see only
//! [`Reader`], so a cache (memory + disk) can sit behind it without touching them.

mod index_cache;
mod reader;

pub use index_cache::IndexCache;
pub use reader::{ReadError, Reader};
