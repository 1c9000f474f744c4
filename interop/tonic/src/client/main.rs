//! The tonic client under test (docs/clients.md): reads a plan on stdin,
//! runs its calls on one tonic `Channel`, prints the report on stdout.
//!
//!   grpc-conform-peer-tonic-client < plan.json > report.json

mod call;
mod messages;
mod plan;
#[path = "../proto.rs"]
pub mod proto;

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use crate::call::{Call, MethodTypes, Shared};
use crate::messages::descriptor;
use crate::plan::{ChannelOptions, Plan, PlanCall, Report, ReportCall, INTERFACE_VERSION};

/// How long the process stays after the report so queued frames go out.
const EXIT_LINGER: Duration = Duration::from_millis(100);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut text = String::new();
    tokio::io::stdin().read_to_string(&mut text).await?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| format!("the plan on stdin: {e}"))?;
    if plan.version != INTERFACE_VERSION {
        return Err(format!(
            "the plan's version is {}; this client speaks {INTERFACE_VERSION}",
            plan.version
        )
        .into());
    }
    eprintln!(
        "fixture {}: {} call(s) to {}",
        plan.fixture,
        plan.calls.len(),
        plan.target
    );
    let shared = Shared {
        channel: channel(&plan.target, &plan.channel)?,
        max_receive: plan.channel.max_receive_message_bytes.map(|n| n as usize),
        give_up_at: Instant::now() + Duration::from_millis(plan.timeout_ms),
    };
    let calls = if plan.concurrent {
        let tasks: Vec<_> = plan
            .calls
            .into_iter()
            .map(|call| {
                let shared = shared.clone();
                tokio::spawn(async move { run_call(&call, shared).await })
            })
            .collect();
        let mut reports = Vec::with_capacity(tasks.len());
        for task in tasks {
            reports.push(task.await?);
        }
        reports
    } else {
        let mut reports = Vec::with_capacity(plan.calls.len());
        for call in &plan.calls {
            reports.push(run_call(call, shared.clone()).await);
        }
        reports
    };
    let report = Report {
        version: INTERFACE_VERSION,
        client: format!("tonic/{}", env!("TONIC_VERSION")),
        calls,
    };
    println!("{}", serde_json::to_string(&report)?);
    // Dropping the channel lets its connection close; the linger gives the
    // connection's task the time to write what the calls queued last (the
    // reset of a call dropped just before) and to close, so the process does
    // not leave with its connection open (whether the server then saw the
    // close before it stopped varied from run to run).
    drop(shared);
    tokio::time::sleep(EXIT_LINGER).await;
    Ok(())
}

/// The plan's one channel: tonic's defaults but for what the plan sets.
/// Lazy, so a connection failure is each call's status, as tonic gives it.
fn channel(target: &str, options: &ChannelOptions) -> Result<Channel, Box<dyn std::error::Error>> {
    let mut endpoint = Endpoint::from_shared(format!("http://{target}"))?;
    if let Some(keepalive) = &options.keepalive {
        endpoint = endpoint
            .http2_keep_alive_interval(Duration::from_millis(keepalive.time_ms))
            .keep_alive_timeout(Duration::from_millis(keepalive.timeout_ms))
            .keep_alive_while_idle(keepalive.permit_without_stream);
    }
    Ok(endpoint.connect_lazy())
}

/// Runs one call with the prost types of its method.
async fn run_call(call: &PlanCall, shared: Shared) -> ReportCall {
    use crate::proto::*;
    let types = |input: &str, output: &str| MethodTypes {
        input: descriptor(input),
        output: descriptor(output),
    };
    match call.method.as_str() {
        "/ChatService/ChatStream" => {
            Call::<Message, Message>::run(call, shared, types("Message", "Message")).await
        }
        "/Greeter/SayHello" => {
            Call::<HelloRequest, HelloReply>::run(call, shared, types("HelloRequest", "HelloReply"))
                .await
        }
        "/Greeter/ServerStream" | "/Greeter/ClientStream" | "/Greeter/AllStream" => {
            let types = types("StreamRequestData", "StreamResponseData");
            Call::<StreamRequestData, StreamResponseData>::run(call, shared, types).await
        }
        "/SensorService/Record" => {
            Call::<SensorData, RecordSummary>::run(
                call,
                shared,
                types("SensorData", "RecordSummary"),
            )
            .await
        }
        "/SensorService/Watch" => {
            Call::<WatchRequest, SensorData>::run(call, shared, types("WatchRequest", "SensorData"))
                .await
        }
        "/SensorService/Latest" => {
            Call::<DeviceQuery, SensorData>::run(call, shared, types("DeviceQuery", "SensorData"))
                .await
        }
        "/conform.v1.Observer/GetCall" => {
            let types = types("conform.v1.CallQuery", "conform.v1.CallRecord");
            Call::<observer::CallQuery, observer::CallRecord>::run(call, shared, types).await
        }
        // A method the protos lack (an UNIMPLEMENTED probe): its requests
        // are sent as empty messages, as a stub of an unknown type would.
        _ => {
            let types = types("HelloRequest", "HelloReply");
            Call::<(), ()>::run(call, shared, types).await
        }
    }
}
