//! The raw connection: frames written by hand, a reader task that decodes
//! the server's frames into the log and answers SETTINGS and PING, and the
//! script's view of what arrived.

use super::super::{connect::Io, Stop};
use crate::wire::{
    bounds::may_keep,
    frame::{flag, frame, kind, CLIENT_PREFACE},
    log::{Body, Dir, Frame},
    recorder::FrameLog,
};
use std::sync::Arc;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf},
    sync::{mpsc, Mutex},
    task::JoinHandle,
    time::{timeout_at, Instant},
};

/// Largest frame payload we send (the minimum every peer accepts).
pub(super) const MAX_FRAME: usize = 16_384;
/// The flow-control window granted to the server, per stream and for the
/// connection: far above any fixture's responses, and what the reader may
/// have in flight before the script consumes it.
pub(super) const WINDOW: u32 = 1024 * 1024;
/// Server frames decoded but not yet taken by the script; past it the
/// reader stops reading the socket (and so stops granting window).
const QUEUED_FRAMES: usize = 256;
/// Server frames the script keeps in full; past it only frames that end
/// something (HEADERS, RST_STREAM, GOAWAY, END_STREAM) are kept, up to twice
/// as many, and the rest only counted.
pub(super) const MAX_SEEN: usize = 10_000;

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
    pub(super) incoming: mpsc::Receiver<Frame>,
    /// HPACK state of our header blocks.
    pub(super) encoder: loona_hpack::Encoder<'static>,
    /// The server frames taken from `incoming`, in order, as many as
    /// [`MAX_SEEN`] allows.
    pub(super) seen: Vec<Frame>,
    /// Server frames taken but not kept in `seen`.
    pub(super) not_seen: u64,
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
    /// Opens the connection: preface, SETTINGS with a [`WINDOW`] stream
    /// window and no push, and a [`WINDOW`] connection window, both granted
    /// again as the reader hands DATA on.
    pub(super) async fn open(io: Box<dyn Io>, log: FrameLog) -> Result<RawConn, Stop> {
        let (read, write) = tokio::io::split(io);
        let writer = Writer {
            io: Arc::new(Mutex::new(write)),
            log: log.clone(),
        };
        // The preface goes first: the reader's answers must not overtake it.
        let mut start = CLIENT_PREFACE.to_vec();
        let mut settings = Vec::new();
        for (id, value) in [(2u16, 0u32), (4, WINDOW)] {
            settings.extend(id.to_be_bytes());
            settings.extend(value.to_be_bytes());
        }
        start.extend(frame(kind::SETTINGS, 0, 0, &settings));
        start.extend(frame(
            kind::WINDOW_UPDATE,
            0,
            0,
            &(WINDOW - 65_535).to_be_bytes(),
        ));
        writer.write(&start).await?;
        let (tx, incoming) = mpsc::channel(QUEUED_FRAMES);
        let reader = tokio::spawn(read_frames(read, log, writer.clone(), tx));
        Ok(RawConn {
            writer,
            incoming,
            encoder: loona_hpack::Encoder::new(),
            seen: Vec::new(),
            not_seen: 0,
            goaways_reported: 0,
            closed: false,
            reader,
        })
    }

    /// Takes server frames until `done` holds, the connection closes, or `until`.
    /// Whether `done` held.
    pub(super) async fn pump(&mut self, until: Instant, done: impl Fn(&[Frame]) -> bool) -> bool {
        if done(&self.seen) {
            return true;
        }
        loop {
            if self.closed {
                return false;
            }
            match timeout_at(until, self.incoming.recv()).await {
                // Only a frame kept that can end a wait is worth asking
                // `done` again: a DATA stream must not cost a scan of
                // everything seen per frame.
                Ok(Some(f)) => {
                    if self.see(f) && done(&self.seen) {
                        return true;
                    }
                }
                Ok(None) => self.closed = true,
                Err(_) => return false,
            }
        }
    }

    /// Keeps a server frame taken from the reader, within [`MAX_SEEN`];
    /// whether it was kept and may end a wait (anything but DATA without
    /// END_STREAM and WINDOW_UPDATE).
    fn see(&mut self, f: Frame) -> bool {
        let telling = !matches!(
            f.body,
            Body::WindowUpdate { .. }
                | Body::Data {
                    end_stream: false,
                    ..
                }
        );
        if may_keep(&f.body, self.seen.len(), MAX_SEEN) {
            self.seen.push(f);
            telling
        } else {
            self.not_seen += 1;
            false
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
                flag::END_HEADERS
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

/// The reader task: decodes the server's frames into the log, answers
/// SETTINGS and PING (a peer waits for those; answering is not the script's
/// business), grants back the window of each DATA frame once the script's
/// queue took it, and stops at a flood (the log names it) or the end.
async fn read_frames(
    mut read: ReadHalf<Box<dyn Io>>,
    log: FrameLog,
    answer: Writer,
    tx: mpsc::Sender<Frame>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = read.read(&mut buf).await {
        if n == 0 {
            break;
        }
        for f in log.feed(Dir::In, &buf[..n]) {
            if log.flood().is_some() {
                return;
            }
            let mut reply = match &f.body {
                Body::Settings { ack: false, .. } => frame(kind::SETTINGS, flag::ACK, 0, &[]),
                Body::Ping {
                    ack: false,
                    payload,
                } => frame(kind::PING, flag::ACK, 0, payload),
                _ => Vec::new(),
            };
            let granted = match &f.body {
                Body::Data {
                    payload,
                    not_kept,
                    end_stream,
                } => Some((f.stream, payload.len() + not_kept, *end_stream)),
                _ => None,
            };
            // Waits while the script's queue is full: the socket is not read
            // meanwhile, and no window is granted for what is not consumed.
            if tx.send(f).await.is_err() {
                return;
            }
            if let Some((stream, len, end_stream)) = granted.filter(|(_, len, _)| *len > 0) {
                let increment = (len as u32).to_be_bytes();
                reply.extend(frame(kind::WINDOW_UPDATE, 0, 0, &increment));
                if !end_stream {
                    reply.extend(frame(kind::WINDOW_UPDATE, 0, stream, &increment));
                }
            }
            if !reply.is_empty() {
                let _ = answer.write(&reply).await;
            }
        }
    }
}
