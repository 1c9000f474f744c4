//! The contract's services (CONTRACT.md sections 2 and 3): ChatService,
//! Greeter, SensorService, the Observer, plus health and reflection.
//!
//! - [`control`]: the `x-conform-*` headers that script a handler.
//! - [`script`]: pacing, scripted failure and request reading, shared by
//!   every handler.
//! - [`greeter`], [`chat`], [`sensor`], [`observer`]: one service each.

pub mod chat;
pub mod control;
pub mod greeter;
pub mod observer;
pub mod script;
pub mod sensor;

use super::{CallCtx, CallRegistry, ReferenceConfig};
use crate::proto::{
    contract::{
        chat_service_server::ChatServiceServer, greeter_server::GreeterServer,
        sensor_service_server::SensorServiceServer,
    },
    observer::observer_server::ObserverServer,
    CONTRACT_DESCRIPTOR_SET,
};
use control::Control;
use futures::FutureExt;
use script::Pacer;
use tonic::{server::NamedService, service::Routes, Request, Status};
use tonic_health::ServingStatus;

/// Reads what every handler needs first: the call's control headers (a
/// malformed one fails the call with INVALID_ARGUMENT naming it) and the
/// Observer's view of the call that the transport put in the extensions.
pub(crate) fn start<T>(request: &Request<T>) -> Result<(Pacer, CallCtx), Status> {
    let ctx = CallCtx::from_extensions(request.extensions());
    let control = Control::from_metadata(request.metadata())?;
    Ok((Pacer::new(control), ctx))
}

/// [`start`] for unary and server-streaming methods. tonic decodes their one
/// request and then awaits the end of the request body before the handler
/// runs (a reset fails the call before it), so by now the handler has both
/// the message and the client's END_STREAM; they are recorded here, before
/// the control headers are checked, because they were received either way.
pub(crate) fn start_single<T>(request: &Request<T>) -> Result<Pacer, Status> {
    let ctx = CallCtx::from_extensions(request.extensions());
    ctx.request_read();
    ctx.half_close();
    Ok(Pacer::new(Control::from_metadata(request.metadata())?))
}

/// Applies the server-wide settings to one generated service: every
/// configured encoding accepted on requests and offered for responses (tonic
/// only compresses a response when the client accepts the encoding), and the
/// request size limit.
macro_rules! configured {
    ($server:expr, $config:expr) => {{
        let mut server = $server.max_decoding_message_size($config.max_message_size);
        for encoding in &$config.encodings {
            server = server
                .accept_compressed(encoding.tonic())
                .send_compressed(encoding.tonic());
        }
        server
    }};
}

/// Every service the reference serves, configured from `config`; calls that
/// carry `x-conform-call-id` are looked up in `registry` by the Observer.
/// The sensor store (Record → Latest) is created here, one per server.
pub fn routes(config: &ReferenceConfig, registry: CallRegistry) -> Routes {
    let chat = configured!(ChatServiceServer::new(chat::ChatServiceImpl), config);
    let greeter = configured!(GreeterServer::new(greeter::GreeterService), config);
    let sensor = configured!(
        SensorServiceServer::new(sensor::SensorServiceImpl::default()),
        config
    );
    let observer = config.observer.then(|| {
        configured!(
            ObserverServer::new(observer::ObserverService::new(registry)),
            config
        )
    });
    let reflection_v1 = reflection()
        .build_v1()
        .expect("embedded descriptor sets are valid");
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("embedded descriptor sets are valid");
    let mut served = vec![
        <ChatServiceServer<chat::ChatServiceImpl> as NamedService>::NAME,
        <GreeterServer<greeter::GreeterService> as NamedService>::NAME,
        <SensorServiceServer<sensor::SensorServiceImpl> as NamedService>::NAME,
    ];
    if observer.is_some() {
        served.push(<ObserverServer<observer::ObserverService> as NamedService>::NAME);
    }
    let routes = Routes::new(health(&served))
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(chat)
        .add_service(greeter)
        .add_service(sensor);
    match observer {
        Some(observer) => routes.add_service(observer),
        None => routes,
    }
}

/// Reflection over the contract and the health service, so a generic client
/// (grpcurl, a fixture) can list and describe everything served. The
/// descriptor sets are embedded at build time, so building cannot fail at run
/// time unless the build itself was broken.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(CONTRACT_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// The standard health service with the server ("") and each of `services`
/// SERVING.
fn health(
    services: &[&str],
) -> tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health> {
    let (reporter, server) = tonic_health::server::health_reporter();
    for name in services {
        // The reporter's lock is async but fresh and uncontended here, so the
        // future completes on its first poll, which keeps routes() sync.
        // `unconstrained`: tokio's coop budget of the calling task must not
        // turn that first poll into Pending.
        let serving = reporter.set_service_status(name, ServingStatus::Serving);
        tokio::task::unconstrained(serving)
            .now_or_never()
            .expect("a fresh health reporter is never locked");
    }
    server
}
