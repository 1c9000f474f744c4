//! The kit's own conforming client (`client_driver`) against the in-process
//! reference, the server's Observer telling what reached it; and each fault
//! switched on, to show the difference the client fixtures look for.

use crate::support::{conform, start_reference, start_reference_with};
use grpc_conform::client::plan::{Plan, Report, ReportCall};
use grpc_conform::client_driver::{self, Faults};
use grpc_conform::reference::{PingPolicy, ReferenceConfig, ReferenceServer};
use serde_json::{json, Value};
use std::time::Duration;

/// Runs `calls` (plan JSON) with `channel` options and `faults` on `server`.
async fn run(server: &ReferenceServer, channel: Value, calls: Value, faults: Faults) -> Report {
    let plan: Plan = serde_json::from_value(json!({
        "version": 1, "fixture": "test", "target": server.local_addr().to_string(),
        "timeout_ms": 8000, "channel": channel, "calls": calls
    }))
    .expect("a valid plan");
    client_driver::run(&plan, faults)
        .await
        .expect("the plan runs")
}

/// The Observer's record of the call that carried `id`, asked through the
/// driver itself.
async fn observed(server: &ReferenceServer, id: &str) -> Value {
    let calls = json!([{"method": "/conform.v1.Observer/GetCall", "mode": "unary",
        "steps": [{"op": "send", "message": {"call_id": id, "wait_ms": 2000}},
                  {"op": "half_close"}, {"op": "receive_all"}]}]);
    let report = run(server, json!({}), calls, Faults::default()).await;
    let call = &report.calls[0];
    assert_eq!(call.status.code, 0, "GetCall {id}: {call:?}");
    call.messages[0].clone()
}

fn unary(id: &str, metadata: Value, deadline_ms: Option<u64>) -> Value {
    let mut pairs = vec![json!(["x-conform-call-id", id])];
    pairs.extend(metadata.as_array().cloned().unwrap_or_default());
    json!({"method": "/Greeter/SayHello", "mode": "unary", "metadata": pairs,
        "deadline_ms": deadline_ms,
        "steps": [{"op": "send", "message": {"name": id}}, {"op": "half_close"},
                  {"op": "receive_all"}]})
}

fn codes(report: &Report) -> Vec<u32> {
    report
        .calls
        .iter()
        .map(|c: &ReportCall| c.status.code)
        .collect()
}

#[tokio::test]
async fn every_mode_runs_and_reports_messages_headers_and_trailers() {
    let server = start_reference().await;
    let calls = json!([
        unary("u", json!([["x-grpc-test-echo-initial", "v"], ["x-grpc-test-echo-trailing-bin", "AAEC"]]), None),
        {"method": "/Greeter/ServerStream", "mode": "server_streaming",
         "steps": [{"op": "send", "message": {"data": "s"}}, {"op": "half_close"}, {"op": "receive_all"}]},
        {"method": "/Greeter/ClientStream", "mode": "client_streaming", "compression": "gzip",
         "steps": [{"op": "send_many", "count": 3, "template": {"data": "m{i}"}}, {"op": "half_close"}, {"op": "receive_all"}]},
        {"method": "/Greeter/AllStream", "mode": "bidi",
         "steps": [{"op": "send", "message": {"data": "b"}}, {"op": "receive"}, {"op": "half_close"}, {"op": "receive_all"}]}
    ]);
    let report = run(&server, json!({}), calls, Faults::default()).await;
    assert_eq!(codes(&report), [0, 0, 0, 0], "{report:?}");
    assert_eq!(report.client.as_deref(), Some(client_driver::CLIENT_NAME));
    let unary = &report.calls[0];
    assert_eq!(unary.messages, [json!({"message": "Hello u"})]);
    let headers = unary.headers.as_ref().expect("headers");
    assert!(
        headers.contains(&("x-grpc-test-echo-initial".into(), "v".into())),
        "{headers:?}"
    );
    assert_eq!(
        unary.trailers,
        [("x-grpc-test-echo-trailing-bin".into(), "AAEC".into())]
    );
    assert_eq!(report.calls[1].messages.len(), 3);
    assert_eq!(report.calls[2].messages, [json!({"data": "m1,m2,m3"})]);
    assert_eq!(report.calls[3].messages, [json!({"data": "echo: b"})]);
}

#[tokio::test]
async fn a_cancel_is_a_reset_and_the_faulty_cancel_a_half_close() {
    let server = start_reference().await;
    let cancelled = |id: &str| {
        json!([{"method": "/Greeter/ClientStream", "mode": "client_streaming",
            "metadata": [["x-conform-call-id", id]],
            "steps": [{"op": "send", "message": {"data": "a"}}, {"op": "pause", "ms": 100},
                      {"op": "cancel"}, {"op": "pause", "ms": 100}]}])
    };
    let good = run(&server, json!({}), cancelled("good"), Faults::default()).await;
    let faulty = Faults {
        half_close_on_cancel: true,
        ..Faults::default()
    };
    let bad = run(&server, json!({}), cancelled("bad"), faulty).await;
    assert_eq!(
        (codes(&good), codes(&bad)),
        (vec![1], vec![1]),
        "both report CANCELLED"
    );
    let good = observed(&server, "good").await;
    assert_eq!(good["outcome"], "CANCELLED", "{good}");
    assert!(
        good.get("halfCloseReceived").is_none() && good.get("half_close_received").is_none(),
        "{good}"
    );
    let bad = observed(&server, "bad").await;
    assert_ne!(bad["outcome"], "CANCELLED", "{bad}");
    let half_closed = bad
        .get("halfCloseReceived")
        .or(bad.get("half_close_received"));
    assert_eq!(
        half_closed,
        Some(&json!(true)),
        "the server saw a half-close: {bad}"
    );
}

#[tokio::test]
async fn the_deadline_is_sent_as_grpc_timeout_unless_the_fault_drops_it() {
    let server = start_reference().await;
    let calls = |id: &str| json!([unary(id, json!([]), Some(3000))]);
    let good = run(&server, json!({}), calls("with"), Faults::default()).await;
    let faulty = Faults {
        no_grpc_timeout: true,
        ..Faults::default()
    };
    let bad = run(&server, json!({}), calls("without"), faulty).await;
    assert_eq!((codes(&good), codes(&bad)), (vec![0], vec![0]));
    let with = observed(&server, "with").await;
    let ms: i64 = with["timeoutMs"]
        .as_str()
        .or(with["timeout_ms"].as_str())
        .map_or(0, |s| s.parse().unwrap());
    assert!((2500..=3000).contains(&ms), "timeout recorded: {with}");
    let without = observed(&server, "without").await;
    assert!(
        without.get("timeoutMs").is_none() && without.get("timeout_ms").is_none(),
        "{without}"
    );
}

#[tokio::test]
async fn a_passed_deadline_ends_the_call_at_the_client_in_time() {
    let server = start_reference().await;
    let calls = json!([unary(
        "late",
        json!([["x-conform-delay-ms", "3000"]]),
        Some(200)
    )]);
    for faults in [
        Faults::default(),
        Faults {
            no_grpc_timeout: true,
            ..Faults::default()
        },
    ] {
        let started = std::time::Instant::now();
        let report = run(&server, json!({}), calls.clone(), faults).await;
        assert_eq!(codes(&report), [4], "{faults:?}: {report:?}");
        assert!(
            started.elapsed() < Duration::from_millis(2000),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn after_goaway_new_calls_go_to_a_new_connection_unless_the_fault_ignores_it() {
    let server = start_reference_with(ReferenceConfig {
        max_connection_age: Some(Duration::from_millis(300)),
        ..ReferenceConfig::default()
    })
    .await;
    let mut first = unary("first", json!([]), None);
    first["steps"]
        .as_array_mut()
        .unwrap()
        .push(json!({"op": "pause", "ms": 800}));
    let calls = json!([first, unary("second", json!([]), None)]);
    let good = run(&server, json!({}), calls.clone(), Faults::default()).await;
    assert_eq!(codes(&good), [0, 0], "{good:?}");
    let faulty = Faults {
        ignore_goaway: true,
        ..Faults::default()
    };
    let bad = run(&server, json!({}), calls, faulty).await;
    assert_eq!(codes(&bad), [0, 14], "{bad:?}");
}

#[tokio::test]
async fn pings_within_the_servers_policy_pass_and_too_frequent_ones_get_goaway() {
    let server = start_reference_with(ReferenceConfig {
        ping_policy: PingPolicy {
            min_interval: Duration::from_millis(250),
            permit_without_calls: true,
            ..PingPolicy::default()
        },
        ..ReferenceConfig::default()
    })
    .await;
    let channel =
        json!({"keepalive": {"time_ms": 300, "timeout_ms": 1000, "permit_without_stream": true}});
    let calls = json!([unary("k", json!([["x-conform-delay-ms", "1500"]]), None)]);
    let good = run(&server, channel.clone(), calls.clone(), Faults::default()).await;
    assert_eq!(codes(&good), [0], "{good:?}");
    let faulty = Faults {
        ping_too_often: true,
        ..Faults::default()
    };
    let bad = run(&server, channel, calls, faulty).await;
    assert_eq!(codes(&bad), [14], "{bad:?}");
}

#[tokio::test]
async fn the_receive_limit_is_resource_exhausted() {
    let server = start_reference().await;
    let sized = |size: &str| unary("big", json!([["x-conform-response-size", size]]), None);
    let calls = json!([sized("4194000"), sized("4194305"), sized("2000")]);
    let report = run(&server, json!({}), calls.clone(), Faults::default()).await;
    assert_eq!(codes(&report), [0, 8, 0], "{report:?}");
    let small = run(
        &server,
        json!({"max_receive_message_bytes": 1024}),
        calls,
        Faults::default(),
    )
    .await;
    assert_eq!(codes(&small), [8, 8, 8], "{small:?}");
}

#[test]
fn the_subcommand_reads_a_plan_and_a_bad_one_is_exit_2_naming_the_field() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(start_reference());
    let plan = json!({"version": 1, "fixture": "cli", "target": server.local_addr().to_string(),
        "timeout_ms": 5000, "calls": [unary("cli", json!([]), None)]});
    let out = conform()
        .arg("client-driver")
        .write_stdin(plan.to_string())
        .assert()
        .success();
    let report: Report = serde_json::from_slice(&out.get_output().stdout).expect("a report");
    assert_eq!(codes(&report), [0]);

    let mut bad = plan.clone();
    bad["calls"][0]["method"] = json!("/Greeter/Nope");
    let out = conform()
        .arg("client-driver")
        .write_stdin(bad.to_string())
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("calls[0].method"), "{stderr}");
    let out = conform()
        .arg("client-driver")
        .write_stdin("{\"version\": 1,\n \"fixture\": 3}")
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("<stdin>:2:") && stderr.contains("fixture"),
        "{stderr}"
    );
}

#[test]
fn every_client_fixture_cites_rules_of_the_list() {
    use grpc_conform::coverage::{citations, parse_rules, EMBEDDED_RULES, RULES_PATH};
    let rules = parse_rules(RULES_PATH, EMBEDDED_RULES).expect("the rule list parses");
    let known: std::collections::BTreeSet<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    let descriptors = grpc_conform::descriptors::Descriptors::contract().unwrap();
    let texts = grpc_conform::client::fixture::read_embedded();
    let (fixtures, problems) = grpc_conform::client::fixture::check_all(texts, &descriptors);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(fixtures.len() >= 40, "{} client fixtures", fixtures.len());
    for f in &fixtures {
        for id in citations(&f.fixture.rule) {
            assert!(
                known.contains(id),
                "{}: `{id}` is not in {RULES_PATH}",
                f.source
            );
        }
    }
}
