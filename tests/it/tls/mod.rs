//! TLS on every hop and secrets (issue 23), with certificates from private
//! CAs made by `openssl` for each test: HTTPS on our listener, syslog over
//! TLS from rsyslog, NATS with TLS and each kind of credential, ClickHouse
//! on its secure port, and secrets kept out of logs and answers.

mod clickhouse;
mod docs;
mod https;
mod nats;
mod secrets;
mod syslog;
