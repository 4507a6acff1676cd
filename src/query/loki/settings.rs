//! `[loki]`: how stored logs look to Grafana through the Loki API.

use crate::domain::logql::{LabelModel, sanitize_label_name};
use crate::domain::settings::InvalidSetting;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoki {
    /// Attribute keys (as stored, `k8s.namespace.name`) that are stream
    /// labels besides `service_name`, under their sanitized names.
    pub stream_labels: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct LokiConfig {
    /// See [`RawLoki::stream_labels`]; checked: no duplicates, none named
    /// like a built-in label.
    pub stream_labels: Vec<String>,
}

impl LokiConfig {
    pub fn label_model(&self) -> LabelModel {
        LabelModel::new(&self.stream_labels)
    }
}

/// Labels every log has already; an attribute cannot become one of them.
const BUILT_IN: &[&str] = &["service_name", "detected_level", "level"];

impl RawLoki {
    pub fn validate(&self) -> Result<LokiConfig, InvalidSetting> {
        let mut seen: Vec<String> = Vec::new();
        for key in &self.stream_labels {
            let label = sanitize_label_name(key);
            if key.trim().is_empty() {
                return Err(InvalidSetting::new(
                    "loki.stream_labels",
                    "an entry is empty: name attribute keys such as \"env\"",
                ));
            }
            if BUILT_IN.contains(&label.as_str()) {
                return Err(InvalidSetting::new(
                    "loki.stream_labels",
                    format!("{key:?} is the built-in label {label}: leave it out"),
                ));
            }
            if seen.contains(&label) {
                return Err(InvalidSetting::new(
                    "loki.stream_labels",
                    format!("two entries become the label {label}: keep one"),
                ));
            }
            seen.push(label);
        }
        Ok(LokiConfig {
            stream_labels: self.stream_labels.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(keys: &[&str]) -> RawLoki {
        RawLoki {
            stream_labels: keys.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn stream_labels_are_checked() {
        assert!(raw(&[]).validate().is_ok());
        assert!(raw(&["k8s.namespace.name", "env"]).validate().is_ok());
        for bad in [&["a.b", "a_b"][..], &["level"], &[" "], &["service.name"]] {
            let error = raw(bad).validate().unwrap_err();
            assert_eq!(error.key, "loki.stream_labels", "{bad:?}");
        }
    }
}
