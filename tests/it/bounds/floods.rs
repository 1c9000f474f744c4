//! The driver against the hostile servers: a flood ends the conversation
//! with a failure that names it, within the fixture's time, through the h2
//! driver and the raw driver alike; a server that never answers times out.

use super::hostile::{self, Hostility};
use grpc_conform::{
    descriptors::Descriptors,
    drive::{self, DriveOptions},
    fixture,
    model::Event,
};
use std::time::{Duration, Instant};

/// Every fixture here has this timeout.
pub const TIMEOUT_MS: u64 = 2_000;
/// What a fixture may take beyond its timeout (connection set-up, the
/// last write, a loaded machine).
pub const MARGIN: Duration = Duration::from_millis(1_500);

/// A raw fixture: SayHello on stream 1, waiting for its end, then
/// listening for a GOAWAY for most of the rest of the fixture's time.
pub fn raw_fixture() -> String {
    format!(
        r#"{{"description": "d", "rule": "r", "level": "MUST", "timeout_ms": {TIMEOUT_MS},
            "raw": [{{"open": {{"stream": 1, "method": "/Greeter/SayHello"}}}},
                    {{"message": {{"stream": 1, "message": {{"name": "a"}}, "end_stream": true}}}},
                    {{"await": {{"stream": 1}}}},
                    {{"await_goaway": {{"within_ms": 1500}}}}]}}"#
    )
}

/// An h2-driver fixture: a ServerStream read to its end.
pub fn h2_fixture(wire: bool) -> String {
    format!(
        r#"{{"description": "d", "rule": "r", "level": "MUST", "timeout_ms": {TIMEOUT_MS}, "wire": {wire},
            "calls": [{{"method": "/Greeter/ServerStream",
              "steps": [{{"send": {{"message": {{"data": "a"}}}}}}, "half_close", "receive_all",
                        {{"expect_status": {{"code": "OK"}}}}]}}]}}"#
    )
}

/// Runs fixture `text` against `hostility`; its events and how long it took.
pub async fn run(text: &str, hostility: Hostility) -> (Vec<Event>, Duration) {
    let addr = hostile::start(hostility).await;
    let fixture = fixture::parse("hostile.json", text).expect("test fixture parses");
    let connector = crate::wire::connector(addr);
    let descriptors = Descriptors::contract().unwrap();
    let started = Instant::now();
    let bound = Duration::from_millis(TIMEOUT_MS) + MARGIN;
    let events = tokio::time::timeout(
        bound * 4,
        drive::run_conversation(&connector, &fixture, &descriptors, &DriveOptions::default()),
    )
    .await
    .unwrap_or_else(|_| panic!("{hostility:?}: the fixture did not end"))
    .expect("the conversation is held");
    let took = started.elapsed();
    assert!(
        took <= bound,
        "{hostility:?}: took {took:?}, more than the timeout plus {MARGIN:?}"
    );
    (events, took)
}

/// The failure naming a flood, if any.
fn flood(events: &[Event]) -> Option<&str> {
    events.iter().find_map(|e| match e {
        Event::Failure { what } if what.contains("flood") => Some(what.as_str()),
        _ => None,
    })
}

async fn assert_named(hostility: Hostility, name: &str, h2_too: bool) {
    let mut drivers = vec![("raw", raw_fixture())];
    if h2_too {
        drivers.push(("h2", h2_fixture(false)));
    }
    for (driver, text) in drivers {
        let (events, took) = run(&text, hostility).await;
        let what = flood(&events)
            .unwrap_or_else(|| panic!("{driver} {hostility:?}: no flood named in {events:#?}"));
        assert!(
            what.starts_with(&format!("{name} flood")),
            "{driver}: {what}"
        );
        eprintln!("{driver} {hostility:?}: {what} after {took:?}");
    }
}

#[tokio::test]
async fn a_ping_flood_is_named() {
    assert_named(Hostility::PingFlood, "PING", true).await;
}

#[tokio::test]
async fn a_settings_flood_is_named() {
    assert_named(Hostility::SettingsFlood, "SETTINGS", true).await;
}

/// Only the raw driver listens on after its stream was reset; h2 ends the
/// call at the first RST_STREAM.
#[tokio::test]
async fn an_rst_stream_flood_is_named() {
    assert_named(Hostility::ResetFlood, "RST_STREAM", false).await;
}

#[tokio::test]
async fn a_continuation_flood_is_named() {
    assert_named(Hostility::ContinuationFlood, "CONTINUATION", true).await;
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_in_time() {
    for text in [raw_fixture(), h2_fixture(false)] {
        let (events, _) = run(&text, Hostility::NeverAnswers).await;
        assert!(
            events.iter().any(|e| matches!(e, Event::TimedOut { .. })),
            "{events:#?}"
        );
    }
}

/// Sending never waits, so only the driver's own checks can stop a long
/// `send_many` or `reset_many` at the fixture's timeout.
#[tokio::test]
async fn long_loops_stop_at_the_timeout() {
    let data = "x".repeat(1000);
    let h2 = format!(
        r#"{{"description": "d", "rule": "r", "level": "MUST", "timeout_ms": 30,
            "calls": [{{"method": "/Greeter/ClientStream",
              "steps": [{{"send_many": {{"count": 10000, "template": {{"data": "{data}{{i}}"}}}}}},
                        "half_close", "receive_all"]}}]}}"#
    );
    let raw = r#"{"description": "d", "rule": "r", "level": "MUST", "timeout_ms": 30,
        "raw": [{"reset_many": {"first_stream": 1, "count": 10000, "method": "/Greeter/SayHello"}},
                {"await_goaway": {"within_ms": 100}}]}"#;
    for (text, stopped_in) in [(h2.as_str(), "send_many"), (raw, "step 1")] {
        let (events, took) = run(text, Hostility::NeverAnswers).await;
        let timed_out = events.iter().find_map(|e| match e {
            Event::TimedOut { waiting_for } => Some(waiting_for),
            _ => None,
        });
        eprintln!("{timed_out:?} after {took:?}");
        assert!(
            timed_out.is_some_and(|w| w.contains(stopped_in)),
            "{timed_out:?}, not in {stopped_in}"
        );
        assert!(took < Duration::from_millis(30) + MARGIN, "{took:?}");
    }
}
