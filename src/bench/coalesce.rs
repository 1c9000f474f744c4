//! A load connection whose writes are coalesced: the h2 crate writes each
//! DATA frame of 256 bytes or more on its own (it sends large payloads
//! without copying them), so a hundred streams on one connection cost a
//! hundred writes, and the server as many reads. Here h2 writes into a
//! bounded buffer and its flushes do nothing; the task that drives the
//! connection writes the buffer out once h2 has done all it can, so what the
//! streams sent since the last wake-up leaves in one write. A connection of
//! one stream has nothing to gather: h2 writes to its socket directly (a
//! frame's header and payload in one vectored write), which spares a copy.

use crate::drive::{describe_h2, Connector, DriveError};
use bytes::{Buf, Bytes, BytesMut};
use h2::client::SendRequest;
use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{ready, Context, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes buffered before a write waits for the socket: a few frames'
/// worth, so a slow target holds back the sends rather than memory.
const WRITE_BUFFER: usize = 256 * 1024;

/// The byte stream and what h2 wrote to it that is not sent yet.
struct Shared {
    io: Box<dyn crate::drive::connect::Io>,
    pending: BytesMut,
}

impl Shared {
    /// Writes out what is pending (as much as the socket takes).
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(n);
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

/// What h2 reads from and writes to.
struct CoalescedIo(Arc<Mutex<Shared>>);

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Only this connection's task takes the lock; a panic there ends it.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl AsyncRead for CoalescedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut lock(&self.0).io).poll_read(cx, buf)
    }
}

impl AsyncWrite for CoalescedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut shared = lock(&self.0);
        if shared.pending.len() >= WRITE_BUFFER {
            ready!(shared.poll_drain(cx))?;
        }
        shared.pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut shared = lock(&self.0);
        if shared.pending.len() >= WRITE_BUFFER {
            ready!(shared.poll_drain(cx))?;
        }
        let mut n = 0;
        for buf in bufs {
            shared.pending.extend_from_slice(buf);
            n += buf.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The driving task writes the buffer out when h2 is done for now.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut shared = lock(&self.0);
        ready!(shared.poll_drain(cx))?;
        Pin::new(&mut shared.io).poll_shutdown(cx)
    }
}

/// An HTTP/2 connection for load.
pub struct LoadConn {
    /// Opens streams.
    pub sender: SendRequest<Bytes>,
    /// `http` or `https`.
    pub scheme: &'static str,
}

/// What moves a [`LoadConn`]'s bytes: h2's connection state (and the write
/// buffer). It runs in the task of the connection's streams ([`drive`]).
pub struct Driver {
    writes: Writes,
    /// The connection ended (closed, failed, or its socket failed).
    done: bool,
}

/// How a connection's frames reach its socket.
enum Writes {
    /// Through the buffer, written out once h2 is done for now.
    Coalesced {
        connection: h2::client::Connection<CoalescedIo, Bytes>,
        shared: Arc<Mutex<Shared>>,
    },
    /// By h2 itself.
    Direct(h2::client::Connection<Box<dyn crate::drive::connect::Io>, Bytes>),
}

impl Driver {
    /// Lets h2 read and write what it can, then writes out whatever it
    /// wrote in one write; a socket that takes no more wakes the task again
    /// when it does.
    fn poll_once(&mut self, cx: &mut Context<'_>) {
        if self.done {
            return;
        }
        self.done = match &mut self.writes {
            Writes::Coalesced { connection, shared } => {
                let finished = Pin::new(connection).poll(cx).is_ready();
                let failed = matches!(lock(shared).poll_drain(cx), Poll::Ready(Err(_)));
                finished || failed
            }
            Writes::Direct(connection) => Pin::new(connection).poll(cx).is_ready(),
        };
    }
}

/// Runs `streams` (the work on one connection's streams) with the
/// connection's `driver` in the same task: frames read make streams ready,
/// the streams send, and what they sent leaves in the same wake-up, without
/// handing over to another task each way.
pub async fn drive<F: Future>(mut driver: Driver, streams: F) -> F::Output {
    let mut streams = std::pin::pin!(streams);
    std::future::poll_fn(move |cx| {
        driver.poll_once(cx);
        if let Poll::Ready(out) = streams.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        driver.poll_once(cx);
        Poll::Pending
    })
    .await
}

/// Opens a connection to `connector`'s target, with coalesced writes when
/// it will carry more than one stream at a time. The caller bounds the time.
pub async fn connect(
    connector: &Connector,
    coalesce: bool,
) -> Result<(LoadConn, Driver), DriveError> {
    let (io, scheme) = connector.connect_io().await?;
    let handshake_err = |e: h2::Error| DriveError::Handshake(describe_h2(&e));
    let settings = crate::drive::connect::load_settings();
    let (sender, writes) = if coalesce {
        let shared = Arc::new(Mutex::new(Shared {
            io,
            pending: BytesMut::with_capacity(64 * 1024),
        }));
        let (sender, connection) = settings
            .handshake::<_, Bytes>(CoalescedIo(shared.clone()))
            .await
            .map_err(handshake_err)?;
        (sender, Writes::Coalesced { connection, shared })
    } else {
        let (sender, connection) = settings
            .handshake::<_, Bytes>(io)
            .await
            .map_err(handshake_err)?;
        (sender, Writes::Direct(connection))
    };
    Ok((
        LoadConn { sender, scheme },
        Driver {
            writes,
            done: false,
        },
    ))
}
