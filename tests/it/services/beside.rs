//! What is served beside the contract's methods: the Observer's answer for
//! an unknown call, health and reflection (v1 and v1alpha). The Observer's
//! views of real calls are tested with the transport, which records them.

use super::{bounded, harness};
use grpc_conform::proto::observer::{observer_client::ObserverClient, CallQuery};
use tonic::Code;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

/// What reflection lists beside the contract services.
const ALSO_LISTED: [&str; 1] = ["grpc.health.v1.Health"];

/// Every contract service; health and reflection must list each.
const SERVICES: [&str; 4] = [
    "ChatService",
    "Greeter",
    "SensorService",
    "conform.v1.Observer",
];

#[tokio::test]
async fn get_call_of_an_unknown_id_is_not_found() {
    let h = harness().await;
    let mut observer = ObserverClient::new(h.channel.clone());
    let query = CallQuery {
        call_id: "never-used".into(),
        wait_ms: 100,
    };
    let status = bounded("GetCall", observer.get_call(query))
        .await
        .expect_err("NOT_FOUND");
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("never-used"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn health_answers_serving_for_the_server_and_each_service() {
    let h = harness().await;
    let mut health = HealthClient::new(h.channel.clone());
    for service in std::iter::once("").chain(SERVICES) {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let reply = bounded("Health.Check", health.check(request))
            .await
            .unwrap_or_else(|s| panic!("Check({service:?}): {s:?}"));
        assert_eq!(
            reply.into_inner().status(),
            ServingStatus::Serving,
            "{service:?}"
        );
    }
}

/// Runs one `ListServices` through a reflection client of either version
/// (their generated types are distinct but shaped alike).
macro_rules! list_services {
    ($channel:expr, $version:ident) => {{
        use tonic_reflection::pb::$version::{
            server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
            ServerReflectionRequest,
        };
        let mut client = ServerReflectionClient::new($channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = bounded(
            "ServerReflectionInfo",
            client.server_reflection_info(tokio_stream::iter(vec![request])),
        )
        .await
        .expect("reflection starts")
        .into_inner();
        let response = bounded("reflection answer", responses.message())
            .await
            .expect("reflection answers")
            .expect("one answer");
        match response.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("not a service list: {other:?}"),
        }
    }};
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_services() {
    let h = harness().await;
    let v1 = list_services!(h.channel.clone(), v1);
    let v1alpha = list_services!(h.channel.clone(), v1alpha);
    for (version, names) in [("v1", &v1), ("v1alpha", &v1alpha)] {
        for service in SERVICES.into_iter().chain(ALSO_LISTED) {
            assert!(
                names.iter().any(|n| n == service),
                "{version} lacks {service}: {names:?}"
            );
        }
    }
}
