//! The one integration-test binary: a module per area.

mod cli;
mod coverage;
mod faulty;
mod runner;
mod services;
mod support;
mod transport;
mod wire;
