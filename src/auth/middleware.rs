//! The gate as actix middleware: admits or refuses each request (see
//! `gate.rs`), leaves the [`Caller`](crate::domain::principal::Caller) in
//! the request's extensions for handlers, adds the CORS headers to the
//! handler's answer, and hands the audit events to the audit log.

use super::gate::Gate;
use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use futures_util::future::{LocalBoxFuture, Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

pub struct GateMiddleware(pub Arc<Gate>);

impl<S, B> Transform<S, ServiceRequest> for GateMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = GateService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GateService {
            service: Rc::new(service),
            gate: Arc::clone(&self.0),
        }))
    }
}

pub struct GateService<S> {
    service: Rc<S>,
    gate: Arc<Gate>,
}

impl<S, B> Service<ServiceRequest> for GateService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let gate = Arc::clone(&self.gate);
        Box::pin(async move {
            let admitted = match gate.admit(&request).await {
                Ok(admitted) => admitted,
                Err(refused) => {
                    if let Some(event) = refused.event {
                        gate.audit.record(event);
                    }
                    return Ok(request
                        .into_response(refused.response)
                        .map_into_right_body());
                }
            };
            // Only what a role guards needs the caller and may be audited
            // afterwards: ingest's hot path allocates nothing more here.
            let audited = admitted.audit_change || admitted.audit_refusal;
            let request_line =
                audited.then(|| (request.method().clone(), request.path().to_string()));
            if admitted.caller.principal.is_some() {
                request.extensions_mut().insert(admitted.caller.clone());
            }
            if let Some(tenants) = &admitted.tenants {
                request.extensions_mut().insert(tenants.clone());
            }
            if let Some(resource_tenants) = &admitted.resource_tenants {
                request.extensions_mut().insert(resource_tenants.clone());
            }
            let mut response = service.call(request).await?;
            if let Some(origin) = &admitted.allowed_origin {
                crate::security::guard::add_cors_headers(response.headers_mut(), origin);
            }
            if let Some((method, path)) = request_line
                && let Some(event) = gate.after(
                    &admitted,
                    &method,
                    &path,
                    response.status(),
                    response.response(),
                )
            {
                gate.audit.record(event);
            }
            Ok(response.map_into_left_body())
        })
    }
}
