//! Capabilities: the probes find what a target offers, a fixture whose needs
//! it lacks is not applicable (never failed), a target without the Observer
//! is judged on its client side, and a wrong transport is one clear error.

use crate::support::{self, conform, tutorial_server};
use grpc_conform::{
    capabilities::{self, Support},
    contract,
    drive::{Connector, Target},
    reference::ReferenceConfig,
    run::{self, Verdict},
    session::{self, SessionOptions},
    snapshot::Store,
};
use std::time::{Duration, Instant};
use tokio::{io::AsyncWriteExt, net::TcpListener};

fn connector(addr: std::net::SocketAddr) -> Connector {
    Connector::new(Target {
        address: addr.to_string(),
        tls: None,
    })
    .unwrap()
}

#[tokio::test]
async fn probes_tell_a_whole_contract_from_a_tutorial_server() {
    let full = support::start_reference().await;
    let caps = capabilities::probe(&connector(full.local_addr()), 2.0)
        .await
        .unwrap();
    assert!(caps.observer);
    assert!(caps.methods.values().all(|m| *m), "{:?}", caps.methods);
    assert!(caps.encodings.values().all(|e| *e), "{:?}", caps.encodings);
    for header in contract::CONTROL_HEADERS {
        assert_eq!(
            caps.control.get(header),
            Some(&Support::Honoured),
            "{header}"
        );
    }
    let bare = support::start_reference_with(tutorial_server()).await;
    let caps = capabilities::probe(&connector(bare.local_addr()), 2.0)
        .await
        .unwrap();
    assert!(!caps.observer);
    assert!(caps.methods.values().all(|m| *m), "{:?}", caps.methods);
    for header in contract::CONTROL_HEADERS {
        assert_eq!(
            caps.control.get(header),
            Some(&Support::Ignored),
            "{header}"
        );
    }
    let mut caps = caps;
    caps.assume("observer=yes").unwrap();
    assert!(caps.observer);
    assert!(caps.assume("obsrver=yes").is_err());
    assert!(caps.assume("observer=maybe").is_err());
}

/// The whole corpus against `config`, prepared as the command line does.
async fn corpus_against(config: ReferenceConfig) -> run::RunReport {
    let server = support::start_reference_with(config).await;
    let prepared = session::prepare(SessionOptions {
        target: Some(server.local_addr().to_string()),
        time_scale: 2.0,
        jobs: 4,
        repeat: 1,
        store: Store::new(None, false),
        ..SessionOptions::default()
    })
    .await
    .expect("the session is prepared");
    run::run(prepared.config, "test", &prepared.transport, |_| {}).await
}

#[tokio::test]
async fn no_fixture_fails_because_the_observer_or_control_headers_are_missing() {
    for config in [
        tutorial_server(),
        ReferenceConfig {
            observer: false,
            ..ReferenceConfig::default()
        },
        ReferenceConfig {
            control_headers: false,
            ..ReferenceConfig::default()
        },
    ] {
        let (observer, control) = (config.observer, config.control_headers);
        let report = corpus_against(config).await;
        let failed: Vec<(&str, Option<&String>)> = report
            .results
            .iter()
            .filter(|r| r.verdict.fails_run())
            .map(|r| (r.name.as_str(), r.diff.as_ref()))
            .collect();
        assert!(
            failed.is_empty(),
            "observer={observer} control={control}: {failed:#?}"
        );
        let not_applicable = report.count(Verdict::NotApplicable);
        assert_eq!(
            not_applicable > 0,
            !control,
            "{not_applicable} not applicable"
        );
        assert!(
            report.count(Verdict::Pass) > 60,
            "{}",
            report.count(Verdict::Pass)
        );
        if !observer {
            let observed = report
                .results
                .iter()
                .filter_map(|r| r.transcript.as_deref())
                .find(|t| t.contains("left out"))
                .expect("a transcript says the server's view is left out");
            assert!(!observed.contains("observer:"), "{observed}");
        }
    }
}

#[tokio::test]
async fn a_wrong_transport_is_one_clear_error_with_exit_3() {
    // An HTTP/1.1 server: it answers the preface's request line with a 400.
    let http1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http1_addr = http1.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = http1.accept().await {
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let (tls_addr, tls_server) = crate::runner::tls_target().await;
    for (addr, tls, said) in [
        (http1_addr, false, "HTTP/1.x, not HTTP/2"),
        (tls_addr, false, "answered with TLS: add --tls"),
    ] {
        let started = Instant::now();
        let mut cmd = conform();
        cmd.args(["--target", &addr.to_string()]);
        if tls {
            cmd.arg("--tls");
        }
        let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains(said), "{stderr}");
        assert!(started.elapsed() < Duration::from_millis(2_500));
    }
    tls_server.abort();
}

#[tokio::test]
async fn the_profile_is_in_the_json_and_junit_reports() {
    let server = support::start_reference_with(tutorial_server()).await;
    let addr = server.local_addr().to_string();
    let run = |format: &'static str| {
        let mut cmd = conform();
        cmd.args(["--target", &addr, "--format", format, "--filter", "status/"]);
        async move {
            tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap()
        }
    };
    let json = run("json").await;
    assert_eq!(json.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["capabilities"]["observer"], false);
    assert_eq!(
        report["capabilities"]["control"][contract::FAIL_AFTER],
        "ignored"
    );
    assert!(report["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["verdict"] == "not_applicable"));
    let junit = run("junit").await;
    let xml = String::from_utf8_lossy(&junit.stdout);
    assert!(
        xml.contains(r#"<property name="observer" value="no"/>"#),
        "{xml}"
    );
    assert!(
        xml.contains("not applicable: the target lacks control:"),
        "{xml}"
    );
}
