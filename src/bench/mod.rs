//! `grpc-conform bench`: load on one method of a target, per-message
//! latency on every mode, the load generator's own CPU, and targets
//! compared round by round (docs/bench.md).
//!
//! One module a stage: [`config`] (what to send, checked and prepared once)
//! → [`schedule`], then [`bidi`] (bidi echo on the kit's own frames) or
//! [`load`] (the other modes' streams on h2) → [`stats`] (counts,
//! histogram, CPU) → [`output`] (human, JSON, CSV). [`reference`] starts the
//! embedded reference as a child process when no target is given.

pub mod bidi;
pub mod coalesce;
pub mod config;
pub mod load;
pub mod output;
pub mod reference;
pub mod schedule;
pub mod stats;

use crate::drive::{Connector, DriveError};
use config::{Mode, Until, Workload};
use load::{RoundCtx, StreamSlot};
use schedule::Phases;
use stats::{Figures, SharedHistogram, Totals};
use std::{
    sync::{atomic::AtomicU64, Arc},
    time::Duration,
};

/// Why a bench run could not be held.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A flag's value does not make sense (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The target could not be reached or spoke no HTTP/2 (exit 3).
    #[error("target {target}: {source}")]
    Connect {
        /// `host:port`.
        target: String,
        /// What failed.
        #[source]
        source: DriveError,
    },
    /// The embedded reference did not start (exit 2).
    #[error("embedded reference: {0}")]
    Reference(String),
}

/// A target of the run, its label (`A`, `B`) and what it is sent.
pub struct Target {
    /// `A` for --target, `B` for --compare or --compare-flags.
    pub label: &'static str,
    /// Opens its connections.
    pub connector: Connector,
    /// Its method, load shape and request (B's may differ from A's).
    pub workload: Arc<Workload>,
}

/// One round against one target.
pub struct Round {
    /// 1-based round number.
    pub number: u32,
    /// Index of the target in the run's list.
    pub target: usize,
    /// What it measured.
    pub figures: Figures,
}

/// Everything a run measured.
pub struct BenchReport {
    /// Each round against each target, in the order run.
    pub rounds: Vec<Round>,
    /// Per target, all its rounds together.
    pub summary: Vec<Figures>,
    /// The target that stopped answering, when one did (the run stopped there).
    pub stalled: Option<String>,
}

/// Progress of the round running, for the progress line.
#[derive(Clone, Default)]
pub struct Progress {
    /// Messages received so far in the round (warm-up included).
    pub received: Arc<AtomicU64>,
}

/// Where a round stands, as the progress reports hear of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundPhase {
    /// Its connections are being opened; the warm-up follows.
    Started,
    /// The warm-up is over: what follows is measured.
    Measuring,
    /// Its streams are done and counted.
    Done,
}

/// Connections are opened within this, each.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `rounds_per_target` rounds against each target, each with its own workload,
/// interleaved (A B A B ...), so drift of a shared machine falls on both
/// alike. `on_phase` hears of each round's phases (for the progress reports).
pub async fn run(
    targets: &[Target],
    rounds_per_target: u32,
    progress: &Progress,
    mut on_phase: impl FnMut(u32, &Target, RoundPhase),
) -> Result<BenchReport, BenchError> {
    let mut rounds = Vec::new();
    let mut sums: Vec<(Totals, Option<hdrhistogram::Histogram<u64>>)> =
        targets.iter().map(|_| (Totals::default(), None)).collect();
    let mut stalled = None;
    'rounds: for number in 1..=rounds_per_target {
        for (index, target) in targets.iter().enumerate() {
            let (totals, histogram) = round(target, progress, &mut |phase| {
                on_phase(number, target, phase)
            })
            .await?;
            let address = target.connector.address();
            let figures = Figures::new(target.label, address, &totals, &histogram);
            let (sum, sum_histogram) = &mut sums[index];
            sum.add_round(&totals);
            match sum_histogram {
                Some(h) => h.add(&histogram).expect("same bounds"),
                None => *sum_histogram = Some(histogram),
            }
            rounds.push(Round {
                number,
                target: index,
                figures,
            });
            if totals.counts.errors.contains_key("stalled") {
                stalled = Some(format!("{} {address}", target.label));
                break 'rounds;
            }
        }
    }
    let summary = targets
        .iter()
        .zip(&sums)
        .filter_map(|(target, (totals, histogram))| {
            let histogram = histogram.as_ref()?;
            Some(Figures::new(
                target.label,
                target.connector.address(),
                totals,
                histogram,
            ))
        })
        .collect();
    Ok(BenchReport {
        rounds,
        summary,
        stalled,
    })
}

/// One round: opens the connections, runs every stream, measures from the
/// end of the warm-up until the last stream is done.
async fn round(
    target: &Target,
    progress: &Progress,
    on_phase: &mut dyn FnMut(RoundPhase),
) -> Result<(Totals, hdrhistogram::Histogram<u64>), BenchError> {
    on_phase(RoundPhase::Started);
    let shape = &target.workload.shape;
    let connect_err = |source| BenchError::Connect {
        target: target.connector.address().to_string(),
        source,
    };
    let mut conns = Vec::with_capacity(shape.connections);
    for _ in 0..shape.connections {
        conns.push(
            tokio::time::timeout(CONNECT_TIMEOUT, open(&target.connector, shape))
                .await
                .map_err(|_| {
                    connect_err(DriveError::Handshake(format!(
                        "no HTTP/2 connection within {CONNECT_TIMEOUT:?}"
                    )))
                })?
                .map_err(connect_err)?,
        );
    }
    let authority = target.connector.address();
    let uri: http::Uri = format!("{}://{authority}{}", conns[0].scheme(), shape.method)
        .parse()
        .map_err(|e| BenchError::Usage(format!("--method {}: {e}", shape.method)))?;
    let duration = match shape.until {
        Until::Duration(d) => Some(d),
        Until::Messages(_) => None,
    };
    progress
        .received
        .store(0, std::sync::atomic::Ordering::Relaxed);
    let ctx = Arc::new(RoundCtx {
        workload: target.workload.clone(),
        uri,
        phases: Phases::starting_now(shape.warmup, duration),
        histogram: SharedHistogram::new(),
        progress: progress.received.clone(),
    });
    let streams = shape.connections * shape.streams;
    // One task a connection runs all its streams and the connection itself:
    // the streams a read made ready all send before the connection writes,
    // so their messages leave together, with no hand-over between tasks.
    let mut tasks = Vec::with_capacity(shape.connections);
    for (c, conn) in conns.into_iter().enumerate() {
        let slots: Vec<StreamSlot> = (0..shape.streams)
            .map(|s| {
                let index = c * shape.streams + s;
                StreamSlot {
                    index,
                    of: streams,
                    quota: quota(shape.until, index, streams),
                }
            })
            .collect();
        tasks.push(match conn {
            Opened::Frames { io, scheme } => tokio::spawn(bidi::run_connection(
                io,
                scheme,
                authority.to_string(),
                ctx.clone(),
                slots,
            )),
            Opened::H2(h2) => {
                let (conn, driver) = *h2;
                let of_conn = slots
                    .into_iter()
                    .map(|slot| load::run_stream(conn.sender.clone(), ctx.clone(), slot));
                tokio::spawn(coalesce::drive(driver, futures::future::join_all(of_conn)))
            }
        });
    }
    tokio::time::sleep_until(ctx.phases.measure_from).await;
    on_phase(RoundPhase::Measuring);
    let (cpu_before, _) = stats::process_usage();
    let mut totals = Totals::default();
    for task in tasks {
        match task.await {
            Ok(tallies) => tallies.iter().for_each(|t| totals.counts.add(&t.counts)),
            Err(_) => totals.counts.error("client_panic"),
        }
    }
    let (cpu_after, peak_rss_kb) = stats::process_usage();
    totals.duration =
        tokio::time::Instant::now().saturating_duration_since(ctx.phases.measure_from);
    totals.cpu = cpu_after.saturating_sub(cpu_before);
    totals.peak_rss_kb = peak_rss_kb;
    on_phase(RoundPhase::Done);
    Ok((totals, ctx.histogram.snapshot()))
}

/// A load connection, on the engine of its mode.
enum Opened {
    /// Bidi echo: the kit's own frames ([`bidi`]).
    Frames {
        io: Box<dyn crate::drive::connect::Io>,
        scheme: &'static str,
    },
    /// Every other mode: h2 ([`load`]), writes coalesced when it carries
    /// more than one stream.
    H2(Box<(coalesce::LoadConn, coalesce::Driver)>),
}

impl Opened {
    fn scheme(&self) -> &'static str {
        match self {
            Opened::Frames { scheme, .. } => scheme,
            Opened::H2(h2) => h2.0.scheme,
        }
    }
}

/// Opens a connection for `shape`'s mode. The caller bounds the time.
async fn open(connector: &Connector, shape: &config::LoadShape) -> Result<Opened, DriveError> {
    match shape.mode {
        Mode::Bidi => {
            let (io, scheme) = connector.connect_io().await?;
            Ok(Opened::Frames { io, scheme })
        }
        Mode::ServerStreaming | Mode::ClientStreaming | Mode::Unary => {
            let opened = coalesce::connect(connector, shape.streams > 1).await?;
            Ok(Opened::H2(Box::new(opened)))
        }
    }
}

/// Stream `index`'s share of a message count (the first streams take the
/// remainder).
fn quota(until: Until, index: usize, streams: usize) -> Option<u64> {
    match until {
        Until::Duration(_) => None,
        Until::Messages(n) => {
            let streams = streams as u64;
            Some(n / streams + u64::from((index as u64) < n % streams))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_counts_are_shared_without_loss() {
        let shares: Vec<u64> = (0..7)
            .map(|i| quota(Until::Messages(100), i, 7).unwrap())
            .collect();
        assert_eq!(shares.iter().sum::<u64>(), 100);
        assert_eq!(shares[0], 15);
        assert_eq!(shares[6], 14);
    }
}
