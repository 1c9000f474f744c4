//! `grpc-conform snapshots ...`: review a target's pending snapshots without
//! cargo-insta, and regenerate the golden snapshots from the reference.

use super::{out, run::CliError};
use crate::{
    plan::NamePattern,
    run,
    session::{self, SessionOptions},
    snapshot::{self, Store},
};
use clap::{Args, Subcommand};
use std::{collections::BTreeSet, path::PathBuf};

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
    /// or golden snapshot; exits 1 when something is pending, 0 when nothing is.
    Pending(PendingArgs),
    /// Turn pending snapshots into accepted ones (all, or those matching NAME
    /// patterns; a pattern matching nothing pending is an error).
    Accept(PendingArgs),
    /// Delete pending snapshots (all, or those matching NAME patterns; a
    /// pattern matching nothing pending is an error).
    Reject(PendingArgs),
    /// List snapshot files whose fixture no longer exists; exits 1 when there are any.
    Orphans(OrphanArgs),
    /// Delete snapshot files whose fixture no longer exists.
    Prune(OrphanArgs),
    /// Make the snapshots directory a cargo package so `cargo insta review`
    /// finds it (writes Cargo.toml, lib.rs and, with cargo, Cargo.lock).
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
    /// The target's snapshots directory (it must exist).
    #[arg(long, value_name = "DIR")]
    pub snapshots: PathBuf,
    /// Only these fixtures (substring or glob); all when none.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// The directory holds a client's snapshots (`grpc-conform client
    /// --snapshots`): diffs are against the golden client snapshots.
    #[arg(long)]
    pub client: bool,
}

/// Arguments of orphans and prune.
#[derive(Debug, Args)]
pub struct OrphanArgs {
    /// The target's snapshots directory (it must exist).
    #[arg(long, value_name = "DIR")]
    pub snapshots: PathBuf,
    /// The fixtures the snapshots belong to; the embedded corpus when absent.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
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

/// A snapshot store error as a CLI error (exit 2).
fn store_error(e: snapshot::SnapshotError) -> CliError {
    match e {
        snapshot::SnapshotError::NoDir { .. } => CliError::Usage(e.to_string()),
        _ => CliError::Other(e.to_string()),
    }
}

/// Runs a snapshots action; the exit code.
pub async fn execute(args: SnapshotsArgs) -> Result<u8, CliError> {
    match args.action {
        SnapshotsAction::Pending(p) => show_pending(&p),
        SnapshotsAction::Accept(p) => {
            let chosen = chosen_pending(&p)?;
            let done =
                snapshot::accept(&p.snapshots, |n| chosen.contains(n)).map_err(store_error)?;
            for name in done {
                out::line(&format!("accepted {name}"))?;
            }
            Ok(0)
        }
        SnapshotsAction::Reject(p) => {
            let chosen = chosen_pending(&p)?;
            let done =
                snapshot::reject(&p.snapshots, |n| chosen.contains(n)).map_err(store_error)?;
            for name in done {
                out::line(&format!("rejected {name}"))?;
            }
            Ok(0)
        }
        SnapshotsAction::Orphans(o) => {
            let names = fixture_names(&o)?;
            let found =
                snapshot::orphans(&o.snapshots, |n| names.contains(n)).map_err(store_error)?;
            for (name, path) in &found {
                out::line(&format!("{name}\t{}", path.display()))?;
            }
            if found.is_empty() {
                out::note("no snapshot without a fixture");
            } else {
                out::note(&format!(
                    "{} snapshot files have no fixture; `grpc-conform snapshots prune --snapshots {}` deletes them",
                    found.len(),
                    o.snapshots.display()
                ));
            }
            Ok(u8::from(!found.is_empty()))
        }
        SnapshotsAction::Prune(o) => {
            let names = fixture_names(&o)?;
            for path in snapshot::prune(&o.snapshots, |n| names.contains(n)).map_err(store_error)? {
                out::line(&format!("deleted {}", path.display()))?;
            }
            Ok(0)
        }
        SnapshotsAction::Init(d) => init(&d),
        SnapshotsAction::BlessGolden(b) => bless(b).await,
    }
}

/// `snapshots pending`: each pending snapshot with its diff; 1 when any.
fn show_pending(p: &PendingArgs) -> Result<u8, CliError> {
    let chosen = chosen_pending(p)?;
    let store = if p.client {
        Store::client(Some(p.snapshots.clone()), false)
    } else {
        Store::new(Some(p.snapshots.clone()), false)
    };
    for (name, path) in snapshot::pending(&p.snapshots).map_err(store_error)? {
        if !chosen.contains(&name) || out::closed() {
            continue;
        }
        out::line(&format!("{name}  ({})", path.display()))?;
        let new = std::fs::read_to_string(&path)
            .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
        let new = snapshot::parse(&path.display().to_string(), &new).map_err(store_error)?;
        let (old, from) = match store.expected(&name).map_err(store_error)? {
            Some((text, snapshot::Origin::Golden)) => (text, "golden"),
            Some((text, snapshot::Origin::Accepted(_))) => (text, "accepted"),
            None => (String::new(), "none"),
        };
        let (old, new) = (format!("{old}\n"), format!("{new}\n"));
        let diff = similar::TextDiff::from_lines(&old, &new);
        out::print(&diff.unified_diff().header(from, "pending").to_string())?;
    }
    if chosen.is_empty() {
        out::note("nothing pending");
    } else {
        out::note(&format!(
            "{} pending; `grpc-conform snapshots accept --snapshots {}` accepts them, `reject` deletes them",
            chosen.len(),
            p.snapshots.display()
        ));
    }
    Ok(u8::from(!chosen.is_empty()))
}

/// The names of the pending snapshots the NAME patterns choose (all when
/// none); a missing directory or a pattern choosing nothing is an error.
fn chosen_pending(p: &PendingArgs) -> Result<BTreeSet<String>, CliError> {
    snapshot::require_dir(&p.snapshots).map_err(store_error)?;
    let patterns = p
        .names
        .iter()
        .map(|n| NamePattern::parse(n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let pending: Vec<String> = snapshot::pending(&p.snapshots)
        .map_err(store_error)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let unmatched: Vec<&str> = p
        .names
        .iter()
        .zip(&patterns)
        .filter(|(_, pattern)| !pending.iter().any(|n| pattern.matches(n)))
        .map(|(text, _)| text.as_str())
        .collect();
    if !unmatched.is_empty() {
        return Err(CliError::Usage(format!(
            "no pending snapshot in {} matches {} ({} pending)",
            p.snapshots.display(),
            unmatched.join(", "),
            pending.len()
        )));
    }
    Ok(pending
        .into_iter()
        .filter(|n| patterns.is_empty() || patterns.iter().any(|p| p.matches(n)))
        .collect())
}

/// The names of the fixtures the snapshots of `o` belong to.
fn fixture_names(o: &OrphanArgs) -> Result<BTreeSet<String>, CliError> {
    snapshot::require_dir(&o.snapshots).map_err(store_error)?;
    let (fixtures, _) = session::load(o.fixtures.as_ref(), &[], &[])?;
    Ok(fixtures.into_iter().map(|f| f.name).collect())
}

/// `snapshots init`: the cargo stub, and its lock file resolved once so
/// that `cargo insta review` writes nothing.
fn init(d: &DirArg) -> Result<u8, CliError> {
    for path in snapshot::init_cargo_stub(&d.snapshots).map_err(store_error)? {
        out::line(&format!("wrote {}", path.display()))?;
    }
    let lock = d.snapshots.join("Cargo.lock");
    if lock.exists() {
        return Ok(0);
    }
    // Online first (what a user expects), then from cargo's local cache.
    let cargo = std::env::var_os("CARGO").unwrap_or("cargo".into());
    let resolve = |offline: bool| {
        let mut cmd = std::process::Command::new(&cargo);
        cmd.arg("generate-lockfile")
            .arg("--manifest-path")
            .arg(d.snapshots.join("Cargo.toml"));
        if offline {
            cmd.arg("--offline");
        }
        cmd.status()
    };
    match resolve(false).and_then(|s| if s.success() { Ok(s) } else { resolve(true) }) {
        Ok(status) if status.success() => out::line(&format!("wrote {}", lock.display()))?,
        Ok(status) => out::note(&format!(
            "`cargo generate-lockfile` failed ({status}): cargo-insta will write Cargo.lock on its first run"
        )),
        Err(e) => out::note(&format!(
            "cannot run cargo ({e}); `cargo insta review` needs it anyway"
        )),
    }
    Ok(0)
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
                    out::line(&format!("wrote {}/{}.snap", b.dir.display(), r.name))?;
                }
            }
            _ => {
                refused += 1;
                out::line(&format!(
                    "NOT WRITTEN {}: {}",
                    r.name,
                    r.error
                        .clone()
                        .unwrap_or_else(|| r.failed_checks.join("; "))
                ))?;
                if let Some(t) = &r.transcript {
                    out::line(t)?;
                }
            }
        }
    }
    drop(prepared.reference);
    Ok(u8::from(refused > 0))
}
