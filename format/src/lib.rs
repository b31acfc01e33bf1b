//! Byte formats shared by agents and compactors: Kafka record batches (validated by their headers
//! on the produce path; their records walked only for the checks a topic asks for or where a
//! header's timestamps cannot be believed, see [`validate`]; decompressed and decoded only where
//! individual records are needed) and the Skiff object that a flush writes.
//!
//! Everything here is pure: no IO, no async, and no panics on any input — these bytes come from
//! the network and from the object store. Every length read from the input is checked against what
//! remains before anything is sliced or allocated.

pub mod batch;
pub mod compression;
pub mod control;
pub mod encode;
pub mod object;
pub mod projection;
pub mod records;
pub mod rewrite;
pub mod run;
pub mod validate;
pub mod varint;

pub use batch::{
    batches, set_base_offset, Batch, BatchError, BatchHeader, BatchIter, Compression, Timestamps,
};
pub use compression::{compress, decompress, CompressError, DecompressError};
pub use object::{
    decode_footer, decode_object, decode_trailer, FooterLocation, ObjectBuilder, ObjectEntry,
    ObjectError, ObjectHeader,
};
pub use records::{
    first_offset_at_or_after, max_timestamp, records, records_with_limit, timestamps, walk, Record,
    RecordError, RecordHeader, RecordSummary,
};
pub use rewrite::{retain, Retained, RewriteError};
pub use validate::{
    check, log_append_time_header, Checked, Checks, RecordViolation, TimestampBounds, Violation,
};
