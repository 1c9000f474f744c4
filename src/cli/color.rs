//! `--color auto|always|never`, and the conventions around it: `NO_COLOR`
//! (no-color.org) turns colour off, `CLICOLOR_FORCE` (bixense.com/clicolors)
//! turns it on where there is no terminal; an explicit flag wins over both.

use clap::ValueEnum;

/// When to colour the human report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set; anywhere with CLICOLOR_FORCE.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour output going to a terminal (`is_terminal`), given
    /// the environment.
    pub fn colored(self, is_terminal: bool) -> bool {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto if set("NO_COLOR") => false,
            ColorChoice::Auto if set("CLICOLOR_FORCE") => true,
            ColorChoice::Auto => is_terminal,
        }
    }
}
