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
    #[error("{path}: not an insta snapshot (expected a `---` metadata block first)")]
    Format {
        /// The file.
        path: String,
    },
}

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
    format!(
        "---\nsource: {}\ndescription: {}\nexpression: {}\n---\n{}\n",
        yaml_string(source),
        yaml_string(description),
        yaml_string(name),
        contents.trim_end()
    )
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
/// as insta compares them: trailing whitespace trimmed, CRLF as LF.
pub fn parse(path: &str, text: &str) -> Result<String, SnapshotError> {
    let format = || SnapshotError::Format {
        path: path.to_string(),
    };
    let mut lines = text.split_inclusive('\n');
    if lines.next().map(str::trim_end) != Some("---") {
        return Err(format());
    }
    let mut consumed = 4;
    for line in lines.by_ref() {
        consumed += line.len();
        if line.trim_end() == "---" {
            return Ok(crate::normalise::snapshot_text(&text[consumed..]));
        }
    }
    Err(format())
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
}

impl Default for Store {
    fn default() -> Self {
        Store::empty()
    }
}

impl Store {
    /// The embedded golden snapshots, overridden by `dir` when given.
    pub fn new(dir: Option<PathBuf>, write: bool) -> Store {
        let golden = embedded_snapshots()
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        Store { golden, dir, write }
    }

    /// A store with no snapshots at all, which writes nothing: every fixture
    /// comes back with its transcript as produced (for `bless-golden`).
    pub fn empty() -> Store {
        Store {
            golden: BTreeMap::new(),
            dir: None,
            write: false,
        }
    }

    /// The expected transcript of fixture `name`, if any snapshot exists.
    pub fn expected(&self, name: &str) -> Result<Option<(String, Origin)>, SnapshotError> {
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{name}.snap"));
            if path.exists() {
                let text = read(&path)?;
                return Ok(Some((
                    parse(&path.display().to_string(), &text)?,
                    Origin::Accepted(path),
                )));
            }
        }
        match self.golden.get(name) {
            Some(text) => Ok(Some((
                parse(&format!("snapshots/{name}.snap"), text)?,
                Origin::Golden,
            ))),
            None => Ok(None),
        }
    }

    /// After a mismatch: writes `DIR/<name>.snap.new` when a directory was
    /// given and writing is allowed; the path written, if any.
    pub fn write_new(&self, name: &str, snap_text: &str) -> Result<Option<PathBuf>, SnapshotError> {
        let (Some(dir), true) = (&self.dir, self.write) else {
            return Ok(None);
        };
        let path = dir.join(format!("{name}.snap.new"));
        write(&path, snap_text)?;
        Ok(Some(path))
    }

    /// After a match: removes a leftover `DIR/<name>.snap.new`, as insta does.
    pub fn clear_new(&self, name: &str) -> Result<(), SnapshotError> {
        if let (Some(dir), true) = (&self.dir, self.write) {
            let path = dir.join(format!("{name}.snap.new"));
            if path.exists() {
                std::fs::remove_file(&path).map_err(|source| SnapshotError::Io { path, source })?;
            }
        }
        Ok(())
    }
}

/// Pending snapshots under `dir` as (fixture name, `.snap.new` path), sorted.
pub fn pending(dir: &Path) -> Result<Vec<(String, PathBuf)>, SnapshotError> {
    Ok(files_with(dir, ".snap.new")?
        .into_iter()
        .map(|p| (name_of(dir, &p, ".snap.new"), p))
        .collect())
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

/// Deletes each pending snapshot whose name `keep` accepts; returns the names.
pub fn reject(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<String>, SnapshotError> {
    let mut done = Vec::new();
    for (name, new) in pending(dir)? {
        if keep(&name) {
            std::fs::remove_file(&new).map_err(|source| SnapshotError::Io { path: new, source })?;
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

/// Makes `dir` a cargo package (a `Cargo.toml` and an empty `lib.rs`), which
/// is all `cargo insta review` needs to find the `.snap.new` files there:
/// it walks the directory of every package `cargo metadata` lists.
pub fn init_cargo_stub(dir: &Path) -> Result<Vec<PathBuf>, SnapshotError> {
    let manifest = dir.join("Cargo.toml");
    let lib = dir.join("lib.rs");
    let mut written = Vec::new();
    if !manifest.exists() {
        write(
            &manifest,
            "# Lets `cargo insta review` find grpc-conform's .snap.new files here.\n\
             [package]\nname = \"grpc-conform-snapshots\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [lib]\npath = \"lib.rs\"\n\n[workspace]\n",
        )?;
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
}
