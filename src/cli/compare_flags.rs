//! `grpc-conform bench --compare-flags FLAGS`: B's flags are A's with the
//! flags written in FLAGS on top (docs/bench.md).
//!
//! FLAGS is parsed by the same clap definition as the command line, into a
//! whole `BenchArgs` with clap's defaults filled in; only the flags FLAGS
//! actually wrote (their value source is the command line) are copied over
//! A's, field by field through serde, whose field names are clap's ids. A
//! flag that conflicts with one written (`--duration` with `--messages`)
//! takes FLAGS's value too (unset), so B never holds both.

use super::{bench::BenchArgs, run::CliError};
use clap::{parser::ValueSource, Arg, Args, Command, FromArgMatches};
use serde_json::{Map, Value};

/// Flags that choose the run as a whole or B's address, not B's load:
/// refused in FLAGS.
const RUN_FLAGS: &[&str] = &[
    "target",
    "compare",
    "compare_flags",
    "format",
    "output",
    "rounds",
];

/// B's flags.
#[derive(Debug)]
pub struct CompareFlags {
    /// A's flags with those written in FLAGS on top.
    pub args: BenchArgs,
    /// The words of FLAGS, as split.
    pub words: Vec<String>,
    /// Ids (`BenchArgs` field names) of the flags FLAGS wrote.
    pub given: Vec<String>,
}

/// A usage error about FLAGS.
fn usage(message: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("--compare-flags: {message}"))
}

/// The flags of `bench`, as FLAGS is parsed: no program name, no --help.
fn command() -> Command {
    BenchArgs::augment_args(
        Command::new("compare-flags")
            .no_binary_name(true)
            .disable_help_flag(true),
    )
}

/// `a` with the flags written in `flags` (shell words) on top.
pub fn apply(a: &BenchArgs, flags: &str) -> Result<CompareFlags, CliError> {
    let words = shlex::split(flags).ok_or_else(|| {
        usage(format!(
            "`{flags}` does not split into words (an unclosed quote or a trailing backslash?)"
        ))
    })?;
    let command = command();
    let matches = command
        .clone()
        .try_get_matches_from(&words)
        .map_err(|e| usage(first_line(&e)))?;
    let given: Vec<&Arg> = command
        .get_arguments()
        .filter(|arg| matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine))
        .collect();
    if let Some(arg) = given
        .iter()
        .find(|arg| RUN_FLAGS.contains(&arg.get_id().as_str()))
    {
        return Err(usage(format!(
            "--{} is a flag of the whole run, not of B's load{}",
            arg.get_long().unwrap_or_default(),
            if arg.get_id() == "target" {
                " (B's address is --compare's, or A's)"
            } else {
                ""
            }
        )));
    }
    let b = BenchArgs::from_arg_matches(&matches).map_err(|e| usage(first_line(&e)))?;
    let mut merged = fields(a)?;
    let from_b = fields(&b)?;
    for arg in command.get_arguments() {
        let conflicts = |x: &Arg, y: &Arg| {
            command
                .get_arg_conflicts_with(x)
                .iter()
                .any(|c| c.get_id() == y.get_id())
        };
        let overridden = given
            .iter()
            .any(|g| g.get_id() == arg.get_id() || conflicts(g, arg) || conflicts(arg, g));
        let id = arg.get_id().as_str();
        if overridden {
            let value = from_b.get(id).cloned().unwrap_or(Value::Null);
            merged.insert(id.to_string(), value);
        }
    }
    let args = serde_json::from_value(Value::Object(merged)).map_err(usage)?;
    Ok(CompareFlags {
        args,
        words,
        given: given.iter().map(|a| a.get_id().to_string()).collect(),
    })
}

/// The fields of `args` by name.
fn fields(args: &BenchArgs) -> Result<Map<String, Value>, CliError> {
    match serde_json::to_value(args).map_err(usage)? {
        Value::Object(map) => Ok(map),
        other => Err(usage(format!("flags are not a record: {other}"))),
    }
}

/// The first line of clap's message, without its `error: ` (it names the
/// flag and the value).
fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn a(line: &str) -> BenchArgs {
        let words = shlex::split(&format!("bench {line}")).unwrap();
        Cli::try_parse_from(words).unwrap().bench
    }

    #[test]
    fn every_flag_is_a_field_under_its_id() {
        let names = fields(&a("")).unwrap();
        for arg in command().get_arguments() {
            assert!(names.contains_key(arg.get_id().as_str()), "{arg:?}");
        }
    }

    #[test]
    fn only_the_flags_written_override_a() {
        let a = a("--size 64 --streams 4 --reflect --header x:1 --compression gzip");
        let b = apply(&a, "--streams 1 --header 'y: two words'").unwrap();
        assert_eq!(b.given, ["streams", "headers"]);
        assert_eq!(b.args.streams, 1);
        assert_eq!(b.args.headers, ["y: two words"]);
        // Kept: A's explicit values, not clap's defaults.
        assert_eq!(b.args.size, Some(64));
        assert!(b.args.reflect);
        assert_eq!(b.args.compression.as_deref(), Some("gzip"));
        assert_eq!(b.args.connections, 1);
    }

    #[test]
    fn a_flag_written_unsets_the_one_it_conflicts_with() {
        let a = a("--messages 400");
        let b = apply(&a, "--duration 2s").unwrap();
        assert_eq!(b.args.messages, None);
        assert_eq!(b.args.duration, Some(std::time::Duration::from_secs(2)));
        let back = apply(&b.args, "--messages 5").unwrap();
        assert_eq!((back.args.messages, back.args.duration), (Some(5), None));
    }

    #[test]
    fn bad_flags_name_themselves() {
        for (flags, says) in [
            ("--size 0", "--size"),
            ("--nope", "--nope"),
            ("--compression 'gzip", "does not split"),
            ("--rounds 2", "--rounds"),
            ("--format json", "--format"),
            ("--target 127.0.0.1:1", "--target"),
            ("--compare-flags x", "--compare-flags"),
            ("--help", "--help"),
        ] {
            let e = apply(&a(""), flags).unwrap_err().to_string();
            assert!(
                e.contains("--compare-flags") && e.contains(says),
                "{flags}: {e}"
            );
        }
    }
}
