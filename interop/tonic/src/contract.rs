//! One call as the contract scripts it: the control headers of
//! docs/contract.md section 3, the CallRecord kept as the call goes
//! (section 4), and the registry behind Observer.GetCall.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tonic::metadata::{KeyAndValueRef, MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::proto::observer::{CallRecord, Outcome};

const CALL_ID_HEADER: &str = "x-conform-call-id";
/// Calls kept at most, oldest dropped first.
const MAX_KEPT_CALLS: usize = 10_000;
/// Longest pause a header may ask for, as the reference bounds it.
const MAX_PAUSE_MS: u32 = 600_000;
/// How much earlier than the handler's own reckoning tonic's deadline may fire.
const DEADLINE_SLACK: Duration = Duration::from_millis(5);
/// The largest x-conform-response-size (16 MiB).
const MAX_RESPONSE_SIZE: u32 = 16 * 1024 * 1024;

/// A call's record, shared by its handler and GetCall; `done` turns true at
/// its first ending.
pub struct CallState {
    record: Mutex<CallRecord>,
    done: watch::Sender<bool>,
    /// When grpc-timeout says the call's deadline passes.
    deadline: Option<Instant>,
}

impl CallState {
    pub fn update(&self, change: impl FnOnce(&mut CallRecord)) {
        change(&mut self.record.lock().expect("record lock"));
    }

    pub fn responses_sent(&self) -> u32 {
        self.record.lock().expect("record lock").responses_sent
    }

    pub fn requests_received(&self) -> u32 {
        self.record.lock().expect("record lock").requests_received
    }

    /// The first ending wins: a handler that ends after a reset stays CANCELLED.
    pub fn finish(&self, outcome: Outcome, code: Code) {
        let mut record = self.record.lock().expect("record lock");
        if record.outcome != Outcome::Running as i32 {
            return;
        }
        record.outcome = outcome as i32;
        record.status_code = code as u32;
        self.done.send_replace(true);
    }

    /// How a call that never ended by itself ended for the client: after its
    /// deadline DEADLINE_EXCEEDED, else CANCELLED (tonic drops the handler's
    /// future or stream when the client resets the stream).
    pub fn ended_by_client(&self) {
        // tonic starts its deadline timer when the request comes in, a little
        // before the handler computes `deadline`.
        if self
            .deadline
            .is_some_and(|d| Instant::now() + DEADLINE_SLACK >= d)
        {
            self.finish(Outcome::DeadlineExceeded, Code::DeadlineExceeded);
        } else {
            self.finish(Outcome::Cancelled, Code::Cancelled);
        }
    }
}

/// The kept calls by id, and their ids oldest first.
#[derive(Default)]
struct KeptCalls {
    by_id: HashMap<String, Arc<CallState>>,
    order: VecDeque<String>,
}

/// Calls that carried x-conform-call-id, by id.
#[derive(Default)]
pub struct Registry {
    calls: Mutex<KeptCalls>,
}

impl Registry {
    pub fn open(&self, method: &str, metadata: &MetadataMap) -> Arc<CallState> {
        let headers = header_map(metadata);
        let timeout = metadata
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_timeout);
        let record = CallRecord {
            call_id: headers.get(CALL_ID_HEADER).cloned().unwrap_or_default(),
            method: method.to_string(),
            outcome: Outcome::Running as i32,
            request_encoding: headers.get("grpc-encoding").cloned().unwrap_or_default(),
            timeout_ms: timeout.map_or(0, |t| t.as_nanos().div_ceil(1_000_000) as i64),
            metadata: headers
                .into_iter()
                .filter(|(k, _)| k.starts_with("x-"))
                .collect(),
            ..CallRecord::default()
        };
        let state = Arc::new(CallState {
            deadline: timeout.map(|t| Instant::now() + t),
            done: watch::channel(false).0,
            record: Mutex::new(record),
        });
        let id = state.record.lock().expect("record lock").call_id.clone();
        if !id.is_empty() {
            let KeptCalls { by_id, order } = &mut *self.calls.lock().expect("registry lock");
            if by_id.insert(id.clone(), state.clone()).is_some() {
                order.retain(|kept| kept != &id);
            }
            order.push_back(id);
            while order.len() > MAX_KEPT_CALLS {
                if let Some(oldest) = order.pop_front() {
                    by_id.remove(&oldest);
                }
            }
        }
        state
    }

    /// call_id's record after up to `wait` for it to settle; None when no
    /// call carried that id.
    pub async fn get(&self, call_id: &str, wait: Duration) -> Option<CallRecord> {
        let state = self
            .calls
            .lock()
            .expect("registry lock")
            .by_id
            .get(call_id)
            .cloned()?;
        let mut done = state.done.subscribe();
        // Timing out is an answer too: the record says RUNNING.
        let _ = tokio::time::timeout(wait, done.wait_for(|d| *d)).await;
        let record = state.record.lock().expect("record lock").clone();
        Some(record)
    }
}

/// Request metadata as text, -bin values as they came (base64); repeated
/// keys joined with ",".
fn header_map(metadata: &MetadataMap) -> HashMap<String, String> {
    let mut headers: HashMap<String, String> = HashMap::new();
    for entry in metadata.iter() {
        let (key, value) = match entry {
            KeyAndValueRef::Ascii(k, v) => (k.as_str(), v.to_str().unwrap_or_default().to_string()),
            KeyAndValueRef::Binary(k, v) => (
                k.as_str(),
                String::from_utf8_lossy(v.as_encoded_bytes()).into_owned(),
            ),
        };
        headers
            .entry(key.to_string())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    headers
}

/// grpc-timeout as a duration (None when absent or malformed).
fn parse_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The control headers of one call, parsed with the reference's rules.
pub struct Script {
    pub response_count: Option<u32>,
    pub interval: Duration,
    pub delay: Duration,
    pub fail_after: Option<u32>,
    pub close_after: Option<u32>,
    pub response_size: Option<u32>,
    /// The status fail-after ends the call with.
    pub failure: Status,
    /// Every x-grpc-test-echo-initial value, in order, for the response
    /// headers.
    pub echo_initial: Vec<MetadataValue<tonic::metadata::Ascii>>,
    /// Every x-grpc-test-echo-trailing-bin value, in order, for the trailers.
    pub echo_trailing: Vec<MetadataValue<tonic::metadata::Binary>>,
}

fn control_error(name: &str, value: &str, reason: &str) -> Status {
    Status::invalid_argument(format!("control header {name}: {reason} (got {value:?})"))
}

fn number(metadata: &MetadataMap, name: &str) -> Result<Option<u32>, Status> {
    let Some(raw) = metadata.get(name) else {
        return Ok(None);
    };
    let text = raw.to_str().unwrap_or_default();
    let trimmed = text.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(control_error(
            name,
            text,
            "expected a decimal integer from 0 to 4294967295",
        ));
    }
    trimmed.parse().map(Some).map_err(|_| {
        control_error(
            name,
            text,
            "expected a decimal integer from 0 to 4294967295",
        )
    })
}

fn pause(metadata: &MetadataMap, name: &str) -> Result<Duration, Status> {
    let ms = number(metadata, name)?.unwrap_or(0);
    if ms > MAX_PAUSE_MS {
        let text = metadata
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        return Err(control_error(
            name,
            text,
            "pauses above 600000 ms are refused",
        ));
    }
    Ok(Duration::from_millis(ms.into()))
}

/// Lenient percent-decoding, as the reference: a % not followed by two hex
/// digits stays as it is.
fn percent_decode(value: &str) -> Option<String> {
    let raw = value.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte)
                if raw[i] == b'%'
                    && hex.is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())) =>
            {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(raw[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

impl Script {
    pub fn parse(metadata: &MetadataMap) -> Result<Script, Status> {
        let response_size = number(metadata, "x-conform-response-size")?;
        if response_size.is_some_and(|s| s > MAX_RESPONSE_SIZE) {
            let text = metadata
                .get("x-conform-response-size")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            return Err(control_error(
                "x-conform-response-size",
                text,
                "sizes above 16777216 bytes are refused",
            ));
        }
        let mut script = Script {
            response_count: number(metadata, "x-conform-response-count")?,
            interval: pause(metadata, "x-conform-response-interval-ms")?,
            delay: pause(metadata, "x-conform-delay-ms")?,
            response_size,
            fail_after: number(metadata, "x-conform-fail-after")?,
            failure: Status::unknown(""),
            close_after: None,
            echo_initial: metadata
                .get_all("x-grpc-test-echo-initial")
                .iter()
                .cloned()
                .collect(),
            echo_trailing: metadata
                .get_all_bin("x-grpc-test-echo-trailing-bin")
                .iter()
                .cloned()
                .collect(),
        };
        if script.fail_after.is_some() {
            script.failure = scripted_failure(metadata)?;
        }
        script.close_after = number(metadata, "x-conform-close-after-requests")?;
        Ok(script)
    }

    /// Every echoed x-grpc-test-echo-initial value into `metadata`.
    pub fn echo_initial_into(&self, metadata: &mut MetadataMap) {
        for v in &self.echo_initial {
            metadata.append("x-grpc-test-echo-initial", v.clone());
        }
    }

    /// Whether close-after-requests says to stop reading after `received`.
    pub fn reads_exhausted(&self, received: u32) -> bool {
        self.close_after.is_some_and(|n| received >= n)
    }

    /// A status the handler ends the call with, carrying the echoed trailer
    /// and, for a trailers-only answer (no response headers went out), the
    /// echoed header, which has no other place there.
    pub fn ending(&self, status: &Status, trailers_only: bool) -> Status {
        let mut metadata = MetadataMap::new();
        if trailers_only {
            self.echo_initial_into(&mut metadata);
        }
        for v in &self.echo_trailing {
            metadata.append_bin("x-grpc-test-echo-trailing-bin", v.clone());
        }
        Status::with_details_and_metadata(
            status.code(),
            status.message(),
            status.details().to_vec().into(),
            metadata,
        )
    }

    /// `text` padded at its end with "x" to response-size bytes.
    pub fn padded(&self, mut text: String) -> String {
        if let Some(size) = self.response_size {
            let missing = (size as usize).saturating_sub(text.len());
            text.extend(std::iter::repeat_n('x', missing));
        }
        text
    }
}

/// The status fail-after asks for, with x-conform-fail-details-bin (tonic
/// decodes -bin values) as its details, sent as grpc-status-details-bin.
fn scripted_failure(metadata: &MetadataMap) -> Result<Status, Status> {
    let code = number(metadata, "x-conform-fail-code")?.unwrap_or(2);
    if code > 16 {
        let text = metadata
            .get("x-conform-fail-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        return Err(control_error(
            "x-conform-fail-code",
            text,
            "expected a gRPC status code from 0 to 16",
        ));
    }
    let raw = metadata
        .get("x-conform-fail-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let message = percent_decode(raw).ok_or_else(|| {
        control_error(
            "x-conform-fail-message",
            raw,
            "percent-decodes to invalid UTF-8",
        )
    })?;
    let details = match metadata.get_bin("x-conform-fail-details-bin") {
        None => Vec::new(),
        Some(v) => v.to_bytes().map(|b| b.to_vec()).map_err(|_| {
            let text = String::from_utf8_lossy(v.as_encoded_bytes()).into_owned();
            control_error(
                "x-conform-fail-details-bin",
                &text,
                "expected base64 of a google.rpc.Status",
            )
        })?,
    };
    Ok(Status::with_details(
        Code::from_i32(code as i32),
        message,
        details.into(),
    ))
}
