//! Projecting JSON values to typed columns, by a [`Projection`] (parsed in `skiff-format`). A
//! record whose value is not a JSON object, or lacks a field, or holds it with another type,
//! gets a null in that column: an export never fails on data.

pub use skiff_format::projection::{Column, ColumnType, Projection, SchemaError};

/// One projected cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    String(String),
    Int64(i64),
    Float64(f64),
    Bool(bool),
}

/// The cells of one record's value, one per column of `projection`.
pub fn project(projection: &Projection, value: Option<&[u8]>) -> Vec<Cell> {
    let object = value
        .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
        .and_then(|v| match v {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        });
    projection
        .columns
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_typed_fields_and_nulls_the_rest() {
        let p: Projection = "user:string, age:int64,score:float64,ok:bool,at:timestamp_ms"
            .parse()
            .expect("valid");
        let cells = project(
            &p,
            Some(br#"{"user":"ann","age":41,"score":2.5,"ok":true,"at":17}"#),
        );
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
        assert_eq!(project(&p, Some(br#"{"user":5}"#))[0], Cell::Null);
        assert!(project(&p, Some(b"not json"))
            .iter()
            .all(|c| *c == Cell::Null));
        assert!(project(&p, None).iter().all(|c| *c == Cell::Null));
    }
}
