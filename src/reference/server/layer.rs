//! The per-call tower layer around the contract's routes: opens each call's
//! [`CallCtx`], applies the transport's share of the control headers (echo
//! headers, response encoding), enforces `grpc-timeout` for the whole call,
//! and settles the outcome when the response ends or is dropped.

use super::body::{add_echo, grpc_status, BoxError, RequestBody, ResponseBody, ECHO_TRAILING};
use super::conn::{CallGuard, ConnState};
use super::deadline::{observer_millis, parse_grpc_timeout};
use crate::contract::{CALL_ID as CALL_ID_HEADER, ECHO_INITIAL, RESPONSE_ENCODING};
use crate::proto::observer::Outcome;
use crate::reference::call::CallOpening;
use crate::reference::{CallCtx, CallRegistry, Encoding, ReferenceConfig};
use http::{HeaderMap, HeaderValue, Request, Response};
use std::{
    collections::{BTreeMap, HashSet},
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Duration,
};
use tokio::time::{Instant, Sleep};
use tonic::{Code, Status};

/// Longest deadline that is enforced; longer ones (up to 99999999 hours are
/// legal) are as good as none and would overflow the timer.
const MAX_ENFORCED_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);

/// What the layer needs from the server, shared by all its calls.
#[derive(Clone, Debug)]
pub struct CallLayer {
    /// Message size limit and encodings.
    config: Arc<ReferenceConfig>,
    /// Where calls with an id are kept for the Observer.
    registry: CallRegistry,
    /// The connection, which counts open calls for the ping policy and max idle.
    conn: Arc<ConnState>,
}

impl CallLayer {
    /// The layer for one connection `conn`.
    pub fn new(config: Arc<ReferenceConfig>, registry: CallRegistry, conn: Arc<ConnState>) -> Self {
        CallLayer {
            config,
            registry,
            conn,
        }
    }
}

impl<S> tower::Layer<S> for CallLayer {
    type Service = CallService<S>;

    fn layer(&self, inner: S) -> CallService<S> {
        CallService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The routes wrapped by [`CallLayer`].
#[derive(Clone, Debug)]
pub struct CallService<S> {
    /// The routes.
    inner: S,
    /// What every call shares.
    layer: CallLayer,
}

/// The echo headers a call asked for: every value, in order, since
/// duplicate names keep their order (PROTOCOL-HTTP2.md).
#[derive(Clone, Debug, Default)]
struct Echo {
    /// `x-grpc-test-echo-initial`, sent back as response headers.
    initial: Vec<HeaderValue>,
    /// `x-grpc-test-echo-trailing-bin`, sent back as trailers.
    trailing: Vec<HeaderValue>,
}

impl<S, B, RB> tower::Service<Request<B>> for CallService<S>
where
    S: tower::Service<Request<RequestBody<B>>, Response = Response<RB>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body,
    RB: http_body::Body<Data = bytes::Bytes> + Unpin,
    RB::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<RB>>;
    type Error = Infallible;
    type Future = CallFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> CallFuture<S::Future> {
        let (mut parts, body) = request.into_parts();
        if !self.layer.config.control_headers {
            strip_control_headers(&mut parts.headers);
        }
        let guard = self.layer.conn.open_call();
        let timeout = parts
            .headers
            .get("grpc-timeout")
            .map(|v| parse_grpc_timeout(v.as_bytes()));
        let ctx = self.layer.registry.open(CallOpening {
            call_id: header_string(&parts.headers, CALL_ID_HEADER),
            method: parts.uri.path().to_owned(),
            request_encoding: header_string(&parts.headers, "grpc-encoding").unwrap_or_default(),
            timeout_ms: match &timeout {
                Some(Ok(t)) => observer_millis(*t),
                _ => 0,
            },
            metadata: x_metadata(&parts.headers),
        });
        let echo = Echo {
            initial: parts
                .headers
                .get_all(ECHO_INITIAL)
                .iter()
                .cloned()
                .collect(),
            trailing: parts
                .headers
                .get_all(ECHO_TRAILING)
                .iter()
                .cloned()
                .collect(),
        };
        if parts.method != http::Method::POST {
            // PROTOCOL-HTTP2.md: Method is POST. 405 keeps a non-gRPC client
            // from reading the error as a success (as the 415 below does).
            let status = Status::internal(format!(
                "invalid gRPC request method {:?}",
                parts.method.as_str()
            ));
            let mut response = trailers_only(status, &echo);
            *response.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
            return CallFuture::answered(response, Code::Internal, ctx, echo);
        }
        if let Some(content_type) = non_grpc_content_type(&parts.headers) {
            // PROTOCOL-HTTP2.md: a server SHOULD answer 415, so that a non-gRPC
            // client does not read the error as a success; grpc-status as grpc-go.
            let status = Status::internal(format!(
                "invalid gRPC request content-type {content_type:?}"
            ));
            let mut response = trailers_only(status, &echo);
            *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
            return CallFuture::answered(response, Code::Internal, ctx, echo);
        }
        let deadline = match timeout {
            Some(Err(malformed)) => {
                let status = Status::internal(malformed.to_string());
                let response = trailers_only(status, &echo);
                return CallFuture::answered(response, Code::Internal, ctx, echo);
            }
            Some(Ok(t)) if t <= MAX_ENFORCED_DEADLINE => {
                Some(Box::pin(tokio::time::sleep_until(Instant::now() + t)))
            }
            _ => None,
        };
        choose_response_encoding(&mut parts.headers, &self.layer.config.encodings);
        parts.extensions.insert(ctx.clone());
        let body = RequestBody::new(
            body,
            ctx.clone(),
            self.layer.config.max_message_size,
            takes_one_request(parts.uri.path()),
        );
        let inner = self.inner.call(Request::from_parts(parts, body));
        CallFuture {
            state: State::Waiting {
                inner: Box::pin(inner),
                deadline,
                guard,
            },
            ctx,
            echo,
        }
    }
}

/// The response of one call, on its way.
pub struct CallFuture<F> {
    /// Where the call stands.
    state: State<F>,
    /// The call, settled here when the deadline passes or the future is dropped.
    ctx: CallCtx,
    /// Echo headers to add to the response.
    echo: Echo,
}

enum State<F> {
    /// The handler runs.
    Waiting {
        /// The routes' future, boxed so the whole future is Unpin.
        inner: Pin<Box<F>>,
        /// The call's deadline, handed to the body with the response.
        deadline: Option<Pin<Box<Sleep>>>,
        /// Counts the call as open until its response ends.
        guard: CallGuard,
    },
    /// The layer answered without the handler (trailers-only).
    Answered(Option<Response<()>>),
    /// The response was handed to hyper.
    Done,
}

impl<F, RB> Future for CallFuture<F>
where
    F: Future<Output = Result<Response<RB>, Infallible>>,
    RB: http_body::Body<Data = bytes::Bytes> + Unpin,
    RB::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<RB>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is Unpin (the handler future is boxed).
        let this = self.get_mut();
        match &mut this.state {
            State::Done => panic!("CallFuture polled after completion"),
            State::Answered(response) => {
                let response = response.take().expect("answered once");
                this.state = State::Done;
                let ctx = this.ctx.clone();
                Poll::Ready(Ok(response.map(|()| ResponseBody::trailers_only(ctx))))
            }
            State::Waiting {
                inner, deadline, ..
            } => {
                if let Poll::Ready(result) = inner.as_mut().poll(cx) {
                    let Ok(response) = result;
                    let State::Waiting {
                        deadline, guard, ..
                    } = std::mem::replace(&mut this.state, State::Done)
                    else {
                        unreachable!("state checked above")
                    };
                    return Poll::Ready(Ok(this.wrap(response, deadline, guard)));
                }
                if let Some(sleep) = deadline {
                    if sleep.as_mut().poll(cx).is_ready() {
                        // Before the headers: trailers-only, the handler is dropped.
                        this.state = State::Done;
                        let status = Status::deadline_exceeded("Deadline Exceeded");
                        this.ctx
                            .finish(Outcome::DeadlineExceeded, Code::DeadlineExceeded as u32);
                        let ctx = this.ctx.clone();
                        let response = trailers_only(status, &this.echo);
                        return Poll::Ready(
                            Ok(response.map(|()| ResponseBody::trailers_only(ctx))),
                        );
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl<F> CallFuture<F> {
    /// A call the layer answers itself, without the handler.
    fn answered(response: Response<()>, code: Code, ctx: CallCtx, echo: Echo) -> Self {
        ctx.finish(Outcome::Completed, code as u32);
        CallFuture {
            state: State::Answered(Some(response)),
            ctx,
            echo,
        }
    }

    /// Adds the echo headers and hands the body over to [`ResponseBody`].
    fn wrap<RB>(
        &self,
        response: Response<RB>,
        deadline: Option<Pin<Box<Sleep>>>,
        guard: CallGuard,
    ) -> Response<ResponseBody<RB>> {
        let (mut parts, body) = response.into_parts();
        add_echo(&mut parts.headers, ECHO_INITIAL, &self.echo.initial);
        let ctx = self.ctx.clone();
        if let Some(code) = grpc_status(&parts.headers) {
            // Trailers-only: the headers end the call.
            add_echo(&mut parts.headers, ECHO_TRAILING, &self.echo.trailing);
            ctx.finish(Outcome::Completed, code);
            return Response::from_parts(parts, ResponseBody::trailers_only(ctx));
        }
        let body = ResponseBody::new(body, ctx, deadline, self.echo.trailing.clone(), Some(guard));
        Response::from_parts(parts, body)
    }
}

impl<F> Drop for CallFuture<F> {
    fn drop(&mut self) {
        if let State::Waiting { .. } = self.state {
            // hyper drops the future when the client reset the stream or left.
            self.ctx.finish(Outcome::Cancelled, Code::Cancelled as u32);
        }
    }
}

/// A trailers-only response carrying `status` and the echo headers.
fn trailers_only(status: Status, echo: &Echo) -> Response<()> {
    let mut response = status.into_http::<()>();
    add_echo(response.headers_mut(), ECHO_INITIAL, &echo.initial);
    add_echo(response.headers_mut(), ECHO_TRAILING, &echo.trailing);
    response
}

/// The request's content-type when it is not gRPC's (`application/grpc`,
/// optionally followed by `+format` or `;params`); "" when absent.
fn non_grpc_content_type(headers: &HeaderMap) -> Option<String> {
    let content_type = header_string(headers, "content-type").unwrap_or_default();
    let rest = content_type.strip_prefix("application/grpc");
    match rest {
        Some(rest) if rest.is_empty() || rest.starts_with(['+', ';']) => None,
        _ => Some(content_type),
    }
}

/// Whether `path` names a method that takes exactly one request message
/// (unary or server streaming), among the contract's and the health service's.
fn takes_one_request(path: &str) -> bool {
    static PATHS: OnceLock<HashSet<String>> = OnceLock::new();
    PATHS
        .get_or_init(|| {
            let sets = [
                crate::proto::CONTRACT_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
            ];
            // prost-types rather than a descriptor pool: the server needs
            // only the streaming flags, and a pool's decoder and validation
            // are code every server process would map.
            sets.into_iter()
                .flat_map(|set| {
                    <prost_types::FileDescriptorSet as prost::Message>::decode(set)
                        .expect("descriptor sets built into the binary decode")
                        .file
                })
                .flat_map(|file| {
                    let package = file.package().to_string();
                    file.service.into_iter().flat_map(move |service| {
                        let prefix = match package.as_str() {
                            "" => service.name().to_string(),
                            package => format!("{package}.{}", service.name()),
                        };
                        service
                            .method
                            .into_iter()
                            .filter(|method| !method.client_streaming())
                            .map(move |method| format!("/{prefix}/{}", method.name()))
                    })
                })
                .collect()
        })
        .contains(path)
}

/// The value of header `name` as text, when present.
fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Request headers whose names start with `x-`; repeated ones are joined
/// with "," as HTTP allows.
fn x_metadata(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::new();
    for name in headers.keys().filter(|n| n.as_str().starts_with("x-")) {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        metadata.insert(name.as_str().to_owned(), values.join(","));
    }
    metadata
}

/// Drops the contract's control headers (not the call id, which belongs to
/// the Observer), so a reference started without them behaves as a server
/// that never heard of them.
fn strip_control_headers(headers: &mut HeaderMap) {
    let names: Vec<_> = headers
        .keys()
        .filter(|n| crate::contract::is_control_header(n.as_str()) && n.as_str() != CALL_ID_HEADER)
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// Narrows the request's `grpc-accept-encoding` to what the call asked for
/// with `x-conform-response-encoding`, since tonic picks the response encoding
/// from that header among the encodings it may send: the one asked for when
/// the client accepts it and the server has it, none otherwise (also for
/// `identity` and when the header is absent).
fn choose_response_encoding(headers: &mut HeaderMap, enabled: &[Encoding]) {
    let wanted = headers
        .get(RESPONSE_ENCODING)
        .and_then(|v| v.to_str().ok())
        .and_then(|name| Encoding::from_name(name.trim()))
        .filter(|e| enabled.contains(e));
    let accepted = |encoding: Encoding| {
        headers
            .get_all("grpc-accept-encoding")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|name| name.trim() == encoding.name())
    };
    match wanted.filter(|e| accepted(*e)) {
        Some(encoding) => {
            headers.insert(
                "grpc-accept-encoding",
                HeaderValue::from_static(encoding.name()),
            );
        }
        None => {
            headers.remove("grpc-accept-encoding");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn methods_that_take_one_request_are_known_by_their_paths() {
        for path in [
            "/Greeter/SayHello",
            "/Greeter/ServerStream",
            "/SensorService/Watch",
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
        ] {
            assert!(takes_one_request(path), "{path}");
        }
        for path in [
            "/ChatService/ChatStream",
            "/Greeter/ClientStream",
            "/SensorService/Record",
            "/Greeter/SayHelloX",
        ] {
            assert!(!takes_one_request(path), "{path}");
        }
    }

    #[test]
    fn response_encoding_only_when_asked_and_accepted() {
        let all = Encoding::ALL;
        let mut h = headers(&[
            ("grpc-accept-encoding", "gzip, zstd"),
            (RESPONSE_ENCODING, "zstd"),
        ]);
        choose_response_encoding(&mut h, &all);
        assert_eq!(h["grpc-accept-encoding"], "zstd");

        for asked in ["deflate", "identity", "br"] {
            let mut h = headers(&[("grpc-accept-encoding", "gzip,zstd")]);
            h.insert(RESPONSE_ENCODING, HeaderValue::from_static(asked));
            choose_response_encoding(&mut h, &all);
            assert!(h.get("grpc-accept-encoding").is_none(), "{asked}");
        }

        let mut h = headers(&[("grpc-accept-encoding", "gzip")]);
        choose_response_encoding(&mut h, &all);
        assert!(h.get("grpc-accept-encoding").is_none());

        let mut h = headers(&[
            ("grpc-accept-encoding", "gzip"),
            (RESPONSE_ENCODING, "gzip"),
        ]);
        choose_response_encoding(&mut h, &[Encoding::Zstd]);
        assert!(h.get("grpc-accept-encoding").is_none());
    }

    #[test]
    fn x_metadata_keeps_only_x_headers() {
        let h = headers(&[
            ("x-a", "1"),
            ("x-a", "2"),
            ("grpc-timeout", "1S"),
            ("x-b-bin", "AAE="),
        ]);
        let m = x_metadata(&h);
        assert_eq!(m.len(), 2);
        assert_eq!(m["x-a"], "1,2");
        assert_eq!(m["x-b-bin"], "AAE=");
    }
}
