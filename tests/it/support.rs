//! Shared helpers: an in-process reference server on 127.0.0.1:0 and clients.

#![allow(dead_code)]

use grpc_conform::reference::{ReferenceConfig, ReferenceServer};
use tonic::transport::{Channel, Endpoint};

/// A reference server with the default configuration.
pub async fn start_reference() -> ReferenceServer {
    start_reference_with(ReferenceConfig::default()).await
}

/// A reference server with `config` (its listen address is forced to 127.0.0.1:0).
pub async fn start_reference_with(mut config: ReferenceConfig) -> ReferenceServer {
    config.listen = ([127, 0, 0, 1], 0).into();
    ReferenceServer::start(config)
        .await
        .expect("reference server starts")
}

/// A connected channel to `server`; connecting is bounded to 5 s.
pub async fn channel(server: &ReferenceServer) -> Channel {
    Endpoint::from_shared(format!("http://{}", server.local_addr()))
        .expect("valid endpoint")
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .expect("connects to the reference server")
}

/// The binary with the CI variable removed (tests that need it set it),
/// without colour, and a generous bound on the whole process.
pub fn conform() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("grpc-conform").expect("binary built");
    cmd.env_remove("CI")
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(120));
    cmd
}

/// A server without the Observer and the control headers, as one written
/// from the streaming tutorials alone.
pub fn tutorial_server() -> ReferenceConfig {
    ReferenceConfig {
        observer: false,
        control_headers: false,
        ..ReferenceConfig::default()
    }
}

/// `grpc-conform serve` on 127.0.0.1:0 in its own process (the black-box
/// path a user takes with their own server), and the address it printed.
pub fn serve_process() -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut server = std::process::Command::new(assert_cmd::cargo::cargo_bin("grpc-conform"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected: {line}"))
        .to_string();
    (server, addr)
}
