//! The one integration-test binary: a module per area.

mod bounds;
mod capabilities;
mod cli;
mod client_driver;
mod coverage;
mod faulty;
mod fuzz;
mod runner;
mod services;
mod stability;
mod support;
mod transport;
mod wire;
