//! The spec of a Parquet export's JSON projection: `name:type,name:type`, types `string`,
//! `int64`, `float64`, `bool`, `timestamp_ms`. Parsed here, with no JSON in sight, so that the
//! agent can refuse a bad `skiff.parquet.json.schema` topic config and the compactor can use it;
//! the projection itself is the compactor's (`skiff_compactor::export::projection`).

use std::str::FromStr;

/// The columns every export has; a projected column may not take their names.
pub const RESERVED: [&str; 8] = [
    "partition",
    "offset",
    "timestamp",
    "key",
    "value",
    "headers",
    // The Hive directories' columns, as engines add them.
    "topic",
    "date",
];

/// A projected column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Int64,
    Float64,
    Bool,
    /// Milliseconds since the epoch, as a Parquet timestamp.
    TimestampMs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The field's name in the JSON object, and the column's (prefixed `value.` in the file).
    pub name: String,
    pub ty: ColumnType,
}

/// The columns to project values to, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Projection {
    pub columns: Vec<Column>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad JSON schema {spec:?}: {reason} (expected name:type,… with types string, int64, float64, bool, timestamp_ms)")]
pub struct SchemaError {
    pub spec: String,
    pub reason: String,
}

impl Projection {
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

impl FromStr for Projection {
    type Err = SchemaError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| SchemaError {
            spec: spec.to_owned(),
            reason,
        };
        let mut columns: Vec<Column> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, ty) = item
                .split_once(':')
                .ok_or_else(|| bad(format!("{item:?} has no type")))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(bad(format!("{item:?} has no name")));
            }
            let ty = match ty.trim() {
                "string" => ColumnType::String,
                "int64" | "long" => ColumnType::Int64,
                "float64" | "double" => ColumnType::Float64,
                "bool" | "boolean" => ColumnType::Bool,
                "timestamp_ms" => ColumnType::TimestampMs,
                other => return Err(bad(format!("unknown type {other:?}"))),
            };
            if RESERVED.contains(&name) {
                return Err(bad(format!("{name:?} is a column every export has")));
            }
            if columns.iter().any(|c| c.name == name) {
                return Err(bad(format!("{name:?} given twice")));
            }
            columns.push(Column {
                name: name.to_owned(),
                ty,
            });
        }
        Ok(Self { columns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_types() {
        let p: Projection = "user:string, age:int64,score:float64,ok:bool,at:timestamp_ms"
            .parse()
            .expect("valid");
        let types: Vec<ColumnType> = p.columns.iter().map(|c| c.ty).collect();
        assert_eq!(
            types,
            [
                ColumnType::String,
                ColumnType::Int64,
                ColumnType::Float64,
                ColumnType::Bool,
                ColumnType::TimestampMs
            ]
        );
    }

    #[test]
    fn bad_specs_are_errors() {
        for spec in [
            "user",
            "user:uuid",
            ":string",
            "a:int64,a:string",
            "offset:int64",
            "date:string",
        ] {
            assert!(spec.parse::<Projection>().is_err(), "{spec}");
        }
        assert!("".parse::<Projection>().expect("empty is fine").is_empty());
    }
}
