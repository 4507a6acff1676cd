use super::*;
use crate::domain::shippers::record::TRUNCATED_ATTRIBUTE;
use crate::domain::shippers::tests::attribute_pairs;

/// A protobuf message under construction, for building requests by hand.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn bytes(mut self, number: u32, bytes: &[u8]) -> Message {
        put_bytes_field(&mut self.0, number, bytes);
        self
    }
    fn text(self, number: u32, text: &str) -> Message {
        self.bytes(number, text.as_bytes())
    }
    fn message(self, number: u32, message: Message) -> Message {
        self.bytes(number, &message.0)
    }
    fn varint(mut self, number: u32, value: u64) -> Message {
        put_varint_field(&mut self.0, number, value);
        self
    }
    fn fixed64(mut self, number: u32, value: u64) -> Message {
        self.0.push(((number << 3) | 1) as u8);
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
}

fn string_value(text: &str) -> Message {
    Message::default().text(1, text)
}

fn key_value(key: &str, value: Message) -> Message {
    Message::default().text(1, key).message(2, value)
}

const T: u64 = 1_735_732_800_123_456_789;

fn sample_request() -> Vec<u8> {
    let resource = Message::default()
        .message(1, key_value("service.name", string_value("checkout")))
        .message(1, key_value("host.name", string_value("web-1")))
        .message(1, key_value("k", string_value("from resource")));
    let scope = Message::default()
        .text(1, "my.library")
        .text(2, "1.2.0")
        .message(3, key_value("k", string_value("from scope")));
    let nested = Message::default()
        .message(1, key_value("method", string_value("GET")))
        .message(1, key_value("status", Message::default().varint(3, 200)));
    let array = Message::default()
        .message(1, string_value("a"))
        .message(1, Message::default().varint(2, 1));
    let record = Message::default()
        .fixed64(1, T)
        .varint(2, 17)
        .text(3, "ERROR")
        .message(5, string_value("payment failed"))
        .message(6, key_value("http", Message::default().message(6, nested)))
        .message(6, key_value("tags", Message::default().message(5, array)))
        .message(6, key_value("k", string_value("from record")))
        .message(
            6,
            key_value("ratio", Message::default().fixed64(4, 0.25f64.to_bits())),
        )
        .bytes(
            9,
            &[
                0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
                0xc6, 0x0c,
            ],
        )
        .bytes(10, &[0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]);
    let no_body = Message::default().varint(2, 9).fixed64(11, T);
    let map_body = Message::default().varint(2, 9).message(
        5,
        Message::default().message(
            6,
            Message::default().message(1, key_value("a", string_value("b"))),
        ),
    );
    let scope_logs = Message::default()
        .message(1, scope)
        .message(2, record)
        .message(2, no_body)
        .message(2, map_body);
    let resource_logs = Message::default()
        .message(2, scope_logs)
        .message(1, resource);
    Message::default().message(1, resource_logs).0
}

#[test]
fn protobuf_maps_every_field() {
    let decoded = decode(&sample_request(), Encoding::Protobuf, &LogLimits::default()).unwrap();
    assert_eq!(
        decoded.rejected,
        vec![RejectedRecord {
            index: 1,
            error: "log record has no body".into()
        }]
    );
    let log = &decoded.logs[0];
    assert_eq!(log.service, "checkout");
    assert_eq!(log.level, Level::Error);
    assert_eq!(log.message, "payment failed");
    assert_eq!(log.timestamp, Some(1_735_732_800_123_456));
    assert_eq!(
        attribute_pairs(log),
        vec![
            ("host.name", "web-1"),
            ("http.method", "GET"),
            ("http.status", "200"),
            ("k", "from record"),
            ("otel.scope.name", "my.library"),
            ("otel.scope.version", "1.2.0"),
            ("ratio", "0.25"),
            ("span_id", "eee19b7ec3c1b174"),
            ("tags", r#"["a",true]"#),
            ("trace_id", "5b8efff798038103d269b633813fc60c"),
        ]
    );
    let map_body = &decoded.logs[1];
    assert_eq!(map_body.message, r#"{"a":"b"}"#);
    assert_eq!(map_body.level, Level::Info);
    assert_eq!(map_body.timestamp, None, "no time at all: receipt time");
}

#[test]
fn json_maps_like_protobuf() {
    let body = br#"{"resourceLogs":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"checkout"}},
        {"key":"host.name","value":{"stringValue":"web-1"}}]},
      "scopeLogs":[{"scope":{"name":"my.library","version":"1.2.0"},"logRecords":[
        {"timeUnixNano":"1735732800123456789","severityNumber":17,"severityText":"ERROR",
         "body":{"stringValue":"payment failed"},
         "attributes":[{"key":"http","value":{"kvlistValue":{"values":[{"key":"status","value":{"intValue":"200"}}]}}},
                       {"key":"ok","value":{"boolValue":true}},
                       {"key":"ratio","value":{"doubleValue":0.25}},
                       {"key":"raw","value":{"bytesValue":"aGk="}},
                       {"key":"none","value":{}}],
         "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174","unknownField":1},
        {"observedTimeUnixNano":1735732800000000000,"severityNumber":"SEVERITY_NUMBER_WARN2","body":{"arrayValue":{"values":[{"intValue":1},{"stringValue":"x"}]}}},
        {"severityText":"critical","body":{"stringValue":"text severity"}},
        {"severityNumber":9}
      ]}]}]}"#;
    let decoded = decode(body, Encoding::Json, &LogLimits::default()).unwrap();
    assert_eq!(decoded.rejected.len(), 1);
    assert_eq!(decoded.rejected[0].index, 3);
    let log = &decoded.logs[0];
    assert_eq!(
        (log.service.as_str(), log.level),
        ("checkout", Level::Error)
    );
    assert_eq!(log.timestamp, Some(1_735_732_800_123_456));
    for (key, value) in [
        ("http.status", "200"),
        ("ok", "true"),
        ("ratio", "0.25"),
        ("raw", "aGk="),
        ("trace_id", "5b8efff798038103d269b633813fc60c"),
        ("host.name", "web-1"),
    ] {
        assert_eq!(
            log.attributes.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
    assert!(!log.attributes.contains_key("none"));
    assert!(!log.attributes.contains_key("service.name"));
    let second = &decoded.logs[1];
    assert_eq!(second.level, Level::Warn);
    assert_eq!(second.message, r#"[1,"x"]"#);
    assert_eq!(second.timestamp, Some(1_735_732_800_000_000));
    assert_eq!(
        decoded.logs[2].level,
        Level::Fatal,
        "severity text through the alias table"
    );
    assert_eq!(decoded.logs[2].message, "text severity");
}

#[test]
fn severity_table() {
    for (number, level) in [
        (1, Level::Debug),
        (4, Level::Debug),
        (5, Level::Debug),
        (9, Level::Info),
        (12, Level::Info),
        (13, Level::Warn),
        (17, Level::Error),
        (20, Level::Error),
        (21, Level::Fatal),
        (24, Level::Fatal),
    ] {
        assert_eq!(level_of(number, "ignored"), level, "{number}");
    }
    assert_eq!(level_of(0, "Warning"), Level::Warn);
    assert_eq!(level_of(25, "loud"), Level::Info);
    assert_eq!(severity_number_named("SEVERITY_NUMBER_FATAL4"), Some(24));
    assert_eq!(severity_number_named("INFO"), Some(9));
    assert_eq!(severity_number_named("SEVERITY_NUMBER_LOUD"), None);
}

#[test]
fn no_service_and_long_values() {
    let limits = LogLimits {
        max_message_bytes: 4,
        ..LogLimits::default()
    };
    let body = Message::default()
        .message(
            1,
            Message::default().message(
                2,
                Message::default()
                    .message(2, Message::default().message(5, string_value("too long"))),
            ),
        )
        .0;
    let decoded = decode(&body, Encoding::Protobuf, &limits).unwrap();
    let log = &decoded.logs[0];
    assert_eq!(log.service, "unknown_service");
    assert_eq!(log.message, "too ");
    assert_eq!(
        log.attributes.get(TRUNCATED_ATTRIBUTE).map(String::as_str),
        Some("message")
    );
}

#[test]
fn malformed_bodies_are_refused_whole() {
    let limits = LogLimits::default();
    assert!(decode(b"\x0a\x05ab", Encoding::Protobuf, &limits).is_err());
    assert!(decode(b"{\"resourceLogs\":5}", Encoding::Json, &limits).is_err());
    assert!(decode(b"not json", Encoding::Json, &limits).is_err());
    // Nesting beyond the bound.
    let mut value = string_value("deep");
    for _ in 0..40 {
        value = Message::default().message(5, Message::default().message(1, value));
    }
    let record = Message::default().message(5, value);
    let body = Message::default()
        .message(
            1,
            Message::default().message(2, Message::default().message(2, record)),
        )
        .0;
    assert!(decode(&body, Encoding::Protobuf, &limits).is_err());
    // Empty requests are fine: nothing to store.
    assert!(
        decode(b"", Encoding::Protobuf, &limits)
            .unwrap()
            .logs
            .is_empty()
    );
    assert!(
        decode(b"{}", Encoding::Json, &limits)
            .unwrap()
            .logs
            .is_empty()
    );
}

#[test]
fn answers_in_both_encodings() {
    assert!(response(0, "", Encoding::Protobuf).is_empty());
    assert_eq!(response(0, "", Encoding::Json), b"{}");
    let answer = response(2, "log record has no body", Encoding::Protobuf);
    let outer: Vec<_> = Fields::new(&answer).collect::<Result<_, _>>().unwrap();
    let inner: Vec<_> = Fields::new(outer[0].1.bytes().unwrap())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(inner[0], (1, Value::Varint(2)));
    assert_eq!(inner[1].1.string(), Ok("log record has no body"));
    let json: serde_json::Value =
        serde_json::from_slice(&response(2, "why", Encoding::Json)).unwrap();
    assert_eq!(json["partialSuccess"]["rejectedLogRecords"], "2");
    let json: serde_json::Value =
        serde_json::from_slice(&status(3, "bad", Encoding::Json)).unwrap();
    assert_eq!(json, serde_json::json!({"code": 3, "message": "bad"}));
}

#[test]
fn runs_say_which_resource_named_which_tenant() {
    let body = br#"{"resourceLogs":[
      {"resource":{"attributes":[{"key":"tenant.id","value":{"stringValue":"team-a"}}]},
       "scopeLogs":[{"logRecords":[{"body":{"stringValue":"a1"}},{"severityNumber":9},{"body":{"stringValue":"a2"}}]}]},
      {"resource":{"attributes":[]},"scopeLogs":[{"logRecords":[{"body":{"stringValue":"none"}}]}]},
      {"resource":{"attributes":[{"key":"tenant.id","value":{"intValue":"7"}}]},
       "scopeLogs":[{"logRecords":[{"severityNumber":9}]}]},
      {"resource":{"attributes":[{"key":"tenant.id","value":{"stringValue":"team-b"}}]},
       "scopeLogs":[{"logRecords":[{"body":{"stringValue":"b1"}}]},{"logRecords":[{"body":{"stringValue":"b2"}}]}]}
    ]}"#;
    let (decoded, runs) =
        decode_by_resource(body, Encoding::Json, &LogLimits::default(), "tenant.id").unwrap();
    let messages: Vec<&str> = decoded.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["a1", "a2", "none", "b1", "b2"]);
    assert_eq!(decoded.rejected.len(), 2);
    let run = |tenant: Option<&str>, logs| ResourceRun {
        tenant: tenant.map(str::to_string),
        logs,
    };
    // The resource whose only record was refused leaves no run.
    assert_eq!(
        runs,
        [run(Some("team-a"), 2), run(None, 1), run(Some("team-b"), 2)]
    );
    let (_, runs) =
        decode_by_resource(body, Encoding::Json, &LogLimits::default(), "other").unwrap();
    assert!(runs.iter().all(|run| run.tenant.is_none()));
    assert_eq!(runs.iter().map(|run| run.logs).sum::<usize>(), 5);
}
