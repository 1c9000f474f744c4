//! Running the client under test on one plan: a command (plan on stdin,
//! `GRPC_CONFORM_TARGET` in its environment, report on stdout, stderr kept)
//! killed with its whole process group when it overruns, or an async
//! function in the same process (for tests). Whatever the client does, the
//! run ends within the plan's `timeout_ms` plus [`GRACE`].

use super::plan::{Plan, Report, INTERFACE_VERSION};
use std::{ffi::OsString, future::Future, pin::Pin, process::Stdio, sync::Arc, time::Duration};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// How long after the plan's `timeout_ms` a client is killed.
pub const GRACE: Duration = Duration::from_secs(5);
/// The tail of stderr kept (and shown when the fixture fails).
pub const STDERR_KEPT: usize = 64 * 1024;
/// The most stdout read: a report is far smaller.
pub const STDOUT_LIMIT: usize = 16 * 1024 * 1024;
/// How long the output pipes are still read once the client exited (a
/// grandchild it left behind may hold them open).
const PIPE_DRAIN: Duration = Duration::from_millis(500);

/// An in-process client: the plan in, the report (or why none) out.
pub type ClientFn =
    Arc<dyn Fn(Plan) -> Pin<Box<dyn Future<Output = Result<Report, String>> + Send>> + Send + Sync>;

/// The client under test.
#[derive(Clone)]
pub enum ClientUnderTest {
    /// A command and its arguments (`grpc-conform client -- CMD ARGS...`).
    Command {
        /// The program.
        program: OsString,
        /// Its arguments.
        args: Vec<OsString>,
    },
    /// A function in this process (tests plug faulty clients in here).
    InProcess(ClientFn),
}

impl std::fmt::Debug for ClientUnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientUnderTest::Command { program, args } => f
                .debug_struct("Command")
                .field("program", program)
                .field("args", args)
                .finish(),
            ClientUnderTest::InProcess(_) => f.write_str("InProcess"),
        }
    }
}

/// What running the client gave.
#[derive(Debug)]
pub struct ClientRun {
    /// The report, or what the client did instead of giving one.
    pub report: Result<Report, String>,
    /// The tail of its stderr ([`STDERR_KEPT`]), lossily decoded.
    pub stderr: String,
}

impl ClientUnderTest {
    /// Runs the client on `plan`; never longer than its timeout plus [`GRACE`].
    pub async fn run(&self, plan: &Plan) -> ClientRun {
        let limit = Duration::from_millis(plan.timeout_ms) + GRACE;
        match self {
            ClientUnderTest::InProcess(client) => {
                let report = match tokio::time::timeout(limit, client(plan.clone())).await {
                    Ok(Ok(report)) => check_report(report, plan),
                    Ok(Err(e)) => Err(format!("the client failed: {e}")),
                    Err(_) => Err(hung(limit)),
                };
                ClientRun {
                    report,
                    stderr: String::new(),
                }
            }
            ClientUnderTest::Command { program, args } => {
                run_command(program, args, plan, limit).await
            }
        }
    }
}

fn hung(limit: Duration) -> String {
    format!(
        "the client did not finish within {} ms (the plan's timeout plus {} s) and was killed",
        limit.as_millis(),
        GRACE.as_secs()
    )
}

/// Spawns the command in a process group of its own, feeds it the plan,
/// collects its output, kills the group when it overruns `limit`.
async fn run_command(
    program: &OsString,
    args: &[OsString],
    plan: &Plan,
    limit: Duration,
) -> ClientRun {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env("GRPC_CONFORM_TARGET", &plan.target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return ClientRun {
                report: Err(format!("cannot start {}: {e}", program.to_string_lossy())),
                stderr: String::new(),
            }
        }
    };
    let group = child.id();
    let plan_text = serde_json::to_vec(plan).expect("a plan serialises");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A client that does not read its stdin must not block the kit.
    tokio::spawn(async move {
        let _ = stdin.write_all(&plan_text).await;
        let _ = stdin.shutdown().await;
    });
    let stdout = tokio::spawn(read_head(
        child.stdout.take().expect("stdout is piped"),
        STDOUT_LIMIT,
    ));
    let stderr = tokio::spawn(read_tail(
        child.stderr.take().expect("stderr is piped"),
        STDERR_KEPT,
    ));
    let status = tokio::time::timeout(limit, child.wait()).await;
    // The whole group goes: a client may be a script whose children
    // would otherwise outlive it (and hold its pipes open).
    kill_group(group);
    let status = match status {
        Ok(status) => status.map_err(|e| format!("cannot wait for the client: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            Err(hung(limit))
        }
    };
    let stdout = drain(stdout).await;
    let stderr = drain(stderr).await;
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let report = status.and_then(|status| {
        if !status.success() {
            return Err(match status.code() {
                Some(code) => format!("the client exited with status {code}"),
                None => format!("the client was killed by a signal ({status})"),
            });
        }
        parse_report(&stdout).and_then(|r| check_report(r, plan))
    });
    ClientRun { report, stderr }
}

/// The bytes a pipe reader collected, waiting at most [`PIPE_DRAIN`].
async fn drain(reader: tokio::task::JoinHandle<Vec<u8>>) -> Vec<u8> {
    match tokio::time::timeout(PIPE_DRAIN, reader).await {
        Ok(Ok(bytes)) => bytes,
        _ => Vec::new(),
    }
}

/// Kills process group `group` (the client and whatever it started).
fn kill_group(group: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = group.and_then(|g| i32::try_from(g).ok()) {
        // SAFETY: kill(2) with a negative pid signals that process group
        // only; the group is the client's own (process_group(0) above).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = group;
}

/// The first `limit` bytes of `reader`, then reads on to the end (dropping
/// the rest) so the writer never blocks on a full pipe.
async fn read_head(mut reader: impl AsyncRead + Unpin, limit: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = reader.read(&mut buf).await {
        let room = limit.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

/// The last `limit` bytes of `reader`.
async fn read_tail(mut reader: impl AsyncRead + Unpin, limit: usize) -> Vec<u8> {
    let mut kept = std::collections::VecDeque::with_capacity(limit.min(4096));
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n @ 1..) = reader.read(&mut buf).await {
        kept.extend(&buf[..n]);
        let over = kept.len().saturating_sub(limit);
        kept.drain(..over);
    }
    kept.into_iter().collect()
}

/// The report in a client's stdout: one JSON document.
fn parse_report(stdout: &[u8]) -> Result<Report, String> {
    let text = String::from_utf8_lossy(stdout);
    if text.trim().is_empty() {
        return Err("the client printed no report on stdout".into());
    }
    serde_json::from_str(&text).map_err(|e| {
        let head: String = text.chars().take(200).collect();
        format!("the client's stdout is not a report ({e}); it begins: {head:?}")
    })
}

/// Checks that a report answers the plan: its version, one entry per call.
fn check_report(report: Report, plan: &Plan) -> Result<Report, String> {
    if report.version != INTERFACE_VERSION {
        return Err(format!(
            "the report is version {}, the kit speaks {INTERFACE_VERSION}",
            report.version
        ));
    }
    if report.calls.len() != plan.calls.len() {
        return Err(format!(
            "the report has {} calls, the plan {}",
            report.calls.len(),
            plan.calls.len()
        ));
    }
    Ok(report)
}
