//! The one integration-test binary: a module per area.

mod bench;
mod bounds;
mod capabilities;
mod cli;
mod coverage;
mod faulty;
mod fuzz;
mod runner;
mod services;
mod stability;
mod support;
mod transport;
mod wire;
