//! `conform.v1.Observer`: what the server saw of a call that carried
//! `x-conform-call-id` (CONTRACT.md section 4). The records themselves are
//! kept by [`CallRegistry`]; this is only its gRPC face.
//!
//! Control headers do not apply here: the Observer is the test kit's probe,
//! not a method under test.

use crate::proto::observer::{observer_server::Observer, CallQuery, CallRecord};
use crate::reference::CallRegistry;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// Longest wait GetCall honours. A client asking for more gets the record as
/// it stands after this (RUNNING if still running): the reference never
/// parks a call for longer than a fixture could sensibly need.
pub const MAX_GET_CALL_WAIT: Duration = Duration::from_secs(60);

/// The Observer handler over the server's call registry.
#[derive(Debug, Clone)]
pub struct ObserverService {
    /// The calls that carried `x-conform-call-id`.
    registry: CallRegistry,
}

impl ObserverService {
    /// An Observer answering from `registry`.
    pub fn new(registry: CallRegistry) -> ObserverService {
        ObserverService { registry }
    }
}

#[tonic::async_trait]
impl Observer for ObserverService {
    async fn get_call(&self, request: Request<CallQuery>) -> Result<Response<CallRecord>, Status> {
        let CallQuery { call_id, wait_ms } = request.into_inner();
        let wait = Duration::from_millis(u64::from(wait_ms)).min(MAX_GET_CALL_WAIT);
        match self.registry.get(&call_id, wait).await {
            Some(record) => Ok(Response::new(record)),
            None => Err(Status::not_found(format!(
                "GetCall: no call carried x-conform-call-id {call_id:?}"
            ))),
        }
    }
}
