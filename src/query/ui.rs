//! `[ui]`: settings of the dashboard the query role serves, and
//! `GET /api/ui`, which hands them to it. One so far: `trace_url`, the
//! tracing UI (Tempo, Jaeger, ...) a log's trace id links out to.

use crate::domain::settings::InvalidSetting;
use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};

/// What `trace_url` must contain: replaced by the log's trace id.
pub const TRACE_ID_PLACEHOLDER: &str = "{trace_id}";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUi {
    /// Empty: no link out.
    pub trace_url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UiConfig {
    /// An `http(s)://` URL holding `{trace_id}`; `None`: the dashboard shows
    /// no link to a tracing UI.
    pub trace_url: Option<String>,
}

impl RawUi {
    pub fn validate(&self) -> Result<UiConfig, InvalidSetting> {
        let url = self.trace_url.trim();
        if url.is_empty() {
            return Ok(UiConfig::default());
        }
        check_trace_url(url).map_err(|problem| InvalidSetting::new("ui.trace_url", problem))?;
        Ok(UiConfig {
            trace_url: Some(url.to_string()),
        })
    }
}

/// An `http://` or `https://` URL with a host that holds `{trace_id}`,
/// without blanks.
fn check_trace_url(url: &str) -> Result<(), String> {
    const EXAMPLE: &str = "such as https://tempo.example/explore?traceId={trace_id}";
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?}: use an http:// or https:// URL {EXAMPLE}"))?;
    if !url.contains(TRACE_ID_PLACEHOLDER) {
        return Err(format!(
            "{url:?} has no {TRACE_ID_PLACEHOLDER} for the trace id: write a URL {EXAMPLE}"
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(TRACE_ID_PLACEHOLDER) {
        return Err(format!("{url:?} has no host: write a URL {EXAMPLE}"));
    }
    // Braces and quotes (Grafana's Explore links hold JSON) are left to the
    // browser to encode, as it does for a link; blanks end a link early.
    if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{url:?} is not a valid URL: spaces and control characters must be percent-encoded (%20)"
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct UiBody<'a> {
    trace_url: Option<&'a str>,
}

/// `GET /api/ui`'s answer (routed in `query/mod.rs`, which holds the
/// query state these settings live in).
pub fn answer(config: &UiConfig) -> HttpResponse {
    HttpResponse::Ok().json(UiBody {
        trace_url: config.trace_url.as_deref(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(url: &str) -> Result<UiConfig, InvalidSetting> {
        RawUi {
            trace_url: url.into(),
        }
        .validate()
    }

    #[test]
    fn unset_is_no_link() {
        assert_eq!(validate("").unwrap().trace_url, None);
        assert_eq!(validate("   ").unwrap().trace_url, None);
    }

    #[test]
    fn tracing_uis_urls_are_taken_as_written() {
        for url in [
            "https://tempo.example/explore?traceId={trace_id}",
            "http://jaeger:16686/trace/{trace_id}",
            "https://grafana.example/d/x?var-trace={trace_id}&orgId=1#panel",
            r#"https://grafana.example/explore?left={"queries":[{"query":"{trace_id}"}]}"#,
        ] {
            assert_eq!(validate(url).unwrap().trace_url.as_deref(), Some(url));
        }
        assert_eq!(
            validate(" https://t.example/{trace_id} ")
                .unwrap()
                .trace_url
                .as_deref(),
            Some("https://t.example/{trace_id}")
        );
    }

    #[test]
    fn a_bad_url_names_the_key_and_the_fix() {
        for (url, says) in [
            ("tempo.example/{trace_id}", "http:// or https://"),
            ("ftp://tempo.example/{trace_id}", "http:// or https://"),
            ("https://tempo.example/explore", "{trace_id}"),
            ("https:///{trace_id}", "no host"),
            ("https://{trace_id}/x", "no host"),
            ("https://tempo.example/a b/{trace_id}", "not a valid URL"),
            ("https://tempo.example/\t{trace_id}", "not a valid URL"),
        ] {
            let error = validate(url).expect_err(url);
            assert_eq!(error.key, "ui.trace_url");
            assert!(error.problem.contains(says), "{url}: {}", error.problem);
        }
    }
}
