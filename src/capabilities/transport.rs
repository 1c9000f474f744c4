//! The first probe: does the target speak HTTP/2 the way it is addressed?
//! A target on the wrong transport is one clear error with a hint within the
//! time bound, not a wall of failed fixtures.

use crate::drive::Connector;
use std::time::Duration;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::{timeout_at, Instant},
};

/// The client connection preface and an empty SETTINGS frame (RFC 9113 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Why the target cannot be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No TCP connection (exit 3).
    #[error("target {target} unreachable: {reason}")]
    Unreachable {
        /// `host:port`.
        target: String,
        /// What the OS said, or that it took too long.
        reason: String,
    },
    /// It accepts TCP but does not speak HTTP/2 as addressed (exit 3).
    #[error("target {target} {what}")]
    NotHttp2 {
        /// `host:port`.
        target: String,
        /// What it did instead, with a hint.
        what: String,
    },
}

/// Connects within `within` and checks the transport: with TLS, the TLS and
/// HTTP/2 handshakes; without, that the server's first frame is SETTINGS.
pub async fn check_transport(
    connector: &Connector,
    tls: bool,
    within: Duration,
) -> Result<&'static str, TransportError> {
    let target = connector.address().to_string();
    let deadline = Instant::now() + within;
    let unreachable = |reason: String| TransportError::Unreachable {
        target: target.clone(),
        reason,
    };
    let not_h2 = |what: &str| TransportError::NotHttp2 {
        target: target.clone(),
        what: what.to_string(),
    };
    if tls {
        return match timeout_at(deadline, connector.connect()).await {
            Err(_) => Err(not_h2(&format!(
                "did not complete the TLS and HTTP/2 handshakes within {within:?}"
            ))),
            Ok(Ok(_)) => Ok("HTTP/2 over TLS"),
            Ok(Err(crate::drive::DriveError::Unreachable { reason, .. })) => {
                Err(unreachable(reason))
            }
            Ok(Err(e))
                if e.to_string().contains("InvalidContentType")
                    || e.to_string().contains("corrupt message") =>
            {
                Err(not_h2(
                    "answered without TLS: drop --tls (plain HTTP/2 with prior knowledge)",
                ))
            }
            Ok(Err(e)) => Err(not_h2(&format!("failed the handshake: {e}"))),
        };
    }
    let mut tcp = match timeout_at(deadline, TcpStream::connect(&target)).await {
        Err(_) => return Err(unreachable(format!("no TCP connection within {within:?}"))),
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Ok(Ok(tcp)) => tcp,
    };
    // A server may close at once on a bad preface; what it sent first tells.
    let _ = tcp.write_all(PREFACE).await;
    let mut first = [0u8; 9];
    let mut got = 0;
    while got < first.len() {
        match timeout_at(deadline, tcp.read(&mut first[got..])).await {
            Err(_) if got == 0 => {
                return Err(not_h2(&format!(
                    "accepted TCP but sent nothing within {within:?} (not an HTTP/2 server?)"
                )))
            }
            Err(_) | Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got += n,
        }
    }
    classify(&first[..got]).map_err(|what| not_h2(&what))
}

/// What the server's first bytes say about its transport.
fn classify(first: &[u8]) -> Result<&'static str, String> {
    match first {
        [] => Err("closed the connection without an HTTP/2 SETTINGS frame".into()),
        [0x15 | 0x16, 0x03, ..] => Err("answered with TLS: add --tls".into()),
        // An HTTP/1 server answers the preface's request line with a status
        // line, or (some) with an error page straight away.
        text if text
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) =>
        {
            Err(format!(
                "speaks HTTP/1.x, not HTTP/2 with prior knowledge (it answered {:?}...)",
                String::from_utf8_lossy(text)
            ))
        }
        [_, _, _, 0x04, ..] => Ok("HTTP/2 with prior knowledge (h2c)"),
        other => Err(format!(
            "did not answer with an HTTP/2 SETTINGS frame (first bytes {:02x?})",
            other
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn first_bytes_name_the_transport() {
        assert!(classify(&[0, 0, 6, 4, 0, 0, 0, 0, 0]).is_ok());
        assert!(classify(&[0x15, 0x03, 0x03, 0, 2, 2, 50])
            .unwrap_err()
            .contains("add --tls"));
        assert!(classify(b"HTTP/1.1 ").unwrap_err().contains("HTTP/1.x"));
        assert!(classify(b"<!DOCTYPE").unwrap_err().contains("HTTP/1.x"));
        assert!(classify(&[]).is_err());
    }
}
