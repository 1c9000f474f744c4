//! `grpc-conform.toml`: what a CI step would otherwise repeat on every run.
//! Read from the working directory, or from `--config FILE`; a flag given on
//! the command line wins over the file. Header values may name environment
//! variables (`"Bearer ${TOKEN}"`) so secrets stay out of the file.
//!
//! ```toml
//! target = "127.0.0.1:50051"
//! snapshots = "conform/snapshots"
//! fixtures = "conform/fixtures"
//! proto = ["proto/shop.proto"]
//! proto_path = ["proto"]
//! known_failing = "conform/known-failing.txt"
//! known_flaky = "conform/known-flaky.txt"
//! skip = ["keepalive/*"]
//! time_scale = 2.0
//! jobs = 4
//!
//! [headers]
//! authorization = "Bearer ${CONFORM_TOKEN}"
//!
//! [tls]
//! ca_cert = "certs/ca.pem"
//! server_name = "api.internal"
//! client_cert = "certs/client.pem"
//! client_key = "certs/client.key"
//! ```

use super::run::{CliError, RunArgs};
use clap::{parser::ValueSource, ArgMatches};
use serde::Deserialize;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// The file looked for in the working directory.
pub const DEFAULT_FILE: &str = "grpc-conform.toml";

/// The contents of a config file; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `--target`.
    pub target: Option<String>,
    /// `--snapshots`.
    pub snapshots: Option<PathBuf>,
    /// `--fixtures`.
    pub fixtures: Option<PathBuf>,
    /// `--proto`, each.
    #[serde(default)]
    pub proto: Vec<PathBuf>,
    /// `--proto-path`, each.
    #[serde(default)]
    pub proto_path: Vec<PathBuf>,
    /// `--known-failing`.
    pub known_failing: Option<PathBuf>,
    /// `--known-flaky`.
    pub known_flaky: Option<PathBuf>,
    /// `--filter`, each.
    #[serde(default)]
    pub filter: Vec<String>,
    /// `--skip`, each.
    #[serde(default)]
    pub skip: Vec<String>,
    /// `--time-scale`.
    pub time_scale: Option<f64>,
    /// `--jobs`.
    pub jobs: Option<usize>,
    /// `--header NAME:VALUE`, each; `${VAR}` in a value is the environment
    /// variable VAR (an unset one is an error).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// TLS settings.
    pub tls: Option<TlsSection>,
}

/// The `[tls]` table; its presence means `--tls`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// `--ca-cert`.
    pub ca_cert: Option<PathBuf>,
    /// `--server-name`.
    pub server_name: Option<String>,
    /// `--client-cert`.
    pub client_cert: Option<PathBuf>,
    /// `--client-key`.
    pub client_key: Option<PathBuf>,
}

impl ConfigFile {
    /// Reads `--config FILE` (which must exist), else `grpc-conform.toml`
    /// in the working directory when there is one. Relative paths in the
    /// file are taken relative to the file's directory.
    pub fn find(explicit: Option<&Path>) -> Result<Option<(PathBuf, ConfigFile)>, CliError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
            None => return Ok(None),
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CliError::Usage(format!("--config {}: {e}", path.display())))?;
        let mut config: ConfigFile = toml::from_str(&text).map_err(|e| {
            CliError::Usage(format!("{}: {}", path.display(), e.to_string().trim_end()))
        })?;
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        config.rebase(&base);
        Ok(Some((path, config)))
    }

    /// Makes every relative path relative to `base` (the file's directory).
    fn rebase(&mut self, base: &Path) {
        let at = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        let at_opt = |p: &mut Option<PathBuf>| p.iter_mut().for_each(at);
        at_opt(&mut self.snapshots);
        at_opt(&mut self.fixtures);
        at_opt(&mut self.known_failing);
        at_opt(&mut self.known_flaky);
        self.proto.iter_mut().for_each(at);
        self.proto_path.iter_mut().for_each(at);
        if let Some(tls) = &mut self.tls {
            at_opt(&mut tls.ca_cert);
            at_opt(&mut tls.client_cert);
            at_opt(&mut tls.client_key);
        }
    }

    /// The `[headers]` as `name:value` flags, environment variables expanded.
    pub fn header_flags(&self, file: &Path) -> Result<Vec<String>, CliError> {
        self.headers
            .iter()
            .map(|(name, value)| {
                expand_env(value)
                    .map(|v| format!("{name}:{v}"))
                    .map_err(|var| {
                        CliError::Usage(format!(
                            "{}: header `{name}` names the environment variable {var}, which is not set",
                            file.display()
                        ))
                    })
            })
            .collect()
    }
}

/// Completes `args` from the config file (`--config FILE`, else
/// ./grpc-conform.toml when present): a value given on the command line
/// wins; headers from both are sent, the command line's winning per name.
pub fn apply(args: &mut RunArgs, matches: &ArgMatches) -> Result<(), CliError> {
    let Some((path, file)) = ConfigFile::find(args.config.as_deref())? else {
        return Ok(());
    };
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
        if slot.is_none() {
            *slot = value;
        }
    }
    fill(&mut args.target, file.target.clone());
    fill(&mut args.snapshots, file.snapshots.clone());
    fill(&mut args.fixtures, file.fixtures.clone());
    fill(&mut args.known_failing, file.known_failing.clone());
    fill(&mut args.known_flaky, file.known_flaky.clone());
    if !given("protos") {
        args.protos = file.proto.clone();
    }
    if !given("proto_paths") {
        args.proto_paths = file.proto_path.clone();
    }
    if !given("filter") {
        args.filter = file.filter.clone();
    }
    if !given("skip") {
        args.skip = file.skip.clone();
    }
    if let (false, Some(scale)) = (given("time_scale"), file.time_scale) {
        args.time_scale = scale;
    }
    if let (false, Some(jobs)) = (given("jobs"), file.jobs) {
        if jobs == 0 {
            return Err(CliError::Usage(format!(
                "{}: jobs must be at least 1",
                path.display()
            )));
        }
        args.jobs = jobs;
    }
    let flagged: Vec<String> = args
        .headers
        .iter()
        .filter_map(|h| h.split_once(':').map(|(n, _)| n.trim().to_lowercase()))
        .collect();
    let mut headers: Vec<String> = file
        .header_flags(&path)?
        .into_iter()
        .filter(|h| {
            h.split_once(':')
                .is_some_and(|(n, _)| !flagged.contains(&n.to_lowercase()))
        })
        .collect();
    headers.append(&mut args.headers);
    args.headers = headers;
    if let Some(tls) = file.tls {
        args.tls = true;
        fill(&mut args.ca_cert, tls.ca_cert);
        fill(&mut args.server_name, tls.server_name);
        if args.client_cert.is_none() && args.client_key.is_none() {
            args.client_cert = tls.client_cert;
            args.client_key = tls.client_key;
        }
    }
    Ok(())
}

/// `${VAR}` replaced by the environment variable VAR; the name of the first
/// unset one as the error.
fn expand_env(value: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let var = &after[..end];
        out.push_str(&std::env::var(var).map_err(|_| var.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_expand_and_unset_ones_are_named() {
        std::env::set_var("GRPC_CONFORM_TEST_TOKEN", "s3cr3t");
        assert_eq!(
            expand_env("Bearer ${GRPC_CONFORM_TEST_TOKEN}!").unwrap(),
            "Bearer s3cr3t!"
        );
        assert_eq!(
            expand_env("${GRPC_CONFORM_TEST_UNSET_VAR}").unwrap_err(),
            "GRPC_CONFORM_TEST_UNSET_VAR"
        );
        assert_eq!(expand_env("plain").unwrap(), "plain");
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<ConfigFile>("targte = \"x\"").is_err());
        let c: ConfigFile = toml::from_str("target = \"h:1\"\n[tls]\nserver_name = \"n\"").unwrap();
        assert_eq!(c.target.as_deref(), Some("h:1"));
        assert!(c.tls.is_some());
    }
}
