//! What a round measured: per-stream counts, latencies in an HDR histogram,
//! the process's own CPU time, and the figures computed from them.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

/// Largest latency the histogram tells apart (an hour, in microseconds);
/// longer ones are recorded as this.
const HIGHEST_US: u64 = 3_600_000_000;
/// Latencies a stream keeps before adding them to the shared histogram, so
/// its lock is taken once per this many messages.
const SINK_BATCH: usize = 256;

/// A round's latency histogram (microseconds, 3 significant figures),
/// shared by its streams.
#[derive(Clone)]
pub struct SharedHistogram(Arc<Mutex<Histogram<u64>>>);

impl SharedHistogram {
    /// An empty histogram.
    pub fn new() -> SharedHistogram {
        let histogram =
            Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("bounds and precision are valid");
        SharedHistogram(Arc::new(Mutex::new(histogram)))
    }

    /// The histogram so far (a copy).
    pub fn snapshot(&self) -> Histogram<u64> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        // A panic mid-record leaves a histogram that is still whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for SharedHistogram {
    fn default() -> Self {
        SharedHistogram::new()
    }
}

/// Messages, bytes and call outcomes, of a stream or summed.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Counted messages sent.
    pub sent: u64,
    /// Counted messages received.
    pub received: u64,
    /// Bytes of the counted messages sent (prefix included).
    pub bytes_sent: u64,
    /// Bytes of the counted messages received (prefix included).
    pub bytes_received: u64,
    /// Calls that ended with OK.
    pub calls: u64,
    /// Calls that ended otherwise, by status code name or client-side cause.
    pub errors: BTreeMap<&'static str, u64>,
}

impl Counts {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &Counts) {
        self.sent += other.sent;
        self.received += other.received;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.calls += other.calls;
        for (cause, n) in &other.errors {
            *self.errors.entry(cause).or_insert(0) += n;
        }
    }

    /// Counts a call that ended with `cause` (a status name or client-side cause).
    pub fn error(&mut self, cause: &'static str) {
        *self.errors.entry(cause).or_insert(0) += 1;
    }
}

/// One stream's counts, and a bounded batch of latencies for the shared
/// histogram.
pub struct StreamTally {
    /// What the stream counted.
    pub counts: Counts,
    batch: Vec<u64>,
    histogram: SharedHistogram,
}

impl StreamTally {
    /// A tally adding its latencies to `histogram`.
    pub fn new(histogram: SharedHistogram) -> StreamTally {
        StreamTally {
            counts: Counts::default(),
            batch: Vec::with_capacity(SINK_BATCH),
            histogram,
        }
    }

    /// Records one latency.
    pub fn latency(&mut self, latency: Duration) {
        self.batch
            .push(latency.as_micros().min(u128::from(HIGHEST_US)) as u64);
        if self.batch.len() == SINK_BATCH {
            self.flush();
        }
    }

    /// Adds the batched latencies to the shared histogram.
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut histogram = self.histogram.lock();
        for &us in &self.batch {
            histogram.saturating_record(us.max(1));
        }
        drop(histogram);
        self.batch.clear();
    }
}

/// Counts of a round or of several, with the time and CPU they took.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// Messages, bytes, calls.
    pub counts: Counts,
    /// Measured time.
    pub duration: Duration,
    /// CPU time of this process over `duration` (user and system).
    pub cpu: Duration,
    /// Peak resident memory of this process so far, KiB.
    pub peak_rss_kb: u64,
}

impl Totals {
    /// Adds another round's totals (time and CPU add up; memory is the peak).
    pub fn add_round(&mut self, other: &Totals) {
        self.counts.add(&other.counts);
        self.duration += other.duration;
        self.cpu += other.cpu;
        self.peak_rss_kb = self.peak_rss_kb.max(other.peak_rss_kb);
    }
}

/// This process's CPU time (user and system, all threads) and peak
/// resident memory in KiB, from getrusage.
pub fn process_usage() -> (Duration, u64) {
    // SAFETY: getrusage writes the struct it is given and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return (Duration::ZERO, 0);
        }
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    let cpu = time(usage.ru_utime) + time(usage.ru_stime);
    (cpu, peak_rss_kb().unwrap_or(usage.ru_maxrss.max(0) as u64))
}

/// Peak resident memory of this program, KiB, from `VmHWM` in
/// /proc/self/status (Linux). Preferred to getrusage's `ru_maxrss`, which
/// keeps the peak of whatever process ran before an exec (a test harness,
/// a shell wrapper) and so can report another program's memory.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Messages (or calls) with a latency.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// The percentiles of `histogram` (zeros when it is empty).
    pub fn of(histogram: &Histogram<u64>) -> Latency {
        if histogram.is_empty() {
            return Latency::default();
        }
        let at = |q: f64| histogram.value_at_quantile(q);
        Latency {
            count: histogram.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: histogram.max(),
            mean: (histogram.mean() * 10.0).round() / 10.0,
        }
    }
}

/// The figures of one round or summary for one target (the JSON and CSV
/// fields; docs/bench.md says what each means).
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    /// Label of the target: `A` (--target) or `B` (--compare).
    pub target: &'static str,
    /// `host:port` of the target.
    pub address: String,
    /// Measured time, seconds.
    pub duration_s: f64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Messages sent per second.
    pub msgs_per_s_sent: f64,
    /// Messages received per second.
    pub msgs_per_s_received: f64,
    /// Message bytes (5-byte prefix included) sent.
    pub bytes_sent: u64,
    /// Message bytes (5-byte prefix included) received.
    pub bytes_received: u64,
    /// Message bytes (5-byte prefix included) sent per second.
    pub bytes_per_s_sent: f64,
    /// Message bytes (5-byte prefix included) received per second.
    pub bytes_per_s_received: f64,
    /// Per-message latency (see docs/bench.md for each mode), microseconds.
    pub latency_us: Latency,
    /// Calls that ended with OK.
    pub calls: u64,
    /// Calls that ended otherwise, by status code name or client-side cause.
    pub errors_by_code: BTreeMap<&'static str, u64>,
    /// CPU time of this process (the load generator) while measuring, seconds.
    pub client_cpu_s: f64,
    /// `client_cpu_s` per message of the streaming side, microseconds.
    pub client_cpu_per_msg_us: f64,
    /// Peak resident memory of this process, KiB.
    pub client_peak_rss_kb: u64,
}

impl Figures {
    /// The figures of `totals` and `histogram` for target `label` at `address`.
    pub fn new(
        label: &'static str,
        address: &str,
        totals: &Totals,
        histogram: &Histogram<u64>,
    ) -> Figures {
        let secs = totals.duration.as_secs_f64();
        let counts = &totals.counts;
        let per_s = |n: u64| {
            if secs > 0.0 {
                round2(n as f64 / secs)
            } else {
                0.0
            }
        };
        // The streaming side: echoes for bidi, responses of a server stream,
        // requests of a client stream, calls for unary.
        let messages = counts.sent.max(counts.received);
        let cpu = totals.cpu.as_secs_f64();
        Figures {
            target: label,
            address: address.to_string(),
            duration_s: round3(secs),
            messages_sent: counts.sent,
            messages_received: counts.received,
            msgs_per_s_sent: per_s(counts.sent),
            msgs_per_s_received: per_s(counts.received),
            bytes_sent: counts.bytes_sent,
            bytes_received: counts.bytes_received,
            bytes_per_s_sent: per_s(counts.bytes_sent),
            bytes_per_s_received: per_s(counts.bytes_received),
            latency_us: Latency::of(histogram),
            calls: counts.calls,
            errors_by_code: counts.errors.clone(),
            client_cpu_s: round3(cpu),
            client_cpu_per_msg_us: if messages > 0 {
                round3(cpu * 1e6 / messages as f64)
            } else {
                0.0
            },
            client_peak_rss_kb: totals.peak_rss_kb,
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_latencies_reach_the_histogram() {
        let shared = SharedHistogram::new();
        let mut tally = StreamTally::new(shared.clone());
        for us in 1..=1000u64 {
            tally.latency(Duration::from_micros(us));
        }
        tally.flush();
        let latency = Latency::of(&shared.snapshot());
        assert_eq!(latency.count, 1000);
        assert_eq!(latency.max, 1000);
        assert!((495..=505).contains(&latency.p50), "{latency:?}");
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let (before, _) = process_usage();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let (after, rss) = process_usage();
        assert!(after > before);
        assert!(rss > 0);
    }
}
