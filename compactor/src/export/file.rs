//! One Parquet file of exported records: columns `partition`, `offset`, `timestamp`, `key`,
//! `value`, `headers` (a list of key/value structs, in order, repeated keys kept), then the
//! projected JSON fields. Snappy-compressed pages, row groups of at most [`ROW_GROUP_ROWS`].
//!
//! Byte and string columns are arrow's `Large` kinds (64-bit offsets): a file's values may add
//! up to more than 2 GiB, where 32-bit offsets would overflow. In Parquet they are the same
//! BYTE_ARRAY columns; readers see binary and string.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, LargeStringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{
    ArrayRef, Int32Array, Int64Array, LargeBinaryArray, LargeStringArray, ListArray, RecordBatch,
    StructArray, TimestampMillisecondArray,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::projection::{project, Cell, ColumnType, Projection};

pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// One record to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRecord {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("building the columns: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("writing parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("a projected column is named like a fixed one: {0}")]
    ColumnName(String),
}

fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::LargeUtf8, false),
        Field::new("value", DataType::LargeBinary, true),
    ])
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The file's schema for `projection`.
pub fn schema(projection: &Projection) -> Result<Schema, FileError> {
    let mut fields = vec![
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("timestamp", timestamp_type(), false),
        Field::new("key", DataType::LargeBinary, true),
        Field::new("value", DataType::LargeBinary, true),
        Field::new(
            "headers",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(header_fields()),
                false,
            ))),
            false,
        ),
    ];
    for c in &projection.columns {
        if skiff_format::projection::RESERVED.contains(&c.name.as_str()) {
            return Err(FileError::ColumnName(c.name.clone()));
        }
        let ty = match c.ty {
            ColumnType::String => DataType::LargeUtf8,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::TimestampMs => timestamp_type(),
        };
        fields.push(Field::new(&c.name, ty, true));
    }
    Ok(Schema::new(fields))
}

/// Rows gathered for one file.
pub struct FileBuilder {
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    timestamps: Vec<i64>,
    keys: Vec<Option<Bytes>>,
    values: Vec<Option<Bytes>>,
    header_offsets: Vec<i32>,
    header_keys: Vec<String>,
    header_values: Vec<Option<Bytes>>,
    projected: Vec<Vec<Cell>>,
}

impl Default for FileBuilder {
    fn default() -> Self {
        Self {
            partitions: Vec::new(),
            offsets: Vec::new(),
            timestamps: Vec::new(),
            keys: Vec::new(),
            values: Vec::new(),
            // The list offsets of the headers column start at 0.
            header_offsets: vec![0],
            header_keys: Vec::new(),
            header_values: Vec::new(),
            projected: Vec::new(),
        }
    }
}

impl FileBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    pub fn push(&mut self, r: ExportRecord, projection: &Projection) {
        if !projection.is_empty() {
            self.projected.push(project(projection, r.value.as_deref()));
        }
        self.partitions.push(r.partition);
        self.offsets.push(r.offset);
        self.timestamps.push(r.timestamp);
        self.keys.push(r.key);
        self.values.push(r.value);
        for (k, v) in r.headers {
            self.header_keys.push(k);
            self.header_values.push(v);
        }
        self.header_offsets
            .push(i32::try_from(self.header_keys.len()).unwrap_or(i32::MAX));
    }

    /// The Parquet file's bytes.
    pub fn finish(self, projection: &Projection) -> Result<Bytes, FileError> {
        let schema = Arc::new(schema(projection)?);
        let binary = |v: &[Option<Bytes>]| -> ArrayRef {
            Arc::new(v.iter().map(|b| b.as_deref()).collect::<LargeBinaryArray>())
        };
        let headers = StructArray::try_new(
            header_fields(),
            vec![
                Arc::new(LargeStringArray::from_iter_values(&self.header_keys)) as ArrayRef,
                binary(&self.header_values),
            ],
            None,
        )?;
        let headers = ListArray::try_new(
            Arc::new(Field::new("item", DataType::Struct(header_fields()), false)),
            OffsetBuffer::new(self.header_offsets.into()),
            Arc::new(headers),
            None,
        )?;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(self.partitions)),
            Arc::new(Int64Array::from(self.offsets)),
            Arc::new(TimestampMillisecondArray::from(self.timestamps).with_timezone("UTC")),
            binary(&self.keys),
            binary(&self.values),
            Arc::new(headers),
        ];
        for (i, c) in projection.columns.iter().enumerate() {
            let cells = self
                .projected
                .iter()
                .map(|row| row.get(i).unwrap_or(&Cell::Null));
            let array: ArrayRef = match c.ty {
                ColumnType::String => {
                    let mut b = LargeStringBuilder::new();
                    for cell in cells {
                        match cell {
                            Cell::String(s) => b.append_value(s),
                            _ => b.append_null(),
                        }
                    }
                    Arc::new(b.finish())
                }
                ColumnType::Int64 => {
                    let mut b = Int64Builder::new();
                    for cell in cells {
                        match cell {
                            Cell::Int64(v) => b.append_value(*v),
                            _ => b.append_null(),
                        }
                    }
                    Arc::new(b.finish())
                }
                ColumnType::TimestampMs => {
                    let mut b = TimestampMillisecondBuilder::new().with_timezone("UTC");
                    for cell in cells {
                        match cell {
                            Cell::Int64(v) => b.append_value(*v),
                            _ => b.append_null(),
                        }
                    }
                    Arc::new(b.finish())
                }
                ColumnType::Float64 => {
                    let mut b = Float64Builder::new();
                    for cell in cells {
                        match cell {
                            Cell::Float64(v) => b.append_value(*v),
                            _ => b.append_null(),
                        }
                    }
                    Arc::new(b.finish())
                }
                ColumnType::Bool => {
                    let mut b = BooleanBuilder::new();
                    for cell in cells {
                        match cell {
                            Cell::Bool(v) => b.append_value(*v),
                            _ => b.append_null(),
                        }
                    }
                    Arc::new(b.finish())
                }
            };
            columns.push(array);
        }
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_size(ROW_GROUP_ROWS)
            .set_created_by(format!("skiff {}", env!("CARGO_PKG_VERSION")))
            .build();
        let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(props))?;
        writer.write(&batch)?;
        Ok(Bytes::from(writer.into_inner()?))
    }
}

/// `YYYY-MM-DD` (UTC) of a timestamp in milliseconds, for the Hive `date=` directory.
pub fn utc_date(timestamp_ms: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let days = timestamp_ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Where a file goes: `<prefix>/topic=<topic>/date=<date>/part-<partition>-<first offset>.parquet`.
/// The first offset is that of the export chunk, so a chunk exported again (after a crash before
/// its progress was recorded) writes the same names and replaces, never duplicates.
pub fn file_path(prefix: &str, topic: &str, date: &str, partition: i32, first: i64) -> String {
    let prefix = prefix.trim_end_matches('/');
    let dir = format!("topic={topic}/date={date}");
    let name = format!("part-{partition:05}-{first:020}.parquet");
    if prefix.is_empty() {
        format!("{dir}/{name}")
    } else {
        format!("{prefix}/{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(86_399_999), "1970-01-01");
        assert_eq!(utc_date(-1), "1969-12-31");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_date(1_796_083_200_000), "2026-12-01");
    }

    #[test]
    fn paths_follow_the_hive_layout() {
        assert_eq!(
            file_path("parquet/", "orders", "2026-12-01", 3, 42),
            "parquet/topic=orders/date=2026-12-01/part-00003-00000000000000000042.parquet"
        );
    }

    #[test]
    fn a_file_round_trips_through_the_parquet_reader() {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let projection: Projection = "n:int64,name:string".parse().expect("schema");
        let mut f = FileBuilder::new();
        for i in 0..3i64 {
            f.push(
                ExportRecord {
                    partition: 1,
                    offset: 10 + i,
                    timestamp: 1_000 + i,
                    key: (i != 1).then(|| Bytes::from(format!("k{i}"))),
                    value: Some(Bytes::from(format!(r#"{{"n":{i},"name":"x{i}"}}"#))),
                    headers: vec![
                        ("h".into(), Some(Bytes::from_static(b"a"))),
                        ("h".into(), None),
                    ],
                },
                &projection,
            );
        }
        let bytes = f.finish(&projection).expect("file");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("reader")
            .build()
            .expect("reader");
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("batches");
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
        let b = &batches[0];
        assert_eq!(b.num_columns(), 8);
        let offsets = b
            .column_by_name("offset")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .expect("offsets");
        assert_eq!(offsets.values(), &[10, 11, 12]);
        let n = b
            .column_by_name("n")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .expect("n");
        assert_eq!(n.value(2), 2);
        let headers = b
            .column_by_name("headers")
            .and_then(|c| c.as_any().downcast_ref::<ListArray>())
            .expect("headers");
        assert_eq!(headers.value(0).len(), 2);
    }
}
