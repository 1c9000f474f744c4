//! The kit's own conforming gRPC client (`grpc-conform client-driver`): reads
//! a client plan, runs its calls against the reference server on one channel
//! and reports what a client application would have seen. It produces the
//! golden client snapshots, so it does what PROTOCOL-HTTP2.md, compression.md,
//! keepalive.md (with proposal A8) and http-grpc-status-mapping.md ask of a
//! client; [`Faults`] turn single behaviours off so tests can show that the
//! client fixtures catch a client without them.
//!
//! - [`prepare`]: the plan checked and turned into framed requests.
//! - [`channel`]: the one channel: connections, GOAWAY, reconnecting.
//! - [`keepalive`]: client PINGs and the back-off after `too_many_pings`.
//! - [`request`]: the request head (te, content type, grpc-timeout, metadata).
//! - [`status`]: how an answer becomes a status (HTTP mapping, resets).
//! - [`call`]: one call's steps on its stream: send, cancel, deadline,
//!   read the answer.

pub mod call;
pub mod channel;
pub mod keepalive;
pub mod prepare;
pub mod request;
pub mod status;

use crate::client::plan::{Plan, Report, INTERFACE_VERSION};
use crate::descriptors::Descriptors;
use channel::Channel;
use std::time::Duration;
use tokio::time::Instant;

/// The `client` field of the driver's reports.
pub const CLIENT_NAME: &str = concat!("grpc-conform-driver/", env!("CARGO_PKG_VERSION"));

/// Behaviours of a conforming client the tests switch off, one at a time, to
/// prove the fixtures meant to catch each one do. All off: the conforming
/// driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// A cancel sends an empty DATA frame with END_STREAM (a half-close)
    /// instead of RST_STREAM(CANCEL), and leaves the stream open.
    pub half_close_on_cancel: bool,
    /// Deadlines are enforced locally but never sent as `grpc-timeout`.
    pub no_grpc_timeout: bool,
    /// After a GOAWAY the client keeps using the old connection for new
    /// calls instead of opening a new one.
    pub ignore_goaway: bool,
    /// The keepalive pings every tenth of its configured time, with or
    /// without calls and whatever happens on the connection, and never backs
    /// off after `too_many_pings`.
    pub ping_too_often: bool,
}

/// A plan the driver cannot run; nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The plan's `version` is not the one this build speaks.
    #[error("plan version {found}: this client speaks version {INTERFACE_VERSION}")]
    Version {
        /// The version in the plan.
        found: u32,
    },
    /// A field of the plan is unusable.
    #[error("{field}: {reason}")]
    Field {
        /// Where, e.g. `calls[1].steps[0].message`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The contract's descriptors did not load (a build problem).
    #[error("descriptors: {0}")]
    Descriptors(#[source] crate::descriptors::DescriptorError),
}

/// Runs `plan` with `faults` and returns the report; every wait is bounded by
/// the plan's `timeout_ms` from the moment this is called.
pub async fn run(plan: &Plan, faults: Faults) -> Result<Report, PlanError> {
    if plan.version != INTERFACE_VERSION {
        return Err(PlanError::Version {
            found: plan.version,
        });
    }
    let descriptors = Descriptors::contract().map_err(PlanError::Descriptors)?;
    let calls = prepare::calls(plan, &descriptors)?;
    let bound = Instant::now() + Duration::from_millis(plan.timeout_ms);
    let channel = Channel::new(&plan.target, &plan.channel, faults)?;
    let max_receive = plan
        .channel
        .max_receive_message_bytes
        .unwrap_or(call::DEFAULT_MAX_RECEIVE);
    let reports = if plan.concurrent {
        let runs = calls
            .iter()
            .map(|c| call::run(&channel, c, max_receive, bound));
        futures::future::join_all(runs).await
    } else {
        let mut out = Vec::with_capacity(calls.len());
        for c in &calls {
            out.push(call::run(&channel, c, max_receive, bound).await);
        }
        out
    };
    channel.close().await;
    Ok(Report {
        version: INTERFACE_VERSION,
        client: Some(CLIENT_NAME.to_string()),
        calls: reports,
    })
}
