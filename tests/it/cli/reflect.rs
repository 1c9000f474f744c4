//! `--reflect` against grpcio with grpcio-reflection (which serves only
//! reflection v1alpha), over h2c and TLS. The Python peer's venv hosts the
//! server (`interop/python/build`, which .ci/run runs before the tests);
//! without it these tests say so and check nothing.

use super::{conform, first_line_within};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The Python peer, killed when dropped.
pub(super) struct PythonPeer {
    child: Child,
    /// `127.0.0.1:port`.
    pub address: String,
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Starts `interop/python/start PORT ARGS`, waiting at most 20 s for its
/// readiness line; `None` (with the reason printed) when the venv or
/// grpcio-reflection is missing.
pub(super) fn python_peer(args: &[&str]) -> Option<PythonPeer> {
    let python = repo().join("interop/python/out/venv/bin/python");
    let usable = Command::new(&python)
        .args(["-c", "import grpc, grpc_reflection"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        eprintln!("SKIPPED: no Python peer with grpcio-reflection (run interop/python/build)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(repo().join("interop/python/start"))
        .arg(port.to_string())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the Python peer starts");
    let line = first_line_within(&mut child, Duration::from_secs(20));
    let peer = PythonPeer {
        child,
        address: format!("127.0.0.1:{port}"),
    };
    assert!(line.starts_with("listening on"), "{line}");
    Some(peer)
}

/// A run of say-hello against the Python peer with its accepted snapshots
/// (CI set: the repository's snapshots are never written).
fn say_hello_against(peer: &PythonPeer) -> assert_cmd::Command {
    let mut cmd = conform();
    cmd.env("CI", "true")
        .args(["--target", &peer.address, "--reflect"])
        .args(["--filter", "greeter/unary/say-hello", "--snapshots"])
        .arg(repo().join("snapshots/peers/python"));
    cmd
}

#[test]
fn reflect_falls_back_to_v1alpha_on_grpcio() {
    let Some(peer) = python_peer(&["--reflection"]) else {
        return;
    };
    say_hello_against(&peer)
        .assert()
        .code(0)
        .stderr(predicates::str::contains(format!(
            "reflection v1alpha on {}: ChatService, Greeter, SensorService, conform.v1.Observer",
            peer.address
        )));
}

#[test]
fn reflect_works_over_tls() {
    let data = repo().join("tests/data");
    let (cert, key) = (data.join("server.pem"), data.join("server.key"));
    let Some(peer) = python_peer(&[
        "--reflection",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]) else {
        return;
    };
    say_hello_against(&peer)
        .arg("--ca-cert")
        .arg(data.join("ca.pem"))
        .args(["--server-name", "localhost"])
        .assert()
        .code(0)
        .stderr(predicates::str::contains("reflection v1alpha on"));
}

#[test]
fn reflect_without_a_reflection_service_names_both_versions() {
    let Some(peer) = python_peer(&[]) else {
        return;
    };
    say_hello_against(&peer)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("reflection v1: Unimplemented"))
        .stderr(predicates::str::contains(
            "reflection v1alpha: Unimplemented",
        ));
}
