//! The one integration-test binary: a module per area.

mod capabilities;
mod cli;
mod faulty;
mod runner;
mod services;
mod stability;
mod support;
mod transport;
mod wire;
