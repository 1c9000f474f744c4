//! Snapshots in insta's `.snap` file format: the golden ones (the reference
//! server's transcripts, embedded in the binary) and a target's accepted
//! divergences in `--snapshots DIR`, which override the golden. A mismatch
//! writes `DIR/<name>.snap.new`, which `cargo insta review` (with the stub of
//! [`init_cargo_stub`]) or `grpc-conform snapshots accept` turns into the
//! accepted `.snap`. An accepted `.snap` is only ever replaced by an accept.

use crate::fixture::embedded_snapshots;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// A snapshot file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not in insta's format.
    #[error("{path}:{line}: not an insta snapshot: {problem}")]
    Format {
        /// The file.
        path: String,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong there.
        problem: String,
    },
    /// The `--snapshots` directory is not there.
    #[error("snapshots directory {path} does not exist (a run with --snapshots {path} creates it on the first mismatch)")]
    NoDir {
        /// The directory given.
        path: PathBuf,
    },
}

/// The `info` of a golden base: a copy of the golden snapshot written next to
/// a `.snap.new` that has no accepted `.snap`, in a directory `snapshots
/// init` prepared for cargo-insta, so `cargo insta review` shows the diff
/// against the golden instead of the whole transcript as new. Such
/// a `.snap` is not an accepted divergence: the store ignores it, a match
/// removes it, and an accept (ours or cargo-insta's) overwrites it.
pub const GOLDEN_BASE_INFO: &str =
    "golden snapshot of grpc-conform, written as the base of a review; not an accepted divergence";

/// Where the expected transcript came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The golden snapshot embedded in the binary.
    Golden,
    /// An accepted divergence in the snapshots directory.
    Accepted(PathBuf),
}

/// Renders a snapshot file: insta's YAML metadata block, then the contents.
/// `source` is the fixture file (insta's "source"), `expression` the fixture
/// name, so `cargo insta review` shows what produced it.
pub fn render(name: &str, source: &str, description: &str, contents: &str) -> String {
    render_with_info(name, source, description, None, contents)
}

/// [`render`] with insta's optional `info` field.
fn render_with_info(
    name: &str,
    source: &str,
    description: &str,
    info: Option<&str>,
    contents: &str,
) -> String {
    let info = info.map_or(String::new(), |i| format!("info: {}\n", yaml_string(i)));
    format!(
        "---\nsource: {}\ndescription: {}\nexpression: {}\n{info}---\n{}\n",
        yaml_string(source),
        yaml_string(description),
        yaml_string(name),
        contents.trim_end()
    )
}

/// Whether a snapshot file's text is a golden base (see [`GOLDEN_BASE_INFO`]).
pub fn is_golden_base(text: &str) -> bool {
    let marker = format!("info: {}", yaml_string(GOLDEN_BASE_INFO));
    text.lines()
        .skip(1)
        .take_while(|l| l.trim_end() != "---")
        .any(|l| l.trim_end() == marker)
}

/// A YAML scalar insta's parser reads back as the same string: plain when
/// safe, otherwise double-quoted (JSON string syntax is valid YAML).
fn yaml_string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && !s.starts_with(['-', '.']);
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("strings serialise")
    }
}

/// The contents of a snapshot file (after the metadata block), normalised
/// as insta compares them: trailing whitespace trimmed, CRLF as LF. Accepts
/// what insta writes and what editors do to it: CRLF line ends, trailing
/// whitespace on the `---` lines, a byte-order mark, any UTF-8. Anything else
/// is an error naming the line; never a panic.
pub fn parse(path: &str, text: &str) -> Result<String, SnapshotError> {
    let format = |line: usize, problem: &str| SnapshotError::Format {
        path: path.to_string(),
        line,
        problem: problem.to_string(),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut consumed = 0;
    let mut lines = text.split_inclusive('\n').enumerate();
    match lines.next() {
        Some((_, first)) if first.trim_end() == "---" => consumed += first.len(),
        _ => {
            return Err(format(
                1,
                "expected a `---` line opening the metadata block",
            ))
        }
    }
    let mut last = 1;
    for (index, line) in lines {
        // `split_inclusive` cuts after a '\n', so `consumed` is always a
        // character boundary.
        consumed += line.len();
        last = index + 1;
        let content = line.trim_end();
        if content == "---" {
            return Ok(crate::normalise::snapshot_text(&text[consumed..]));
        }
        let yaml_like =
            content.is_empty() || content.starts_with([' ', '\t', '#']) || content.contains(':');
        if !yaml_like {
            return Err(format(
                last,
                "a metadata line is `key: value`, indented, or a comment",
            ));
        }
    }
    Err(format(
        last,
        "the metadata block is never closed by a `---` line",
    ))
}

/// The golden and accepted snapshots of a run, and where to write new ones;
/// by default, none at all (every transcript comes back as produced).
#[derive(Clone, Debug)]
pub struct Store {
    /// Golden snapshots by fixture name.
    golden: BTreeMap<String, String>,
    /// `--snapshots DIR`.
    dir: Option<PathBuf>,
    /// Whether `.snap.new` files may be written (false under `CI` unless asked).
    write: bool,
    /// Where the golden snapshots live in the repository (for errors).
    golden_dir: &'static str,
}

impl Default for Store {
    fn default() -> Self {
        Store::empty()
    }
}

impl Store {
    /// The embedded golden snapshots, overridden by `dir` when given.
    pub fn new(dir: Option<PathBuf>, write: bool) -> Store {
        Store::with_golden(embedded_snapshots(), "snapshots", dir, write)
    }

    /// The embedded golden client snapshots (`snapshots/client/`),
    /// overridden by `dir` when given.
    pub fn client(dir: Option<PathBuf>, write: bool) -> Store {
        let golden = crate::fixture::embedded_client_snapshots();
        Store::with_golden(golden, "snapshots/client", dir, write)
    }

    /// The snapshots `golden` (as `(name, text)`, from `golden_dir`),
    /// overridden by `dir` when given.
    fn with_golden(
        golden: &[(&str, &str)],
        golden_dir: &'static str,
        dir: Option<PathBuf>,
        write: bool,
    ) -> Store {
        let golden = golden
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        Store {
            golden,
            dir,
            write,
            golden_dir,
        }
    }

    /// A store with no snapshots at all, which writes nothing: every fixture
    /// comes back with its transcript as produced (for `bless-golden`).
    pub fn empty() -> Store {
        Store {
            golden: BTreeMap::new(),
            dir: None,
            write: false,
            golden_dir: "snapshots",
        }
    }

    /// The expected transcript of fixture `name`, if any snapshot exists.
    pub fn expected(&self, name: &str) -> Result<Option<(String, Origin)>, SnapshotError> {
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{name}.snap"));
            let text = if path.exists() {
                Some(read(&path)?)
            } else {
                None
            };
            if let Some(text) = text.filter(|t| !is_golden_base(t)) {
                return Ok(Some((
                    parse(&path.display().to_string(), &text)?,
                    Origin::Accepted(path),
                )));
            }
        }
        match self.golden.get(name) {
            Some(text) => Ok(Some((
                parse(&format!("{}/{name}.snap", self.golden_dir), text)?,
                Origin::Golden,
            ))),
            None => Ok(None),
        }
    }

    /// After a mismatch: writes `DIR/<name>.snap.new` when a directory was
    /// given and writing is allowed; the path written, if any. Without an
    /// accepted `.snap`, in a directory prepared for cargo-insta, the golden
    /// one is written beside it as a golden base (see [`GOLDEN_BASE_INFO`]),
    /// so cargo-insta diffs against the golden.
    pub fn write_new(&self, name: &str, snap_text: &str) -> Result<Option<PathBuf>, SnapshotError> {
        let (Some(dir), true) = (&self.dir, self.write) else {
            return Ok(None);
        };
        let path = dir.join(format!("{name}.snap.new"));
        write(&path, snap_text)?;
        // Only where `snapshots init` made a cargo-insta package: elsewhere
        // (the interop peers' directories) a base would be a stray file.
        let golden = self.golden.get(name).filter(|_| is_insta_stub(dir));
        if let Some(golden) = golden {
            let snap = dir.join(format!("{name}.snap"));
            let current = if snap.exists() {
                Some(read(&snap)?)
            } else {
                None
            };
            if current.as_deref().is_none_or(is_golden_base) {
                let (source, description) = metadata_of(golden);
                let contents = parse(&format!("{}/{name}.snap", self.golden_dir), golden)?;
                let base = render_with_info(
                    name,
                    &source,
                    &description,
                    Some(GOLDEN_BASE_INFO),
                    &contents,
                );
                if current.as_deref() != Some(base.as_str()) {
                    write(&snap, &base)?;
                }
            }
        }
        Ok(Some(path))
    }

    /// After a match: removes a leftover `DIR/<name>.snap.new` (as insta
    /// does) and a golden base written for its review.
    pub fn clear_new(&self, name: &str) -> Result<(), SnapshotError> {
        if let (Some(dir), true) = (&self.dir, self.write) {
            remove_if_exists(&dir.join(format!("{name}.snap.new")))?;
            remove_golden_base(dir, name)?;
        }
        Ok(())
    }
}

/// The `source` and `description` of a snapshot file's metadata block, as
/// [`render`] wrote them (empty when absent).
fn metadata_of(text: &str) -> (String, String) {
    let field = |key: &str| {
        text.lines()
            .skip(1)
            .take_while(|l| l.trim_end() != "---")
            .find_map(|l| l.strip_prefix(key))
            .map(|v| {
                let v = v.trim();
                serde_json::from_str::<String>(v).unwrap_or_else(|_| v.to_string())
            })
            .unwrap_or_default()
    };
    (field("source:"), field("description:"))
}

/// Fails unless the snapshots directory exists.
pub fn require_dir(dir: &Path) -> Result<(), SnapshotError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(SnapshotError::NoDir {
            path: dir.to_path_buf(),
        })
    }
}

/// Pending snapshots under `dir` as (fixture name, `.snap.new` path), sorted.
pub fn pending(dir: &Path) -> Result<Vec<(String, PathBuf)>, SnapshotError> {
    Ok(files_with(dir, ".snap.new")?
        .into_iter()
        .map(|p| (name_of(dir, &p, ".snap.new"), p))
        .collect())
}

/// Snapshot files under `dir` (accepted `.snap`, golden bases and pending
/// `.snap.new`) whose fixture `exists` does not know, as (name, path), sorted.
pub fn orphans(
    dir: &Path,
    exists: impl Fn(&str) -> bool,
) -> Result<Vec<(String, PathBuf)>, SnapshotError> {
    let mut out: Vec<(String, PathBuf)> = files_with(dir, ".snap")?
        .into_iter()
        .map(|p| (name_of(dir, &p, ".snap"), p))
        .chain(pending(dir)?)
        .filter(|(name, _)| !exists(name))
        .collect();
    out.sort();
    Ok(out)
}

/// Deletes the snapshot files `orphans` found; the paths deleted.
pub fn prune(dir: &Path, exists: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>, SnapshotError> {
    let mut done = Vec::new();
    for (_, path) in orphans(dir, exists)? {
        remove_if_exists(&path)?;
        done.push(path);
    }
    Ok(done)
}

/// Removes `path` unless it is already gone.
fn remove_if_exists(path: &Path) -> Result<(), SnapshotError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Removes `dir/<name>.snap` if it is a golden base (never an accepted one).
fn remove_golden_base(dir: &Path, name: &str) -> Result<(), SnapshotError> {
    let snap = dir.join(format!("{name}.snap"));
    if snap.exists() && is_golden_base(&read(&snap)?) {
        remove_if_exists(&snap)?;
    }
    Ok(())
}

/// Moves each pending snapshot whose name `keep` accepts onto its `.snap`;
/// returns the names accepted.
pub fn accept(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<String>, SnapshotError> {
    let mut done = Vec::new();
    for (name, new) in pending(dir)? {
        if keep(&name) {
            let snap = new.with_extension("");
            std::fs::rename(&new, &snap)
                .map_err(|source| SnapshotError::Io { path: snap, source })?;
            done.push(name);
        }
    }
    Ok(done)
}

/// Deletes each pending snapshot whose name `keep` accepts (and the golden
/// base written for its review); returns the names.
pub fn reject(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<String>, SnapshotError> {
    let mut done = Vec::new();
    for (name, new) in pending(dir)? {
        if keep(&name) {
            remove_if_exists(&new)?;
            remove_golden_base(dir, &name)?;
            done.push(name);
        }
    }
    Ok(done)
}

/// Writes a golden snapshot `dir/<name>.snap`, leaving the file untouched
/// when its contents would not change; whether it was written.
pub fn bless(dir: &Path, name: &str, snap_text: &str) -> Result<bool, SnapshotError> {
    let path = dir.join(format!("{name}.snap"));
    if path.exists() && read(&path)? == snap_text {
        return Ok(false);
    }
    write(&path, snap_text)?;
    Ok(true)
}

/// The first line of the manifest [`init_cargo_stub`] writes; a manifest
/// starting with it is ours to rewrite.
const STUB_MARKER: &str = "# Lets `cargo insta review` find grpc-conform's .snap.new files here.";

/// Whether `dir` holds the cargo package [`init_cargo_stub`] writes.
fn is_insta_stub(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|t| t.starts_with(STUB_MARKER))
}

/// Makes `dir` a cargo package (a `Cargo.toml` and an empty `lib.rs`), which
/// is what `cargo insta review` needs to find the `.snap.new` files there:
/// it walks the directory of every package `cargo metadata` lists. The
/// package names insta as a dev-dependency so cargo-insta knows its version;
/// the caller resolves the lock file once (`cargo generate-lockfile`) so a
/// review writes nothing. Returns the files written.
pub fn init_cargo_stub(dir: &Path) -> Result<Vec<PathBuf>, SnapshotError> {
    let manifest = dir.join("Cargo.toml");
    let lib = dir.join("lib.rs");
    let text = format!(
        "{STUB_MARKER}\n\
         [package]\nname = \"grpc-conform-snapshots\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [lib]\npath = \"lib.rs\"\n\n\
         # Never built: tells cargo-insta which insta format these files follow.\n\
         [dev-dependencies]\ninsta = \"1\"\n\n[workspace]\n"
    );
    let mut written = Vec::new();
    let ours = !manifest.exists() || read(&manifest)?.starts_with(STUB_MARKER);
    if ours && (!manifest.exists() || read(&manifest)? != text) {
        write(&manifest, &text)?;
        written.push(manifest);
    }
    if !lib.exists() {
        write(&lib, "//! Empty: this package only holds snapshots.\n")?;
        written.push(lib);
    }
    Ok(written)
}

/// Reads a file, naming it on error.
fn read(path: &Path) -> Result<String, SnapshotError> {
    std::fs::read_to_string(path).map_err(|source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a file, creating its directories, naming it on error.
fn write(path: &Path, text: &str) -> Result<(), SnapshotError> {
    let io = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

/// Files under `dir` (recursively) whose names end with `suffix`, sorted;
/// none when `dir` does not exist.
fn files_with(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>, SnapshotError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let io = |source| SnapshotError::Io {
            path: d.clone(),
            source,
        };
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(e)),
        };
        for entry in entries {
            let path = entry.map_err(io)?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The fixture name of a snapshot file: relative path without `suffix`.
fn name_of(dir: &Path, path: &Path, suffix: &str) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    let rel = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    rel.strip_suffix(suffix).unwrap_or(&rel).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_round_trips() {
        let text = render(
            "a/b-c",
            "fixtures/a/b-c.json",
            "says \"hi\": ok",
            "call 1 /X/Y\n  ← status OK\n\n",
        );
        assert!(text.starts_with("---\nsource: fixtures/a/b-c.json\ndescription: \"says \\\"hi\\\": ok\"\nexpression: a/b-c\n---\n"));
        assert_eq!(parse("t", &text).unwrap(), "call 1 /X/Y\n  ← status OK");
        assert!(parse("t", "call 1").is_err());
    }

    #[test]
    fn what_editors_do_is_accepted() {
        let lf = render("a", "fixtures/a.json", "d", "call 1 /X/Y\n  ← status OK");
        let crlf = lf.replace('\n', "\r\n");
        assert_eq!(parse("t", &crlf).unwrap(), "call 1 /X/Y\n  ← status OK");
        let spaces = lf.replace("---\n", "---  \t\n");
        assert_eq!(parse("t", &spaces).unwrap(), "call 1 /X/Y\n  ← status OK");
        let bom = format!("\u{feff}{lf}");
        assert_eq!(parse("t", &bom).unwrap(), "call 1 /X/Y\n  ← status OK");
        // Trailing spaces on `---` and multi-byte text in the metadata: once a panic.
        let multibyte = "--- \ndescription: “naïve” ← ✓\n---   \nbody é\n";
        assert_eq!(parse("t", multibyte).unwrap(), "body é");
    }

    #[test]
    fn the_rest_is_rejected_with_its_line() {
        let err = |text: &str| parse("s.snap", text).unwrap_err().to_string();
        assert!(err("").starts_with("s.snap:1:"), "{}", err(""));
        assert!(err("call 1\n---\n").starts_with("s.snap:1:"));
        assert!(
            err("---\nsource: x\n").starts_with("s.snap:2:"),
            "{}",
            err("---\nsource: x\n")
        );
        let stray = "---\nsource: x\nnot yaml at all\n---\nbody";
        assert!(err(stray).starts_with("s.snap:3:"), "{}", err(stray));
    }
}
