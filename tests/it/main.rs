//! The one integration-test binary: a module per area.

mod bench;
mod bench_frames;
mod bounds;
mod capabilities;
mod cli;
mod client;
mod client_driver;
mod client_faults;
mod coverage;
mod faulty;
mod fuzz;
mod runner;
mod services;
mod stability;
mod support;
mod transport;
mod wire;
