//! What the target offers, found by a few bounded probes before any fixture
//! runs: its transport, the contract's methods, the Observer, each control
//! header, each encoding. A fixture whose needs the target lacks is "not
//! applicable" rather than failed, so a verdict never depends on what the
//! target chose not to implement.
//!
//! A control header is `honoured` when the call behaved as the contract
//! says, `ignored` when it behaved as without the header, and `wrong` when it
//! did something else: a wrong header counts as present, so its fixtures run
//! and fail.

use crate::contract;
use serde::Serialize;
use std::collections::BTreeMap;

mod probe;
mod transport;
pub use probe::{probe, PROBE_BUDGET};
pub use transport::{check_transport, TransportError};

/// How the target answered a control header's probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Support {
    /// It behaved as the contract says.
    Honoured,
    /// It behaved as if the header were absent.
    Ignored,
    /// It did something else: counted as present, so fixtures show it.
    Wrong,
}

/// The target's profile.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Capabilities {
    /// Contract methods and whether each exists (anything but UNIMPLEMENTED).
    pub methods: BTreeMap<String, bool>,
    /// Whether `Observer.GetCall` returns the record of a call.
    pub observer: bool,
    /// Each control header and how it was answered.
    pub control: BTreeMap<String, Support>,
    /// Request encodings and whether each is accepted.
    pub encodings: BTreeMap<String, bool>,
    /// Whether fixtures that need the reference's own settings can run (only
    /// against the embedded reference, which is started with them).
    pub reference_settings: bool,
    /// Names whose value came from `--assume`, not from a probe.
    pub assumed: Vec<String>,
}

/// A `--assume` value that is not `NAME=yes|no` with a known name.
#[derive(Debug, thiserror::Error)]
#[error("--assume `{given}`: {reason}")]
pub struct AssumeError {
    /// What was given.
    pub given: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Capabilities {
    /// Everything present: the embedded reference.
    pub fn everything() -> Capabilities {
        Capabilities {
            methods: contract::METHODS
                .iter()
                .map(|m| (m.to_string(), true))
                .collect(),
            observer: true,
            control: contract::CONTROL_HEADERS
                .iter()
                .map(|h| (h.to_string(), Support::Honoured))
                .collect(),
            encodings: contract::ENCODINGS
                .iter()
                .map(|e| (e.to_string(), true))
                .collect(),
            reference_settings: true,
            assumed: Vec::new(),
        }
    }

    /// Whether the target has capability `name` (`observer`, `reference`,
    /// `method:/S/M`, `control:x-...`, `encoding:gzip`); `None` for a name
    /// this profile knows nothing of (a method of the user's own service).
    pub fn has(&self, name: &str) -> Option<bool> {
        match name.split_once(':') {
            None if name == "observer" => Some(self.observer),
            None if name == "reference" => Some(self.reference_settings),
            Some(("method", m)) => self.methods.get(m).copied(),
            Some(("control", h)) => self.control.get(h).map(|s| *s != Support::Ignored),
            Some(("encoding", e)) => self.encodings.get(e).copied(),
            _ => None,
        }
    }

    /// Applies one `--assume NAME=yes|no`.
    pub fn assume(&mut self, given: &str) -> Result<(), AssumeError> {
        let error = |reason: &str| AssumeError {
            given: given.to_string(),
            reason: reason.to_string(),
        };
        let (name, value) = given
            .split_once('=')
            .ok_or_else(|| error("expected NAME=yes or NAME=no"))?;
        let value = match value {
            "yes" | "true" => true,
            "no" | "false" => false,
            _ => return Err(error("the value must be yes or no")),
        };
        if self.has(name).is_none() {
            return Err(error(
                "unknown capability; names: observer, reference, method:/Service/Method, \
                 control:x-conform-..., encoding:gzip|deflate|zstd",
            ));
        }
        match name.split_once(':') {
            None if name == "observer" => self.observer = value,
            None => self.reference_settings = value,
            Some(("method", m)) => _ = self.methods.insert(m.to_string(), value),
            Some(("control", h)) => {
                let support = if value {
                    Support::Honoured
                } else {
                    Support::Ignored
                };
                self.control.insert(h.to_string(), support);
            }
            Some((_, e)) => _ = self.encodings.insert(e.to_string(), value),
        }
        self.assumed.push(name.to_string());
        Ok(())
    }

    /// The profile as short lines for a person: what is missing is named.
    pub fn summary(&self) -> Vec<String> {
        let missing = |map: &BTreeMap<String, bool>| -> Vec<String> {
            map.iter()
                .filter(|(_, v)| !**v)
                .map(|(k, _)| k.clone())
                .collect()
        };
        let list = |v: Vec<String>| {
            if v.is_empty() {
                "all".to_string()
            } else {
                format!("missing {}", v.join(", "))
            }
        };
        let by = |s: Support| -> Vec<String> {
            let names: Vec<String> = self
                .control
                .iter()
                .filter(|(_, v)| **v == s)
                .map(|(k, _)| k.clone())
                .collect();
            names
        };
        let mut control = format!("{} honoured", by(Support::Honoured).len());
        for (label, s) in [("ignored", Support::Ignored), ("wrong", Support::Wrong)] {
            if !by(s).is_empty() {
                control.push_str(&format!(", {label}: {}", by(s).join(", ")));
            }
        }
        vec![
            format!("methods: {}", list(missing(&self.methods))),
            format!("observer: {}", if self.observer { "yes" } else { "no" }),
            format!("control headers: {control}"),
            format!("encodings: {}", list(missing(&self.encodings))),
        ]
    }
}
