//! One planned call on tonic's generic client (`tonic::client::Grpc`, what
//! the generated clients call), with the prost types of its method.

use std::future::Future;
use std::time::Duration;

use prost_reflect::MessageDescriptor;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

use crate::messages::{append_metadata, expand_template, from_json, metadata_pairs, to_json};
use crate::plan::{Mode, PlanCall, PlanStep, ReportCall, ReportStatus};

/// What every call of a plan shares.
#[derive(Clone)]
pub struct Shared {
    /// The plan's one channel.
    pub channel: Channel,
    /// `max_receive_message_bytes`, when the plan sets it.
    pub max_receive: Option<usize>,
    /// When the plan's `timeout_ms` is over: every wait ends by then.
    pub give_up_at: Instant,
}

/// The prost types and descriptors of one method.
pub struct MethodTypes {
    /// Descriptor of the input type (for JSON).
    pub input: MessageDescriptor,
    /// Descriptor of the output type (for JSON).
    pub output: MessageDescriptor,
}

/// Where the response side of the call is.
enum Answer<Resp> {
    /// A unary-request call before its `half_close`.
    NotInvoked,
    /// Streamed responses: waiting for the response headers.
    Headers(JoinHandle<Result<Response<Streaming<Resp>>, Status>>),
    /// One response (unary, client streaming): tonic gives it all at once.
    Single(JoinHandle<Result<Response<Resp>, Status>>),
    /// Streamed responses after the headers.
    Stream(Box<Streaming<Resp>>),
    /// The call is over (its status is in the report).
    Over,
}

/// A planned call in progress.
pub struct Call<'p, Req, Resp> {
    plan: &'p PlanCall,
    shared: Shared,
    types: MethodTypes,
    request: Option<Req>,
    sender: Option<mpsc::Sender<Req>>,
    answer: Answer<Resp>,
    /// The report has the call's final status.
    finished: bool,
    /// tonic dropped the request stream (the call ended) while sends remained.
    request_stream_closed: bool,
    report: ReportCall,
}

impl<'p, Req, Resp> Call<'p, Req, Resp>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Default + Send + 'static,
{
    /// Runs every step of `plan`, then drains the call to its end.
    pub async fn run(plan: &'p PlanCall, shared: Shared, types: MethodTypes) -> ReportCall {
        let mut call: Call<'_, Req, Resp> = Call {
            plan,
            shared,
            types,
            request: None,
            sender: None,
            answer: Answer::NotInvoked,
            finished: false,
            request_stream_closed: false,
            report: ReportCall::default(),
        };
        if let Err(problem) = call.start_streaming_request() {
            call.give_up(problem);
        }
        for step in &plan.steps {
            let over = matches!(call.answer, Answer::Over);
            match step {
                PlanStep::Pause { ms } => call.pause(*ms).await,
                _ if over => {}
                PlanStep::Send { message } => call.send(message).await,
                PlanStep::SendMany { count, template } => {
                    for number in 1..=*count {
                        call.send(&expand_template(template, number)).await;
                    }
                }
                PlanStep::HalfClose => call.half_close(),
                PlanStep::ReceiveHeaders => call.receive_headers_step().await,
                PlanStep::Receive => call.receive().await,
                PlanStep::ReceiveAll => call.receive_all().await,
                PlanStep::Cancel => call.cancel(
                    "cancelled: the call's handles were dropped (tonic's way to cancel)".to_owned(),
                ),
            }
        }
        if matches!(call.answer, Answer::NotInvoked) {
            call.half_close();
        }
        call.receive_all().await;
        call.report
    }

    /// A `Grpc` client on the shared channel with the plan's settings.
    fn client(&self) -> Result<tonic::client::Grpc<Channel>, String> {
        let mut grpc = tonic::client::Grpc::new(self.shared.channel.clone());
        if let Some(limit) = self.shared.max_receive {
            grpc = grpc.max_decoding_message_size(limit);
        }
        match self.plan.compression.as_deref() {
            None => {}
            Some("gzip") => grpc = grpc.send_compressed(CompressionEncoding::Gzip),
            Some(other) => return Err(format!("compression {other:?}: this client has only gzip")),
        }
        Ok(grpc)
    }

    /// A request with the plan's metadata and deadline.
    fn request<T>(&self, body: T) -> Result<Request<T>, String> {
        let mut request = Request::new(body);
        append_metadata(request.metadata_mut(), &self.plan.metadata)?;
        if let Some(ms) = self.plan.deadline_ms {
            request.set_timeout(Duration::from_millis(ms));
        }
        Ok(request)
    }

    fn path(&self) -> Result<tonic::codegen::http::uri::PathAndQuery, String> {
        self.plan
            .method
            .parse()
            .map_err(|e| format!("method {:?}: {e}", self.plan.method))
    }

    /// Client streaming and bidi calls start at once, their requests fed
    /// from a channel as the steps send them.
    fn start_streaming_request(&mut self) -> Result<(), String> {
        let mode = self.plan.mode;
        if matches!(mode, Mode::Unary | Mode::ServerStreaming) {
            return Ok(());
        }
        let (sender, receiver) = mpsc::channel::<Req>(1);
        let request = self.request(ReceiverStream::new(receiver))?;
        let (mut grpc, path) = (self.client()?, self.path()?);
        self.sender = Some(sender);
        self.answer = if mode == Mode::Bidi {
            Answer::Headers(tokio::spawn(async move {
                ready(&mut grpc).await?;
                grpc.streaming(request, path, ProstCodec::<Req, Resp>::default())
                    .await
            }))
        } else {
            Answer::Single(tokio::spawn(async move {
                ready(&mut grpc).await?;
                grpc.client_streaming(request, path, ProstCodec::<Req, Resp>::default())
                    .await
            }))
        };
        Ok(())
    }

    async fn send(&mut self, json: &serde_json::Value) {
        let message = match from_json::<Req>(&self.types.input, json) {
            Ok(message) => message,
            Err(problem) => return self.give_up(problem),
        };
        if matches!(self.plan.mode, Mode::Unary | Mode::ServerStreaming) {
            self.request = Some(message);
            return;
        }
        let Some(sender) = self.sender.clone() else {
            return eprintln!("{}: send after half_close ignored", self.plan.method);
        };
        // A closed channel means tonic dropped the request stream: the call
        // ended, and the next receive reports how.
        if let Some(Err(_closed)) = self.bounded("send", sender.send(message)).await {
            if !self.request_stream_closed {
                eprintln!(
                    "{}: the request stream is closed; the call ended (said once a call)",
                    self.plan.method
                );
            }
            self.request_stream_closed = true;
        }
    }

    fn half_close(&mut self) {
        if !matches!(self.answer, Answer::NotInvoked) {
            self.sender = None;
            return;
        }
        if let Err(problem) = self.invoke() {
            self.give_up(problem);
        }
    }

    /// A unary or server-streaming call is invoked with its one request.
    fn invoke(&mut self) -> Result<(), String> {
        let Some(message) = self.request.take() else {
            return Err("half_close without a request sent before it".to_owned());
        };
        let request = self.request(message)?;
        let (mut grpc, path) = (self.client()?, self.path()?);
        self.answer = if self.plan.mode == Mode::Unary {
            Answer::Single(tokio::spawn(async move {
                ready(&mut grpc).await?;
                grpc.unary(request, path, ProstCodec::<Req, Resp>::default())
                    .await
            }))
        } else {
            Answer::Headers(tokio::spawn(async move {
                ready(&mut grpc).await?;
                grpc.server_streaming(request, path, ProstCodec::<Req, Resp>::default())
                    .await
            }))
        };
        Ok(())
    }

    /// tonic's unary and client-streaming API gives the headers only with
    /// the response: while the request stream is open, waiting for them
    /// could wait for what the server sends only after the half-close, so
    /// the step is skipped then (said on stderr).
    async fn receive_headers_step(&mut self) {
        if let Answer::Single(task) = &self.answer {
            if self.sender.is_some() && !task.is_finished() {
                let method = &self.plan.method;
                eprintln!("{method}: receive_headers skipped: tonic gives a client stream's headers with its response");
                return;
            }
        }
        self.receive_headers().await
    }

    async fn receive_headers(&mut self) {
        match std::mem::replace(&mut self.answer, Answer::Over) {
            Answer::Headers(mut task) => {
                match self.bounded("the response headers", &mut task).await {
                    None => task.abort(),
                    Some(Err(join)) => self.give_up(format!("the call's task failed: {join}")),
                    Some(Ok(Err(status))) => self.end(status),
                    Some(Ok(Ok(response))) => {
                        self.report.headers = Some(metadata_pairs(response.metadata()));
                        self.answer = Answer::Stream(Box::new(response.into_inner()));
                    }
                }
            }
            Answer::Single(mut task) => match self.bounded("the response", &mut task).await {
                None => task.abort(),
                Some(Err(join)) => self.give_up(format!("the call's task failed: {join}")),
                Some(Ok(Err(status))) => self.end(status),
                Some(Ok(Ok(response))) => {
                    // tonic's unary API merges the trailers into this metadata.
                    self.report.headers = Some(metadata_pairs(response.metadata()));
                    let message = to_json(&self.types.output, response.get_ref());
                    self.report.messages.push(message);
                    self.end(Status::ok(""));
                }
            },
            other @ (Answer::NotInvoked | Answer::Stream(_) | Answer::Over) => self.answer = other,
        }
    }

    async fn receive(&mut self) {
        self.receive_headers().await;
        let Answer::Stream(mut stream) = std::mem::replace(&mut self.answer, Answer::Over) else {
            return;
        };
        match self.bounded("a response", stream.message()).await {
            None => drop(stream),
            Some(Err(status)) => self.end(status),
            Some(Ok(Some(message))) => {
                self.report
                    .messages
                    .push(to_json(&self.types.output, &message));
                self.answer = Answer::Stream(stream);
            }
            Some(Ok(None)) => match self.bounded("the trailers", stream.trailers()).await {
                None => {}
                Some(Err(status)) => self.end(status),
                Some(Ok(trailers)) => {
                    self.report.trailers =
                        trailers.as_ref().map(metadata_pairs).unwrap_or_default();
                    self.end(Status::ok(""));
                }
            },
        }
    }

    async fn receive_all(&mut self) {
        while !matches!(self.answer, Answer::Over | Answer::NotInvoked) {
            self.receive().await;
        }
    }

    /// tonic has no cancel call: dropping the response (stream or future)
    /// resets the stream. The request side goes after it.
    fn cancel(&mut self, why: String) {
        let sender = self.sender.take();
        match std::mem::replace(&mut self.answer, Answer::Over) {
            // An aborted task drops the call's future at its next poll: the
            // request sender goes only after that, as it would after a
            // future dropped in place (dropped first, it let hyper end the
            // request stream with END_STREAM before the reset).
            Answer::Headers(task) => drop_after(task, sender),
            Answer::Single(task) => drop_after(task, sender),
            Answer::Stream(stream) => drop((stream, sender)),
            Answer::NotInvoked | Answer::Over => drop(sender),
        }
        if !self.finished {
            self.finished = true;
            self.report.status = ReportStatus {
                code: tonic::Code::Cancelled as u32,
                message: String::new(),
            };
            self.report.error = Some(why);
        }
    }

    /// Ends the report with what tonic gave; a `Status` carries trailers (or
    /// a trailers-only answer's headers) as its metadata.
    fn end(&mut self, status: Status) {
        self.answer = Answer::Over;
        self.sender = None;
        self.finished = true;
        if status.code() != tonic::Code::Ok {
            self.report.trailers = metadata_pairs(status.metadata());
            self.report.error = Some(status.to_string());
        }
        self.report.status = ReportStatus {
            code: status.code() as u32,
            message: status.message().to_owned(),
        };
    }

    /// A problem of this client (not tonic's): the call is cancelled and the
    /// report says why.
    fn give_up(&mut self, problem: String) {
        eprintln!("{}: {problem}", self.plan.method);
        self.cancel(format!("client gave up: {problem}"));
    }

    async fn pause(&self, ms: u64) {
        let until = (Instant::now() + Duration::from_millis(ms)).min(self.shared.give_up_at);
        tokio::time::sleep_until(until).await;
    }

    /// `future`, or `None` (the call cancelled, the report saying why) when
    /// the plan's timeout passes first.
    async fn bounded<F: Future>(&mut self, waiting_for: &str, future: F) -> Option<F::Output> {
        match tokio::time::timeout_at(self.shared.give_up_at, future).await {
            Ok(output) => Some(output),
            Err(_elapsed) => {
                self.give_up(format!(
                    "the plan's timeout_ms passed while waiting for {waiting_for}"
                ));
                None
            }
        }
    }
}

/// Aborts `task` and drops `sender` once the task is gone.
fn drop_after<T: Send + 'static, Req: Send + 'static>(
    task: JoinHandle<T>,
    sender: Option<mpsc::Sender<Req>>,
) {
    task.abort();
    tokio::spawn(async move {
        let _cancelled = task.await;
        drop(sender);
    });
}

/// As the generated clients do before every call.
async fn ready(grpc: &mut tonic::client::Grpc<Channel>) -> Result<(), Status> {
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("Service was not ready: {e}")))
}
