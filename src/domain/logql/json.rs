//! The answers in Loki's JSON: the `data` object of `query_range` and
//! `query` (`resultType`, `encodingFlags` with `categorize-labels`, then
//! `result`). Times of log entries are nanoseconds in strings; sample
//! times are seconds as numbers with millisecond precision (`4`,
//! `1738160741.883`); sample values are strings (`"2"`, `"NaN"`). The HTTP
//! layer wraps `data` with `status` and `stats`.

use super::metric::{MetricResult, Sample, Series};
use super::streams::{Entry, Stream};
use super::units::format_value;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// Streams as `data`: `{"resultType":"streams", ["encodingFlags":[…],]
/// "result":[…]}`.
pub struct StreamsData<'a> {
    pub streams: &'a [Stream],
    /// Three-element values and `encodingFlags`, for clients that sent
    /// `X-Loki-Response-Encoding-Flags: categorize-labels`.
    pub categorize_labels: bool,
}

/// Streams as a bare array (the `streams` of a tail frame).
pub struct StreamsResult<'a> {
    pub streams: &'a [Stream],
    pub categorize_labels: bool,
}

/// A metric result as `data`.
pub struct MetricData<'a>(pub &'a MetricResult);

struct LabelMap<'a>(&'a [(String, String)]);

impl Serialize for LabelMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Milliseconds as Loki writes sample times: seconds, up to three decimals.
pub fn seconds_text(timestamp_ms: i64) -> String {
    let whole = timestamp_ms.div_euclid(1000);
    let millis = timestamp_ms.rem_euclid(1000);
    if millis == 0 {
        whole.to_string()
    } else {
        let digits = format!("{millis:03}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

struct SampleValue(i64, f64);

impl Serialize for SampleValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let time =
            RawValue::from_string(seconds_text(self.0)).map_err(serde::ser::Error::custom)?;
        let mut pair = serializer.serialize_seq(Some(2))?;
        pair.serialize_element(&time)?;
        pair.serialize_element(&format_value(self.1))?;
        pair.end()
    }
}

struct EntryValue<'a> {
    entry: &'a Entry,
    categorize_labels: bool,
}

struct EntryLabels<'a>(&'a Entry);

impl Serialize for EntryLabels<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entry = self.0;
        let count = usize::from(!entry.structured_metadata.is_empty())
            + usize::from(!entry.parsed.is_empty());
        let mut map = serializer.serialize_map(Some(count))?;
        if !entry.structured_metadata.is_empty() {
            map.serialize_entry("structuredMetadata", &LabelMap(&entry.structured_metadata))?;
        }
        if !entry.parsed.is_empty() {
            map.serialize_entry("parsed", &LabelMap(&entry.parsed))?;
        }
        map.end()
    }
}

impl Serialize for EntryValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let length = if self.categorize_labels { 3 } else { 2 };
        let mut value = serializer.serialize_seq(Some(length))?;
        value.serialize_element(&self.entry.timestamp_nanos.to_string())?;
        value.serialize_element(&self.entry.line)?;
        if self.categorize_labels {
            value.serialize_element(&EntryLabels(self.entry))?;
        }
        value.end()
    }
}

struct StreamJson<'a> {
    stream: &'a Stream,
    categorize_labels: bool,
}

impl Serialize for StreamJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let values: Vec<EntryValue> = self
            .stream
            .entries
            .iter()
            .map(|entry| EntryValue {
                entry,
                categorize_labels: self.categorize_labels,
            })
            .collect();
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("stream", &LabelMap(&self.stream.labels))?;
        map.serialize_entry("values", &values)?;
        map.end()
    }
}

impl Serialize for StreamsResult<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_seq(Some(self.streams.len()))?;
        for stream in self.streams {
            list.serialize_element(&StreamJson {
                stream,
                categorize_labels: self.categorize_labels,
            })?;
        }
        list.end()
    }
}

impl Serialize for StreamsData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("resultType", "streams")?;
        if self.categorize_labels {
            map.serialize_entry("encodingFlags", &["categorize-labels"])?;
        }
        map.serialize_entry(
            "result",
            &StreamsResult {
                streams: self.streams,
                categorize_labels: self.categorize_labels,
            },
        )?;
        map.end()
    }
}

struct SeriesJson<'a>(&'a Series);

impl Serialize for SeriesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let values: Vec<SampleValue> = self
            .0
            .points
            .iter()
            .map(|(time, value)| SampleValue(*time, *value))
            .collect();
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("metric", &LabelMap(&self.0.labels))?;
        map.serialize_entry("values", &values)?;
        map.end()
    }
}

struct SampleJson<'a>(&'a Sample);

impl Serialize for SampleJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("metric", &LabelMap(&self.0.labels))?;
        map.serialize_entry("value", &SampleValue(self.0.timestamp_ms, self.0.value))?;
        map.end()
    }
}

impl Serialize for MetricData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        match self.0 {
            MetricResult::Matrix(series) => {
                map.serialize_entry("resultType", "matrix")?;
                let list: Vec<SeriesJson> = series.iter().map(SeriesJson).collect();
                map.serialize_entry("result", &list)?;
            }
            MetricResult::Vector(samples) => {
                map.serialize_entry("resultType", "vector")?;
                let list: Vec<SampleJson> = samples.iter().map(SampleJson).collect();
                map.serialize_entry("result", &list)?;
            }
            MetricResult::Scalar {
                timestamp_ms,
                value,
            } => {
                map.serialize_entry("resultType", "scalar")?;
                map.serialize_entry("result", &SampleValue(*timestamp_ms, *value))?;
            }
        }
        map.end()
    }
}
