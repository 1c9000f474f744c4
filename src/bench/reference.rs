//! The embedded reference as the target when none is given: `grpc-conform
//! serve` on 127.0.0.1:0 in a child process, so its CPU time and memory are
//! not counted as the load generator's (getrusage measures this process).

use super::BenchError;
use std::{path::Path, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, ChildStdout, Command},
};

/// The reference server started for the run; stopped when dropped.
pub struct ChildReference {
    /// `127.0.0.1:port` it listens on.
    pub address: String,
    _child: Child,
    /// Kept open: a later line from the server must not meet a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

/// The reference has this long to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Starts `exe serve --listen 127.0.0.1:0` (exe: this program) and waits,
/// bounded, for its `listening on ADDR` line.
pub async fn start(exe: &Path) -> Result<ChildReference, BenchError> {
    let fail = |what: String| BenchError::Reference(what);
    let mut child = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot start {} serve: {e}", exe.display())))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    let mut stdout = BufReader::new(stdout);
    let read = stdout.read_line(&mut line);
    match tokio::time::timeout(START_TIMEOUT, read).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(fail(format!("reading its address: {e}"))),
        Err(_) => return Err(fail(format!("no address within {START_TIMEOUT:?}"))),
    }
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| fail(format!("unexpected first line {:?}", line.trim())))?
        .to_string();
    Ok(ChildReference {
        address,
        _child: child,
        _stdout: stdout,
    })
}
