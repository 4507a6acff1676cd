//! `GET /api/export`: every matching row as NDJSON or CSV, streamed.
//!
//! Rows come from the store in keyset pages of `PAGE_ROWS` (each read
//! bounded by `query.timeout`), are written to the socket, and only then is
//! the next page read: memory stays at about one page however many rows
//! there are, and when the client goes away actix drops the stream, which
//! drops (and so cancels) the read in flight.

use super::client_gone::ClientSocket;
use super::params::{self, Format};
use super::state::{QueryState, decoded, scope_of};
use crate::domain::log::attributes_from_json;
use crate::domain::time::{format_rfc3339, now_micros, write_rfc3339};
use crate::http::error::ApiError;
use crate::store::{LogQuery, RawLog};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{BufMut, Bytes, BytesMut};

/// Rows per store read: large enough that a read's fixed cost is small,
/// small enough that a page is a few megabytes.
const PAGE_ROWS: usize = 5000;

pub async fn export(
    request: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let export = params::export_query(&decoded(&request)?, &scope_of(&request))?;
    let socket = ClientSocket::of(&request);
    let (content_type, extension) = match export.format {
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
        Format::Csv { .. } => ("text/csv; charset=utf-8", "csv"),
    };
    let writer = RowWriter {
        format: export.format,
        remaining: export.limit,
        with_tenant: export.filter.scope.is_multi_tenant(),
    };
    // The pages' reads go through the store directly (they outlive the
    // request): the scope and its limits are applied here, once.
    let mut query = LogQuery {
        filter: state.scoped(&request).narrow(&export.filter)?,
        limit: PAGE_ROWS,
        offset: 0,
        order: export.order,
        after: None,
    };
    // The first page is read before answering, so a failure is a proper
    // status rather than a cut stream.
    query.limit = writer.next_page_size();
    let first = if query.limit == 0 {
        Vec::new()
    } else {
        state.read(socket, state.store.raw_logs(&query)).await?
    };
    let mut head = BytesMut::new();
    writer.header(&mut head);
    let pages = Pages {
        state,
        socket,
        query,
        writer,
        pending: Some(first),
        head: Some(head),
    };
    let stamp = format_rfc3339(now_micros()).replace([':', '-'], "");
    let filename = format!("oglogstream-{}.{extension}", &stamp[..15]);
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(futures_util::stream::unfold(pages, Pages::next)))
}

/// The state of one export between chunks.
struct Pages {
    state: web::Data<QueryState>,
    socket: Option<ClientSocket>,
    query: LogQuery,
    writer: RowWriter,
    /// A page read but not yet written.
    pending: Option<Vec<RawLog>>,
    /// The CSV header, sent with the first chunk.
    head: Option<BytesMut>,
}

impl Pages {
    /// The next chunk of the body; `None` ends it.
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Pages)> {
        let rows = match self.pending.take() {
            Some(rows) => rows,
            None => {
                self.query.limit = self.writer.next_page_size();
                if self.query.limit == 0 || self.query.after.is_none() {
                    return None;
                }
                match self
                    .state
                    .read(self.socket, self.state.store.raw_logs(&self.query))
                    .await
                {
                    Ok(rows) => rows,
                    Err(error) => {
                        // Headers are gone: all we can do is cut the body,
                        // which the client sees as an incomplete download.
                        tracing::warn!(error = %error, "export stopped by a failed read");
                        self.query.after = None;
                        return Some((Err(std::io::Error::other(error.to_string())), self));
                    }
                }
            }
        };
        let full = rows.len() == self.query.limit;
        self.query.after = if full {
            rows.last().map(RawLog::key)
        } else {
            None
        };
        let mut chunk = self.head.take().unwrap_or_default();
        for record in &rows {
            self.writer.row(record, &mut chunk);
        }
        if rows.is_empty() && chunk.is_empty() {
            return None;
        }
        Some((Ok(chunk.freeze()), self))
    }
}

struct RowWriter {
    format: Format,
    /// Rows still to send when `limit` was given.
    remaining: Option<u64>,
    /// Rows name their tenant (an export across several).
    with_tenant: bool,
}

impl RowWriter {
    fn next_page_size(&self) -> usize {
        match self.remaining {
            Some(left) => PAGE_ROWS.min(left as usize),
            None => PAGE_ROWS,
        }
    }

    fn header(&self, out: &mut BytesMut) {
        let Format::Csv { columns } = &self.format else {
            return;
        };
        out.put_slice(b"timestamp,level,service,message,id");
        match columns {
            None => out.put_slice(b",attributes"),
            Some(columns) => {
                for column in columns {
                    out.put_u8(b',');
                    csv_field(column, out);
                }
            }
        }
        out.put_slice(b"\r\n");
    }

    fn row(&mut self, record: &RawLog, out: &mut BytesMut) {
        if let Some(left) = self.remaining.as_mut() {
            *left = left.saturating_sub(1);
        }
        match &self.format {
            Format::Ndjson => {
                let mut writer = out.writer();
                // Writing to memory cannot fail.
                let _ = record.write_json(&mut writer, self.with_tenant);
                writer.into_inner().put_u8(b'\n');
            }
            Format::Csv { columns } => {
                let mut timestamp = String::with_capacity(27);
                write_rfc3339(&mut timestamp, record.timestamp);
                out.put_slice(timestamp.as_bytes());
                out.put_u8(b',');
                out.put_slice(record.level.as_str().as_bytes());
                out.put_u8(b',');
                csv_field(&record.service, out);
                out.put_u8(b',');
                csv_field(&record.message, out);
                out.put_u8(b',');
                csv_field(&record.id, out);
                match columns {
                    None => {
                        out.put_u8(b',');
                        csv_field(record.attributes_json(), out);
                    }
                    Some(columns) => {
                        let attributes = attributes_from_json(record.attributes_json.as_deref());
                        for column in columns {
                            out.put_u8(b',');
                            if let Some(value) = attributes.get(column) {
                                csv_field(value, out);
                            }
                        }
                    }
                }
                out.put_slice(b"\r\n");
            }
        }
    }
}

/// One RFC 4180 field: quoted when it holds a comma, a quote, CR or LF,
/// quotes doubled inside.
fn csv_field(text: &str, out: &mut BytesMut) {
    if !text.contains([',', '"', '\r', '\n']) {
        out.put_slice(text.as_bytes());
        return;
    }
    out.put_u8(b'"');
    for part in text.split_inclusive('"') {
        out.put_slice(part.as_bytes());
        if part.ends_with('"') {
            out.put_u8(b'"');
        }
    }
    out.put_u8(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Level, LogRecord};

    fn record() -> LogRecord {
        LogRecord {
            id: "id-1".into(),
            timestamp: 1_735_689_600_000_001,
            level: Level::Warn,
            service: "api,v2".into(),
            message: "say \"hi\"\r\nbye".into(),
            attributes: [("region".to_string(), "eu".to_string())].into(),
            ..Default::default()
        }
    }

    fn written(format: Format) -> String {
        let mut writer = RowWriter {
            format,
            remaining: None,
            with_tenant: false,
        };
        let mut out = BytesMut::new();
        writer.header(&mut out);
        writer.row(&RawLog::from(record()), &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(
            written(Format::Csv { columns: None }),
            "timestamp,level,service,message,id,attributes\r\n\
             2025-01-01T00:00:00.000001Z,warn,\"api,v2\",\"say \"\"hi\"\"\r\nbye\",id-1,\"{\"\"region\"\":\"\"eu\"\"}\"\r\n"
        );
        assert_eq!(
            written(Format::Csv {
                columns: Some(vec!["region".into(), "missing".into()])
            }),
            "timestamp,level,service,message,id,region,missing\r\n\
             2025-01-01T00:00:00.000001Z,warn,\"api,v2\",\"say \"\"hi\"\"\r\nbye\",id-1,eu,\r\n"
        );
    }

    #[test]
    fn ndjson_is_the_row_shape() {
        let line = written(Format::Ndjson);
        assert!(line.ends_with('\n'));
        let value: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(value, serde_json::to_value(record()).unwrap());
    }
}
