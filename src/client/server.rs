//! The reference a client fixture runs against: a fresh server on
//! 127.0.0.1:0 with the fixture's settings, a log of every frame of every
//! connection the client opens, and the fixture's scripted answers keyed by
//! `x-conform-call-id`.

use super::answer::{self, PreparedAnswer};
use super::fixture::NamedClientFixture;
use super::planner::call_id;
use crate::{
    contract,
    descriptors::Descriptors,
    proto::observer::CallRecord,
    reference::{
        server::hook::{ConnectionHook, Script},
        services, CallRegistry, ReferenceServer,
    },
    run::reference_config,
    wire::{log::Frame, recorder::FrameLog},
};
use http::{HeaderMap, Response};
use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

/// Connections whose frames are kept; a client that opens more (a
/// reconnect loop) has the rest counted, not logged.
pub const MAX_LOGGED_CONNECTIONS: usize = 64;

/// A running reference for one client fixture; dropping it stops it.
pub struct FixtureServer {
    /// The server.
    server: ReferenceServer,
    /// Its connection logs and scripts.
    watch: Arc<Watch>,
    /// Its Observer records.
    registry: CallRegistry,
}

/// What the server saw of the client, once the client is done.
#[derive(Debug, Default)]
pub struct ServerView {
    /// Each connection's frames, in the order they were accepted (client
    /// frames are [`crate::wire::log::Dir::Out`]).
    pub connections: Vec<Vec<Frame>>,
    /// Connections beyond [`MAX_LOGGED_CONNECTIONS`].
    pub connections_not_logged: usize,
    /// The Observer's record of each call, in call order (`None`: the call
    /// never reached the service, e.g. a scripted answer or no request).
    pub records: Vec<Option<CallRecord>>,
}

/// The hook: logs and answers.
#[derive(Default)]
struct Watch {
    /// One log per accepted connection.
    logs: Mutex<(Vec<FrameLog>, usize)>,
    /// Scripted answers by call id.
    answers: HashMap<String, PreparedAnswer>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("answers", &self.answers.len())
            .finish()
    }
}

impl ConnectionHook for Watch {
    fn accepted(&self) -> FrameLog {
        let log = FrameLog::new();
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        if logs.0.len() < MAX_LOGGED_CONNECTIONS {
            logs.0.push(log.clone());
        } else {
            logs.1 += 1;
        }
        log
    }

    fn script(&self, request_headers: &HeaderMap) -> Option<Script> {
        let id = request_headers.get(contract::CALL_ID)?.to_str().ok()?;
        let answer = self.answers.get(id)?;
        let mut head = Response::new(());
        *head.status_mut() = answer.http_status;
        *head.headers_mut() = answer.headers.clone();
        Some(Script {
            delay: answer.delay,
            head,
            steps: answer.steps.clone(),
        })
    }
}

impl FixtureServer {
    /// Starts the reference for `named`; `scale` multiplies its times.
    pub async fn start(
        named: &NamedClientFixture,
        descriptors: &Descriptors,
        scale: impl Fn(u64) -> u64 + Copy,
    ) -> Result<FixtureServer, String> {
        let mut answers = HashMap::new();
        for (i, call) in named.fixture.calls.iter().enumerate() {
            let Some(answer) = &call.answer else { continue };
            let method = descriptors
                .method(&call.method)
                .ok_or_else(|| format!("no method {}", call.method))?;
            let prepared = answer::prepare(answer, &method.output(), scale)
                .map_err(|e| format!("calls[{i}].answer: {e}"))?;
            answers.insert(call_id(i), prepared);
        }
        let watch = Arc::new(Watch {
            answers,
            ..Watch::default()
        });
        let mut config = reference_config(&named.fixture.server.clone().unwrap_or_default(), scale);
        config.hook = Some(watch.clone());
        let registry = CallRegistry::default();
        let routes = services::routes(&config, registry.clone());
        let server = ReferenceServer::start_with_routes(config, routes, registry.clone())
            .await
            .map_err(|e| format!("reference for the fixture: {e}"))?;
        Ok(FixtureServer {
            server,
            watch,
            registry,
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// What the server saw of `calls` calls, then stops it. A call still
    /// running gets `settle` to end (the client is gone by now).
    pub async fn finish(self, calls: usize, settle: Duration) -> ServerView {
        let mut records = Vec::with_capacity(calls);
        for i in 0..calls {
            records.push(self.registry.get(&call_id(i), settle).await);
        }
        let logs = self.watch.logs.lock().unwrap_or_else(|p| p.into_inner());
        let view = ServerView {
            connections: logs.0.iter().map(FrameLog::frames).collect(),
            connections_not_logged: logs.1,
            records,
        };
        drop(logs);
        drop(self.server);
        view
    }
}
