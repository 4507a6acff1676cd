//! Rows as klickhouse reads and writes them: values by position, one row
//! type per statement shape. Only this file (with `alert_records.rs`'s own
//! row) converts between klickhouse's values and ours.

use super::schema;
use super::windows;
use crate::domain::log::{attributes_from_json, attributes_to_json};
use crate::domain::time::{MAX_MICROS, Micros};
use crate::domain::{Level, LogRecord, TenantId};
use crate::store::StoreError;
use klickhouse::{KlickhouseError, Row, Type, Value};
use std::borrow::Cow;

/// Values by position; klickhouse's own conversions refuse some column types
/// (`LowCardinality(String)` into `String`), and these rows are ours anyway.
pub fn take(
    values: &mut std::vec::IntoIter<(&str, &Type, Value)>,
) -> Result<Value, KlickhouseError> {
    values
        .next()
        .map(|(_, _, value)| value)
        .ok_or(KlickhouseError::OutOfBounds)
}

fn unexpected(value: &Value) -> KlickhouseError {
    KlickhouseError::DeserializeError(format!("unexpected value {value:?}"))
}

pub fn string(value: Value) -> Result<String, KlickhouseError> {
    match value {
        Value::String(bytes) => Ok(String::from_utf8(bytes)?),
        other => Err(unexpected(&other)),
    }
}

pub fn int(value: Value) -> Result<i128, KlickhouseError> {
    Ok(match value {
        Value::Int8(v) => v.into(),
        Value::Int16(v) => v.into(),
        Value::Int32(v) => v.into(),
        Value::Int64(v) => v.into(),
        Value::UInt8(v) => v.into(),
        Value::UInt16(v) => v.into(),
        Value::UInt32(v) => v.into(),
        Value::UInt64(v) => v.into(),
        other => return Err(unexpected(&other)),
    })
}

/// `impl Row` for a row type that is only read: `$columns` values, taken
/// in order from `$values` by `$body`.
macro_rules! read_only_row {
    ($name:ty, $columns:expr, |$values:ident| $body:expr) => {
        impl Row for $name {
            const COLUMN_COUNT: Option<usize> = Some($columns);

            fn column_names() -> Option<Vec<Cow<'static, str>>> {
                None
            }

            fn deserialize_row(map: Vec<(&str, &Type, Value)>) -> Result<Self, KlickhouseError> {
                let mut $values = map.into_iter();
                $body
            }

            fn serialize_row(
                self,
                _: &klickhouse::IndexMap<String, Type>,
            ) -> Result<Vec<(Cow<'static, str>, Value)>, KlickhouseError> {
                Err(KlickhouseError::SerializeError("read-only row".into()))
            }
        }
    };
}

/// A one-column row.
pub struct One<T>(pub T);

pub trait FromValue: Sized {
    fn from_value(value: Value) -> Result<Self, KlickhouseError>;
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self, KlickhouseError> {
        string(value)
    }
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self, KlickhouseError> {
                let v = int(value)?;
                <$t>::try_from(v).map_err(|_| KlickhouseError::DeserializeError(format!("{v} out of range")))
            }
        }
    )*};
}
int_from_value!(u8, u16, u32, u64, i64);

impl<T: FromValue> Row for One<T> {
    const COLUMN_COUNT: Option<usize> = Some(1);

    fn column_names() -> Option<Vec<Cow<'static, str>>> {
        None
    }

    fn deserialize_row(map: Vec<(&str, &Type, Value)>) -> Result<Self, KlickhouseError> {
        Ok(One(T::from_value(take(&mut map.into_iter())?)?))
    }

    fn serialize_row(
        self,
        _: &klickhouse::IndexMap<String, Type>,
    ) -> Result<Vec<(Cow<'static, str>, Value)>, KlickhouseError> {
        Err(KlickhouseError::SerializeError("read-only row".into()))
    }
}

/// A row of `logs`, in `INSERT` column order.
pub struct LogRow(pub LogRecord);

impl Row for LogRow {
    /// Nine read (`read::LOG_COLUMNS`), eleven written (`write::INSERT_COLUMNS`).
    const COLUMN_COUNT: Option<usize> = None;

    fn column_names() -> Option<Vec<Cow<'static, str>>> {
        None
    }

    fn deserialize_row(map: Vec<(&str, &Type, Value)>) -> Result<Self, KlickhouseError> {
        let mut values = map.into_iter();
        let timestamp = i64::from_value(take(&mut values)?)?;
        let id = string(take(&mut values)?)?;
        let code = u8::from_value(take(&mut values)?)?;
        let service = string(take(&mut values)?)?;
        let message = string(take(&mut values)?)?;
        let attributes = string(take(&mut values)?)?;
        let tenant = string(take(&mut values)?)?;
        let tenant = TenantId::parse(&tenant).map_err(|_| {
            KlickhouseError::DeserializeError(format!("unreadable tenant {tenant:?}"))
        })?;
        let trace_id = Some(string(take(&mut values)?)?).filter(|id| !id.is_empty());
        let span_id = Some(string(take(&mut values)?)?).filter(|id| !id.is_empty());
        Ok(LogRow(LogRecord {
            id,
            timestamp,
            level: Level::from_code(code).ok_or_else(|| {
                KlickhouseError::DeserializeError(format!("unknown level code {code}"))
            })?,
            service,
            message,
            attributes: attributes_from_json(
                Some(&attributes)
                    .filter(|a| !a.is_empty())
                    .map(|a| a.as_str()),
            ),
            tenant,
            trace_id,
            span_id,
        }))
    }

    fn serialize_row(
        self,
        _: &klickhouse::IndexMap<String, Type>,
    ) -> Result<Vec<(Cow<'static, str>, Value)>, KlickhouseError> {
        let record = self.0;
        Ok(vec![
            (Cow::Borrowed("ts_us"), Value::Int64(record.timestamp)),
            (Cow::Borrowed("id"), Value::String(record.id.into_bytes())),
            (Cow::Borrowed("level"), Value::UInt8(record.level.code())),
            (
                Cow::Borrowed("service"),
                Value::String(record.service.into_bytes()),
            ),
            (
                Cow::Borrowed("message"),
                Value::String(record.message.into_bytes()),
            ),
            (
                Cow::Borrowed("attributes"),
                Value::String(
                    attributes_to_json(&record.attributes)
                        .unwrap_or_default()
                        .into_bytes(),
                ),
            ),
            (
                Cow::Borrowed("tenant"),
                Value::String(record.tenant.as_str().as_bytes().to_vec()),
            ),
            (
                Cow::Borrowed("trace_id"),
                Value::String(record.trace_id.unwrap_or_default().into_bytes()),
            ),
            (
                Cow::Borrowed("span_id"),
                Value::String(record.span_id.unwrap_or_default().into_bytes()),
            ),
            // Sorted by key: the map is a BTreeMap.
            (
                Cow::Borrowed("attr_keys"),
                Value::Array(
                    record
                        .attributes
                        .keys()
                        .map(|key| Value::String(key.clone().into_bytes()))
                        .collect(),
                ),
            ),
            (
                Cow::Borrowed("attr_values"),
                Value::Array(
                    record
                        .attributes
                        .into_values()
                        .map(|value| Value::String(value.into_bytes()))
                        .collect(),
                ),
            ),
        ])
    }
}

/// `(bucket, level, service, count)` from `counts::statement`.
pub struct CountRow {
    pub bucket: Micros,
    pub level: Option<Level>,
    pub service: String,
    pub count: u64,
}

read_only_row!(CountRow, 4, |values| {
    Ok(CountRow {
        bucket: i64::from_value(take(&mut values)?)?,
        level: Level::from_code(u8::from_value(take(&mut values)?)?),
        service: string(take(&mut values)?)?,
        count: u64::from_value(take(&mut values)?)?,
    })
});

/// A row of any shape, read by position.
pub struct Cells(std::vec::IntoIter<Value>);

impl Row for Cells {
    const COLUMN_COUNT: Option<usize> = None;

    fn column_names() -> Option<Vec<Cow<'static, str>>> {
        None
    }

    fn deserialize_row(map: Vec<(&str, &Type, Value)>) -> Result<Self, KlickhouseError> {
        let values: Vec<Value> = map.into_iter().map(|(_, _, value)| value).collect();
        Ok(Cells(values.into_iter()))
    }

    fn serialize_row(
        self,
        _: &klickhouse::IndexMap<String, Type>,
    ) -> Result<Vec<(Cow<'static, str>, Value)>, KlickhouseError> {
        Err(KlickhouseError::SerializeError("read-only row".into()))
    }
}

impl Cells {
    fn take(&mut self) -> Result<Value, StoreError> {
        self.0
            .next()
            .ok_or_else(|| StoreError::Internal("clickhouse answered too few columns".into()))
    }

    pub fn string(&mut self) -> Result<String, StoreError> {
        string(self.take()?).map_err(|e| StoreError::Internal(e.to_string()))
    }

    pub fn count(&mut self) -> Result<u64, StoreError> {
        u64::from_value(self.take()?).map_err(|e| StoreError::Internal(e.to_string()))
    }

    pub fn int(&mut self) -> Result<i64, StoreError> {
        i64::from_value(self.take()?).map_err(|e| StoreError::Internal(e.to_string()))
    }
}

/// A host of a cluster, from `client::cluster_hosts`.
pub struct Host {
    pub shard: u32,
    pub address: String,
    pub port: u16,
}

read_only_row!(Host, 3, |values| {
    Ok(Host {
        shard: u32::from_value(take(&mut values)?)?,
        address: string(take(&mut values)?)?,
        port: u16::from_value(take(&mut values)?)?,
    })
});

/// `(rows, min_time, max_time)` of a part, from `read::extent_statement`.
pub struct PartRow {
    rows: u64,
    first_second: u64,
    last_second: u64,
}

impl PartRow {
    pub fn span(self) -> windows::PartSpan {
        const SECOND: Micros = 1_000_000;
        let (start, end) = if self.last_second == 0 {
            // No time range in the metadata (not our layout): anywhere.
            (0, MAX_MICROS)
        } else if self.last_second as i64 >= schema::TS_CLAMP_SECONDS {
            // Logs from the clamp on share its second: up to the end of time.
            (self.first_second as i64 * SECOND, MAX_MICROS)
        } else {
            (
                self.first_second as i64 * SECOND,
                (self.last_second as i64 + 1) * SECOND,
            )
        };
        windows::PartSpan {
            rows: self.rows,
            start,
            end,
        }
    }
}

read_only_row!(PartRow, 3, |values| {
    Ok(PartRow {
        rows: u64::from_value(take(&mut values)?)?,
        first_second: u64::from_value(take(&mut values)?)?,
        last_second: u64::from_value(take(&mut values)?)?,
    })
});
