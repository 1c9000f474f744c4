//! The one integration-test binary: a module per area.

mod capabilities;
mod cli;
mod coverage;
mod faulty;
mod runner;
mod services;
mod stability;
mod support;
mod transport;
mod wire;
