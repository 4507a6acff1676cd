//! `LogsService/Export` served by hand: a tower `Service` over tonic's
//! server instead of generated code. Before a request's message is read it
//! passes the gate (keys, rate limit) and the queue is asked for room, so a
//! refusal costs neither the body nor its decoding (as `read_body` does for
//! HTTP); then tonic reads the message (inflating gzip within
//! `ingest.max_bulk_bytes`), the OTLP/HTTP decoder maps it, and the logs are
//! stamped and published like every other protocol's.

use super::codec::RawBytes;
use super::gate::{Caller, Gate};
use super::status;
use crate::domain::time::now_micros;
use crate::ingest::otlp::decoder::{Encoding, decode, decode_by_resource, response};
use crate::ingest::otlp::tenants::{ExportTenants, NotStored, store};
use crate::ingest::state::IngestState;
use crate::metrics::{Protocol, Rejection};
use actix_web::web;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::server::{Grpc, UnaryService};
use tonic::transport::server::TcpConnectInfo;
use tonic::{Code, Status};

/// The one method served.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// The service tonic's server calls for every request on the listener.
#[derive(Clone)]
pub struct LogsService {
    shared: Arc<Shared>,
}

struct Shared {
    state: web::Data<IngestState>,
    gate: Arc<dyn Gate>,
}

impl LogsService {
    pub fn new(state: web::Data<IngestState>, gate: Arc<dyn Gate>) -> LogsService {
        LogsService {
            shared: Arc::new(Shared { state, gate }),
        }
    }
}

impl tower_service::Service<http::Request<Body>> for LogsService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(shared.serve(request).await) })
    }
}

fn metadata<'r>(request: &'r http::Request<Body>, name: &str) -> Option<&'r str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

impl Shared {
    async fn serve(&self, request: http::Request<Body>) -> http::Response<Body> {
        let path = request.uri().path();
        if path != EXPORT_PATH {
            return Status::unimplemented(format!(
                "{path} is not served here: only {EXPORT_PATH} (OTLP logs)"
            ))
            .into_http();
        }
        let metrics = &self.state.metrics;
        let caller = Caller {
            peer: request
                .extensions()
                .get::<TcpConnectInfo>()
                .and_then(TcpConnectInfo::remote_addr)
                .map(|address| address.ip()),
            forwarded_for: metadata(&request, "x-forwarded-for"),
            authorization: metadata(&request, "authorization"),
            api_key: metadata(&request, "x-api-key"),
            tenant: metadata(&request, "x-scope-orgid"),
        };
        let tenants = match self.gate.admit(&caller) {
            Ok(tenants) => tenants,
            Err(refusal) => return status::of_gate(refusal).into_http(),
        };
        // How many logs the message holds is not known before it is read:
        // room for one, as OTLP/HTTP asks.
        if let Err(full) = self.state.room(1) {
            metrics.reject(Protocol::Otlp, Rejection::Overloaded, 1);
            return status::of_bus(full).into_http();
        }
        let mut grpc = Grpc::new(RawBytes)
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(self.state.config.max_bulk_bytes);
        let response = grpc
            .unary(Export(self.state.clone(), tenants), request)
            .await;
        self.too_large_is_final(response)
    }

    /// tonic answers a message over the size limit `OUT_OF_RANGE` (one
    /// inflating past it `RESOURCE_EXHAUSTED` without retry info). Exporters
    /// retry `OUT_OF_RANGE`, and the same message would be refused forever:
    /// say `RESOURCE_EXHAUSTED` without a retry delay, which they drop.
    fn too_large_is_final(&self, mut response: http::Response<Body>) -> http::Response<Body> {
        let code = response
            .headers()
            .get(Status::GRPC_STATUS)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<i32>().ok())
            .map(Code::from_i32);
        if matches!(code, Some(Code::OutOfRange | Code::ResourceExhausted)) {
            self.state
                .metrics
                .reject(Protocol::Otlp, Rejection::TooLarge, 1);
            response.headers_mut().insert(
                Status::GRPC_STATUS,
                http::HeaderValue::from(Code::ResourceExhausted as i32),
            );
        }
        response
    }
}

/// One `Export` call, once its message is read.
struct Export(web::Data<IngestState>, ExportTenants);

impl UnaryService<Bytes> for Export {
    type Response = Vec<u8>;
    type Future = BoxFuture<'static, Result<tonic::Response<Vec<u8>>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let state = self.0.clone();
        let tenants = self.1.clone();
        Box::pin(async move {
            export(&state, request.into_inner(), &tenants)
                .await
                .map(tonic::Response::new)
        })
    }
}

/// Decodes, stamps and publishes; answers `ExportLogsServiceResponse`, with
/// `partial_success` counting the records refused (those without a body,
/// those of a tenant refused or over its limits).
async fn export(
    state: &IngestState,
    message: Bytes,
    tenants: &ExportTenants,
) -> Result<Vec<u8>, Status> {
    let metrics = &state.metrics;
    let limits = &state.config.limits;
    let decoded = match tenants.attribute() {
        Some(attribute) => decode_by_resource(&message, Encoding::Protobuf, limits, attribute),
        None => decode(&message, Encoding::Protobuf, limits).map(|decoded| (decoded, Vec::new())),
    };
    let (decoded, runs) = decoded.map_err(|error| {
        metrics.reject(Protocol::Otlp, Rejection::Invalid, 1);
        status::of_decode(error)
    })?;
    // The logs own their text now: the message's buffer can go.
    drop(message);
    let stored = store(state, decoded, runs, tenants, now_micros())
        .await
        .map_err(|not_stored| match not_stored {
            NotStored::Tenants(error) => status::of_gate(error),
            NotStored::Bus(error) => {
                metrics.reject(Protocol::Otlp, Rejection::Overloaded, 1);
                status::of_bus(error)
            }
        })?;
    Ok(response(
        stored.rejected,
        &stored.error_message,
        Encoding::Protobuf,
    ))
}
