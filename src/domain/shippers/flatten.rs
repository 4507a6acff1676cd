//! The shared flattening (`domain::flatten`) and the sink a shipper's
//! record fills: nested attributes to dotted keys, within the limits of
//! [`RecordBuilder`].

pub use crate::domain::flatten::{Arrays, FlatSink, FlattenJson, KeyPath, double_text};

use super::record::RecordBuilder;
use std::borrow::Cow;

impl FlatSink for RecordBuilder<'_> {
    fn leaf(&mut self, key: &str, value: Cow<'_, str>) {
        self.attribute_owned(key.to_string(), value.into_owned());
    }
}
