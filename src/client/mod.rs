//! Client-side conformance: the same conversations driven by a client under
//! test (a command the user gives) against the reference server, judged on
//! what the client reported and what the server saw of it.
//!
//! - [`plan`]: the JSON interface between the kit and the client under test.
//! - [`fixture`]: the client fixture format (`client-fixtures/`), with
//!   [`steps`] (the order rules) and [`answer`] (scripted answers);
//! - [`planner`]: a fixture becomes a plan;
//! - [`server`]: the fixture's reference, its frame logs and answers.

pub mod answer;
pub mod fixture;
pub mod plan;
pub mod planner;
pub mod server;
pub mod steps;
pub mod suite;
pub mod transcript;
pub mod under_test;
pub mod wire;
