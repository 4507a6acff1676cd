//! The monitoring kit in `deploy/`: the Grafana dashboard's PromQL and the
//! Prometheus alert rules pass `promtool`, the rules' unit tests pass and
//! cover every alert both ways, and every metric, label and label value they
//! read exists in a real scrape of the binary, so a renamed metric cannot
//! leave a dashboard panel or an alert silently empty.

use super::{assert_succeeds, read_repository_file, repository_file, system_tool, yaml_documents};
use crate::support::{Launch, Server, eventually, free_port, log};
use awc::http::StatusCode;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

const DASHBOARD: &str = "deploy/grafana/oglogstream.json";
const ALERT_RULES: &str = "deploy/prometheus/oglogstream-alerts.yaml";
const ALERT_TESTS: &str = "deploy/prometheus/oglogstream-alerts.test.yaml";
const PROMETHEUS_CONFIG: &str = "deploy/prometheus/prometheus.yml";

/// Labels Prometheus adds to every scraped series (target labels).
const TARGET_LABELS: &[&str] = &["job", "instance"];
/// Series Prometheus makes itself, not found in any `/metrics`.
const SYNTHETIC_METRICS: &[&str] = &["up"];

fn promtool() -> Command {
    Command::new(system_tool("promtool", "prometheus"))
}

/// `(where, expression)` for every query of every dashboard panel, rows'
/// nested panels included, Grafana's interval variables replaced by a
/// duration (promtool knows no variables; any other variable fails).
fn dashboard_expressions() -> Vec<(String, String)> {
    let dashboard: Value =
        serde_json::from_str(&read_repository_file(DASHBOARD)).expect("dashboard JSON");
    let mut panels: Vec<&Value> = Vec::new();
    let mut pending: Vec<&Value> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .collect();
    while let Some(panel) = pending.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            pending.extend(nested);
        }
        panels.push(panel);
    }
    let mut expressions = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("untitled");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
            let expr = expr
                .replace("$__rate_interval", "5m")
                .replace("$__interval", "1m");
            assert!(
                !expr.contains('$'),
                "panel {title:?}: unknown Grafana variable in {expr:?}"
            );
            expressions.push((format!("panel {title:?}"), expr));
        }
    }
    expressions
}

/// The alert rules file, parsed.
fn alert_rules() -> Vec<Value> {
    let documents = yaml_documents(ALERT_RULES);
    documents[0]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules").clone())
        .collect()
}

fn alert_expressions() -> Vec<(String, String)> {
    alert_rules()
        .iter()
        .map(|rule| {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            let expr = rule["expr"].as_str().expect("expr");
            (format!("alert {name}"), expr.to_string())
        })
        .collect()
}

#[test]
fn every_dashboard_expression_passes_promtool() {
    let expressions = dashboard_expressions();
    // The panels the deployment promises (issue 14), by what they read.
    let everything = expressions
        .iter()
        .map(|(_, expr)| expr.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for wanted in [
        "by (protocol) (rate(oglogstream_logs_accepted_total",
        "status=\"503\"",
        "oglogstream_queue_depth",
        "oglogstream_store_write_seconds_bucket",
        "oglogstream_store_write_failures_total",
        "oglogstream_live_clients",
        "by (le, route) (rate(oglogstream_http_request_duration_seconds_bucket{route=~\"/api/.*\"}",
    ] {
        assert!(everything.contains(wanted), "no panel reads {wanted:?}");
    }

    // Each expression as a recording rule: `promtool check rules` parses
    // and type-checks it as Prometheus would.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (index, (_, expr)) in expressions.iter().enumerate() {
        let quoted = serde_json::to_string(expr).expect("JSON string");
        rules.push_str(&format!(
            "      - record: dashboard:query_{index}\n        expr: {quoted}\n"
        ));
    }
    let workspace = tempfile::tempdir().expect("temp dir");
    let file = workspace.path().join("dashboard-rules.yaml");
    std::fs::write(&file, &rules).expect("write rules");
    let output = assert_succeeds(
        "promtool check rules (the dashboard's expressions)",
        promtool().arg("check").arg("rules").arg(&file),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("SUCCESS: {} rules found", expressions.len())),
        "{stdout}"
    );
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    assert_succeeds(
        "promtool check rules",
        promtool()
            .arg("check")
            .arg("rules")
            .arg(repository_file(ALERT_RULES)),
    );
    // Relative paths in the test file resolve from its directory.
    assert_succeeds(
        "promtool test rules",
        promtool()
            .current_dir(repository_file("deploy/prometheus"))
            .arg("test")
            .arg("rules")
            .arg("oglogstream-alerts.test.yaml"),
    );
    // The example Prometheus configuration loads the rules (promtool checks
    // the rule files it names too).
    let output = assert_succeeds(
        "promtool check config",
        promtool()
            .arg("check")
            .arg("config")
            .arg(repository_file(PROMETHEUS_CONFIG)),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("oglogstream-alerts.yaml"), "{stdout}");
}

/// Every alert is tested firing (a non-empty `exp_alerts`) and not firing
/// (an empty one), so a rule that always or never fires fails its tests.
#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    let mut fired = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    let tests = yaml_documents(ALERT_TESTS);
    for test in tests[0]["tests"].as_array().expect("tests") {
        for case in test["alert_rule_test"].as_array().into_iter().flatten() {
            let name = case["alertname"].as_str().expect("alertname").to_string();
            match case["exp_alerts"].as_array().map(Vec::len) {
                Some(0) | None => quiet.insert(name),
                Some(_) => fired.insert(name),
            };
        }
    }
    let alerts: BTreeSet<String> = alert_rules()
        .iter()
        .map(|rule| rule["alert"].as_str().expect("alert").to_string())
        .collect();
    for required in [
        "OgLogStreamIngestStalled",
        "OgLogStreamDeadLettersGrowing",
        "OgLogStreamStoreDown",
        "OgLogStreamQueueNearFull",
    ] {
        assert!(alerts.contains(required), "no {required} alert");
    }
    for alert in &alerts {
        assert!(fired.contains(alert), "{alert} has no test where it fires");
        assert!(
            quiet.contains(alert),
            "{alert} has no test where it stays quiet"
        );
    }
}

// ---- what an expression reads ------------------------------------------

#[derive(Debug, PartialEq)]
struct Matcher {
    label: String,
    operator: String,
    value: String,
}

#[derive(Debug, PartialEq)]
struct Selector {
    metric: String,
    matchers: Vec<Matcher>,
}

/// The series selectors of a PromQL expression and the labels it groups or
/// matches by (`by`, `without`, `on`, `ignoring`, `group_left/right`).
#[derive(Debug, Default, PartialEq)]
struct Reads {
    selectors: Vec<Selector>,
    grouping_labels: Vec<String>,
}

const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const OPERATOR_KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];
/// Aggregations may take `by (...)` between their name and their `(`.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// A small PromQL scanner, enough for what our dashboard and rules use:
/// identifiers followed by `(` or named in the tables above are functions
/// and keywords, every other identifier is a metric name; strings, numbers,
/// durations and `[...]` ranges are skipped. Panics on a bare `{...}`
/// selector (by `__name__`), which it does not resolve.
fn promql_reads(expr: &str) -> Reads {
    let chars: Vec<char> = expr.chars().collect();
    let mut reads = Reads::default();
    let mut i = 0;
    let skip_spaces = |mut i: usize| {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let identifier_at = |mut i: usize| {
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
        {
            i += 1;
        }
        (chars[start..i].iter().collect::<String>(), i)
    };
    // A quoted string starting at `i`: its unescaped text and the index after it.
    let string_at = |i: usize| {
        let quote = chars[i];
        let mut text = String::new();
        let mut j = i + 1;
        while j < chars.len() && chars[j] != quote {
            if chars[j] == '\\' && quote != '`' {
                j += 1;
            }
            text.push(chars[j]);
            j += 1;
        }
        assert!(j < chars.len(), "unterminated string in {expr:?}");
        (text, j + 1)
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = string_at(i).1;
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let (word, end) = identifier_at(i);
            let next = skip_spaces(end);
            i = end;
            if LABEL_LIST_KEYWORDS.contains(&word.as_str()) {
                if chars.get(next) == Some(&'(') {
                    let close = (next..chars.len())
                        .find(|&k| chars[k] == ')')
                        .unwrap_or_else(|| panic!("unclosed label list in {expr:?}"));
                    let list: String = chars[next + 1..close].iter().collect();
                    reads.grouping_labels.extend(
                        list.split(',')
                            .map(str::trim)
                            .filter(|label| !label.is_empty())
                            .map(str::to_string),
                    );
                    i = close + 1;
                }
            } else if OPERATOR_KEYWORDS.contains(&word.as_str())
                || AGGREGATIONS.contains(&word.as_str())
                || chars.get(next) == Some(&'(')
            {
                // a keyword or a function
            } else {
                let mut selector = Selector {
                    metric: word,
                    matchers: Vec::new(),
                };
                if chars.get(next) == Some(&'{') {
                    let mut k = next + 1;
                    loop {
                        k = skip_spaces(k);
                        match chars.get(k) {
                            Some('}') => break,
                            Some(',') => {
                                k += 1;
                                continue;
                            }
                            None => panic!("unclosed selector in {expr:?}"),
                            _ => {}
                        }
                        let (label, after_label) = identifier_at(k);
                        assert!(!label.is_empty(), "bad matcher in {expr:?}");
                        k = skip_spaces(after_label);
                        let operator = ["=~", "!=", "!~", "="]
                            .into_iter()
                            .find(|op| chars[k..].starts_with(&op.chars().collect::<Vec<_>>()))
                            .unwrap_or_else(|| panic!("no matcher operator in {expr:?}"));
                        k = skip_spaces(k + operator.len());
                        let (value, after_value) = string_at(k);
                        k = after_value;
                        selector.matchers.push(Matcher {
                            label,
                            operator: operator.to_string(),
                            value,
                        });
                    }
                    i = k + 1;
                }
                reads.selectors.push(selector);
            }
        } else if c == '{' {
            panic!("a selector without a metric name in {expr:?}: name the metric");
        } else {
            i += 1;
        }
    }
    reads
}

#[test]
fn the_promql_scanner_finds_metrics_matchers_and_grouping_labels() {
    let reads = promql_reads(
        "histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{route=~\"/api/.*\", status!='5\\'0'}[5m] offset 1h)))\n  and on (instance) b > 0.8 unless sum(c) without(x)",
    );
    let matcher = |label: &str, operator: &str, value: &str| Matcher {
        label: label.into(),
        operator: operator.into(),
        value: value.into(),
    };
    assert_eq!(
        reads,
        Reads {
            selectors: vec![
                Selector {
                    metric: "a_bucket".into(),
                    matchers: vec![
                        matcher("route", "=~", "/api/.*"),
                        matcher("status", "!=", "5'0")
                    ],
                },
                Selector {
                    metric: "b".into(),
                    matchers: vec![],
                },
                Selector {
                    metric: "c".into(),
                    matchers: vec![],
                },
            ],
            grouping_labels: vec!["le".into(), "route".into(), "instance".into(), "x".into()],
        }
    );
}

// ---- a real scrape ------------------------------------------------------

/// Sample name -> the label sets it has, from Prometheus text-format pages.
type Scrape = BTreeMap<String, Vec<BTreeMap<String, String>>>;

fn parse_exposition(text: &str, scrape: &mut Scrape) {
    for line in text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
    {
        let name_end = line.find(['{', ' ']).expect("a sample line");
        let name = line[..name_end].to_string();
        let mut labels = BTreeMap::new();
        if line[name_end..].starts_with('{') {
            let body = &line[name_end + 1..line.rfind('}').expect("closing brace")];
            let mut rest = body;
            while let Some(equals) = rest.find("=\"") {
                let label = rest[..equals].trim_start_matches(',').to_string();
                let mut value = String::new();
                let mut chars = rest[equals + 2..].char_indices();
                let mut end = 0;
                while let Some((offset, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(if escaped == 'n' { '\n' } else { escaped });
                            }
                        }
                        '"' => {
                            end = equals + 2 + offset + 1;
                            break;
                        }
                        _ => value.push(c),
                    }
                }
                labels.insert(label, value);
                rest = &rest[end..];
            }
        }
        scrape.entry(name).or_default().push(labels);
    }
}

async fn scrape(server: &Server) -> String {
    let mut response = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.body().limit(8 << 20).await.expect("body");
    String::from_utf8(body.to_vec()).expect("UTF-8 metrics")
}

/// Whether `pattern` (a PromQL regex, anchored at both ends) matches `value`.
fn fully_matches(pattern: &str, value: &str) -> bool {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .unwrap_or_else(|e| panic!("bad regex {pattern:?}: {e}"))
        .is_match(value)
}

/// Problems with one expression against the scrape: unknown metrics, labels
/// no series of that metric has, `=`/`=~` values no series has.
fn check_against_scrape(place: &str, expr: &str, scrape: &Scrape) -> Vec<String> {
    let reads = promql_reads(expr);
    let mut problems = Vec::new();
    let mut labels_read: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
    for selector in &reads.selectors {
        let metric = selector.metric.as_str();
        if SYNTHETIC_METRICS.contains(&metric) {
            continue;
        }
        let Some(series) = scrape.get(metric) else {
            problems.push(format!("{place}: no metric {metric} in /metrics ({expr})"));
            continue;
        };
        labels_read.extend(
            series
                .iter()
                .flat_map(|labels| labels.keys().map(String::as_str)),
        );
        for matcher in &selector.matchers {
            if TARGET_LABELS.contains(&matcher.label.as_str()) {
                continue;
            }
            let values: Vec<&str> = series
                .iter()
                .filter_map(|labels| labels.get(&matcher.label).map(String::as_str))
                .collect();
            let found = match matcher.operator.as_str() {
                "=" => values.contains(&matcher.value.as_str()),
                "=~" => values
                    .iter()
                    .any(|value| fully_matches(&matcher.value, value)),
                // Negative matchers select what is left: the label must exist.
                _ => !values.is_empty(),
            };
            if !found {
                problems.push(format!(
                    "{place}: no {metric} series has {}{}{:?}; its values: {values:?} ({expr})",
                    matcher.label, matcher.operator, matcher.value
                ));
            }
        }
    }
    for label in &reads.grouping_labels {
        if !labels_read.contains(label.as_str()) {
            problems.push(format!(
                "{place}: groups by {label}, which no metric it reads has ({expr})"
            ));
        }
    }
    problems
}

/// One `--role all` instance with traffic on every route the panels split
/// by, and one `--role ingest` instance whose NATS is away (its `/log`
/// answers 503, its bus is down): together they show every series a
/// deployment shows. Then every metric, label and `=`/`=~` value the
/// dashboard and the alerts read must be among them.
#[actix_web::test]
async fn every_metric_and_label_the_dashboard_and_alerts_read_is_in_a_real_scrape() {
    let all = Server::start().await;
    let unreachable_nats = format!("nats://127.0.0.1:{}", free_port());
    let ingest = Server::launch(Launch {
        no_wait: true,
        ..Launch::default()
            .arg("--role")
            .arg("ingest")
            .env("NATS_URL", &unreachable_nats)
    })
    .await;

    for i in 0..3 {
        all.accept(&log("info", "scrape", &format!("m{i}"))).await;
    }
    all.wait_stored(3).await;
    for path in ["/api/logs", "/api/stats", "/api/histogram", "/api/services"] {
        let (status, body) = all.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    eventually(
        "ingest without NATS to answer 503",
        Duration::from_secs(30),
        || async {
            let response = ingest
                .client
                .post(ingest.url("/log"))
                .insert_header(("Content-Type", "application/json"))
                .send_body(log("info", "scrape", "refused").to_string())
                .await
                .ok()?;
            (response.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(())
        },
    )
    .await;

    let mut samples = Scrape::new();
    let all_metrics = scrape(&all).await;
    let ingest_metrics = scrape(&ingest).await;
    // The new dependency gauges, as /health sees the parts.
    assert!(
        all_metrics.contains("oglogstream_dependency_up{dependency=\"bus\"} 1")
            && all_metrics.contains("oglogstream_dependency_up{dependency=\"storage\"} 1")
            && all_metrics.contains("oglogstream_queue_capacity 20000"),
        "{all_metrics}"
    );
    assert!(
        ingest_metrics.contains("oglogstream_dependency_up{dependency=\"bus\"} 0")
            && !ingest_metrics.contains("dependency=\"storage\"")
            && !ingest_metrics.contains("oglogstream_queue_capacity"),
        "{ingest_metrics}"
    );
    parse_exposition(&all_metrics, &mut samples);
    parse_exposition(&ingest_metrics, &mut samples);

    let expressions = dashboard_expressions()
        .into_iter()
        .chain(alert_expressions())
        .collect::<Vec<_>>();
    let problems: Vec<String> = expressions
        .iter()
        .flat_map(|(place, expr)| check_against_scrape(place, expr, &samples))
        .collect();
    assert!(
        problems.is_empty(),
        "the dashboard or the alerts read what /metrics does not have:\n{}\n\nmetrics seen: {:?}",
        problems.join("\n"),
        samples.keys().collect::<Vec<_>>()
    );

    // The check itself is not blind: a misspelled metric, label or value is caught.
    for wrong in [
        "rate(oglogstream_logs_acepted_total[5m])",
        "sum by (protocl) (oglogstream_logs_accepted_total)",
        "oglogstream_logs_rejected_total{reason=\"overload\"}",
    ] {
        assert!(
            !check_against_scrape("probe", wrong, &samples).is_empty(),
            "{wrong} passed the check"
        );
    }
}

/// compose.yaml's `monitoring` profile: Prometheus gets this directory's
/// configuration and rules and scrapes the role services; Grafana gets the
/// provisioning files, the dashboard where its provider looks, and the
/// Prometheus service as its data source.
#[test]
fn the_compose_monitoring_profile_serves_these_rules_and_this_dashboard() {
    let resolved = super::compose_config_of(&["compose.yaml"], Some("monitoring"));
    let config = super::parse_yaml("docker-compose config", &resolved).remove(0);
    let services = &config["services"];
    let mounts = |service: &str| super::compose_mounts(&services[service]);
    let mounted = |service: &str, relative: &str, target: &str| {
        let source = repository_file(relative).display().to_string();
        assert!(
            mounts(service).contains(&(source, target.to_string())),
            "{service} mounts {relative} at {target}: {:?}",
            mounts(service)
        );
    };
    mounted("prometheus", "deploy/prometheus", "/etc/prometheus");
    mounted(
        "grafana",
        "deploy/grafana/provisioning",
        "/etc/grafana/provisioning",
    );
    let provider = &yaml_documents("deploy/grafana/provisioning/dashboards/oglogstream.yaml")[0];
    let dashboards = provider["providers"][0]["options"]["path"]
        .as_str()
        .expect("path");
    mounted(
        "grafana",
        DASHBOARD,
        &format!("{dashboards}/oglogstream.json"),
    );
    let datasource = &yaml_documents("deploy/grafana/provisioning/datasources/prometheus.yaml")[0];
    assert_eq!(
        datasource["datasources"][0]["url"], "http://prometheus:9090",
        "Grafana reads the profile's Prometheus"
    );
    let prometheus = &yaml_documents(PROMETHEUS_CONFIG)[0];
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(
        job["job_name"], "oglogstream",
        "OgLogStreamInstanceDown matches this job"
    );
    let names = job["dns_sd_configs"][0]["names"].as_array().expect("names");
    for role in ["ingest", "process", "query"] {
        assert!(services[role].is_object(), "a {role} service");
        assert!(
            names.iter().any(|name| name == role),
            "Prometheus scrapes {role}"
        );
    }
}

/// The monitoring profile's Grafana also reads the logs: a Loki data
/// source pointing at HAProxy (whose query backend serves the Loki query
/// API), with a service of that name in the same compose file.
#[test]
fn grafana_reads_oglogstream_as_a_loki_data_source() {
    let resolved = super::compose_config_of(&["compose.yaml"], Some("monitoring"));
    let config = super::parse_yaml("docker-compose config", &resolved).remove(0);
    let services = &config["services"];
    let source = &yaml_documents("deploy/grafana/provisioning/datasources/oglogstream-loki.yaml")
        [0]["datasources"][0];
    assert_eq!(source["type"], "loki");
    assert_eq!(source["access"], "proxy");
    let url = source["url"].as_str().expect("url");
    let host = url
        .trim_start_matches("http://")
        .split(':')
        .next()
        .expect("a host");
    assert!(services[host].is_object(), "{url} names a compose service");
    let ports = serde_json::to_string(&services[host]["ports"]).expect("ports");
    assert!(
        url.ends_with(":80") && ports.contains("\"target\":80"),
        "{url} is HAProxy's HTTP port: {ports}"
    );
    let grafana_depends = serde_json::to_string(&services["grafana"]["depends_on"]).expect("deps");
    assert!(grafana_depends.contains(host), "{grafana_depends}");
    // The Prometheus data source stays the default (the dashboard's).
    let prometheus = &yaml_documents("deploy/grafana/provisioning/datasources/prometheus.yaml")[0];
    assert_eq!(prometheus["datasources"][0]["isDefault"], true);
    assert_eq!(source["isDefault"], false);
}
