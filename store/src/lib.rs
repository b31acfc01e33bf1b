//! The object-store seam every Skiff role shares: one `Arc<dyn ObjectStore>`, opened from a URL
//! (`file://`, `memory://`, `s3://`) and wrapped in layers that are themselves `ObjectStore`s:
//!
//! ```text
//! Retrying ─▶ Counting ─▶ [Faults] ─▶ backend (S3, or the local filesystem made durable)
//! ```
//!
//! Retrying is outermost so a caller sees one answer per call, and Counting sits under it so every
//! request actually sent is counted (that is what a cloud bill counts). Faults, for tests only, sit
//! next to the backend so they look like what the backend does when it misbehaves.

pub mod aws;
pub mod cost;
pub mod counting;
pub mod durable_fs;
pub mod faults;
pub mod open;
pub mod retry;
pub mod s3_init;

pub use cost::RequestPrices;
pub use counting::{CountingStore, Op, PriceClass, StoreObserver};
pub use faults::{FaultSpec, FaultyStore};
pub use open::{open, OpenStoreError, S3Settings, StoreSettings};
pub use retry::{outcome_unknown, RetryPolicy, RetryingStore};
