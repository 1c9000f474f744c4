//! The report of a bench run: a table for people, one JSON document or CSV
//! rows for machines (field meanings in docs/bench.md).

use super::{config::LoadShape, stats::Figures, BenchReport, Round};
use serde::Serialize;
use std::fmt::Write as _;

/// Report formats of `grpc-conform bench`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum BenchFormat {
    /// A table: each round and target, the summaries, the ratios.
    #[default]
    Human,
    /// One JSON document: config, rounds, summary, ratios.
    Json,
    /// A header and one row per round and target, then one per summary.
    Csv,
}

/// A target as the config lists it.
#[derive(Debug, Serialize)]
pub struct TargetInfo {
    /// `A` or `B`.
    pub label: &'static str,
    /// `host:port`.
    pub address: String,
    /// Whether it is the embedded reference started for the run.
    pub embedded_reference: bool,
    /// The words of --compare-flags it runs with on top of A's flags (B's;
    /// empty for A, and for B without --compare-flags).
    pub flags: Vec<String>,
    /// Its own load's shape (B's differs from A's by `flags`).
    pub shape: LoadShape,
}

/// What the run was asked to do.
#[derive(Debug, Serialize)]
pub struct RunConfig<'a> {
    /// The load's shape.
    #[serde(flatten)]
    pub shape: &'a LoadShape,
    /// The targets, A first.
    pub targets: Vec<TargetInfo>,
}

/// B's figures over A's, for a comparison.
#[derive(Debug, Serialize, PartialEq)]
pub struct Ratios {
    /// msgs_per_s_received, B / A.
    pub msgs_per_s_received: Option<f64>,
    /// bytes_per_s_received, B / A.
    pub bytes_per_s_received: Option<f64>,
    /// latency p50, B / A.
    pub latency_p50: Option<f64>,
    /// latency p99, B / A.
    pub latency_p99: Option<f64>,
    /// latency p99.9, B / A.
    pub latency_p999: Option<f64>,
    /// client_cpu_per_msg_us, B / A.
    pub client_cpu_per_msg_us: Option<f64>,
}

impl Ratios {
    /// B / A for each figure (none where A's is zero).
    pub fn of(a: &Figures, b: &Figures) -> Ratios {
        let r = |b: f64, a: f64| (a > 0.0).then(|| (b / a * 1000.0).round() / 1000.0);
        let (la, lb) = (&a.latency_us, &b.latency_us);
        Ratios {
            msgs_per_s_received: r(b.msgs_per_s_received, a.msgs_per_s_received),
            bytes_per_s_received: r(b.bytes_per_s_received, a.bytes_per_s_received),
            latency_p50: r(lb.p50 as f64, la.p50 as f64),
            latency_p99: r(lb.p99 as f64, la.p99 as f64),
            latency_p999: r(lb.p999 as f64, la.p999 as f64),
            client_cpu_per_msg_us: r(b.client_cpu_per_msg_us, a.client_cpu_per_msg_us),
        }
    }
}

/// The JSON document.
#[derive(Serialize)]
struct Document<'a> {
    config: &'a RunConfig<'a>,
    rounds: Vec<RoundRow<'a>>,
    summary: &'a [Figures],
    ratios: Option<Ratios>,
    stalled: Option<&'a str>,
}

/// One round of one target in JSON.
#[derive(Serialize)]
struct RoundRow<'a> {
    round: u32,
    #[serde(flatten)]
    figures: &'a Figures,
}

/// The ratios of a two-target run.
fn ratios(report: &BenchReport) -> Option<Ratios> {
    match &report.summary[..] {
        [a, b] => Some(Ratios::of(a, b)),
        _ => None,
    }
}

/// The report in `format`.
pub fn render(format: BenchFormat, config: &RunConfig<'_>, report: &BenchReport) -> String {
    match format {
        BenchFormat::Human => human(config, report),
        BenchFormat::Json => {
            let document = Document {
                config,
                rounds: report
                    .rounds
                    .iter()
                    .map(|r: &Round| RoundRow {
                        round: r.number,
                        figures: &r.figures,
                    })
                    .collect(),
                summary: &report.summary,
                ratios: ratios(report),
                stalled: report.stalled.as_deref(),
            };
            let mut text = serde_json::to_string_pretty(&document).expect("plain data serialises");
            text.push('\n');
            text
        }
        BenchFormat::Csv => csv(report),
    }
}

/// CSV columns, in order.
const CSV_HEADER: &str = "round,target,address,duration_s,messages_sent,messages_received,\
msgs_per_s_sent,msgs_per_s_received,bytes_sent,bytes_received,bytes_per_s_sent,bytes_per_s_received,\
latency_count,latency_p50_us,latency_p90_us,latency_p99_us,latency_p999_us,latency_max_us,\
latency_mean_us,calls,errors,client_cpu_s,client_cpu_per_msg_us,client_peak_rss_kb";

fn csv(report: &BenchReport) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    let rows = report
        .rounds
        .iter()
        .map(|r| (r.number.to_string(), &r.figures))
        .chain(report.summary.iter().map(|f| ("all".to_string(), f)));
    for (round, f) in rows {
        let l = &f.latency_us;
        // Addresses and status names have no commas or quotes; errors are
        // `CODE=n` joined by `;`.
        let _ = writeln!(
            out,
            "{round},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            f.target,
            f.address,
            f.duration_s,
            f.messages_sent,
            f.messages_received,
            f.msgs_per_s_sent,
            f.msgs_per_s_received,
            f.bytes_sent,
            f.bytes_received,
            f.bytes_per_s_sent,
            f.bytes_per_s_received,
            l.count,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.mean,
            f.calls,
            errors(f, ";"),
            f.client_cpu_s,
            f.client_cpu_per_msg_us,
            f.client_peak_rss_kb,
        );
    }
    out
}

/// `CODE=n` for each error cause, joined by `sep`.
fn errors(f: &Figures, sep: &str) -> String {
    let parts: Vec<String> = f
        .errors_by_code
        .iter()
        .map(|(code, n)| format!("{code}={n}"))
        .collect();
    parts.join(sep)
}

fn human(config: &RunConfig<'_>, report: &BenchReport) -> String {
    let shape = config.shape;
    let mut out = String::new();
    let _ = writeln!(out, "{}", describe(shape));
    for t in &config.targets {
        let what = if t.embedded_reference {
            " (embedded reference)"
        } else {
            ""
        };
        let flags = match shlex::try_join(t.flags.iter().map(String::as_str)) {
            Ok(flags) if !flags.is_empty() => format!(", {flags}"),
            _ => String::new(),
        };
        let _ = writeln!(out, "  {} = {}{what}{flags}", t.label, t.address);
    }
    let _ = writeln!(
        out,
        "\n{:<9} {:>11} {:>11} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>10}",
        "round",
        "msgs/s out",
        "msgs/s in",
        "MB/s out",
        "MB/s in",
        "p50 us",
        "p90 us",
        "p99 us",
        "p99.9 us",
        "max us",
        "calls",
        "cpu s",
        "cpu us/msg"
    );
    let rows = report
        .rounds
        .iter()
        .map(|r| (format!("{} {}", r.number, r.figures.target), &r.figures))
        .chain(
            report
                .summary
                .iter()
                .map(|f| (format!("all {}", f.target), f)),
        );
    for (name, f) in rows {
        let l = &f.latency_us;
        let mb = |b: f64| b / 1e6;
        let _ = writeln!(
            out,
            "{name:<9} {:>11.0} {:>11.0} {:>9.2} {:>9.2} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7.2} {:>10.2}",
            f.msgs_per_s_sent,
            f.msgs_per_s_received,
            mb(f.bytes_per_s_sent),
            mb(f.bytes_per_s_received),
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            f.calls,
            f.client_cpu_s,
            f.client_cpu_per_msg_us,
        );
    }
    for f in &report.summary {
        if !f.errors_by_code.is_empty() {
            let _ = writeln!(out, "errors {}: {}", f.target, errors(f, ", "));
        }
    }
    if let Some(r) = ratios(report) {
        let show = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
        let _ = writeln!(
            out,
            "B/A: msgs/s in {}, p50 {}, p99 {}, p99.9 {}, client cpu/msg {}",
            show(r.msgs_per_s_received),
            show(r.latency_p50),
            show(r.latency_p99),
            show(r.latency_p999),
            show(r.client_cpu_per_msg_us),
        );
    }
    out
}

/// One line saying what the run did.
fn describe(shape: &LoadShape) -> String {
    use super::config::Until;
    let size = shape
        .size
        .map_or("given".to_string(), |s| format!("{s}-byte"));
    let loop_kind = match shape.rate {
        Some(rate) => format!("open loop at {rate} msgs/s"),
        None => format!("closed loop, window {}", shape.window),
    };
    let until = match shape.until {
        Until::Duration(d) => format!("{:?}", d),
        Until::Messages(n) => format!("{n} messages"),
    };
    let compression = shape
        .compression
        .as_deref()
        .map_or(String::new(), |c| format!(", {c}"));
    format!(
        "{} ({:?}): {} connections x {} streams, {size} requests{compression}, {loop_kind}, \
         {until} after {:?} warm-up, {} round(s)",
        shape.method, shape.mode, shape.connections, shape.streams, shape.warmup, shape.rounds
    )
}
