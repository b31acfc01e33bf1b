//! Projecting JSON values to typed columns: `name:type,name:type`, types `string`, `int64`,
//! `float64`, `bool`, `timestamp_ms`. A record whose value is not a JSON object, or lacks a field,
//! or holds it with another type, gets a null in that column: an export never fails on data.

use std::str::FromStr;

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

/// One projected cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    String(String),
    Int64(i64),
    Float64(f64),
    Bool(bool),
}

impl Projection {
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The cells of one record's value, one per column.
    pub fn project(&self, value: Option<&[u8]>) -> Vec<Cell> {
        let object = value
            .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
            .and_then(|v| match v {
                serde_json::Value::Object(map) => Some(map),
                _ => None,
            });
        self.columns
            .iter()
            .map(|c| {
                let Some(v) = object.as_ref().and_then(|o| o.get(&c.name)) else {
                    return Cell::Null;
                };
                match (c.ty, v) {
                    (ColumnType::String, serde_json::Value::String(s)) => Cell::String(s.clone()),
                    (ColumnType::Int64 | ColumnType::TimestampMs, serde_json::Value::Number(n)) => {
                        n.as_i64().map_or(Cell::Null, Cell::Int64)
                    }
                    (ColumnType::Float64, serde_json::Value::Number(n)) => {
                        n.as_f64().map_or(Cell::Null, Cell::Float64)
                    }
                    (ColumnType::Bool, serde_json::Value::Bool(b)) => Cell::Bool(*b),
                    _ => Cell::Null,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_projects() {
        let p: Projection = "user:string, age:int64,score:float64,ok:bool,at:timestamp_ms"
            .parse()
            .expect("valid");
        assert_eq!(p.columns.len(), 5);
        let cells = p.project(Some(
            br#"{"user":"ann","age":41,"score":2.5,"ok":true,"at":17}"#,
        ));
        assert_eq!(
            cells,
            [
                Cell::String("ann".into()),
                Cell::Int64(41),
                Cell::Float64(2.5),
                Cell::Bool(true),
                Cell::Int64(17)
            ]
        );
        // Wrong types, missing fields, non-JSON values and nulls are nulls.
        assert_eq!(p.project(Some(br#"{"user":5}"#))[0], Cell::Null);
        assert!(p
            .project(Some(b"not json"))
            .iter()
            .all(|c| *c == Cell::Null));
        assert!(p.project(None).iter().all(|c| *c == Cell::Null));
    }

    #[test]
    fn bad_schemas_are_errors() {
        for spec in ["user", "user:uuid", ":string", "a:int64,a:string"] {
            assert!(spec.parse::<Projection>().is_err(), "{spec}");
        }
        assert!("".parse::<Projection>().expect("empty is fine").is_empty());
    }
}
