//! `grpc-conform snapshots ...`: review a target's pending snapshots without
//! cargo-insta, and regenerate the golden snapshots from the reference.

use super::run::CliError;
use crate::{
    plan::NamePattern,
    run,
    session::{self, SessionOptions},
    snapshot::{self, Store},
};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Arguments of `snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: SnapshotsAction,
}

/// The snapshot actions.
#[derive(Debug, Subcommand)]
pub enum SnapshotsAction {
    /// List pending `.snap.new` files with their diff against the accepted
    /// or golden snapshot.
    Pending(PendingArgs),
    /// Turn pending snapshots into accepted ones (all, or those matching NAME patterns).
    Accept(PendingArgs),
    /// Delete pending snapshots (all, or those matching NAME patterns).
    Reject(PendingArgs),
    /// Make the snapshots directory a cargo package so `cargo insta review` finds it.
    Init(DirArg),
    /// Run the fixtures against the embedded reference server and write
    /// their transcripts as golden snapshots (for maintainers; review every
    /// changed file before committing). Fixtures whose checks fail are not written.
    BlessGolden(BlessArgs),
}

/// The snapshots directory.
#[derive(Debug, Args)]
pub struct DirArg {
    /// The target's snapshots directory.
    #[arg(long, value_name = "DIR")]
    pub snapshots: PathBuf,
}

/// Arguments of pending, accept and reject.
#[derive(Debug, Args)]
pub struct PendingArgs {
    /// The target's snapshots directory.
    #[arg(long, value_name = "DIR")]
    pub snapshots: PathBuf,
    /// Only these fixtures (substring or glob); all when none.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// Arguments of bless-golden.
#[derive(Debug, Args)]
pub struct BlessArgs {
    /// Where the golden snapshots go.
    #[arg(long, default_value = "snapshots", value_name = "DIR")]
    pub dir: PathBuf,
    /// The fixtures to run.
    #[arg(long, default_value = "fixtures", value_name = "DIR")]
    pub fixtures: PathBuf,
}

/// Runs a snapshots action; the exit code.
pub async fn execute(args: SnapshotsArgs) -> Result<u8, CliError> {
    let other = |e: snapshot::SnapshotError| CliError::Other(e.to_string());
    match args.action {
        SnapshotsAction::Pending(p) => {
            let keep = matcher(&p.names)?;
            let store = Store::new(Some(p.snapshots.clone()), false);
            for (name, path) in snapshot::pending(&p.snapshots).map_err(other)? {
                if !keep(&name) {
                    continue;
                }
                println!("{name}  ({})", path.display());
                let new = std::fs::read_to_string(&path)
                    .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
                let new = snapshot::parse(&path.display().to_string(), &new).map_err(other)?;
                let old = store
                    .expected(&name)
                    .map_err(other)?
                    .map(|(t, _)| t)
                    .unwrap_or_default();
                let diff = similar::TextDiff::from_lines(&old, &new);
                print!("{}", diff.unified_diff().header("accepted", "pending"));
            }
            Ok(0)
        }
        SnapshotsAction::Accept(p) => {
            let keep = matcher(&p.names)?;
            for name in snapshot::accept(&p.snapshots, keep).map_err(other)? {
                println!("accepted {name}");
            }
            Ok(0)
        }
        SnapshotsAction::Reject(p) => {
            let keep = matcher(&p.names)?;
            for name in snapshot::reject(&p.snapshots, keep).map_err(other)? {
                println!("rejected {name}");
            }
            Ok(0)
        }
        SnapshotsAction::Init(d) => {
            for path in snapshot::init_cargo_stub(&d.snapshots).map_err(other)? {
                println!("wrote {}", path.display());
            }
            Ok(0)
        }
        SnapshotsAction::BlessGolden(b) => bless(b).await,
    }
}

/// A name filter from patterns (everything when there are none).
fn matcher(names: &[String]) -> Result<impl Fn(&str) -> bool, CliError> {
    let patterns = names
        .iter()
        .map(|n| NamePattern::parse(n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(move |name: &str| patterns.is_empty() || patterns.iter().any(|p| p.matches(name)))
}

/// Regenerates the golden snapshots from the embedded reference.
async fn bless(b: BlessArgs) -> Result<u8, CliError> {
    // No snapshots at all: every transcript comes back as produced.
    let options = SessionOptions {
        fixtures: Some(b.fixtures.clone()),
        store: Store::empty(),
        time_scale: 1.0,
        jobs: 4,
        repeat: 1,
        ..SessionOptions::default()
    };
    let prepared = session::prepare(options).await?;
    let report = run::run(
        prepared.config,
        &prepared.label,
        &prepared.transport,
        |_| {},
    )
    .await;
    let mut refused = 0;
    // Each result carries its fixture's name and source: results are sorted
    // by name, fixtures by path, and the two orders differ (`a-b` < `a.json`).
    for r in &report.results {
        match (&r.transcript, r.failed_checks.is_empty(), &r.error) {
            (Some(t), true, None) => {
                let text = snapshot::render(&r.name, &r.source, &r.description, t);
                if snapshot::bless(&b.dir, &r.name, &text)
                    .map_err(|e| CliError::Other(e.to_string()))?
                {
                    println!("wrote {}/{}.snap", b.dir.display(), r.name);
                }
            }
            _ => {
                refused += 1;
                println!(
                    "NOT WRITTEN {}: {}",
                    r.name,
                    r.error
                        .clone()
                        .unwrap_or_else(|| r.failed_checks.join("; "))
                );
                if let Some(t) = &r.transcript {
                    println!("{t}");
                }
            }
        }
    }
    drop(prepared.reference);
    Ok(u8::from(refused > 0))
}
