//! `grpc-conform completions SHELL` and `grpc-conform man`: shell
//! completions and the man page, generated from the clap definitions so they
//! never drift from `--help`.

use super::{out, run::CliError, Cli};
use clap::{Args, CommandFactory};
use std::path::PathBuf;

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script of `args.shell` to standard output.
pub fn completions(args: &CompletionsArgs) -> Result<u8, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "grpc-conform", &mut script);
    out::print(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

/// Arguments of `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write grpc-conform.1 and a page per subcommand (grpc-conform-serve.1
    /// ...) into DIR instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The man page (roff) of grpc-conform, printed or written with one page
/// per subcommand.
pub fn man(args: &ManArgs) -> Result<u8, CliError> {
    let command = Cli::command();
    let Some(dir) = &args.dir else {
        out::print(&render(command)?)?;
        return Ok(0);
    };
    let mut pages = vec![("grpc-conform".to_string(), command.clone())];
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("grpc-conform-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().display_name(name)));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Usage(format!("--dir {}: {e}", dir.display())))?;
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, render(page)?)
            .map_err(|e| CliError::Other(format!("cannot write {}: {e}", path.display())))?;
        out::line(&format!("wrote {}", path.display()))?;
    }
    Ok(0)
}

/// One man page in roff.
fn render(command: clap::Command) -> Result<String, CliError> {
    let title = command
        .get_display_name()
        .unwrap_or(command.get_name())
        .to_string();
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .title(title)
        .render(&mut page)
        .map_err(|e| CliError::Other(format!("cannot render the man page: {e}")))?;
    Ok(String::from_utf8_lossy(&page).into_owned())
}
