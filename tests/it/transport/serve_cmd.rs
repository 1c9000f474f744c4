//! `grpc-conform serve` as a process: the address it prints, a clean stop on
//! SIGTERM and SIGINT, exit 2 when it cannot listen; `grpc-conform-reference`
//! as the same server.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_grpc-conform"))
}

/// `grpc-conform serve`, or the reference alone (the same flags after it).
fn server(alone: bool) -> Command {
    if alone {
        Command::new(env!("CARGO_BIN_EXE_grpc-conform-reference"))
    } else {
        let mut command = binary();
        command.arg("serve");
        command
    }
}

/// Waits (bounded) for the child to exit and returns its exit code.
fn exit_code(child: &mut std::process::Child) -> Option<i32> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(status) = child.try_wait().expect("waitable") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("grpc-conform serve did not stop within 10 s");
}

/// Starts the server (`alone`: `grpc-conform-reference`) on 127.0.0.1:0;
/// the child and the address it printed.
fn start(alone: bool) -> (std::process::Child, std::net::SocketAddr) {
    let mut child = server(alone)
        .args(["--listen", "127.0.0.1:0", "--ping-min-interval", "500ms"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().expect("piped");
    // read_line blocks: the reader thread is bounded by the recv timeout below.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("prints its address");
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("a socket address");
    assert_ne!(addr.port(), 0, "the real port, not 0");
    (child, addr)
}

fn stops_cleanly_on(signal: &str, alone: bool) {
    let (mut child, addr) = start(alone);
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .expect("accepts connections");
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    assert_eq!(exit_code(&mut child), Some(0), "clean stop on {signal}");
}

#[test]
fn serve_prints_its_address_and_stops_on_sigterm() {
    stops_cleanly_on("-TERM", false);
}

#[test]
fn serve_stops_on_sigint() {
    stops_cleanly_on("-INT", false);
}

#[test]
fn the_reference_alone_stops_as_serve_does() {
    stops_cleanly_on("-TERM", true);
    stops_cleanly_on("-INT", true);
}

#[test]
fn the_reference_alone_passes_the_unary_fixtures() {
    let (mut child, addr) = start(true);
    let run = binary()
        .args(["--target", &addr.to_string(), "--filter", "greeter/unary/*"])
        .output()
        .expect("runs");
    let _ = child.kill();
    let _ = child.wait();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
}

#[test]
fn serve_and_the_reference_alone_exit_2_when_they_cannot_listen() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = taken.local_addr().expect("addr").to_string();
    for alone in [false, true] {
        let mut child = server(alone)
            .args(["--listen", &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        assert_eq!(exit_code(&mut child), Some(2), "alone: {alone}");
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(
            stderr.contains(&addr) && stderr.contains("cannot listen"),
            "alone: {alone}: {stderr}"
        );
    }
}
