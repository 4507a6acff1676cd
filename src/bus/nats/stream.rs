//! Stream administration for the NATS bus, over JetStream's JSON API.
//!
//! - [`ensure`] brings an existing stream up to what this bus needs without
//!   ever lowering what an operator set: it reads the stream's configuration
//!   as JSON, raises only what is short (subjects, replicas, limits) and
//!   sends that same configuration back, so fields this client does not know
//!   (or that a newer server added) survive. Sending a typed configuration
//!   instead wrote `num_replicas: 0`, which a 2.9 server applies as a
//!   scale-down to one replica.
//! - [`purge_stale_acked`] removes acknowledged messages that stayed in a
//!   work-queue stream (a NATS 2.9 failover bug: after a leader change, the
//!   new leader can keep messages the consumer had acknowledged, and they
//!   count against `max_bytes` for ever).

use async_nats::jetstream::context::Context;
use serde_json::{Value, json};
use std::time::Duration;

/// JetStream's error codes this module tells apart.
const STREAM_NOT_FOUND: u64 = 10059;
const CONSUMER_NOT_FOUND: u64 = 10014;
const STREAM_NAME_IN_USE: u64 = 10058;

/// What a stream must have; anything else is left as it is.
pub struct Wanted {
    /// A subject the stream must capture.
    pub subject: Option<String>,
    /// At least this many replicas.
    pub replicas: usize,
    /// At least this many bytes (unless unlimited), when set.
    pub max_bytes: Option<i64>,
    pub max_age: MaxAge,
}

pub enum MaxAge {
    /// At least this long (unless unlimited): an operator may keep more.
    AtLeast(Duration),
    /// Exactly this long: it is the bucket's lease TTL, ours to set.
    Exactly(Duration),
}

/// A JetStream API answer, or the reason there is none.
async fn api(jetstream: &Context, subject: String, payload: Value) -> Result<Value, String> {
    jetstream
        .request::<_, _, Value>(subject.clone(), &payload)
        .await
        .map_err(|error| format!("{subject}: {error}"))
}

/// The answer's JetStream error code and description, if it is an error.
fn api_error(answer: &Value) -> Option<(u64, String)> {
    let error = answer.get("error")?;
    Some((
        error["err_code"].as_u64().unwrap_or(0),
        error["description"]
            .as_str()
            .unwrap_or("unknown error")
            .to_string(),
    ))
}

/// The stream's info (`config`, `state`, `cluster`), or `None` when
/// JetStream answers that it does not exist. "No responders" and timeouts
/// are errors, never `None`: during a leader election the stream is there
/// but nobody answers for it.
pub async fn info(jetstream: &Context, stream: &str) -> Result<Option<Value>, String> {
    let answer = api(jetstream, format!("STREAM.INFO.{stream}"), json!({})).await?;
    match api_error(&answer) {
        None => Ok(Some(answer)),
        Some((STREAM_NOT_FOUND, _)) => Ok(None),
        Some((code, description)) => Err(format!("stream {stream}: {description} ({code})")),
    }
}

/// Creates a stream from its JSON configuration; one that exists already
/// (another instance won the race) is fine.
pub async fn create(jetstream: &Context, stream: &str, config: Value) -> Result<(), String> {
    let answer = api(jetstream, format!("STREAM.CREATE.{stream}"), config).await?;
    match api_error(&answer) {
        None | Some((STREAM_NAME_IN_USE, _)) => Ok(()),
        Some((code, description)) => Err(format!(
            "cannot create stream {stream}: {description} ({code})"
        )),
    }
}

/// The configuration of a key-value bucket's stream, as JetStream's
/// key-value clients create it (one revision per key; `ttl` as `max_age`,
/// zero for none). Written here rather than through async-nats's
/// `create_key_value`, which first reads the account's info and fails to
/// decode a clustered 2.9 server's answer.
pub fn bucket_config(bucket: &str, ttl: Duration, replicas: usize) -> Value {
    json!({
        "name": format!("KV_{bucket}"),
        "subjects": [format!("$KV.{bucket}.>")],
        "retention": "limits",
        "max_msgs_per_subject": 1,
        "max_age": ttl.as_nanos() as u64,
        "storage": "file",
        "num_replicas": replicas,
        "discard": "new",
        "allow_rollup_hdrs": true,
        "deny_delete": true,
        "allow_direct": true,
    })
}

/// Brings the existing stream (`info` from [`info`]) up to `wanted`; the
/// configuration in force afterwards.
pub async fn ensure(
    jetstream: &Context,
    stream: &str,
    info: Value,
    wanted: &Wanted,
) -> Result<Value, String> {
    let mut config = info["config"].clone();
    let changes = reconcile(&mut config, wanted);
    if changes.is_empty() {
        return Ok(config);
    }
    let answer = api(jetstream, format!("STREAM.UPDATE.{stream}"), config).await?;
    if let Some((code, description)) = api_error(&answer) {
        return Err(format!(
            "cannot update stream {stream} ({}): {description} ({code})",
            changes.join(", ")
        ));
    }
    tracing::info!(stream, changes = %changes.join(", "), "NATS stream updated");
    Ok(answer["config"].clone())
}

/// Raises what `config` lacks of `wanted`; what it changed, for the log.
pub fn reconcile(config: &mut Value, wanted: &Wanted) -> Vec<String> {
    let mut changes = Vec::new();
    if let Some(subject) = &wanted.subject {
        let subjects = &mut config["subjects"];
        if !subjects.is_array() {
            *subjects = json!([]);
        }
        if let Some(list) = subjects.as_array_mut()
            && !list.iter().any(|s| s.as_str() == Some(subject))
        {
            list.push(json!(subject));
            changes.push(format!("subject {subject} added"));
        }
    }
    // 0 (or absent) means 1 to the server.
    let replicas = config["num_replicas"].as_u64().unwrap_or(1).max(1);
    if wanted.replicas as u64 > replicas {
        config["num_replicas"] = json!(wanted.replicas);
        changes.push(format!("replicas {replicas} -> {}", wanted.replicas));
    }
    // Limits: -1 (bytes) and 0 (age) mean unlimited, which nothing raises.
    if let Some(bytes) = wanted.max_bytes {
        let current = config["max_bytes"].as_i64().unwrap_or(-1);
        if current >= 0 && bytes > current {
            config["max_bytes"] = json!(bytes);
            changes.push(format!("max_bytes {current} -> {bytes}"));
        }
    }
    let current_age = config["max_age"].as_u64().unwrap_or(0);
    match wanted.max_age {
        MaxAge::AtLeast(age) => {
            let age = age.as_nanos() as u64;
            if current_age != 0 && age > current_age {
                config["max_age"] = json!(age);
                changes.push(format!("max_age {current_age}ns -> {age}ns"));
            }
        }
        MaxAge::Exactly(age) => {
            let age = age.as_nanos() as u64;
            if current_age != age {
                config["max_age"] = json!(age);
                changes.push(format!("max_age {current_age}ns -> {age}ns"));
                // The server refuses a duplicate window longer than max_age.
                if config["duplicate_window"].as_u64().is_some_and(|w| w > age) {
                    config["duplicate_window"] = json!(age);
                }
            }
        }
    }
    changes
}

/// Purges the messages of `stream` (whose [`info`] is `stream_info`) below
/// `consumer`'s ack floor: every one of them was acknowledged, so no
/// consumer will deliver it again. How many it purged. Only on a stream whose
/// one consumer is ours: another consumer's messages are not ours to judge.
pub async fn purge_stale_acked(
    jetstream: &Context,
    stream: &str,
    stream_info: &Value,
    consumer: &str,
) -> Result<u64, String> {
    let state = &stream_info["state"];
    let messages = state["messages"].as_u64().unwrap_or(0);
    let first = state["first_seq"].as_u64().unwrap_or(0);
    let consumers = state["consumer_count"].as_u64().unwrap_or(0);
    if messages == 0 || first == 0 || consumers != 1 {
        return Ok(0);
    }
    let answer = api(
        jetstream,
        format!("CONSUMER.INFO.{stream}.{consumer}"),
        json!({}),
    )
    .await?;
    match api_error(&answer) {
        None => {}
        Some((CONSUMER_NOT_FOUND | STREAM_NOT_FOUND, _)) => return Ok(0),
        Some((code, description)) => {
            return Err(format!("consumer {consumer}: {description} ({code})"));
        }
    }
    // Everything up to the ack floor is acknowledged; it only ever rises,
    // so reading it after the stream's state is safe.
    let ack_floor = answer["ack_floor"]["stream_seq"].as_u64().unwrap_or(0);
    if first > ack_floor {
        return Ok(0);
    }
    // `seq`: purge every message before this sequence.
    let answer = api(
        jetstream,
        format!("STREAM.PURGE.{stream}"),
        json!({ "seq": ack_floor + 1 }),
    )
    .await?;
    if let Some((code, description)) = api_error(&answer) {
        return Err(format!(
            "cannot purge stream {stream}: {description} ({code})"
        ));
    }
    Ok(answer["purged"].as_u64().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(replicas: usize) -> Wanted {
        Wanted {
            subject: Some("logs.work".into()),
            replicas,
            max_bytes: Some(1 << 30),
            max_age: MaxAge::AtLeast(Duration::from_secs(3600)),
        }
    }

    #[test]
    fn never_lowers_replicas_or_limits_and_keeps_unknown_fields() {
        let mut config = json!({
            "name": "S", "subjects": ["logs.work", "other"], "num_replicas": 3,
            "max_bytes": 4i64 << 30, "max_age": 7_200_000_000_000_u64,
            "retention": "workqueue", "a_field_from_a_newer_server": {"x": 1}
        });
        let before = config.clone();
        assert!(reconcile(&mut config, &wanted(1)).is_empty());
        assert_eq!(config, before, "nothing to do: nothing sent");

        let mut unlimited =
            json!({"subjects": ["logs.work"], "num_replicas": 1, "max_bytes": -1, "max_age": 0});
        assert!(reconcile(&mut unlimited, &wanted(1)).is_empty());
    }

    #[test]
    fn raises_what_is_short() {
        let mut config = json!({
            "subjects": ["other"], "num_replicas": 0, "max_bytes": 1024,
            "max_age": 60_000_000_000u64, "kept": true
        });
        let changes = reconcile(&mut config, &wanted(3));
        assert_eq!(changes.len(), 4, "{changes:?}");
        assert_eq!(config["subjects"], json!(["other", "logs.work"]));
        assert_eq!(config["num_replicas"], 3);
        assert_eq!(config["max_bytes"], 1i64 << 30);
        assert_eq!(config["max_age"], 3_600_000_000_000u64);
        assert_eq!(config["kept"], true);
    }

    #[test]
    fn a_lease_bucket_gets_exactly_its_ttl() {
        let mut config = json!({"num_replicas": 3, "max_age": 60_000_000_000u64, "duplicate_window": 60_000_000_000u64});
        let wanted = Wanted {
            subject: None,
            replicas: 1,
            max_bytes: None,
            max_age: MaxAge::Exactly(Duration::from_secs(15)),
        };
        assert_eq!(reconcile(&mut config, &wanted).len(), 1);
        assert_eq!(config["max_age"], 15_000_000_000u64);
        assert_eq!(config["duplicate_window"], 15_000_000_000u64);
        assert_eq!(config["num_replicas"], 3);
        assert!(reconcile(&mut config, &wanted).is_empty());
    }
}
