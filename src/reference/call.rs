//! What the reference server observed of each call (CONTRACT.md section 4).
//!
//! The transport layer opens a [`CallCtx`] for every request and puts it in the
//! request's extensions; the handler counts what it read through it, and the
//! transport settles how the call ended. Calls that carried
//! `x-conform-call-id` are kept in the [`CallRegistry`] for `Observer.GetCall`.

use crate::proto::observer::{CallRecord, Outcome};
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::watch;

pub use crate::contract::CALL_ID as CALL_ID_HEADER;

/// Calls kept for the Observer at most; the oldest go first. Bounds memory on a
/// server that runs for days under a CI loop.
pub const MAX_KEPT_CALLS: usize = 10_000;
/// Bytes of call ids and metadata kept for the Observer at most; the oldest
/// calls go first. A call's headers are at most 16 KiB (hyper's default
/// header list limit), so this binds before the count only when clients
/// send large metadata.
pub const MAX_KEPT_BYTES: usize = 32 * 1024 * 1024;

/// One call's view from the server, shared by the transport and the handler.
/// Cloning shares the same call.
#[derive(Clone, Debug)]
pub struct CallCtx {
    record: Arc<watch::Sender<CallRecord>>,
}

/// What the transport knows of a call when it opens it.
#[derive(Clone, Debug, Default)]
pub struct CallOpening {
    /// `x-conform-call-id`, when the request carried it.
    pub call_id: Option<String>,
    /// The request path, e.g. `/Greeter/SayHello`.
    pub method: String,
    /// The request's `grpc-encoding`, "" when absent.
    pub request_encoding: String,
    /// The request's `grpc-timeout` in milliseconds, 0 when none.
    pub timeout_ms: i64,
    /// Request headers whose names start with `x-`.
    pub metadata: BTreeMap<String, String>,
}

impl CallCtx {
    fn new(opening: CallOpening) -> CallCtx {
        let record = CallRecord {
            call_id: opening.call_id.unwrap_or_default(),
            method: opening.method,
            outcome: Outcome::Running as i32,
            request_encoding: opening.request_encoding,
            timeout_ms: opening.timeout_ms,
            metadata: opening.metadata.into_iter().collect(),
            ..CallRecord::default()
        };
        CallCtx {
            record: Arc::new(watch::channel(record).0),
        }
    }

    /// A call nobody will ask about: for handlers run outside the transport.
    pub fn detached() -> CallCtx {
        CallCtx::new(CallOpening::default())
    }

    /// The call the transport put in `extensions`, or a detached one.
    pub fn from_extensions(extensions: &http::Extensions) -> CallCtx {
        extensions
            .get::<CallCtx>()
            .cloned()
            .unwrap_or_else(CallCtx::detached)
    }

    /// The handler read one request message.
    pub fn request_read(&self) {
        self.update(|r| r.requests_received += 1);
    }

    /// The client's END_STREAM reached the handler. Never call this for a reset:
    /// a cancel is not a half-close. Ignored once the call has ended, so a
    /// handler that mistakes the end of a reset stream for a half-close cannot
    /// rewrite a CANCELLED record.
    pub fn half_close(&self) {
        self.record.send_if_modified(|r| {
            let running = r.outcome == Outcome::Running as i32;
            if running {
                r.half_close_received = true;
            }
            running
        });
    }

    /// One response message went out.
    pub fn response_sent(&self) {
        self.update(|r| r.responses_sent += 1);
    }

    /// The call ended. The first ending wins: a handler that finishes after the
    /// client reset the stream stays CANCELLED.
    pub fn finish(&self, outcome: Outcome, status_code: u32) {
        self.record.send_if_modified(|r| {
            if r.outcome != Outcome::Running as i32 {
                return false;
            }
            r.outcome = outcome as i32;
            r.status_code = status_code;
            true
        });
    }

    /// Whether the call has ended.
    pub fn is_finished(&self) -> bool {
        self.record.borrow().outcome != Outcome::Running as i32
    }

    /// The record as it stands.
    pub fn record(&self) -> CallRecord {
        self.record.borrow().clone()
    }

    /// Changes a counter. Nobody waits on counters (GetCall waits for the
    /// outcome, and reads the counters as they stand), so the change wakes
    /// no one: this runs for every message.
    fn update(&self, f: impl FnOnce(&mut CallRecord)) {
        self.record.send_if_modified(|r| {
            f(r);
            false
        });
    }
}

/// The calls that carried `x-conform-call-id`, by id. Cloning shares the registry.
#[derive(Clone, Debug, Default)]
pub struct CallRegistry {
    inner: Arc<Mutex<Kept>>,
}

#[derive(Debug, Default)]
struct Kept {
    /// Call id → the call and the bytes it is counted for.
    calls: HashMap<String, (CallCtx, usize)>,
    /// Call ids, oldest first.
    order: std::collections::VecDeque<String>,
    /// Bytes counted of every call kept.
    bytes: usize,
}

/// The bytes a kept call is counted for: its id (twice: key and record),
/// method and metadata.
fn kept_bytes(opening: &CallOpening) -> usize {
    let metadata: usize = opening
        .metadata
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    2 * opening.call_id.as_ref().map_or(0, String::len) + opening.method.len() + metadata
}

impl CallRegistry {
    /// Opens a call; keeps it when it has an id. A second call with the same id
    /// replaces the first, so a rerun fixture sees its own call.
    pub fn open(&self, opening: CallOpening) -> CallCtx {
        let id = opening.call_id.clone().filter(|id| !id.is_empty());
        let bytes = kept_bytes(&opening);
        let ctx = CallCtx::new(opening);
        if let Some(id) = id {
            let mut kept = self.inner.lock().expect("call registry poisoned");
            kept.bytes += bytes;
            match kept.calls.insert(id.clone(), (ctx.clone(), bytes)) {
                Some((_, replaced)) => kept.bytes -= replaced,
                None => kept.order.push_back(id),
            }
            while kept.order.len() > MAX_KEPT_CALLS || kept.bytes > MAX_KEPT_BYTES {
                let Some(old) = kept.order.pop_front() else {
                    break;
                };
                if let Some((_, freed)) = kept.calls.remove(&old) {
                    kept.bytes -= freed;
                }
            }
        }
        ctx
    }

    /// The record of call `id`, waiting up to `wait` for it to stop running;
    /// `None` when no call carried that id.
    pub async fn get(&self, id: &str, wait: Duration) -> Option<CallRecord> {
        let ctx = self
            .inner
            .lock()
            .expect("call registry poisoned")
            .calls
            .get(id)
            .map(|(ctx, _)| ctx.clone())?;
        let mut changes = ctx.record.subscribe();
        let settled = changes.wait_for(|r| r.outcome != Outcome::Running as i32);
        // Timing out is an answer too: the record says RUNNING.
        let _ = tokio::time::timeout(wait, settled).await;
        Some(ctx.record())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening(id: &str) -> CallOpening {
        CallOpening {
            call_id: Some(id.into()),
            method: "/Greeter/SayHello".into(),
            ..CallOpening::default()
        }
    }

    #[tokio::test]
    async fn get_waits_for_the_call_to_end() {
        let registry = CallRegistry::default();
        let ctx = registry.open(opening("a"));
        ctx.request_read();
        let finisher = ctx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            finisher.finish(Outcome::Completed, 0);
        });
        let record = registry.get("a", Duration::from_secs(5)).await.unwrap();
        assert_eq!(record.outcome, Outcome::Completed as i32);
        assert_eq!(record.requests_received, 1);
    }

    #[tokio::test]
    async fn get_answers_running_when_the_wait_runs_out() {
        let registry = CallRegistry::default();
        registry.open(opening("b"));
        let record = registry.get("b", Duration::from_millis(10)).await.unwrap();
        assert_eq!(record.outcome, Outcome::Running as i32);
        assert!(registry.get("nope", Duration::ZERO).await.is_none());
    }

    #[test]
    fn the_oldest_calls_go_past_the_byte_cap() {
        let registry = CallRegistry::default();
        let big = "v".repeat(8 * 1024);
        let calls = MAX_KEPT_BYTES / (8 * 1024) + 10;
        for i in 0..calls {
            let mut o = opening(&format!("c{i}"));
            o.metadata.insert("x-big".into(), big.clone());
            registry.open(o);
        }
        let kept = registry.inner.lock().unwrap();
        assert!(kept.bytes <= MAX_KEPT_BYTES, "{}", kept.bytes);
        assert!(!kept.calls.contains_key("c0"));
        assert!(kept.calls.contains_key(&format!("c{}", calls - 1)));
        assert_eq!(kept.calls.len(), kept.order.len());
    }

    #[test]
    fn a_half_close_after_the_end_is_ignored() {
        let ctx = CallCtx::detached();
        ctx.finish(Outcome::Cancelled, 1);
        ctx.half_close();
        assert!(!ctx.record().half_close_received);
    }

    #[test]
    fn the_first_ending_wins() {
        let ctx = CallCtx::detached();
        ctx.finish(Outcome::Cancelled, 1);
        ctx.finish(Outcome::Completed, 0);
        let record = ctx.record();
        assert_eq!(record.outcome, Outcome::Cancelled as i32);
        assert_eq!(record.status_code, 1);
    }
}
