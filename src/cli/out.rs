//! Standard output for reports and listings. A reader that went away
//! (`grpc-conform snapshots pending | head -1`) ends the output quietly:
//! the broken pipe is not an error, later writes are dropped, and the
//! command keeps the exit code it would have had.

use super::run::CliError;
use std::{
    io::{ErrorKind, Write},
    sync::atomic::{AtomicBool, Ordering},
};

/// Set once standard output was found closed.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to standard output and flushes; a closed pipe is silence.
pub fn print(text: &str) -> Result<(), CliError> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(CliError::Other(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

/// [`print`] with a newline.
pub fn line(text: &str) -> Result<(), CliError> {
    print(&format!("{text}\n"))
}

/// Whether standard output was found closed (a listing can stop early).
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// Writes a line to standard error; a closed standard error is silence
/// (`eprintln!` would panic).
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
