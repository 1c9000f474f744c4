//! The raw connection: frames written by hand, a reader task that decodes
//! the server's frames into the log and answers SETTINGS and PING, and the
//! script's view of what arrived.

use super::super::{connect::Io, Stop};
use crate::wire::{
    frame::{flag, frame, kind, CLIENT_PREFACE},
    log::{Body, Dir, Frame, END_HEADERS},
    recorder::FrameLog,
};
use std::sync::Arc;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, WriteHalf},
    sync::{mpsc, Mutex},
    task::JoinHandle,
    time::{timeout_at, Instant},
};

/// Largest frame payload we send (the minimum every peer accepts).
pub(super) const MAX_FRAME: usize = 16_384;

/// Writes frames, logging each as sent.
#[derive(Clone)]
pub(super) struct Writer {
    /// The write half.
    io: Arc<Mutex<WriteHalf<Box<dyn Io>>>>,
    /// Where sent frames are logged.
    log: FrameLog,
}

impl Writer {
    /// Writes `bytes` (whole frames) at once.
    pub(super) async fn write(&self, bytes: &[u8]) -> Result<(), Stop> {
        self.log.feed(Dir::Out, bytes);
        let mut io = self.io.lock().await;
        io.write_all(bytes)
            .await
            .map_err(|_| Stop::Failed("connection lost while sending".into()))?;
        io.flush()
            .await
            .map_err(|_| Stop::Failed("connection lost while sending".into()))
    }
}

/// The raw connection and what the script has read of it.
pub(super) struct RawConn {
    /// Sends frames.
    pub(super) writer: Writer,
    /// Server frames as the reader task decodes them.
    pub(super) incoming: mpsc::UnboundedReceiver<Frame>,
    /// HPACK state of our header blocks.
    pub(super) encoder: loona_hpack::Encoder<'static>,
    /// Every server frame taken from `incoming`, in order.
    pub(super) seen: Vec<Frame>,
    /// GOAWAYs already put in the transcript.
    pub(super) goaways_reported: usize,
    /// The reader task hit EOF or an error.
    pub(super) closed: bool,
    /// Reads the socket; aborted on drop.
    pub(super) reader: JoinHandle<()>,
}

impl Drop for RawConn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl RawConn {
    /// Opens the connection: preface, SETTINGS with the largest stream window
    /// and no push, and the largest connection window.
    pub(super) async fn open(io: Box<dyn Io>, log: FrameLog) -> Result<RawConn, Stop> {
        let (mut read, write) = tokio::io::split(io);
        let writer = Writer {
            io: Arc::new(Mutex::new(write)),
            log: log.clone(),
        };
        // The preface goes first: the reader's answers must not overtake it.
        let mut start = CLIENT_PREFACE.to_vec();
        let mut settings = Vec::new();
        for (id, value) in [(2u16, 0u32), (4, 0x7fff_ffff)] {
            settings.extend(id.to_be_bytes());
            settings.extend(value.to_be_bytes());
        }
        start.extend(frame(kind::SETTINGS, 0, 0, &settings));
        start.extend(frame(
            kind::WINDOW_UPDATE,
            0,
            0,
            &(0x7fff_ffffu32 - 65_535).to_be_bytes(),
        ));
        writer.write(&start).await?;
        let (tx, incoming) = mpsc::unbounded_channel();
        let answer = writer.clone();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = read.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                for f in log.feed(Dir::In, &buf[..n]) {
                    // A peer waits for these; answering is not the script's business.
                    let reply = match &f.body {
                        Body::Settings { ack: false, .. } => {
                            Some(frame(kind::SETTINGS, flag::ACK, 0, &[]))
                        }
                        Body::Ping {
                            ack: false,
                            payload,
                        } => Some(frame(kind::PING, flag::ACK, 0, payload)),
                        _ => None,
                    };
                    if let Some(reply) = reply {
                        let _ = answer.write(&reply).await;
                    }
                    if tx.send(f).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(RawConn {
            writer,
            incoming,
            encoder: loona_hpack::Encoder::new(),
            seen: Vec::new(),
            goaways_reported: 0,
            closed: false,
            reader,
        })
    }

    /// Takes server frames until `done` holds, the connection closes, or `until`.
    /// Whether `done` held.
    pub(super) async fn pump(&mut self, until: Instant, done: impl Fn(&[Frame]) -> bool) -> bool {
        loop {
            if done(&self.seen) {
                return true;
            }
            if self.closed {
                return false;
            }
            match timeout_at(until, self.incoming.recv()).await {
                Ok(Some(f)) => self.seen.push(f),
                Ok(None) => self.closed = true,
                Err(_) => return false,
            }
        }
    }

    /// Sends a header block as HEADERS plus CONTINUATIONs.
    pub(super) async fn headers(
        &mut self,
        stream: u32,
        fields: &[(String, String)],
        end: bool,
    ) -> Result<Vec<u8>, Stop> {
        let block = self
            .encoder
            .encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let chunks: Vec<&[u8]> = block.chunks(MAX_FRAME).collect();
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = if i + 1 == chunks.len() {
                END_HEADERS
            } else {
                0
            };
            if i == 0 {
                let es = if end { flag::END_STREAM } else { 0 };
                out.extend(frame(kind::HEADERS, es | last, stream, chunk));
            } else {
                out.extend(frame(kind::CONTINUATION, last, stream, chunk));
            }
        }
        Ok(out)
    }
}
