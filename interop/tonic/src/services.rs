//! The contract's methods (docs/contract.md section 2) as tonic services,
//! written as tonic's own examples write them: unary and client-streaming
//! handlers return their response, streaming responses come from a task
//! sending into a channel whose receiver tonic streams out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::contract::{CallState, Registry, Script};
use crate::proto::observer::{observer_server, CallQuery, CallRecord, Outcome};
use crate::proto::{
    chat_service_server, greeter_server, sensor_service_server, DeviceQuery, HelloReply,
    HelloRequest, Message, RecordSummary, SensorData, StreamRequestData, StreamResponseData,
    WatchRequest,
};

/// GetCall waits at most this long whatever wait_ms says, as the reference.
const MAX_GET_CALL_WAIT: Duration = Duration::from_secs(60);
/// How long a request stream that ended waits before it counts as
/// half-closed: hyper ends the request body of a stream the client reset
/// (RST_STREAM CANCEL) as it ends a half-closed one, and drops the handler (or
/// the response stream) right after; within this pause a reset shows.
const CANCEL_GRACE: Duration = Duration::from_millis(5);

/// Records a client's ending when tonic drops a handler (its future or its
/// response stream's task) before it ended by itself.
struct EndGuard(Arc<CallState>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.ended_by_client();
    }
}

/// What stops a call before its body ends: the client went away, or a
/// status of the handler's own.
enum Stop {
    ClientGone,
    Fail(Status),
}

/// A call in progress: its record, its script, and its end guard.
struct Call {
    state: Arc<CallState>,
    script: Script,
    _guard: EndGuard,
}

impl Call {
    /// Opens the record; a malformed control header is the call's answer.
    fn open<T>(
        registry: &Registry,
        method: &str,
        request: &Request<T>,
        single_request: bool,
    ) -> Result<Call, Status> {
        let state = registry.open(method, request.metadata());
        if single_request {
            // tonic reads a unary request up to its END_STREAM before the
            // handler runs.
            state.update(|r| {
                r.requests_received = 1;
                r.half_close_received = true;
            });
        }
        let guard = EndGuard(state.clone());
        match Script::parse(request.metadata()) {
            Ok(script) => Ok(Call {
                state,
                script,
                _guard: guard,
            }),
            Err(status) => {
                state.finish(Outcome::Completed, status.code());
                Err(status)
            }
        }
    }

    /// Ends the call with `status` (trailers-only: with the echoed header).
    fn fail(&self, status: Status) -> Status {
        self.state.finish(Outcome::Completed, status.code());
        self.script.ending(&status, true)
    }

    /// fail-after 0: the scripted status after delay-ms, before any request is read.
    async fn fail_at_start(&self) -> Result<(), Status> {
        if self.script.fail_after == Some(0) {
            tokio::time::sleep(self.script.delay).await;
            return Err(self.fail(self.script.failure.clone()));
        }
        Ok(())
    }

    /// The next request; None at the half-close. A reset is the client going
    /// away; any other error (e.g. decoding) ends the call with its status.
    /// `gone` tells whether the client dropped the response (streaming
    /// responses; a unary-response handler is dropped itself).
    async fn read<T>(
        &self,
        requests: &mut Streaming<T>,
        gone: impl Fn() -> bool,
    ) -> Result<Option<T>, Stop> {
        match requests.message().await {
            Ok(Some(message)) => {
                self.state.update(|r| r.requests_received += 1);
                Ok(Some(message))
            }
            Ok(None) => {
                tokio::time::sleep(CANCEL_GRACE).await;
                if gone() {
                    return Err(Stop::ClientGone);
                }
                self.state.update(|r| r.half_close_received = true);
                Ok(None)
            }
            Err(status) if status.code() == Code::Cancelled => Err(Stop::ClientGone),
            Err(status) => Err(Stop::Fail(status)),
        }
    }

    fn reads_exhausted(&self) -> bool {
        self.script.reads_exhausted(self.state.requests_received())
    }

    /// A unary response after delay-ms, with the echoed header (tonic sends
    /// no trailers of a handler's own with a unary OK answer).
    async fn reply<T>(&self, message: T) -> Result<Response<T>, Status> {
        tokio::time::sleep(self.script.delay).await;
        self.state.update(|r| r.responses_sent += 1);
        self.state.finish(Outcome::Completed, Code::Ok);
        let mut response = Response::new(message);
        self.echo_initial(response.metadata_mut());
        Ok(response)
    }

    fn echo_initial(&self, metadata: &mut MetadataMap) {
        self.script.echo_initial_into(metadata);
    }

    fn stop(&self, stop: Stop) -> Status {
        match stop {
            Stop::ClientGone => Status::cancelled("the client went away"),
            Stop::Fail(status) => self.fail(status),
        }
    }
}

type Responses<T> = ReceiverStream<Result<T, Status>>;

/// The sending half of a streamed response, with the script's pauses and
/// fail-after.
struct Out<T> {
    call: Arc<Call>,
    tx: mpsc::Sender<Result<T, Status>>,
}

impl<T: Send + 'static> Out<T> {
    async fn send(&self, message: T) -> Result<(), Stop> {
        let script = &self.call.script;
        let pause = if self.call.state.responses_sent() == 0 {
            script.delay
        } else {
            script.interval
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = self.tx.closed() => return Err(Stop::ClientGone),
        }
        self.tx
            .send(Ok(message))
            .await
            .map_err(|_| Stop::ClientGone)?;
        self.call.state.update(|r| r.responses_sent += 1);
        if script
            .fail_after
            .is_some_and(|n| n == self.call.state.responses_sent())
        {
            return Err(Stop::Fail(script.failure.clone()));
        }
        Ok(())
    }

    /// The call's end once its body returned: OK (with the echoed trailer,
    /// sent as a status with code OK, tonic's way to add trailers to a
    /// stream), a status of its own, or nothing when the client went away.
    async fn end(self, result: Result<(), Stop>) {
        let state = &self.call.state;
        let last = match result {
            Ok(()) => {
                state.finish(Outcome::Completed, Code::Ok);
                let ok = Status::new(Code::Ok, "");
                let script = &self.call.script;
                (!script.echo_trailing.is_empty()).then(|| script.ending(&ok, false))
            }
            Err(Stop::Fail(status)) => {
                state.finish(Outcome::Completed, status.code());
                Some(self.call.script.ending(&status, false))
            }
            Err(Stop::ClientGone) => {
                state.ended_by_client();
                None
            }
        };
        if let Some(status) = last {
            let _ = self.tx.send(Err(status)).await;
        }
    }
}

/// The response of a streaming method: `body` runs in a task of its own and
/// sends through its Out; tonic streams the receiver.
fn stream_response<T, F, Fut>(call: Call, body: F) -> Response<Responses<T>>
where
    T: Send + 'static,
    F: FnOnce(Out<T>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(1);
    let mut response = Response::new(ReceiverStream::new(rx));
    call.echo_initial(response.metadata_mut());
    tokio::spawn(body(Out {
        call: Arc::new(call),
        tx,
    }));
    response
}

#[derive(Clone, Default)]
pub struct Contract {
    registry: Arc<Registry>,
    /// Per device, the last reading of a Record call that ended OK.
    latest: Arc<Mutex<HashMap<String, SensorData>>>,
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[tonic::async_trait]
impl chat_service_server::ChatService for Contract {
    type ChatStreamStream = Responses<Message>;

    async fn chat_stream(
        &self,
        request: Request<Streaming<Message>>,
    ) -> Result<Response<Self::ChatStreamStream>, Status> {
        let call = Call::open(&self.registry, "/ChatService/ChatStream", &request, false)?;
        call.fail_at_start().await?;
        let mut requests = request.into_inner();
        Ok(stream_response(call, move |out| async move {
            let result = async {
                while !out.call.reads_exhausted() {
                    let Some(m) = out.call.read(&mut requests, || out.tx.is_closed()).await? else {
                        break;
                    };
                    let content = out.call.script.padded(format!("echo: {}", m.content));
                    out.send(Message {
                        user: "server".into(),
                        content,
                        timestamp: now_s(),
                    })
                    .await?;
                }
                Ok(())
            }
            .await;
            out.end(result).await;
        }))
    }
}

#[tonic::async_trait]
impl greeter_server::Greeter for Contract {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let call = Call::open(&self.registry, "/Greeter/SayHello", &request, true)?;
        call.fail_at_start().await?;
        let message = call
            .script
            .padded(format!("Hello {}", request.get_ref().name));
        call.reply(HelloReply { message }).await
    }

    type ServerStreamStream = Responses<StreamResponseData>;

    async fn server_stream(
        &self,
        request: Request<StreamRequestData>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        let call = Call::open(&self.registry, "/Greeter/ServerStream", &request, true)?;
        call.fail_at_start().await?;
        let data = request.into_inner().data;
        Ok(stream_response(call, move |out| async move {
            let count = out.call.script.response_count.unwrap_or(3);
            let result = async {
                for i in 1..=count {
                    out.send(StreamResponseData {
                        data: out.call.script.padded(format!("{data}-{i}")),
                    })
                    .await?;
                }
                Ok(())
            }
            .await;
            out.end(result).await;
        }))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<StreamRequestData>>,
    ) -> Result<Response<StreamResponseData>, Status> {
        let call = Call::open(&self.registry, "/Greeter/ClientStream", &request, false)?;
        call.fail_at_start().await?;
        let mut requests = request.into_inner();
        let mut received = Vec::new();
        while !call.reads_exhausted() {
            match call.read(&mut requests, || false).await {
                Ok(Some(r)) => received.push(r.data),
                Ok(None) => break,
                Err(stop) => return Err(call.stop(stop)),
            }
        }
        call.reply(StreamResponseData {
            data: call.script.padded(received.join(",")),
        })
        .await
    }

    type AllStreamStream = Responses<StreamResponseData>;

    async fn all_stream(
        &self,
        request: Request<Streaming<StreamRequestData>>,
    ) -> Result<Response<Self::AllStreamStream>, Status> {
        let call = Call::open(&self.registry, "/Greeter/AllStream", &request, false)?;
        call.fail_at_start().await?;
        let mut requests = request.into_inner();
        Ok(stream_response(call, move |out| async move {
            let result = async {
                while !out.call.reads_exhausted() {
                    let Some(r) = out.call.read(&mut requests, || out.tx.is_closed()).await? else {
                        break;
                    };
                    out.send(StreamResponseData {
                        data: out.call.script.padded(format!("echo: {}", r.data)),
                    })
                    .await?;
                }
                Ok(())
            }
            .await;
            out.end(result).await;
        }))
    }
}

/// The RecordSummary of readings in arrival order.
fn summarise(readings: &[SensorData], script: &Script) -> RecordSummary {
    let mut summary = RecordSummary {
        count: readings.len() as u32,
        ..RecordSummary::default()
    };
    if let (Some(first), Some(last)) = (readings.first(), readings.last()) {
        let temperatures = readings.iter().map(|r| r.temperature);
        summary.min = temperatures.clone().fold(f32::INFINITY, f32::min);
        summary.max = temperatures.clone().fold(f32::NEG_INFINITY, f32::max);
        summary.mean = temperatures.map(f64::from).sum::<f64>() / readings.len() as f64;
        summary.first_timestamp = first.timestamp;
        summary.last_timestamp = last.timestamp;
        summary.out_of_order = readings
            .windows(2)
            .filter(|w| w[1].timestamp < w[0].timestamp)
            .count() as u32;
        for r in readings {
            if !summary.device_ids.contains(&r.device_id) {
                summary.device_ids.push(r.device_id.clone());
            }
        }
    }
    if script.response_size.is_some() {
        let last = summary.device_ids.pop().unwrap_or_default();
        summary.device_ids.push(script.padded(last));
    }
    summary
}

#[tonic::async_trait]
impl sensor_service_server::SensorService for Contract {
    async fn record(
        &self,
        request: Request<Streaming<SensorData>>,
    ) -> Result<Response<RecordSummary>, Status> {
        let call = Call::open(&self.registry, "/SensorService/Record", &request, false)?;
        call.fail_at_start().await?;
        let mut requests = request.into_inner();
        let mut readings: Vec<SensorData> = Vec::new();
        while !call.reads_exhausted() {
            match call.read(&mut requests, || false).await {
                Ok(Some(r)) if r.device_id.is_empty() => {
                    let n = readings.len() + 1;
                    return Err(call.fail(Status::invalid_argument(format!(
                        "Record: reading {n} has an empty device_id"
                    ))));
                }
                Ok(Some(r)) => readings.push(r),
                Ok(None) => break,
                Err(stop) => return Err(call.stop(stop)),
            }
        }
        let summary = summarise(&readings, &call.script);
        // Stored only once the reply is due (after delay-ms), as the
        // reference does; a call cancelled during the delay stores nothing.
        tokio::time::sleep(call.script.delay).await;
        {
            let mut latest = self.latest.lock().expect("latest lock");
            for r in readings {
                latest.insert(r.device_id.clone(), r);
            }
        }
        self.registry_reply(call, summary).await
    }

    type WatchStream = Responses<SensorData>;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let call = Call::open(&self.registry, "/SensorService/Watch", &request, true)?;
        let WatchRequest { device_id, limit } = request.into_inner();
        if device_id.is_empty() {
            return Err(call.fail(Status::invalid_argument(
                "Watch: device_id must not be empty",
            )));
        }
        call.fail_at_start().await?;
        let count = call
            .script
            .response_count
            .unwrap_or(if limit == 0 { 3 } else { limit });
        Ok(stream_response(call, move |out| async move {
            let result = async {
                for i in 0..count {
                    let reading = SensorData {
                        timestamp: 1000 + i64::from(i),
                        temperature: 20.0 + 0.25 * i as f32,
                        device_id: out.call.script.padded(device_id.clone()),
                    };
                    out.send(reading).await?;
                }
                Ok(())
            }
            .await;
            out.end(result).await;
        }))
    }

    async fn latest(&self, request: Request<DeviceQuery>) -> Result<Response<SensorData>, Status> {
        let call = Call::open(&self.registry, "/SensorService/Latest", &request, true)?;
        let device_id = &request.get_ref().device_id;
        if device_id.is_empty() {
            return Err(call.fail(Status::invalid_argument(
                "Latest: device_id must not be empty",
            )));
        }
        call.fail_at_start().await?;
        let found = self
            .latest
            .lock()
            .expect("latest lock")
            .get(device_id)
            .cloned();
        let Some(mut reading) = found else {
            let message =
                format!("Latest: no Record call stored a reading for device {device_id:?}");
            return Err(call.fail(Status::not_found(message)));
        };
        reading.device_id = call.script.padded(reading.device_id);
        call.reply(reading).await
    }
}

impl Contract {
    /// Record's reply: its delay was already waited for before storing.
    async fn registry_reply(
        &self,
        mut call: Call,
        summary: RecordSummary,
    ) -> Result<Response<RecordSummary>, Status> {
        call.script.delay = Duration::ZERO;
        call.reply(summary).await
    }
}

#[tonic::async_trait]
impl observer_server::Observer for Contract {
    async fn get_call(&self, request: Request<CallQuery>) -> Result<Response<CallRecord>, Status> {
        // Not itself recorded: a GetCall carrying the id it asks about would
        // replace the very call it looks for.
        let CallQuery { call_id, wait_ms } = request.into_inner();
        let wait = Duration::from_millis(wait_ms.into()).min(MAX_GET_CALL_WAIT);
        match self.registry.get(&call_id, wait).await {
            Some(record) => Ok(Response::new(record)),
            None => Err(Status::not_found(format!(
                "GetCall: no call carried x-conform-call-id {call_id:?}"
            ))),
        }
    }
}
