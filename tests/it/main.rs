//! The one integration-test binary: a module per area.

mod cli;
mod runner;
mod services;
mod support;
